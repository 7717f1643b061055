"""jamsdk demo: animate the bundled example picture with the bundled driving video and demo model.

Runs on the CPU with ONNX Runtime (the bundled folder has no TensorRT engines, so --backend auto
picks it) and writes demo.mp4 unless --out says otherwise. The
demo model knows synthetic cartoon figures only; for your own pictures see jamsdk animate.
"""

from __future__ import annotations

import argparse

from jamsdk.bundled import ASSETS, DEMO_MODEL_DIR as DEMO_MODEL

DEMO_SOURCE = ASSETS / "example_source.png"
DEMO_DRIVING = ASSETS / "example_driving.mp4"
OPERANDS = "only options, such as --out OUT"
QUIET = True  # the libraries' own output is hidden unless --verbose (jamsdk._quiet)


def add_parser(sub: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    from jamsdk.commands.animate import add_common

    p = sub.add_parser(name, help="animate the bundled example with the bundled model (CPU)", description=__doc__)
    p.add_argument("--out", default="demo.mp4", metavar="OUT", help="output .mp4, .avi or .gif (default demo.mp4)")
    add_common(p)
    return p


def check_assets() -> None:
    """JamError naming what is missing when this install has no bundled demo model or example."""
    from jamsdk.errors import JamError

    if not (DEMO_MODEL / "manifest.json").is_file():
        raise JamError(f"the bundled demo model is missing ({DEMO_MODEL} has no manifest.json); this jamsdk "
                       "was installed without it. Use jamsdk animate --model DIR ... with an exported model")
    for path in (DEMO_SOURCE, DEMO_DRIVING):
        if not path.is_file():
            raise JamError(f"the bundled example {path.name} is missing from {ASSETS}")


def run(args: argparse.Namespace) -> int:
    from jamsdk.commands.animate import render, report

    check_assets()
    report(render(args, DEMO_MODEL, DEMO_SOURCE, str(DEMO_DRIVING)), args.json, args.stats)
    return 0
