"""jamsdk synth: write a deterministic data set of synthetic articulated figures."""

from __future__ import annotations

import argparse
import sys

OPERANDS = "--out DIR"


def add_parser(sub: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(
        name,
        help="write a synthetic data set (articulated cartoon figures) in the MRAA/FOMM layout",
        description="jamsdk synth: render clips of articulated cartoon figures into OUT/train and OUT/test.\n"
                    "The same arguments give byte-identical files.",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (must not exist or be empty)")
    p.add_argument("--clips", type=int, default=100, metavar="N", help="number of clips (default 100)")
    p.add_argument("--frames", type=int, default=32, metavar="N", help="frames per clip (default 32)")
    p.add_argument("--size", type=int, default=256, metavar="N", help="frame size in pixels (default 256)")
    p.add_argument("--seed", type=int, default=0, metavar="K", help="random seed ≥ 0 (default 0)")
    p.add_argument("--test-fraction", type=float, default=0.2, metavar="F", help="share of clips for test/ (default 0.2)")
    p.add_argument("--format", choices=("folder", "gif", "mp4"), default="folder",
                   help="each clip as a folder of PNG frames (default), a GIF or an mp4v MP4")
    p.add_argument("--pairs", type=int, default=0, metavar="N",
                   help="also write N held-out animation pairs with ground truth to DIR/pairs (source figure A, "
                        "driving clip of figure B, A performing B's motion in relative and standard mode, and the "
                        "renderer's part-label maps and A's background for the motion metric); scored by jamsdk "
                        "eval --animation (default 0)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out if it holds an earlier synthetic data set")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    return p


def run(args: argparse.Namespace) -> int:
    from jamsdk.train.synth import write_dataset

    def progress(done: int, total: int) -> None:
        if not args.quiet and sys.stderr.isatty():
            print(f"\rclip {done}/{total}", end="" if done < total else "\n", file=sys.stderr, flush=True)

    s = write_dataset(args.out, clips=args.clips, frames=args.frames, size=args.size, seed=args.seed,
                      test_fraction=args.test_fraction, fmt=args.format, pairs=args.pairs, overwrite=args.overwrite,
                      progress=progress)
    print(f"wrote {s.train} train + {s.test} test clips ({s.frames} frames, {s.size}×{s.size}, "
          f"{s.fmt}) to {s.root}" + (f", {s.pairs} animation pairs to {s.root}/pairs" if s.pairs else "")
          + f" ({s.bytes / 1e6:.1f} MB)")
    return 0
