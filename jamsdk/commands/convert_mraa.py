"""``jamsdk convert-mraa``: import a checkpoint of the MRAA reference implementation.

Example::

    jamsdk convert-mraa vox256.pth --mraa-config articulated-animation/config/vox256.yaml \\
        --out vox256-jamsdk.pt --size 256
"""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(
        name, help="convert an MRAA (articulated-animation) checkpoint to a jamsdk checkpoint",
        description="Convert a checkpoint of the MRAA reference implementation (a .pth with generator, "
                    "region_predictor, bg_predictor and optionally avd_network) into a jamsdk checkpoint. "
                    "The MRAA file is read with torch.load(weights_only=True) only.")
    p.add_argument("checkpoint", metavar="CKPT", help="the MRAA .pth file")
    p.add_argument("--mraa-config", required=True, metavar="YAML",
                   help="the MRAA YAML config the checkpoint was trained with (e.g. config/vox256.yaml)")
    p.add_argument("--out", required=True, metavar="OUT", help="the jamsdk checkpoint to write")
    p.add_argument("--size", type=int, default=256, metavar="N",
                   help="square image size the converted model runs at (default 256; MRAA's TED models use 384)")
    return p


def run(args: argparse.Namespace) -> int:
    from jamsdk.model.mraa_import import convert_mraa

    result = convert_mraa(args.checkpoint, args.mraa_config, args.out, size=args.size)
    cfg = result.config
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"wrote {args.out}: {cfg.name}, {cfg.image_size}×{cfg.image_size}, {cfg.num_regions} regions, "
          f"background {cfg.bg_motion.bg_type}, AVD {'yes' if cfg.avd.enabled else 'no'}, "
          f"{result.num_params:,} parameters")
    return 0
