"""``jamsdk animate``: animate a picture with a driving video or a camera into an .mp4/.avi/.gif.

The output appears only when complete (written to a temporary file, then renamed). Frames are
center-cropped to a square and resized to the model's resolution; the result is at that resolution.
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help="animate a picture with a driving video or camera", description=__doc__)
    add_common(p)
    p.add_argument("--model", required=True, metavar="DIR", help="exported model folder (`jamsdk export`)")
    p.add_argument("--source", required=True, metavar="IMG", help="picture to animate")
    p.add_argument("--driving", required=True, metavar="VIDEO|CAMERA",
                   help="driving video, GIF or frame folder, or a camera index such as 0 (Ctrl-C stops)")
    p.add_argument("--out", required=True, metavar="OUT", help="output .mp4, .avi or .gif")
    add_view_options(p)
    p.add_argument("--best-frame", action="store_true",
                   help="relative mode: use the driving frame posed most like the source as the reference "
                        "(reads the video twice; not for cameras)")
    return p


def add_view_options(p: argparse.ArgumentParser) -> None:
    """--layout, --show-regions, --smoothing, --threads (shared with jamsdk live)."""
    p.add_argument("--layout", choices=("result", "side-by-side"), default="result",
                   help="result only, or source | driving | result side by side (default result)")
    p.add_argument("--show-regions", action="store_true",
                   help="draw each region as its ellipse, one colour per region, on the driving and result")
    p.add_argument("--smoothing", type=float, default=0.0, metavar="S",
                   help="smooth the driving regions over time: the filter's time constant in frames "
                        "while still (default 0 = off; 2 to 5 calms a jittery driver)")
    p.add_argument("--threads", type=int, metavar="N", help="ONNX Runtime intra-op threads (default: its own)")


def add_common(p: argparse.ArgumentParser, backend: str = "auto") -> None:
    """Options shared with ``jamsdk demo``."""
    p.add_argument("--mode", choices=("relative", "standard", "avd"), default="relative",
                   help="motion transfer (default relative)")
    p.add_argument("--backend", choices=("auto", "tensorrt", "onnxruntime"), default=backend,
                   help=f"inference backend (default {backend})")
    p.add_argument("--precision", choices=("fp32", "fp16"), default="fp32",
                   help="ONNX graphs for onnxruntime (default fp32; TensorRT uses its engines)")
    p.add_argument("--fps", type=float, help="output frame rate (default: the driving video's, else 25)")
    p.add_argument("--max-frames", type=int, metavar="N", help="animate at most N driving frames")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def report(result) -> None:
    from jamsdk.runtime.stats import format_stats

    frame = result.stats.get("frame", {})
    speed = f", {1000.0 / frame['mean_ms']:.1f} frames/s" if frame.get("mean_ms") else ""
    print(f"wrote {result.out}: {result.frames} frames at {result.fps:g} fps ({result.backend}{speed})")
    print(format_stats(result.stats))


def run(args: argparse.Namespace) -> int:
    from jamsdk.runtime.render import render_video

    result = render_video(args.model, args.source, args.driving, args.out, mode=args.mode, backend=args.backend,
                          fps=args.fps, max_frames=args.max_frames, precision=args.precision,
                          show_progress=not args.no_progress, layout=args.layout,
                          show_regions=args.show_regions, best_frame=args.best_frame,
                          smoothing=args.smoothing, threads=args.threads)
    report(result)
    return 0
