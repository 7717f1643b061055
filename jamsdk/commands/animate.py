"""jamsdk animate: animate a picture with a driving video or a camera into an .mp4, .avi or .gif.

Without --model the bundled demo model runs (it knows synthetic cartoon figures only; a note says
so). Non-square frames are centre-cropped to a square (a note says what was cut; --fit pad pads
them instead) and resized to the model's resolution; --output-size picks the output's side. The output file appears only when complete
(written to a temporary file, then renamed); its folder is created when missing.
"""

from __future__ import annotations

import argparse

from jamsdk.commands._options import (
    add_backend, add_json, add_max_pixels, add_mode, add_model, add_precision, add_threads, model_dir,
    run_precision, write_json,
)

OPERANDS = "--source IMG --driving VIDEO|CAMERA --out OUT (and optionally --model DIR)"
QUIET = True  # the libraries' own output is hidden unless --verbose (jamsdk._quiet)


def output_size(text: str) -> str | int:
    """argparse type for --output-size: model, crop or a positive integer side."""
    if text in ("model", "crop"):
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected model, crop or a side in pixels ≥ 1, got {text!r}")
    return value


def add_parser(sub: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help="animate a picture with a driving video or camera", description=__doc__)
    add_model(p)
    p.add_argument("--source", required=True, metavar="IMG", help="picture to animate")
    p.add_argument("--driving", required=True, metavar="VIDEO|CAMERA",
                   help="driving video, GIF or frame folder, or a camera index such as 0 (Ctrl-C stops)")
    p.add_argument("--out", required=True, metavar="OUT", help="output .mp4, .avi or .gif")
    add_common(p)
    add_view_options(p)
    p.add_argument("--best-frame", action="store_true",
                   help="relative mode: use the driving frame posed most like the source as the reference "
                        "(reads the video twice; not for cameras)")
    return p


def add_view_options(p: argparse.ArgumentParser) -> None:
    """--layout, --show-regions, --smoothing (shared with jamsdk live)."""
    p.add_argument("--layout", choices=("result", "side-by-side"), default="result",
                   help="result only, or source | driving | result side by side (default result)")
    p.add_argument("--show-regions", action="store_true",
                   help="draw each region as its ellipse, one colour per region, on the driving and result")
    p.add_argument("--smoothing", type=float, default=0.0, metavar="S",
                   help="smooth the driving regions over time: the filter's time constant in frames "
                        "while still (default 0 = off; 2 to 5 calms a jittery driver)")


def add_common(p: argparse.ArgumentParser) -> None:
    """Options shared with jamsdk demo."""
    add_mode(p)
    add_backend(p)
    add_precision(p)
    add_threads(p)
    add_max_pixels(p)
    p.add_argument("--output-size", type=output_size, default="model", metavar="model|crop|N",
                   help="side of the square output: model = the model's resolution (default), crop = the side of "
                        "the driving frame's centred square, N = N pixels")
    p.add_argument("--fit", choices=("crop", "pad"), default="crop",
                   help="crop (default): animate the centred square of non-square inputs; pad: pad them to a square "
                        "with their border colour instead, so nothing is cut, and cut the output back to the source "
                        "picture's aspect ratio")
    p.add_argument("--fps", type=float, help="output frame rate (default: the driving video's, else 25)")
    p.add_argument("--max-frames", type=int, metavar="N", help="animate at most N driving frames")
    add_json(p, "what was written and the per-stage latency")
    p.add_argument("--stats", action="store_true", help="also print the per-stage latency table (ms per call)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--allow-short-video", action="store_true",
                   help="a driving video that stops decoding before the frame count it declares (corrupt or cut "
                        "short) is written as far as it goes, with a note; default: refused, nothing written")


def report(result, json_out: str | None = None, stats: bool = False) -> None:
    """One line saying what was written (its size, and why that size); the latency table with ``stats``."""
    from jamsdk.runtime.stats import format_stats

    frame = result.stats.get("frame", {})
    speed = f", {1000.0 / frame['mean_ms']:.1f} frames/s" if frame.get("mean_ms") else ""
    why = f" ({result.size_note})" if result.size_note else ""
    print(f"wrote {result.out}: {result.frames} frames at {result.fps:g} fps, {result.size[0]}×{result.size[1]}{why}, "
          f"{result.backend}{speed}")
    if stats:
        print(format_stats(result.stats))
    if json_out:
        print(f"wrote {write_json(json_out, result.to_json())}")


def note(line: str) -> None:
    """One plain line on stderr (the CLI's notices: demo model, centre crop)."""
    import sys

    print(f"note: {line}", file=sys.stderr, flush=True)


def render(args: argparse.Namespace, model, source, driving):  # noqa: ANN001, ANN201
    """render_video with the options of add_common."""
    from jamsdk.runtime.render import render_video

    return render_video(model, source, driving, args.out, mode=args.mode, backend=args.backend, fps=args.fps,
                        max_frames=args.max_frames, precision=run_precision(args.precision), threads=args.threads,
                        output_size=args.output_size, fit=args.fit, show_progress=not args.no_progress, notify=note,
                        # animate's view options (jamsdk demo has none)
                        layout=getattr(args, "layout", "result"), show_regions=getattr(args, "show_regions", False),
                        best_frame=getattr(args, "best_frame", False), smoothing=getattr(args, "smoothing", 0.0),
                        allow_short=getattr(args, "allow_short_video", False))


def run(args: argparse.Namespace) -> int:
    report(render(args, model_dir(args), args.source, args.driving), args.json, args.stats)
    return 0
