"""INT8 vs FP32 on ONNX Runtime (CPU): per-stage and per-frame latency, PSNR, which stages stayed FP32.

    python benchmarks/int8.py                                  # jam-256 (trained-like) + the demo model
    python benchmarks/int8.py --rounds 8 --frames 4 --json int8.json --markdown int8.md
    python benchmarks/int8.py --models demo --rounds 2         # quick run

For each model: export with ``jamsdk export --precision int8`` (calibrated on the bundled example
clip ``jamsdk/assets/example_driving.mp4`` with ``example_source.png`` as the source, 16 frames,
the rest held out; quality gates at ``--min-psnr``; the CPU speed gate timing each stage's FP32, S8S8
and U8S8 forms on this machine with ``--threads``), then the same folder's graphs are streamed by
:class:`jamsdk.Animator` (standard mode, model-space frames of that clip) in three variants,
interleaved: **fp32** (``<stage>.onnx``), **int8** (what ``precision="int8"`` runs on the CPU: each
stage's ``int8_cpu`` graph, the fastest form that passed) and **int8_trt** (the symmetric S8S8
``<stage>.int8.onnx`` graphs TensorRT gets, run by ONNX Runtime everywhere they exist: the
one-graph-for-both-targets alternative, docs/export.md). In every round each variant runs one
untimed frame and then ``--frames`` timed ones; the order is reversed every other round. Reported:
the median and p10–p90 per frame and per stage (``Animator.stats``), the ratio of medians
INT8/FP32 per frame and its spread over rounds (min–max of the per-round ratios), the PSNR vs FP32
end to end (the export's gates: per stage alone, on the calibration frames, on held-out frames; and
on the frames timed here), the export's own per-stage times of each form, and which stages stayed
FP32 and why. ``jam-256`` uses :func:`jamsdk.export.samples.trained_like` weights (a random model's
outputs are nearly constant, which flatters PSNR); the demo model its shipped weights.

Targets: jam-256 per frame INT8 ≤ 0.65 × FP32 at ≥ 35 dB end to end; the demo model ≥ 35 dB on
held-out frames.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from _cost import machine_info  # benchmarks/ is sys.path[0]
from _report import require_at_least, run_and_report

TARGET_RATIO = 0.65
TARGET_PSNR = 35.0
STAGES = ("region_predictor", "dense_motion", "generator")
VARIANTS = ("fp32", "int8", "int8_trt")


def assets() -> Path:
    from jamsdk.config import CONFIG_DIR

    return CONFIG_DIR.parent / "assets"


def checkpoint_for(name: str, workdir: Path) -> Path:
    """``jam-256``: a trained-like jam-256 checkpoint written to ``workdir``; ``demo``: the shipped one."""
    if name == "demo":
        return assets() / "demo.pt"
    from jamsdk.config import load_model_config
    from jamsdk.export.samples import trained_like
    from jamsdk.model.checkpoint import save_checkpoint
    from jamsdk.model.jam import build_model

    torch.manual_seed(0)
    cfg = load_model_config(name)
    model = trained_like(build_model(cfg).eval())
    path = workdir / f"{name}.pt"
    save_checkpoint(path, model, cfg)
    return path


def trt_graphs_folder(model_dir: Path, out: Path) -> Path:
    """A copy of ``model_dir`` without ``int8_cpu`` files: ONNX Runtime then runs TensorRT's S8S8 graphs."""
    shutil.copytree(model_dir, out)
    data = json.loads((out / "manifest.json").read_text())
    for entry in data["stages"].values():
        entry["files"].pop("int8_cpu", None)
    (out / "manifest.json").write_text(json.dumps(data, indent=1))
    return out


def summarize(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms, np.float64)
    p10, p50, p90 = np.percentile(a, [10, 50, 90])
    return {"median": float(p50), "p10": float(p10), "p90": float(p90), "count": int(a.size)}


def time_variants(folders: dict[str, Path], source: np.ndarray, frames: np.ndarray, args) -> dict[str, Any]:
    import jamsdk
    from jamsdk.export.psnr import psnr

    anims = {v: jamsdk.Animator(folders[v], backend="onnxruntime", mode="standard", threads=args.threads,
                                precision="fp32" if v == "fp32" else "int8", stats_window=100_000)
             for v in VARIANTS}
    try:
        outs: dict[str, list[np.ndarray]] = {v: [] for v in VARIANTS}
        for v, anim in anims.items():
            anim.set_source_tensor(source)
            for t in range(len(frames)):  # warm-up, and the frames compared for PSNR
                outs[v].append(anim.run_tensor(frames[t:t + 1]))
        samples: dict[str, list[float]] = {v: [] for v in VARIANTS}
        per_round: dict[str, list[float]] = {v: [] for v in VARIANTS}
        stage_ms: dict[str, dict[str, list[float]]] = {v: {s: [] for s in STAGES} for v in VARIANTS}
        k = 0
        for r in range(args.rounds):
            order = list(VARIANTS) if r % 2 == 0 else list(VARIANTS)[::-1]
            for v in order:
                anim = anims[v]
                anim.run_tensor(frames[k % len(frames):k % len(frames) + 1])  # untimed: wake its threads
                times = []
                for _ in range(args.frames):
                    k += 1
                    x = frames[k % len(frames):k % len(frames) + 1]
                    t0 = time.perf_counter()
                    anim.run_tensor(x)
                    times.append((time.perf_counter() - t0) * 1e3)
                samples[v] += times
                per_round[v].append(float(np.median(times)))
        for v, anim in anims.items():
            st = anim.stats()
            for s in STAGES:
                stage_ms[v][s] = {"median": st[s]["p50_ms"], "p90": st[s]["p90_ms"], "count": st[s]["count"]}
        psnr_here = {v: psnr(np.concatenate(outs[v]), np.concatenate(outs["fp32"])) for v in VARIANTS[1:]}
    finally:
        for anim in anims.values():
            anim.close()
    frame = {v: summarize(samples[v]) for v in VARIANTS}
    rounds_ratio = [i / f for i, f in zip(per_round["int8"], per_round["fp32"])]
    return {"frame_ms": frame, "stage_ms": stage_ms, "psnr_db_frames_timed": psnr_here,
            "int8_over_fp32_frame": frame["int8"]["median"] / frame["fp32"]["median"],
            "int8_over_fp32_frame_rounds": {"min": min(rounds_ratio), "max": max(rounds_ratio),
                                            "median": float(np.median(rounds_ratio))},
            "int8_trt_over_fp32_frame": frame["int8_trt"]["median"] / frame["fp32"]["median"],
            "int8_over_fp32_stage": {s: stage_ms["int8"][s]["median"] / stage_ms["fp32"][s]["median"] for s in STAGES},
            "int8_trt_over_fp32_stage": {s: stage_ms["int8_trt"][s]["median"] / stage_ms["fp32"][s]["median"]
                                         for s in STAGES}}


def run_model(name: str, workdir: Path, args) -> dict[str, Any]:
    from jamsdk.export.calibration import load_calibration
    from jamsdk.export.pipeline import export_checkpoint

    clip_path, source_path = assets() / "example_driving.mp4", assets() / "example_source.png"
    ckpt = checkpoint_for(name, workdir)
    out = workdir / f"{name}-model"
    lines: list[str] = []
    t0 = time.perf_counter()
    res = export_checkpoint(ckpt, out, precision="int8", avd="off", calibration=clip_path,
                            calibration_frames=args.calibration_frames, calibration_source=source_path,
                            min_psnr=args.min_psnr, threads=args.threads, log=lines.append)
    export_s = time.perf_counter() - t0
    for line in lines:
        if "int8:" in line:
            print("   ", line, flush=True)
    info = res.manifest["export"]["int8"]
    size = res.manifest["image_size"]
    clip = load_calibration(clip_path, size, args.calibration_frames, source_path)
    trt = trt_graphs_folder(out, workdir / f"{name}-int8-trt")
    frames = np.concatenate([clip.calibration, clip.held_out])
    timing = time_variants({"fp32": out, "int8": out, "int8_trt": trt}, clip.source, frames, args)
    return {"model": res.manifest["model"]["name"], "image_size": size, "export_s": export_s,
            "quantized": info["quantized"], "fp32_fallback": info["fp32_fallback"], "gates": info["stages"],
            "cpu": info["cpu"], "psnr_db_end_to_end": info["cpu"]["psnr_db_end_to_end"],
            "psnr_db_end_to_end_trt": info["psnr_db_end_to_end"], "calibration": info["calibration"], **timing}


def run(args) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    load = [os.getloadavg()]
    results = {}
    with tempfile.TemporaryDirectory(prefix="jamsdk-int8-") as tmp:
        for name in args.models:
            key = "jam-256" if name == "jam-256" else "demo"
            print(f"{key}: exporting and calibrating…", flush=True)
            results[key] = run_model(name, Path(tmp), args)
            load.append(os.getloadavg())
    machine = machine_info()
    import onnxruntime

    machine["onnxruntime"] = onnxruntime.__version__
    out: dict[str, Any] = {"machine": machine, "load_average_1_5_15": load,
                           "settings": {"threads": args.threads, "rounds": args.rounds, "frames": args.frames,
                                        "calibration_frames": args.calibration_frames, "min_psnr": args.min_psnr,
                                        "mode": "standard", "clip": "jamsdk/assets/example_driving.mp4"},
                           "models": results}
    if "jam-256" in results:
        j = results["jam-256"]
        out["int8_over_fp32_frame"] = j["int8_over_fp32_frame"]
        out["psnr_db_end_to_end"] = j["psnr_db_end_to_end"]["held_out"]
        out["target"] = {"max_ratio": TARGET_RATIO, "min_psnr_db": TARGET_PSNR,
                         "met": bool(j["int8_over_fp32_frame"] <= TARGET_RATIO
                                     and _num(j["psnr_db_end_to_end"]["held_out"]) >= TARGET_PSNR)}
    if "demo" in results:
        out["demo_psnr_db_held_out"] = results["demo"]["psnr_db_end_to_end"]["held_out"]
        out["demo_target_met"] = bool(_num(out["demo_psnr_db_held_out"]) >= TARGET_PSNR)
    return out


def _num(v: float | str) -> float:
    return float("inf") if v == "inf" else float(v)


def fmt(s: dict[str, float]) -> str:
    return f"{s['median']:.1f} ({s['p10']:.1f}–{s['p90']:.1f})"


def render(result: dict[str, Any]) -> str:
    m, st = result["machine"], result["settings"]
    loads = ", ".join(f"{a[0]:.1f}" for a in result["load_average_1_5_15"])
    lines = ["# INT8 vs FP32 on ONNX Runtime (CPU)", "",
             f"- machine: {m['cpu']}, {m['logical_cpus']} logical CPUs; onnxruntime {m['onnxruntime']}; "
             f"{st['threads']} intra-op threads; 1-min load average during the run: {loads}",
             f"- standard mode, frames of {st['clip']}; {st['rounds']} interleaved rounds × {st['frames']} timed "
             f"frames per variant; median (p10–p90) ms", ""]
    for key, r in result["models"].items():
        rr = r["int8_over_fp32_frame_rounds"]
        p = r["psnr_db_end_to_end"]
        pt = r["psnr_db_end_to_end_trt"]
        cpu = r["cpu"]
        lines += [f"## {r['model']} ({r['image_size']}px)", "",
                  "On this CPU (`int8`, the export's speed gate): "
                  + ", ".join(f"{s} {g}" for s, g in cpu["graphs"].items())
                  + f". TensorRT's S8S8 graphs (`int8_trt`): {', '.join(r['quantized']) or 'none'}; left FP32: "
                  + ("; ".join(f"{s} ({why})" for s, why in r["fp32_fallback"].items()) or "none"), "",
                  "| variant | per frame ms | region_predictor | dense_motion | generator | × FP32 per frame |",
                  "|---|---:|---:|---:|---:|---:|"]
        for v in VARIANTS:
            cells = " | ".join(f"{r['stage_ms'][v][s]['median']:.1f}" for s in STAGES)
            ratio = r["frame_ms"][v]["median"] / r["frame_ms"]["fp32"]["median"]
            lines.append(f"| {v} | {fmt(r['frame_ms'][v])} | {cells} | {ratio:.3f} |")
        lines += ["", f"INT8/FP32 per frame {r['int8_over_fp32_frame']:.3f} (per-round ratios {rr['min']:.3f}–"
                      f"{rr['max']:.3f}); per stage: "
                  + ", ".join(f"{s} {v:.2f}" for s, v in r["int8_over_fp32_stage"].items())
                  + f". TensorRT's graphs on this CPU: {r['int8_trt_over_fp32_frame']:.3f} per frame.", "",
                  "The export's speed gate (median ms per call of each form that passed, × FP32):", "",
                  "| stage | fp32 | s8s8 | u8s8 | chosen |", "|---|---:|---:|---:|---|"]
        for s, c in cpu["stages"].items():
            cells = " | ".join(f"{c['ms'][f]:.1f} ({c['over_fp32'].get(f, 1.0):.2f}×)" if f in c["ms"] else
                               ("—" if f not in c["rejected"] else "gate: " + c["rejected"][f].split(" (")[0])
                               for f in ("fp32", "s8s8", "u8s8"))
            lines.append(f"| {s} | {cells} | {c['graph']} |")
        lines += ["", f"PSNR INT8 vs FP32 end to end (CPU graphs): {p['calibration']} dB on the "
                      f"{r['calibration']['calibration_frames']} calibration frames, **{p['held_out']} dB on "
                      f"{r['calibration']['held_out_frames']} held-out frames**; TensorRT's graphs {pt['calibration']} / "
                      f"{pt['held_out']} dB; over all frames streamed here: "
                  + ", ".join(f"{v} {r['psnr_db_frames_timed'][v]:.1f} dB" for v in VARIANTS[1:])
                  + ". Per stage alone (S8S8): "
                  + ", ".join(f"{s} {g['psnr_db_stage_alone']} dB" for s, g in r["gates"].items()), ""]
    if "target" in result:
        t = result["target"]
        lines.append(f"Target jam-256: INT8 ≤ {t['max_ratio']} × FP32 per frame at ≥ {t['min_psnr_db']:g} dB: "
                     f"{result['int8_over_fp32_frame']:.3f} at {result['psnr_db_end_to_end']} dB → "
                     f"{'met' if t['met'] else 'NOT met'}")
    if "demo_psnr_db_held_out" in result:
        lines.append(f"Target demo: ≥ {TARGET_PSNR:g} dB held out: {result['demo_psnr_db_held_out']} dB → "
                     f"{'met' if result['demo_target_met'] else 'NOT met'}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", choices=("jam-256", "demo"), default=["jam-256", "demo"],
                   help="models to measure (default: both)")
    p.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads (default: 2)")
    p.add_argument("--rounds", type=int, default=6, help="interleaved rounds (default: 6)")
    p.add_argument("--frames", type=int, default=4, help="timed frames per variant per round (default: 4)")
    p.add_argument("--calibration-frames", type=int, default=16, help="frames to calibrate on (default: 16)")
    p.add_argument("--min-psnr", type=float, default=35.0, help="the export's quality gate (default: 35)")
    p.add_argument("--json", metavar="OUT", help="also write everything as JSON")
    p.add_argument("--markdown", metavar="OUT", help="also write the markdown report here")
    args = p.parse_args(argv)
    require_at_least(p, args, 1, "threads", "rounds", "frames", "calibration_frames")
    result = run_and_report(lambda: run(args), render, args.json, args.markdown)
    if result is None:
        return 2
    if "int8_over_fp32_frame" in result:
        print(json.dumps({"int8_over_fp32_frame": round(result["int8_over_fp32_frame"], 4),
                          "psnr_db_end_to_end": result["psnr_db_end_to_end"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
