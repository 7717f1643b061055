"""``jamsdk doctor``: check this machine (and a model folder) before anything else.

Python, numpy/OpenCV, ONNX Runtime and its providers, the NVIDIA driver, the cuda-python binding
against it, pycuda, the GPU, TensorRT, a Jetson's power state, and with --model the manifest,
graphs and engines. Each line says ok or not and the fix. Exit status 0 when the chosen backend
can run here, 1 when it cannot (2 for bad arguments).
"""

from __future__ import annotations

import argparse
import sys

from jamsdk.errors import InputError


def add_parser(sub: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help="check that this machine can run a model, and say what to fix",
                       description=__doc__)
    p.add_argument("--model", metavar="DIR",
                   help="also check this exported model folder (or the word demo for the bundled model); "
                        "default: check the machine only")
    p.add_argument("--backend", choices=("auto", "tensorrt", "onnxruntime"), default="auto",
                   help="the backend you will run (default auto: TensorRT where it can run, else ONNX Runtime)")
    p.add_argument("--json", metavar="OUT", help="also write the report as JSON (attach it to bug reports)")
    p.add_argument("stray", nargs="*", help=argparse.SUPPRESS)  # caught to point at --model
    return p


def _can_print(text: str) -> bool:
    try:
        text.encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def run(args: argparse.Namespace) -> int:
    from jamsdk._atomic import write_bytes
    from jamsdk.runtime.doctor import SYMBOLS, format_report, run_checks

    if args.stray:
        raise InputError(f"doctor takes no positional arguments (got {' '.join(args.stray)}); "
                         f"name a model folder with --model {args.stray[0]}")
    model = args.model
    if model == "demo":
        from jamsdk.commands.demo import DEMO_MODEL

        model = str(DEMO_MODEL)
    report = run_checks(model, backend=args.backend)
    print(format_report(report, ascii_only=not _can_print("".join(SYMBOLS.values()))))
    if args.json:
        import json

        write_bytes(args.json, (json.dumps(report.to_dict(), indent=1, default=str) + "\n").encode())
        print(f"wrote {args.json}")
    return 0 if report.ok else 1
