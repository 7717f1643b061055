"""jamsdk eval: mean reconstruction L1 of a checkpoint on a data set's test videos (the paper's Table I).

Each test video is rebuilt from its first frame (standard mode); prints the L1 per video and overall,
and with --json writes the result atomically.
"""

from __future__ import annotations

import argparse

from jamsdk.commands._options import add_json

OPERANDS = "--checkpoint CKPT --data DIR"


def add_parser(sub: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help="reconstruction L1 of a checkpoint on the test videos", description=__doc__)
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="jamsdk checkpoint (e.g. runs/jam/checkpoint.pt)")
    p.add_argument("--data", required=True, metavar="DIR", help="data set folder with a test/ split")
    add_json(p)
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--batch", type=int, default=16, metavar="N", help="frames per forward pass (default 16)")
    p.add_argument("--max-videos", type=int, metavar="N", help="evaluate only the first N test videos")
    return p


def run(args: argparse.Namespace) -> int:
    from jamsdk.train.evaluate import evaluate, write_json

    result = evaluate(args.checkpoint, args.data, device=args.device, batch=args.batch,
                      max_videos=args.max_videos, echo=print)
    print(f"mean L1 over {result['num_videos']} videos ({result['num_frames']} frames): {result['l1']:.5f}")
    if args.json:
        write_json(args.json, result)
        print(f"wrote {args.json}")
    return 0
