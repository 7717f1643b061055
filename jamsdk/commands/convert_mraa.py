"""jamsdk convert-mraa: import a checkpoint of the MRAA reference implementation.

Converts an MRAA (articulated-animation) .pth with generator, region_predictor, bg_predictor and
optionally avd_network into a jamsdk checkpoint, given the YAML config it was trained with (one of
the released config/*.yaml, e.g. vox256.yaml). The .pth is read with torch.load(weights_only=True)
only. Example:

    jamsdk convert-mraa --checkpoint vox256.pth --config articulated-animation/config/vox256.yaml \\
        --out vox256-jamsdk.pt
    jamsdk export --checkpoint vox256-jamsdk.pt --out models/vox256
"""

from __future__ import annotations

import argparse
import sys

OPERANDS = "--checkpoint CKPT --config YAML --out OUT"
EXTRA = "train"  # what this command needs installed (named when a package of it is missing)


def add_parser(sub: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help="convert an MRAA (articulated-animation) checkpoint to a jamsdk checkpoint",
                       description=__doc__)
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="the MRAA .pth file")
    p.add_argument("--config", required=True, metavar="YAML",
                   help="the MRAA YAML config the checkpoint was trained with (e.g. config/vox256.yaml)")
    p.add_argument("--out", required=True, metavar="OUT", help="the jamsdk checkpoint to write")
    p.add_argument("--size", type=int, default=256, metavar="N",
                   help="square image size the converted model runs at (default 256; MRAA's TED models use 384)")
    return p


def run(args: argparse.Namespace) -> int:
    from jamsdk.model.mraa_import import convert_mraa

    result = convert_mraa(args.checkpoint, args.config, args.out, size=args.size)
    cfg = result.config
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"wrote {args.out}: {cfg.name}, {cfg.image_size}×{cfg.image_size}, {cfg.num_regions} regions, "
          f"background {cfg.bg_motion.bg_type}, AVD {'yes' if cfg.avd.enabled else 'no'}, "
          f"{result.num_params:,} parameters")
    return 0
