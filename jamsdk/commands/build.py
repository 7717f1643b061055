"""jamsdk build: TensorRT engines for this machine's GPU from an exported model folder.

Writes <stage>.engine files (plain TensorRT plans; trtexec --loadEngine opens them) and records
the TensorRT version, GPU and compute capability in manifest.json. Engines only run on the GPU
model and TensorRT version they were built with: build on the target (e.g. on the Jetson itself).
The bundled demo model (--model demo, the default) is part of the installed package: give --out.
"""

from __future__ import annotations

import argparse

from jamsdk.commands._options import add_model, add_precision, model_dir

OPERANDS = "--model DIR (and optionally --out ENGINE_DIR)"


def add_parser(sub: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help="build TensorRT engines from an exported model folder", description=__doc__)
    add_model(p, "exported model folder to build engines for")
    p.add_argument("--out", metavar="ENGINE_DIR",
                   help="write engines (and a complete copy of the model folder) here instead of into --model")
    add_precision(p, "engine precision: auto = fp16; fp32 for a parity reference; int8 builds the Q/DQ graphs "
                     "of jamsdk export --precision int8, strongly typed")
    p.add_argument("--typing", choices=("auto", "strong", "weak"), default="auto",
                   help="strong: the mixed FP16 graph as a strongly typed network (default); weak: FP32 graph "
                        "+ BuilderFlag.FP16 with FP32 constraints (TensorRT < 11 only)")
    p.add_argument("--workspace", type=int, metavar="MB", help="cap on the builder's scratch memory in MiB")
    p.add_argument("--timing-cache", metavar="PATH",
                   help="timing cache file, reused between builds (default: ~/.cache/jamsdk/tensorrt/...)")
    p.add_argument("--stage", action="append", dest="stages", metavar="NAME",
                   help="build only this stage (repeatable; default: all)")
    return p


def run(args: argparse.Namespace) -> int:
    from jamsdk.bundled import is_bundled_folder
    from jamsdk.errors import InputError
    from jamsdk.runtime.onnx2engine import build_engines

    model = model_dir(args)
    if args.out is None and is_bundled_folder(model):
        raise InputError("the bundled demo model's folder belongs to the installed jamsdk: pass --out ENGINE_DIR "
                         "to build its engines into a copy")
    precision = "fp16" if args.precision == "auto" else args.precision
    path = build_engines(model, args.out, precision=precision, typing=args.typing,
                         workspace_mb=args.workspace, timing_cache=args.timing_cache, stages=args.stages)
    print(f"wrote {path}")
    return 0
