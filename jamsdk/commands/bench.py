"""jamsdk bench: streaming latency per stage (p50/p90/p99), FPS, memory and the machine, for one model folder.

A source picture is set once, then ``--warmup`` untimed and ``--frames`` timed synthetic driving
frames go through the Animator, as an application streams them. On TensorRT the GPU compute time
of every stage is measured with CUDA events, separately from host work. On a Jetson the power
mode and clock state are recorded (never changed) and ``tegrastats`` runs alongside.
"""

from __future__ import annotations

import argparse

from jamsdk.commands._options import (
    add_backend, add_json, add_mode, add_model, add_precision, add_threads, model_dir, run_precision,
)
from jamsdk.errors import InputError

OPERANDS = "--model DIR"
QUIET = True  # the libraries' own output is hidden unless --verbose (jamsdk._quiet)


def _shape(text: str) -> tuple[int, int]:
    """``480x640`` (height × width) → (480, 640)."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH such as 480x640, got {text!r}") from None
    if h < 1 or w < 1:
        raise argparse.ArgumentTypeError(f"expected positive sizes, got {text!r}")
    return h, w


def add_parser(sub: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help="benchmark streaming latency, FPS and memory of a model folder",
                       description=__doc__)
    add_model(p, "model to benchmark")
    add_backend(p)
    p.add_argument("--frames", type=int, default=200, metavar="N", help="timed frames (default 200)")
    p.add_argument("--warmup", type=int, default=20, metavar="N", help="untimed frames first (default 20)")
    add_mode(p)
    add_precision(p)
    add_threads(p)
    p.add_argument("--cuda-graph", action="store_true", help="TensorRT: replay each stage as a CUDA graph")
    p.add_argument("--input-shape", type=_shape, default=(480, 640), metavar="HxW",
                   help="driving frame size before crop/resize (default 480x640, a VGA camera frame)")
    add_json(p, "the full result (all samples)")
    p.add_argument("--plot", metavar="OUT.png", help="write per-stage latency box plots as a PNG")
    p.add_argument("--no-tegrastats", action="store_true", help="Jetson: do not run tegrastats alongside")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def run(args: argparse.Namespace) -> int:
    from jamsdk.runtime.bench import run_bench, write_json
    from jamsdk.runtime.bench_report import format_report, write_plot

    if args.plot and not args.plot.lower().endswith(".png"):
        raise InputError(f"--plot: expected a .png file, got {args.plot}")
    result = run_bench(model_dir(args), backend=args.backend, frames=args.frames, warmup=args.warmup, mode=args.mode,
                       precision=run_precision(args.precision), threads=args.threads, cuda_graph=args.cuda_graph,
                       input_shape=args.input_shape, use_tegrastats=not args.no_tegrastats,
                       show_progress=not args.no_progress)
    print(format_report(result))
    if args.json:
        print(f"wrote {write_json(result, args.json)}")
    if args.plot:
        print(f"wrote {write_plot(result, args.plot)}")
    return 0
