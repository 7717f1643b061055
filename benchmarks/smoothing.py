"""Driving-region smoothing (``Animator(smoothing=s)``): output jitter on a still driver, lag on a moving one.

    python benchmarks/smoothing.py                         # bundled demo model and example clip, ~2 min on 2 cores
    python benchmarks/smoothing.py --strengths 0 2 4 8 --noise 4 --json smoothing.json

Clips (from the bundled example ``example_driving.mp4``, 40 frames at 10 fps, and ``example_source.png``):

- **still + noise**: one driving frame (``--still-frame``) repeated ``--still-len`` times, each copy
  with fresh Gaussian pixel noise of σ = ``--noise`` gray levels: a driver who holds still in front
  of a noisy camera. Ideally the animation does not move at all.
- **moving**: the clip played forward then backward (79 frames, no jump at the turn).
- **still, no noise**: the same frame repeated exactly; smoothing must not change the output at all.

Per strength (0 = off):

- *output jitter*: mean |frame t − frame t−1| of the animated frames, in gray levels (0–255),
  after the first 5 frames. On the still clip this is pure flicker.
- *region jitter*: RMS frame-to-frame change of the driving region centres, in pixels of the
  128² model picture (through the heatmap-grid geometry of :mod:`jamsdk.runtime.views`).
- *lag*: on the moving clip, the delay ``d`` (frames, to 0.05) that best aligns the smoothed
  region parameters with the unsmoothed ones shifted by ``d`` (linear interpolation), median over
  regions; in ms at the clip's 10 fps.
- *deviation*: mean |smoothed output − unsmoothed output| on the moving clip (gray levels): what
  the smoothing costs in fidelity to the driver.

Everything runs on ONNX Runtime on the CPU; timings are not measured (the filter is numpy on
K=10 regions, microseconds).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jamsdk._atomic import write_bytes  # noqa: E402
from jamsdk.pictures import read_image  # noqa: E402
from jamsdk.runtime.animator import Animator  # noqa: E402
from jamsdk.runtime.views import RegionGeometry  # noqa: E402
from jamsdk.video import read_frames  # noqa: E402

ASSETS = ROOT / "jamsdk" / "assets"
SKIP = 5


def run_clip(model: Path, source: np.ndarray, clip: list[np.ndarray], strength: float, threads: int):
    """Animated frames and the driving/raw region params per frame."""
    outs, drv = [], []
    with Animator(model, backend="onnxruntime", threads=threads, smoothing=strength) as anim:
        anim.set_source(source)
        anim.keep_regions = True
        for frame in clip:
            outs.append(anim.run(frame).astype(np.float32))
            p = anim.last_regions["driving"]
            drv.append(np.concatenate([p["shift"][0], p["affine"][0].reshape(-1, 4)], -1))
        geometry = RegionGeometry.from_manifest(anim.manifest)
    return np.stack(outs), np.stack(drv), geometry


def output_jitter(outs: np.ndarray) -> float:
    return float(np.abs(np.diff(outs[SKIP:], axis=0)).mean())


def region_jitter_px(params: np.ndarray, geometry: RegionGeometry) -> float:
    d = np.diff(params[SKIP:, :, :2], axis=0) * geometry.half_span  # shift units → model pixels
    return float(np.sqrt((d ** 2).sum(-1).mean()))


def lag_frames(smoothed: np.ndarray, raw: np.ndarray, max_lag: float = 6.0, step: float = 0.05) -> float:
    """Median over regions of the delay that best maps ``raw`` onto ``smoothed``."""
    t = np.arange(len(raw), dtype=np.float64)
    lags = []
    for k in range(raw.shape[1]):
        best, best_err = 0.0, np.inf
        for d in np.arange(0.0, max_lag + 1e-9, step):
            valid = t - d >= 0
            delayed = np.stack([np.interp(t[valid] - d, t, raw[:, k, c]) for c in range(raw.shape[2])], -1)
            err = float(((smoothed[valid, k] - delayed) ** 2).mean())
            if err < best_err:
                best, best_err = float(d), err
        lags.append(best)
    return float(np.median(lags))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ASSETS / "demo_model"), help="exported model folder (default: the demo)")
    ap.add_argument("--strengths", type=float, nargs="+", default=[0.0, 2.0, 4.0, 8.0])
    ap.add_argument("--noise", type=float, default=4.0, help="pixel noise σ in gray levels (default 4)")
    ap.add_argument("--still-frame", type=int, default=5)
    ap.add_argument("--still-len", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", metavar="OUT", help="write the results as JSON (atomically)")
    args = ap.parse_args(argv)
    if 0.0 not in args.strengths:
        args.strengths = [0.0, *args.strengths]

    start = time.perf_counter()
    source = read_image(ASSETS / "example_source.png")
    clip = list(read_frames(ASSETS / "example_driving.mp4"))
    fps = 10.0
    rng = np.random.default_rng(args.seed)
    base = clip[args.still_frame].astype(np.float32)
    still_noise = [np.clip(base + rng.normal(0, args.noise, base.shape), 0, 255).astype(np.uint8)
                   for _ in range(args.still_len)]
    moving = clip + clip[-2::-1]
    still = [clip[args.still_frame].copy() for _ in range(10)]

    rows = []
    ref_moving = None
    exact = {}
    for s in sorted(args.strengths):
        o_still, p_still, geometry = run_clip(Path(args.model), source, still_noise, s, args.threads)
        o_move, p_move, _ = run_clip(Path(args.model), source, moving, s, args.threads)
        o_exact, _, _ = run_clip(Path(args.model), source, still, s, args.threads)
        if s == 0.0:
            ref_moving, ref_params, ref_exact = o_move, p_move, o_exact
        exact[s] = float(np.abs(o_exact - ref_exact).max())
        rows.append({
            "strength": s,
            "still_output_jitter": output_jitter(o_still),
            "still_region_jitter_px": region_jitter_px(p_still, geometry),
            "moving_output_jitter": output_jitter(o_move),
            "moving_lag_frames": lag_frames(p_move, ref_params),
            "moving_deviation": float(np.abs(o_move - ref_moving).mean()),
            "still_exact_max_abs_diff": exact[s],
        })
        print(f"strength {s:g}: done ({time.perf_counter() - start:.0f} s)", file=sys.stderr)

    off = rows[0]
    lines = [
        "| smoothing | still+noise: output jitter | × less | region jitter (px) | moving: lag (frames / ms) "
        "| moving: output jitter | deviation from off | still clip: max abs change |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = off["still_output_jitter"] / r["still_output_jitter"] if r["still_output_jitter"] else float("inf")
        lines.append(
            f"| {'off' if r['strength'] == 0 else format(r['strength'], 'g')} | {r['still_output_jitter']:.3f} | {ratio:.2f} "
            f"| {r['still_region_jitter_px']:.4f} | {r['moving_lag_frames']:.2f} / {1000 * r['moving_lag_frames'] / fps:.0f} "
            f"| {r['moving_output_jitter']:.2f} | {r['moving_deviation']:.3f} | {r['still_exact_max_abs_diff']:g} |")
    table = "\n".join(lines)
    print(table)
    result = {"command": " ".join(["python", "benchmarks/smoothing.py", *(argv or sys.argv[1:])]),
              "model": args.model, "noise_sigma": args.noise, "still_len": args.still_len,
              "moving_len": len(moving), "fps": fps, "rows": rows, "markdown": table,
              "seconds": time.perf_counter() - start}
    if args.json:
        write_bytes(args.json, (json.dumps(result, indent=1) + "\n").encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
