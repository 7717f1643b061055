"""jamsdk export: a checkpoint → a model folder of ONNX stage graphs (FP32, mixed FP16, INT8) + manifest.

Works for jamsdk checkpoints and converted MRAA ones alike. The folder is what jamsdk build
turns into TensorRT engines on the target and what the runtime loads (manifest.json lists
every graph with its tensors and SHA-256). Example:

    jamsdk export --checkpoint runs/jam/checkpoint.pt --out models/jam --verify
"""

from __future__ import annotations

import argparse
from pathlib import Path

from jamsdk.commands._options import add_max_pixels, add_precision, add_threads

OPERANDS = "--checkpoint CKPT --out DIR"
EXTRA = "export"  # what this command needs installed (named when a package of it is missing)


def add_parser(sub: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help="export a checkpoint to ONNX stage graphs + manifest.json", description=__doc__)
    p.add_argument("--checkpoint", required=True, metavar="CKPT",
                   help="jamsdk checkpoint (.pt), e.g. from jamsdk train or jamsdk convert-mraa")
    p.add_argument("--out", required=True, metavar="DIR", help="model folder to write (replaced if it holds an export)")
    p.add_argument("--size", type=int, metavar="N", help="square input size (default: the model's own)")
    p.add_argument("--opset", type=int, default=17, metavar="V", help="ONNX opset, 16–19 (default 17)")
    add_precision(p, "graphs to write: auto = fp32 and fp16 (what ONNX Runtime and TensorRT run by default); fp32; "
                     "fp16 (mixed: FP16 body, FP32 islands); int8 (Q/DQ, with its FP32 graphs; needs --calibration). "
                     "Repeat it for several: --precision fp16 --precision int8 writes all three", repeatable=True)
    p.add_argument("--calibration", metavar="VIDEO|FOLDER",
                   help="INT8: a driving clip (video or folder of frames) to calibrate on and judge with")
    p.add_argument("--calibration-frames", type=int, default=16, metavar="N",
                   help="INT8: frames calibrated on, spread over the clip (default 16; the clip needs N+1 or more, "
                        "the others are held out)")
    p.add_argument("--source", metavar="IMG",
                   help="INT8: the source picture for calibration (default: the clip's first frame)")
    p.add_argument("--min-psnr", type=float, default=35.0, metavar="DB",
                   help="INT8: a stage whose INT8 graph drops the end-to-end PSNR vs FP32 below this stays FP32 "
                        "(default 35)")
    p.add_argument("--no-cpu-speed-gate", dest="cpu_speed_gate", action="store_false",
                   help="INT8: do not time the stages on this CPU (by default each stage's ONNX Runtime CPU graph "
                        "is the fastest of FP32/S8S8/U8S8 that passes --min-psnr; export on the CPU that will run it)")
    p.add_argument("--avd", choices=("auto", "on", "off"), default="auto",
                   help="export avd.onnx: auto = when the checkpoint records a trained AVD network "
                        "(meta.avd_trained, or a converted MRAA checkpoint with AVD weights), on/off = always/never")
    p.add_argument("--batch-sizes", metavar="B,B,...", default="",
                   help="also export the per-frame stages for B streams per call, e.g. 2,4,8 "
                        "(for StreamBatch, jamsdk batch and jamsdk serve)")
    p.add_argument("--verify", action="store_true",
                   help="check every graph in ONNX Runtime against PyTorch (each FP32 graph max|Δ| ≤ 1e-4, "
                        "FP16 end-to-end PSNR ≥ 40 dB); exit non-zero and write nothing when a check fails "
                        "(--threads sets ONNX Runtime's threads for it)")
    add_threads(p)
    add_max_pixels(p)
    return p


def graph_set(precisions: list[str]) -> str:
    """The export pipeline's graph set for the --precision values given (INT8 always comes with FP32)."""
    wanted = set()
    for p in precisions:
        wanted.update(("fp32", "fp16") if p == "auto" else (p,))
    if "int8" in wanted:
        return "all" if "fp16" in wanted else "int8"
    return "both" if wanted == {"fp32", "fp16"} else wanted.pop()


def run(args: argparse.Namespace) -> int:
    from jamsdk.export.batched import parse_batch_sizes
    from jamsdk.export.pipeline import export_checkpoint

    from jamsdk._atomic import disk_full
    from jamsdk.errors import InputError

    try:
        export_checkpoint(args.checkpoint, args.out, size=args.size, opset=args.opset,
                          precision=graph_set(args.precision), verify=args.verify, avd=args.avd, threads=args.threads,
                          log=lambda line: print(line, flush=True), calibration=args.calibration,
                          calibration_frames=args.calibration_frames, calibration_source=args.source,
                          min_psnr=args.min_psnr, cpu_speed_gate=args.cpu_speed_gate,
                          batch_sizes=parse_batch_sizes(args.batch_sizes))
    except OSError as exc:  # the staging folder is gone already (export_checkpoint removes it on any error)
        full = disk_full(exc, Path(args.out).resolve().parent)
        if full is None:
            raise
        raise InputError(f"--out {args.out}: {full}; nothing was written") from None
    return 0
