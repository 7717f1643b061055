"""ONNX Runtime vs OpenVINO on the CPU, one model folder, interleaved: per frame, per stage, opening time.

    python benchmarks/cpu_backends.py                         # jam-256 (trained-like) exported here, INT8 included
    python benchmarks/cpu_backends.py --rounds 12 --pinning --rewrite --json cpu_backends.json --markdown cpu_backends.md
    python benchmarks/cpu_backends.py --model demo --rounds 8 # an existing folder (INT8 rows only if it has INT8)

Rows (each an :class:`jamsdk.Animator`, mode standard, batch 1, ``--threads``; frames in model space):
``onnxruntime fp32``, ``openvino fp32``, and for an INT8 folder ``onnxruntime int8`` (its ``int8_cpu``
graphs) and ``openvino int8`` (its ``int8_openvino`` graphs, else the S8S8 ``int8`` ones).
``--pinning`` adds ``openvino int8, pinned`` (``ENABLE_CPU_PINNING`` on; jamsdk's default is off).
``--rewrite`` also exports the model without the FP32 rewrites of :mod:`jamsdk.export.rewrite`
and adds its ``onnxruntime fp32, as exported`` and ``openvino fp32, as exported`` rows.

Timing: 2 warm-up frames per row, then ``--rounds`` rounds; in a round every row runs one untimed
frame and ``--frames`` timed ones, the order reversed every other round. Reported: median (p10–p90)
per frame, the stage medians from ``Animator.stats()``, and **per-round ratios** (row / onnxruntime
fp32 of the same round; median and p10–p90 over rounds), which a busy shared machine distorts less
than absolute times. The 1-minute load average is recorded before and after.

Opening (``--open-rounds``, default 3): the folder opened on OpenVINO with an empty compiled-model
cache (first open) and again with it filled (the cache a user's second run finds), and on ONNX
Runtime; seconds per open, median over rounds. Frames of OpenVINO fp32 vs ONNX Runtime fp32: max
|difference| (FP32 tolerance) and of the INT8 rows: PSNR against ONNX Runtime fp32.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from _report import require_at_least, run_and_report  # benchmarks/ is sys.path[0]
from compare import cache_dir

STAGES = ("region_predictor", "dense_motion", "generator")


def loadavg() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def summarize(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds, np.float64) * 1e3
    p10, p50, p90 = np.percentile(ms, [10, 50, 90])
    return {"median": float(p50), "p10": float(p10), "p90": float(p90), "count": int(ms.size)}


def spread(values: list[float]) -> dict[str, float]:
    p10, p50, p90 = np.percentile(np.asarray(values, np.float64), [10, 50, 90])
    return {"median": float(p50), "p10": float(p10), "p90": float(p90)}


def jam256_folders(workdir: Path, threads: int, rewrite_ab: bool) -> tuple[Path, Path | None]:
    """jam-256, trained-like weights, exported with INT8 (and, for ``rewrite_ab``, without the FP32 rewrites)."""
    import torch

    from compare import build, export_model
    from jamsdk.export.pipeline import export_checkpoint

    torch.set_num_threads(threads)
    model = build("jam-256", "trained-like")
    folder = export_model(model, workdir, int8=True, threads=threads)
    plain = None
    if rewrite_ab:
        plain = workdir / "as-exported"
        export_checkpoint(workdir / "candidate.pt", plain, precision="fp32", avd="off", log=lambda _m: None,
                          rewrite_fp32=False)
    return folder, plain


def open_seconds(folder: Path, backend: str, precision: str, threads: int, cache: Path | None) -> float:
    import jamsdk

    with cache_dir(str(cache)) if cache is not None else contextlib.nullcontext():
        t0 = time.perf_counter()
        with jamsdk.Animator(folder, backend=backend, mode="standard", precision=precision, threads=threads):
            return time.perf_counter() - t0


def run(args: argparse.Namespace) -> dict[str, Any]:
    import jamsdk
    from jamsdk.bundled import resolve_model
    from jamsdk.export.psnr import psnr
    from jamsdk.export.samples import synthetic_clip
    from jamsdk.manifest import load_manifest
    from jamsdk.runtime import sysinfo
    from jamsdk.runtime.backends.openvino import OpenVINOBackend

    load_before = loadavg()
    with tempfile.TemporaryDirectory(prefix="jamsdk-cpu-backends-") as tmp, cache_dir(os.path.join(tmp, "cache")):
        work = Path(tmp)
        t0 = time.perf_counter()
        if args.model:
            folder, plain = resolve_model(args.model), None
        else:
            folder, plain = jam256_folders(work, args.threads, args.rewrite)
        export_s = time.perf_counter() - t0
        manifest = load_manifest(folder)
        size = manifest.image_size
        int8 = "int8" in manifest.precisions
        rows: list[tuple[str, Path, str, str, bool]] = [("onnxruntime fp32", folder, "onnxruntime", "fp32", False),
                                                        ("openvino fp32", folder, "openvino", "fp32", False)]
        if int8:
            rows += [("onnxruntime int8", folder, "onnxruntime", "int8", False),
                     ("openvino int8", folder, "openvino", "int8", False)]
            if args.pinning:
                rows.append(("openvino int8, pinned", folder, "openvino", "int8", True))
        if plain is not None:
            rows += [("onnxruntime fp32, as exported", plain, "onnxruntime", "fp32", False),
                     ("openvino fp32, as exported", plain, "openvino", "fp32", False)]
        source, clip = synthetic_clip(size, frames=8, seed=0)
        src = np.ascontiguousarray(source.numpy())
        frames = [np.ascontiguousarray(f[None].numpy()) for f in clip]
        samples: dict[str, list[float]] = {r[0]: [] for r in rows}
        outputs: dict[str, np.ndarray] = {}
        with contextlib.ExitStack() as stack:
            anims = {}
            for label, path, backend, precision, pinned in rows:
                OpenVINOBackend.PINNING = pinned
                try:
                    anims[label] = stack.enter_context(jamsdk.Animator(path, backend=backend, mode="standard",
                                                                       precision=precision, threads=args.threads))
                finally:
                    OpenVINOBackend.PINNING = False
                anims[label].set_source_tensor(src)
                outputs[label] = np.concatenate([anims[label].run_tensor(f) for f in frames[:4]])
                for _ in range(args.warmup):
                    anims[label].run_tensor(frames[0])
            labels = list(anims)
            per_round: dict[str, list[float]] = {label: [] for label in labels}
            frame = 0
            for r in range(args.rounds):
                got: dict[str, list[float]] = {label: [] for label in labels}
                for label in labels if r % 2 == 0 else labels[::-1]:
                    anims[label].run_tensor(frames[frame % len(frames)])
                    for _ in range(args.frames):
                        frame += 1
                        t = time.perf_counter()
                        anims[label].run_tensor(frames[frame % len(frames)])
                        got[label].append(time.perf_counter() - t)
                    samples[label] += got[label]
                base = float(np.median(got["onnxruntime fp32"]))
                for label in labels:
                    per_round[label].append(float(np.median(got[label])) / base)
            stats = {label: anims[label].stats() for label in labels}
        opens: dict[str, list[float]] = {"openvino first open": [], "openvino cached open": [], "onnxruntime open": []}
        for i in range(args.open_rounds):
            cache = work / f"open-cache-{i}"
            opens["openvino first open"].append(open_seconds(folder, "openvino", "fp32", args.threads, cache))
            opens["openvino cached open"].append(open_seconds(folder, "openvino", "fp32", args.threads, cache))
            opens["onnxruntime open"].append(open_seconds(folder, "onnxruntime", "fp32", args.threads, None))
        if int8:
            cache = work / "open-cache-int8"
            opens["openvino int8 first open"] = [open_seconds(folder, "openvino", "int8", args.threads, cache)]
            opens["openvino int8 cached open"] = [open_seconds(folder, "openvino", "int8", args.threads, cache)]
        info = manifest.data["export"].get("int8") or {}
    ref = outputs["onnxruntime fp32"]
    result_rows = {}
    for label in samples:
        out = outputs[label]
        result_rows[label] = {
            "latency_ms": summarize(samples[label]),
            "over_onnxruntime_fp32_per_round": spread(per_round[label]),
            "stages_ms": {k: stats[label][k]["p50_ms"] for k in STAGES if k in stats[label]},
            "max_abs_vs_onnxruntime_fp32": float(np.abs(out - ref).max()),
            "psnr_db_vs_onnxruntime_fp32": (psnr(out, ref) if np.any(out != ref) else float("inf")),
        }
    machine = sysinfo.machine_info(probe_gpu=False)
    return {"model": str(args.model or "jam-256 (trained-like, exported here)"), "image_size": size,
            "machine": {k: machine[k] for k in ("cpu", "cpu_flags", "logical_cpus", "onnxruntime", "openvino",
                                                "numpy", "python")},
            "settings": {"threads": args.threads, "rounds": args.rounds, "frames": args.frames,
                         "warmup": args.warmup, "mode": "standard", "batch": 1},
            "load_1min": {"before": load_before, "after": loadavg()}, "export_s": export_s,
            "rows": result_rows, "open_s": {k: spread(v) for k, v in opens.items()},
            "int8": {"onnxruntime": (info.get("cpu") or {}).get("graphs"),
                     "openvino": (info.get("openvino") or {}).get("graphs"),
                     "openvino_psnr_db_end_to_end": (info.get("openvino") or {}).get("psnr_db_end_to_end")}}


def render(result: dict[str, Any]) -> str:
    m, st, load = result["machine"], result["settings"], result["load_1min"]
    lines = [f"# CPU backends: {result['model']} at {result['image_size']}², per frame",
             "",
             f"- CPU: {m['cpu']} ({m['logical_cpus']} logical), flags: {' '.join(m['cpu_flags']) or '-'}; "
             f"onnxruntime {m['onnxruntime']}, openvino {m['openvino']}",
             f"- {st['threads']} threads, mode standard, batch 1; {st['rounds']} interleaved rounds × {st['frames']} "
             f"timed frames; 1-min load {load['before']:.2f} before, {load['after']:.2f} after",
             "",
             "| row | ms per frame, median (p10–p90) | × ONNX Runtime FP32, per round: median (p10–p90) | "
             "region_predictor | dense_motion | generator | vs ONNX Runtime FP32 |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for label, r in result["rows"].items():
        s, q = r["latency_ms"], r["over_onnxruntime_fp32_per_round"]
        st_ms = r["stages_ms"]
        acc = (f"max abs {r['max_abs_vs_onnxruntime_fp32']:.1e}" if "fp32" in label
               else f"PSNR {r['psnr_db_vs_onnxruntime_fp32']:.1f} dB")
        lines.append(f"| {label} | {s['median']:.1f} ({s['p10']:.1f}–{s['p90']:.1f}) | {q['median']:.3f} "
                     f"({q['p10']:.3f}–{q['p90']:.3f}) | " + " | ".join(f"{st_ms.get(k, float('nan')):.1f}"
                                                                        for k in STAGES) + f" | {acc} |")
    lines += ["", "| opening the folder | seconds, median (p10–p90) |", "|---|---:|"]
    for label, s in result["open_s"].items():
        lines.append(f"| {label} | {s['median']:.2f} ({s['p10']:.2f}–{s['p90']:.2f}) |")
    i8 = result["int8"]
    if i8["openvino"]:
        lines += ["", f"INT8 graphs: ONNX Runtime {i8['onnxruntime']}; OpenVINO {i8['openvino']} "
                      f"(export's OpenVINO judge: {i8['openvino_psnr_db_end_to_end']} dB vs FP32)"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="an exported folder or 'demo' (default: jam-256, trained-like, exported here)")
    p.add_argument("--threads", type=int, default=2, help="ONNX Runtime / OpenVINO threads (default 2)")
    p.add_argument("--rounds", type=int, default=8, help="interleaved rounds (default 8)")
    p.add_argument("--frames", type=int, default=2, help="timed frames per row per round (default 2)")
    p.add_argument("--warmup", type=int, default=2, help="untimed frames per row first (default 2)")
    p.add_argument("--open-rounds", type=int, default=3, help="rounds of the opening times (default 3)")
    p.add_argument("--pinning", action="store_true", help="add OpenVINO INT8 with CPU pinning on")
    p.add_argument("--rewrite", action="store_true", help="add FP32 rows of the graphs without jamsdk's rewrites")
    p.add_argument("--markdown", metavar="OUT", help="also write the markdown report here")
    p.add_argument("--json", metavar="OUT", help="also write everything as JSON")
    args = p.parse_args(argv)
    require_at_least(p, args, 1, "threads", "rounds", "frames", "open_rounds")
    require_at_least(p, args, 0, "warmup")
    if args.rewrite and args.model:
        p.error("--rewrite exports jam-256 twice; it cannot be combined with --model")
    return 0 if run_and_report(lambda: run(args), render, args.json, args.markdown) is not None else 2


if __name__ == "__main__":
    sys.exit(main())
