"""jamsdk convert-mraa: import a checkpoint of the MRAA reference implementation.

Converts an MRAA (articulated-animation) .pth with generator, region_predictor, bg_predictor and
optionally avd_network into a jamsdk checkpoint. MRAA's five released checkpoints (mgif256,
taichi256, ted384, ted-youtube384, vox256) are recognised by their size and SHA-256, and their
config and size are picked (and said); any other file needs --config, the YAML it was trained with.
The .pth is read with torch.load(weights_only=True) only. Example:

    jamsdk convert-mraa --checkpoint vox256.pth --out vox256-jamsdk.pt
    jamsdk export --checkpoint vox256-jamsdk.pt --out models/vox256
"""

from __future__ import annotations

import argparse
import sys

OPERANDS = "--checkpoint CKPT --out OUT (and --config YAML for a checkpoint MRAA did not release)"
EXTRA = "train"  # what this command needs installed (named when a package of it is missing)


def add_parser(sub: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help="convert an MRAA (articulated-animation) checkpoint to a jamsdk checkpoint",
                       description=__doc__)
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="the MRAA .pth file")
    p.add_argument("--config", metavar="YAML",
                   help="the MRAA YAML config the checkpoint was trained with (e.g. config/vox256.yaml); default: "
                        "the shipped config of a released checkpoint, recognised by its SHA-256")
    p.add_argument("--out", required=True, metavar="OUT", help="the jamsdk checkpoint to write")
    p.add_argument("--size", type=int, metavar="N",
                   help="square image size the converted model runs at (default: a released model's own, 256 or "
                        "384 for the TED models; else 256)")
    return p


def run(args: argparse.Namespace) -> int:
    from jamsdk.errors import InputError
    from jamsdk.model.mraa_released import RELEASED, identify

    released = identify(args.checkpoint, RELEASED)
    config, size = args.config, args.size
    if released is not None:
        config = config or released.config_path
        size = size or released.size
        print(f"note: {args.checkpoint} is MRAA's released {released.name} ({released.data}; its SHA-256 "
              f"matches): {'config ' + str(config) if args.config else 'its shipped config'}, size {size}",
              file=sys.stderr)
    elif config is None:
        names = ", ".join(r.file for r in RELEASED)
        raise InputError(f"--config YAML is needed: {args.checkpoint} is not one of MRAA's released checkpoints "
                         f"({names}: recognised by size and SHA-256); give the MRAA config it was trained with")

    from jamsdk.model.mraa_import import convert_mraa

    result = convert_mraa(args.checkpoint, config, args.out, size=size or 256)
    cfg = result.config
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"wrote {args.out}: {cfg.name}, {cfg.image_size}×{cfg.image_size}, {cfg.num_regions} regions, "
          f"background {cfg.bg_motion.bg_type}, AVD {'yes' if cfg.avd.enabled else 'no'}, "
          f"{result.num_params:,} parameters")
    return 0
