"""Time `jamsdk export` of a full-size model and measure its FP16 graphs' PSNR against FP32.

    python benchmarks/export_time.py                      # jam-256, random and trained-like weights
    python benchmarks/export_time.py --config mraa-256 --weights random --json export.json
    python benchmarks/export_time.py --compare-exporters  # per stage: TorchScript vs dynamo exporter

For each weight set: a freshly built model is saved as a checkpoint, exported with
``--precision auto --avd on`` (FP32 + FP16; timed: checkpoint read, trace, onnxsim, checks, FP16 conversion,
files, manifest; no ``--verify``), then both graph chains run in ONNX Runtime (CPU) over the
synthetic clip of :mod:`jamsdk.export.samples` (or, with ``--clip example``, the demo's example
source picture and driving video) in standard mode, and the FP16 frames are compared
with the FP32 frames (PSNR over all frames, images in [0, 1]).

Weights: ``random`` (as built: nearly constant heatmaps, occlusion and decoded frame, so the PSNR
is optimistic) and ``trained-like`` (:func:`jamsdk.export.samples.trained_like`: heads rescaled so
regions, occlusion and colours spread as in a trained model). ONNX Runtime's CPU provider computes
FP16 nodes in FP32 on FP16-rounded tensors, so the PSNR covers FP16 storage and the FP32 islands'
placement, not FP16 arithmetic on a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from _cost import machine_info  # benchmarks/ is sys.path[0]


def load_clip(kind: str, size: int, frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(source (1,3,S,S), driving (T,3,S,S))`` in [0, 1]: the synthetic clip, or the demo's example."""
    from jamsdk.export.samples import synthetic_clip

    if kind == "synthetic":
        return synthetic_clip(size, frames, seed=0)
    from jamsdk.config import CONFIG_DIR
    from jamsdk.pictures import read_image
    from jamsdk.pixels import center_crop_resize
    from jamsdk.video import read_frames

    assets = CONFIG_DIR.parent / "assets"
    src = center_crop_resize(read_image(assets / "example_source.png"), size)
    drv = [center_crop_resize(f, size) for f in read_frames(assets / "example_driving.mp4", max_frames=frames)]

    def to_tensor(images: list[np.ndarray]) -> torch.Tensor:
        return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0

    return to_tensor([src]), to_tensor(drv)


def run_one(config: str, weights: str, frames: int, threads: int, workdir: Path, clip: str) -> dict:
    from jamsdk.config import load_model_config
    from jamsdk.export.pipeline import export_checkpoint
    from jamsdk.export.psnr import psnr
    from jamsdk.export.samples import trained_like
    from jamsdk.export.verify import OrtChain
    from jamsdk.manifest import load_manifest
    from jamsdk.model.checkpoint import save_checkpoint
    from jamsdk.model.jam import build_model

    torch.manual_seed(0)
    cfg = load_model_config(config)
    model = build_model(cfg).eval()
    if weights == "trained-like":
        trained_like(model)
    ckpt = workdir / f"{config}-{weights}.pt"
    save_checkpoint(ckpt, model, cfg)
    out = workdir / f"{config}-{weights}"
    lines: list[str] = []
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    export_checkpoint(ckpt, out, precision="both", avd="on", log=lines.append)
    seconds = time.perf_counter() - start
    for line in lines:
        print("   ", line)

    manifest = load_manifest(out)
    source, driving = load_clip(clip, manifest.image_size, frames)
    src, drv = source.numpy(), driving.numpy()
    t0 = time.perf_counter()
    fp32 = OrtChain(manifest, "fp32", threads).animate(src, drv)
    fp16 = OrtChain(manifest, "fp16", threads).animate(src, drv)
    with torch.no_grad():
        torch_frames = model.animate(source, driving, "standard").numpy()
        # Chaining amplifies float32 rounding; PyTorch's own float32 error is the yardstick.
        exact = model.double().animate(source.double(), driving.double(), "standard").numpy()
    return {
        "config": config, "weights": weights, "export_seconds": round(seconds, 2),
        "loadavg_1min_at_start": round(load_before, 2),
        "fp16_psnr_db": round(psnr(fp16, fp32), 2),
        "fp16_psnr_db_per_frame": [round(psnr(a, b), 2) for a, b in zip(fp16, fp32)],
        "fp16_max_abs_diff": float(np.abs(fp16 - fp32).max()),
        "fp32_vs_pytorch_max_abs_diff": float(np.abs(fp32 - torch_frames).max()),
        "fp32_vs_float64_max_abs_diff": float(np.abs(fp32 - exact).max()),
        "pytorch_fp32_vs_float64_max_abs_diff": float(np.abs(torch_frames - exact).max()),
        "pytorch_fp32_vs_float64_psnr_db": round(psnr(torch_frames, exact), 2),
        "clip": clip, "frames": int(driving.shape[0]), "ort_seconds": round(time.perf_counter() - t0, 1),
        "prediction_std": float(torch_frames.std()),
        "files_mb": {p.name: round(p.stat().st_size / 1e6, 2) for p in sorted(out.iterdir())},
        "log": lines,
    }


def compare_exporters(config: str, opset: int = 17) -> list[dict]:
    """Per stage: export time (s) and resulting opset of the TorchScript and the dynamo exporter."""
    import io
    import warnings

    import onnx

    from jamsdk.config import load_model_config
    from jamsdk.export.samples import random_feeds
    from jamsdk.export.torch2onnx import stage_module
    from jamsdk.model.jam import build_model
    from jamsdk.stages import stage_table

    torch.manual_seed(0)
    cfg = load_model_config(config)
    model = build_model(cfg).eval()
    rows = []
    for name, stage in stage_table(cfg).items():
        feeds = random_feeds(stage, torch.Generator().manual_seed(0))
        args = tuple(feeds[s.name] for s in stage.inputs)
        row = {"stage": name}
        for label, dynamo in (("torchscript", False), ("dynamo", True)):
            buf = io.BytesIO()
            start = time.perf_counter()
            try:
                with warnings.catch_warnings(), torch.no_grad():
                    warnings.simplefilter("ignore")
                    torch.onnx.export(stage_module(model, stage), args, buf, opset_version=opset, dynamo=dynamo)
                proto = onnx.load_from_string(buf.getvalue())
                got = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
            except Exception as exc:  # noqa: BLE001 - report, do not stop the comparison
                got = f"failed: {type(exc).__name__}"
            row[label] = {"seconds": round(time.perf_counter() - start, 2), "opset": got}
        rows.append(row)
        print(f"  {name:18s} torchscript {row['torchscript']['seconds']:5.1f} s (opset {row['torchscript']['opset']})"
              f" | dynamo {row['dynamo']['seconds']:5.1f} s (opset {row['dynamo']['opset']})")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="jam-256")
    parser.add_argument("--weights", choices=("random", "trained-like", "both"), default="both")
    parser.add_argument("--frames", type=int, default=8, help="clip length for the PSNR (default 8)")
    parser.add_argument("--clip", choices=("synthetic", "example"), default="synthetic",
                        help="PSNR clip: jamsdk.export.samples.synthetic_clip, or the demo's example "
                             "(jamsdk/assets/example_source.png + example_driving.mp4)")
    parser.add_argument("--threads", type=int, default=2, help="torch and ONNX Runtime threads (default 2)")
    parser.add_argument("--json", metavar="OUT", help="write the results as JSON")
    parser.add_argument("--region-predictor-fp16", action="store_true",
                        help="experiment: give the region predictor an FP16 hourglass (jamsdk keeps the stage FP32)")
    parser.add_argument("--compare-exporters", action="store_true",
                        help="only time each stage with the TorchScript and the dynamo exporter (opset 17)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.compare_exporters:
        print(f"{args.config}: torch.onnx.export per stage, opset 17 requested")
        compare_exporters(args.config)
        return 0
    if args.region_predictor_fp16:
        from jamsdk.export import fp16

        fp16.FP16_BODIES["region_predictor"] = ("/region_predictor/predictor/",)
    kinds = ("random", "trained-like") if args.weights == "both" else (args.weights,)
    results = []
    with tempfile.TemporaryDirectory(prefix="jamsdk-export-bench-") as tmp:
        for kind in kinds:
            print(f"{args.config}, {kind} weights:")
            results.append(run_one(args.config, kind, args.frames, args.threads, Path(tmp), args.clip))
    info = machine_info()
    print(f"\nmachine: {info.get('cpu')}, {info.get('logical_cpus')} logical CPUs; torch {torch.__version__}")
    print(f"PSNR clip: {args.clip}, {results[0]['frames']} frames"
          + (" (region predictor with an FP16 hourglass)" if args.region_predictor_fp16 else ""))
    print("| config | weights | export (s) | load avg at start | FP16 vs FP32 PSNR (dB) | FP16 max abs diff "
          "| FP32 ORT vs PyTorch | FP32 ORT vs float64 | PyTorch FP32 vs float64 (max, PSNR) | frame std |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['config']} | {r['weights']} | {r['export_seconds']:.1f} | {r['loadavg_1min_at_start']:.1f} | "
              f"{r['fp16_psnr_db']:.1f} (frames {min(r['fp16_psnr_db_per_frame']):.1f}–"
              f"{max(r['fp16_psnr_db_per_frame']):.1f}) | {r['fp16_max_abs_diff']:.1e} | {r['fp32_vs_pytorch_max_abs_diff']:.1e} | "
              f"{r['fp32_vs_float64_max_abs_diff']:.1e} | {r['pytorch_fp32_vs_float64_max_abs_diff']:.1e}, "
              f"{r['pytorch_fp32_vs_float64_psnr_db']:.1f} dB | "
              f"{r['prediction_std']:.3f} |")
    if args.json:
        from jamsdk._atomic import atomic_path

        with atomic_path(args.json) as tmp_json:
            tmp_json.write_text(json.dumps({"machine": info, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
