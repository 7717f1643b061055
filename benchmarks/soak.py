"""Soak test: stream many frames through one Animator and watch memory (RSS) and latency.

    python benchmarks/soak.py                                  # tiny-jam, 10,000 frames, ONNX Runtime CPU
    python benchmarks/soak.py --model MODEL_DIR --backend tensorrt --frames 50000 --png soak.png

Without ``--model`` a randomly initialised tiny-jam (64×64, seed 0) is exported to a temporary
folder first (needs ``jamsdk[export]``), in a child process so that torch is not in the measured
process (the runtime never imports it; its 300+ MB would dilute the growth figure). Driving
frames are 96×128 synthetic frames with moving blobs (so the crop/resize path runs too), cycled
from a pool of 64; every 1,000 frames ``reset()`` takes a new relative-mode reference and every
2,500 frames the source picture alternates, so the per-source path is soaked as well.

Measured (2026-11-24, 2 shared CPU cores, ONNX Runtime CPU, 1 thread, tiny-jam, relative mode):
10,000 frames: RSS 96.2 MB after warm-up → 97.5 MB (+1.30 %); 30,000 frames: 96.8 → 97.7 MB
(+0.93 %), RSS flat between the source switches. Latency varied with the other load on the box
(mean 5.8 ms / p90 8.4 ms over 10,000 frames).

Memory: RSS (``/proc/self/statm``) is sampled every ``--sample-every`` frames. The baseline is the
RSS after the warm-up (``--warmup`` frames: allocator pools, ONNX Runtime arenas and caches fill up
first; every stage runs at least twice in it, the per-source ones too, because ONNX Runtime
allocates a session's planned memory on its second run); growth = (final RSS − baseline) / baseline,
which must stay under ``--max-growth`` (5 %). The first source switch after the warm-up is at frame
2,500, inside the measured window.
Latency: ``perf_counter`` around each ``Animator.run`` (pre/post-processing included).

Writes a JSON summary and a PNG plot of RSS and latency over time (drawn with OpenCV) and exits 1
when RSS grew more than allowed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from jamsdk._atomic import write_bytes
from jamsdk.errors import JamError


def rss_bytes() -> int:
    """Current resident set size (Linux /proc; elsewhere the peak from getrusage)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def export_tiny(out_dir: Path, config: str = "tiny-jam", seed: int = 0) -> Path:
    """A randomly initialised ``config`` model exported (fp32 + fp16) to ``out_dir``."""
    import torch

    from jamsdk.config import load_model_config
    from jamsdk.export.pipeline import export_checkpoint
    from jamsdk.model.checkpoint import save_checkpoint
    from jamsdk.model.jam import build_model

    torch.manual_seed(seed)
    cfg = load_model_config(config)
    model = build_model(cfg).eval()
    ckpt = out_dir / f"{config}.pt"
    save_checkpoint(ckpt, model, cfg, meta={"avd_trained": True})
    export_checkpoint(ckpt, out_dir / "model", precision="both", avd="on", log=lambda _m: None)
    return out_dir / "model"


def frame_pool(n: int = 64, h: int = 96, w: int = 128, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = rng.uniform(40, 200, size=3)
    frames = []
    for t in range(n):
        cx = w * (0.3 + 0.4 * (0.5 + 0.5 * np.sin(2 * np.pi * t / n)))
        cy = h * (0.5 + 0.2 * np.cos(2 * np.pi * t / n))
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (h / 8) ** 2))
        img = base[None, None, :] * (1 - 0.7 * blob[..., None]) + 30 * (xx / w)[..., None]
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return frames


def sources(seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(rng.random((80, 80, 3)) * 64 + 96).astype(np.uint8),
            cv2.GaussianBlur((rng.random((120, 90, 3)) * 255).astype(np.uint8), (9, 9), 3)]


def soak(model_dir: Path, frames: int, backend: str, mode: str, threads: int | None, warmup: int,
         sample_every: int) -> dict:
    import jamsdk

    pool = frame_pool()
    pics = sources()
    latency = np.empty(frames, np.float64)
    rss_frames, rss = [], []
    with jamsdk.Animator(model_dir, backend=backend, mode=mode, threads=threads) as anim:
        anim.set_source(pics[0])
        rss_frames.append(0)
        rss.append(rss_bytes())
        for i in range(frames):
            if i and i % 2500 == 0:
                anim.set_source(pics[(i // 2500) % 2])
            elif i and i % 1000 == 0:
                anim.reset()
            elif i == warmup // 2:
                # The per-source stages' second run, inside the warm-up: ONNX Runtime plans a session's
                # memory on its first run and allocates that plan (7.5 MB for the demo model's encoder)
                # on its second, once. Without this the first source switch after the warm-up showed
                # as a +5.2 % step, then nothing more at any later switch.
                anim.set_source(pics[0])
            t0 = time.perf_counter()
            out = anim.run(pool[i % len(pool)])
            latency[i] = time.perf_counter() - t0
            if out.shape != (anim.image_size, anim.image_size, 3):  # cheap sanity check, never expected
                raise RuntimeError(f"unexpected output {out.shape}")
            if (i + 1) % sample_every == 0 or i + 1 == frames:
                rss_frames.append(i + 1)
                rss.append(rss_bytes())
        stats = anim.stats()
        used = anim.backend
    rss_arr = np.array(rss, np.float64)
    at = np.searchsorted(rss_frames, min(warmup, frames))
    baseline = float(rss_arr[min(at, len(rss_arr) - 1)])
    final = float(rss_arr[-1])
    lat_ms = latency * 1e3
    after = lat_ms[min(warmup, frames - 1):]
    tail = np.array(rss_frames) >= warmup
    slope = float(np.polyfit(np.array(rss_frames)[tail], rss_arr[tail], 1)[0]) if tail.sum() >= 2 else 0.0
    return {
        "model_dir": str(model_dir), "backend": used, "mode": mode, "frames": frames, "warmup": warmup,
        "rss_mb": {"start": rss[0] / 2**20, "baseline_after_warmup": baseline / 2**20, "final": final / 2**20,
                   "max": float(rss_arr.max()) / 2**20},
        "rss_growth_percent": 100.0 * (final - baseline) / baseline,
        "rss_slope_kb_per_1000_frames": slope * 1000 / 1024,
        "latency_ms_after_warmup": {"mean": float(after.mean()), "p50": float(np.percentile(after, 50)),
                                    "p90": float(np.percentile(after, 90)), "p99": float(np.percentile(after, 99)),
                                    "max": float(after.max())},
        "animator_stats": stats,
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count(), "threads": threads},
        "series": {"rss_frames": rss_frames, "rss_mb": [r / 2**20 for r in rss],
                   "latency_ms": lat_ms.round(4).tolist()},
    }


# -- plot (OpenCV drawing; no matplotlib) ---------------------------------------------------------

def _panel(img: np.ndarray, box: tuple[int, int, int, int], xs: np.ndarray, series: list[tuple[np.ndarray, tuple]],
           title: str, ylabel: str, xmax: float, vline: float | None = None) -> None:
    x0, y0, x1, y1 = box
    ys_all = np.concatenate([s for s, _ in series])
    lo, hi = float(ys_all.min()), float(ys_all.max())
    pad = max((hi - lo) * 0.1, abs(hi) * 0.01, 1e-6)
    lo, hi = lo - pad, hi + pad
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.rectangle(img, (x0, y0), (x1, y1), (0, 0, 0), 1)
    cv2.putText(img, title, (x0, y0 - 10), font, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, ylabel, (x0 - 70, y0 + 12), font, 0.4, (60, 60, 60), 1, cv2.LINE_AA)
    for k in range(5):  # y ticks
        v = lo + (hi - lo) * k / 4
        y = int(y1 - (y1 - y0) * k / 4)
        cv2.line(img, (x0, y), (x1, y), (225, 225, 225), 1)
        cv2.putText(img, f"{v:.3g}", (x0 - 62, y + 4), font, 0.4, (60, 60, 60), 1, cv2.LINE_AA)
    for k in range(6):  # x ticks
        v = xmax * k / 5
        x = int(x0 + (x1 - x0) * k / 5)
        cv2.putText(img, f"{int(v)}", (x - 12, y1 + 16), font, 0.4, (60, 60, 60), 1, cv2.LINE_AA)
    if vline is not None:
        x = int(x0 + (x1 - x0) * vline / max(xmax, 1))
        cv2.line(img, (x, y0), (x, y1), (150, 150, 150), 1)
    for ys, color in series:
        px = x0 + (x1 - x0) * xs / max(xmax, 1)
        py = y1 - (y1 - y0) * (ys - lo) / (hi - lo)
        pts = np.stack([px, py], axis=1).round().astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(img, [pts], False, color, 2, cv2.LINE_AA)


def plot(result: dict, path: Path) -> None:
    w, h = 1100, 720
    img = np.full((h, w, 3), 255, np.uint8)
    frames = result["frames"]
    s = result["series"]
    rss_x = np.array(s["rss_frames"], np.float64)
    rss_y = np.array(s["rss_mb"], np.float64)
    lat = np.array(s["latency_ms"], np.float64)
    win = max(1, frames // 200)  # windowed mean / p90 so 10,000 points stay readable
    n = len(lat) // win
    blocks = lat[: n * win].reshape(n, win)
    bx = (np.arange(n) + 0.5) * win
    _panel(img, (100, 70, w - 40, 330), rss_x, [(rss_y, (200, 80, 0))],
           f"RSS (MB): baseline {result['rss_mb']['baseline_after_warmup']:.1f}, "
           f"final {result['rss_mb']['final']:.1f}, "
           f"growth {result['rss_growth_percent']:+.2f} %  ({result['backend']}, {result['mode']})",
           "MB", frames, result["warmup"])
    _panel(img, (100, 410, w - 40, 670), bx, [(np.percentile(blocks, 90, axis=1), (0, 0, 220)),
                                              (blocks.mean(axis=1), (0, 140, 0))],
           f"latency per frame (ms) over windows of {win} frames: mean (green), p90 (red)", "ms", frames,
           result["warmup"])
    cv2.putText(img, "frames", (w // 2 - 20, h - 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise RuntimeError("OpenCV could not encode the PNG")
    write_bytes(path, buf.tobytes())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="exported model folder (default: export a random tiny-jam)")
    p.add_argument("--frames", type=int, default=10_000)
    p.add_argument("--backend", default="auto", choices=("auto", "onnxruntime", "tensorrt"))
    p.add_argument("--mode", default="relative", choices=("relative", "standard", "avd"))
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads (default 1)")
    p.add_argument("--warmup", type=int, default=500, help="frames before the RSS baseline (default 500)")
    p.add_argument("--sample-every", type=int, default=50, help="RSS sample interval in frames (default 50)")
    p.add_argument("--max-growth", type=float, default=5.0, help="allowed RSS growth in %% (default 5)")
    p.add_argument("--json", default="soak.json", help="summary + series (default soak.json)")
    p.add_argument("--png", default="soak.png", help="plot of RSS and latency (default soak.png)")
    p.add_argument("--export-only", metavar="DIR", help=argparse.SUPPRESS)  # child process: export and exit
    args = p.parse_args(argv)
    if args.export_only:
        export_tiny(Path(args.export_only))
        return 0
    if args.frames <= args.warmup:
        p.error("--frames must be larger than --warmup")
    try:
        with tempfile.TemporaryDirectory(prefix="jamsdk-soak-") as tmp:
            if args.model:
                model_dir = Path(args.model)
            else:
                subprocess.run([sys.executable, __file__, "--export-only", tmp], check=True)
                model_dir = Path(tmp) / "model"
            if "torch" in sys.modules:  # the measured process must be the runtime alone
                raise RuntimeError("torch was imported by the soak process")
            start = time.perf_counter()
            result = soak(model_dir, args.frames, args.backend, args.mode, args.threads, args.warmup,
                          args.sample_every)
            result["wall_s"] = time.perf_counter() - start
    except JamError as exc:
        print(f"soak: error: {exc}", file=sys.stderr)
        return 2
    write_bytes(args.json, (json.dumps(result, indent=1) + "\n").encode())
    plot(result, Path(args.png))
    lat = result["latency_ms_after_warmup"]
    print(f"{result['frames']} frames on {result['backend']} ({result['mode']}) in {result['wall_s']:.1f} s")
    rss = result["rss_mb"]
    print(f"RSS MB: start {rss['start']:.1f}, after warm-up {rss['baseline_after_warmup']:.1f}, "
          f"final {result['rss_mb']['final']:.1f}, max {result['rss_mb']['max']:.1f} → growth "
          f"{result['rss_growth_percent']:+.2f} % (limit {args.max_growth} %), "
          f"slope {result['rss_slope_kb_per_1000_frames']:+.1f} KB / 1000 frames")
    print(f"latency ms after warm-up: mean {lat['mean']:.2f}, p50 {lat['p50']:.2f}, p90 {lat['p90']:.2f}, "
          f"p99 {lat['p99']:.2f}, max {lat['max']:.2f}")
    print(f"wrote {args.json} and {args.png}")
    return 0 if result["rss_growth_percent"] < args.max_growth else 1


if __name__ == "__main__":
    raise SystemExit(main())
