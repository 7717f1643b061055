"""``jamsdk doctor``: check this machine (and a model folder) before anything else.

Python, numpy/OpenCV, ONNX Runtime and its providers, the NVIDIA driver, the cuda-python binding
against it, pycuda, the GPU, TensorRT, a Jetson's power state, and with --model the manifest,
graphs and engines. Each line says ok or not and the fix. Exit status 0 when the chosen backend
can run here, 1 when it cannot (2 for bad arguments).
"""

from __future__ import annotations

import argparse
import sys

OPERANDS = "only options, such as --model DIR (a model folder to check)"
QUIET = True  # the libraries' own output is hidden unless --verbose (jamsdk._quiet): the report says it all


def add_parser(sub: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    from jamsdk.commands._options import add_backend, add_json

    p = sub.add_parser(name, help="check that this machine can run a model, and say what to fix",
                       description=__doc__)
    p.add_argument("--model", metavar="DIR",
                   help="also check this exported model folder (or the word demo for the bundled model); "
                        "default: check the machine only")
    add_backend(p, " you will run")
    add_json(p, "the report, for bug reports,")
    return p


def _can_print(text: str) -> bool:
    try:
        text.encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def run(args: argparse.Namespace) -> int:
    from jamsdk.commands._options import write_json
    from jamsdk.runtime.doctor import SYMBOLS, format_report, run_checks

    from jamsdk._version import describe

    print(describe())

    model = None
    if args.model is not None:  # a folder that does not exist is the manifest check's ❌, not an error
        from jamsdk.bundled import DEMO_MODEL_DIR, DEMO_SPEC

        model = str(DEMO_MODEL_DIR) if args.model == DEMO_SPEC else args.model
    report = run_checks(model, backend=args.backend)
    print(format_report(report, ascii_only=not _can_print("".join(SYMBOLS.values()))))
    if args.json:
        print(f"wrote {write_json(args.json, {'jamsdk': describe(), **report.to_dict()})}")
    return 0 if report.ok else 1
