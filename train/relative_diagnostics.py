"""Why does relative mode lag? Inference-only experiments on held-out animation pairs (issue #31).

For one checkpoint and one pairs folder (``jamsdk synth --pairs N``) this scores several ways of
turning region params into the params that drive the source, all with the same model, and reports
each one's part position error and L1 beside no motion (the eval's metrics,
:mod:`jamsdk.train.animation_eval`). Variants (``--variants``; default all):

* ``relative``: jamsdk's relative mode as shipped (:meth:`JamModel.transfer_params`).
* ``rel_affine_src``: relative shifts, the source's own affine (translation only).
* ``rel_covar_src``: relative shifts and affine, the source's covariance instead of driving frame t's.
* ``rel_covar_aat``: relative shifts and affine, covariance ``A·Aᵀ`` of that affine (AVD's rule).
* ``rel_rigid``: relative shifts, the source's affine and covariance (each region only translates).
* ``rel_scale1``: as ``relative`` with movement scale 1.
* ``rel_true_scale``: as ``relative`` with the renderer's own size ratio of the two figures.
* ``standard``: driving frame t's params (scored against the relative truth too: shows the leak).
* ``oracle_truth``: standard mode driven by the relative truth frames themselves (A's own motion):
  the best any transfer of region params can hope for with this generator.
* ``oracle_rel_truth``: relative mode driven by the relative truth frames (same identity).

It also measures, over the driving clips: the rotation angle of ``A_d,t · A_d,0⁻¹`` per region
(polar part), how often its determinant is negative or its angle beyond 45° / 135°, the movement
scale against the renderer's size ratio, and the region predictor's jitter (shift change between
frames against the truth's mean flow).

Usage::

    python train/relative_diagnostics.py --checkpoint jamsdk/assets/demo.pt --pairs runs/pairs16 \
        --max-pairs 16 --json diag16.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

VARIANTS = ("relative", "rel_affine_src", "rel_covar_src", "rel_covar_aat", "rel_rigid", "rel_scale1",
            "rel_true_scale", "standard", "oracle_truth", "oracle_rel_truth")


def true_size_ratio(seed: int, index: int, size: int) -> float:
    """The pair's own movement scale (A's size over B's at the first frame), re-derived from its seed."""
    from jamsdk.train.figures import Figure, background
    from jamsdk.train.pairs import PAIRS_STREAM

    rng = np.random.default_rng([seed, PAIRS_STREAM, index])
    fig_b = Figure(rng, size)
    background(rng, size, fig_b.bg_hue)
    fig_a = Figure(rng, size, like=fig_b)
    background(rng, size, fig_a.bg_hue)
    t_b, t_a = rng.uniform(0, 200), rng.uniform(0, 200)
    return fig_a.size_at(fig_a.pose(t_a)) / fig_b.size_at(fig_b.pose(t_b))


def rotation_angles(r: np.ndarray) -> np.ndarray:
    """Angle (degrees) of the rotation nearest each 2×2 matrix (polar part; reflections by their rotation)."""
    return np.degrees(np.arctan2(r[..., 1, 0] - r[..., 0, 1], r[..., 0, 0] + r[..., 1, 1]))


SHIFTS_PX = ((0.5, 0.0), (1.0, 0.0), (0.0, 1.0), (2.0, 2.0), (4.0, 0.0))


def translation_error(region_predictor, image: np.ndarray) -> dict[str, float]:
    """How far the region centres follow a known small translation of a picture (non-equivariance).

    The picture (S, S, 3) in [0, 1] is moved by each of :data:`SHIFTS_PX` (bilinear, border
    reflected); a region predictor that is equivariant moves every centre by the same amount. Returns
    the mean error per region over the shifts, in pixels, and the mean length of the shifts.
    """
    import cv2
    import torch

    size = image.shape[0]
    frames = [image]
    for dx, dy in SHIFTS_PX:
        m = np.float32([[1, 0, dx], [0, 1, dy]])
        frames.append(cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
    batch = torch.from_numpy(np.ascontiguousarray(np.stack(frames).transpose(0, 3, 1, 2)))
    mu = region_predictor(batch)["shift"].numpy() * size / 2  # pixels (the heatmap frame ≈ the image's)
    moved = mu[1:] - mu[:1]
    want = np.array(SHIFTS_PX)[:, None, :]
    return {"translation_error_px": float(np.linalg.norm(moved - want, axis=-1).mean()),
            "translation_px": float(np.linalg.norm(want, axis=-1).mean())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--pairs", required=True)
    ap.add_argument("--max-pairs", type=int, default=16)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    import torch

    from jamsdk.model.checkpoint import load_model
    from jamsdk.model.jam import movement_scale_torch
    from jamsdk.model.linalg2x2 import inverse, matmul
    from jamsdk.train.animation_eval import frame_scores
    from jamsdk.train.motion_metrics import PartTruth
    from jamsdk.train.pairs import open_pairs

    torch.set_grad_enabled(False)
    variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"--variants: unknown {unknown}; expected some of {VARIANTS}")
    model, _ = load_model(args.checkpoint)
    model.eval()
    ps = open_pairs(args.pairs)
    names = ps.names()[:args.max_pairs]

    def to_t(frames: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2)))

    def render(src_img: torch.Tensor, src: dict, params: dict) -> np.ndarray:
        t = params["shift"].shape[0]
        img = src_img.expand(t, -1, -1, -1)
        s = {k: v.expand(t, *v.shape[1:]) for k, v in src.items()}
        feats = [f.expand(t, *f.shape[1:]) for f in model.generator.encode(src_img)]
        out = model.animate_frame(img, s, params, None, feats)["prediction"]
        return out.clamp(0, 1).numpy().transpose(0, 2, 3, 1)

    rows: dict[str, list[dict]] = {v: [] for v in variants + ["no_motion"]}
    geo: list[dict] = []
    t0 = time.time()
    for j, name in enumerate(names):
        raw = ps.load(name)
        f32 = {k: v.astype(np.float32) / 255.0 for k, v in raw.items() if not k.endswith("_labels")}
        truth = f32["relative"]
        parts = PartTruth(raw["relative"], raw["relative_labels"], raw["background"], raw["source"],
                          raw["source_labels"])
        src_img = to_t(f32["source"][None])
        src = {k: v for k, v in model.region_predictor(src_img).items() if k != "heatmap"}
        drv = {k: v for k, v in model.region_predictor(to_t(f32["driving"])).items() if k != "heatmap"}
        d0 = {k: v[:1] for k, v in drv.items()}
        scale = movement_scale_torch(src["shift"], d0["shift"])
        true_ratio = true_size_ratio(int(ps.meta["seed"]), j, ps.size)
        r_t = matmul(drv["affine"], inverse(d0["affine"]))  # (T, K, 2, 2)
        aff_rel = matmul(r_t, src["affine"])

        def rel(scale_value, affine=aff_rel, covar=None) -> dict:
            shift = src["shift"] + (drv["shift"] - d0["shift"]) * scale_value
            return {"shift": shift, "affine": affine, "covar": drv["covar"] if covar is None else covar}

        n = truth.shape[0]
        src_aff = src["affine"].expand(n, -1, -1, -1)
        src_cov = src["covar"].expand(n, -1, -1, -1)
        builders = {
            "relative": lambda: rel(scale),
            "rel_affine_src": lambda: rel(scale, affine=src_aff),
            "rel_covar_src": lambda: rel(scale, covar=src_cov),
            "rel_covar_aat": lambda: rel(scale, covar=matmul(aff_rel, aff_rel.transpose(-1, -2))),
            "rel_rigid": lambda: rel(scale, affine=src_aff, covar=src_cov),
            "rel_scale1": lambda: rel(1.0),
            "rel_true_scale": lambda: rel(float(true_ratio)),
            "standard": lambda: drv,
        }
        outs: dict[str, np.ndarray] = {}
        for v in variants:
            if v in builders:
                outs[v] = render(src_img, src, builders[v]())
            elif v == "oracle_truth":
                tp = {k: x for k, x in model.region_predictor(to_t(truth)).items() if k != "heatmap"}
                outs[v] = render(src_img, src, tp)
            elif v == "oracle_rel_truth":
                tp = {k: x for k, x in model.region_predictor(to_t(truth)).items() if k != "heatmap"}
                t0p = {k: x[:1] for k, x in tp.items()}
                sc = movement_scale_torch(src["shift"], t0p["shift"])
                shift = src["shift"] + (tp["shift"] - t0p["shift"]) * sc
                aff = matmul(matmul(tp["affine"], inverse(t0p["affine"])), src["affine"])
                outs[v] = render(src_img, src, {"shift": shift, "affine": aff, "covar": tp["covar"]})
        outs["no_motion"] = np.broadcast_to(f32["source"], truth.shape)
        line = [f"{name}"]
        for v, out in outs.items():
            l1, _ = frame_scores(out, truth)
            per_frame, lost = parts.frame_errors(out)
            rows[v].append({"l1": float(l1.mean()), "part_px": float(np.nanmean(per_frame)),
                            "part_lost": float(lost.sum() / parts.visible.sum()), "per_frame": per_frame.tolist()})
            line.append(f"{v} {rows[v][-1]['part_px']:.2f}")
        # Geometry of the driving clip.
        ang = rotation_angles(r_t.numpy())[1:]  # (T-1, K)
        det = (r_t[..., 0, 0] * r_t[..., 1, 1] - r_t[..., 0, 1] * r_t[..., 1, 0]).numpy()[1:]
        dets_a = (drv["affine"][..., 0, 0] * drv["affine"][..., 1, 1]
                  - drv["affine"][..., 0, 1] * drv["affine"][..., 1, 0]).numpy()
        step = np.linalg.norm(np.diff(drv["shift"].numpy(), axis=0), axis=-1) * ps.size / 2  # px per frame
        cov = drv["covar"].numpy()
        ev = np.linalg.eigvalsh(cov)
        aniso = ev[..., 0] / np.maximum(ev[..., 1], 1e-12)  # small/large eigenvalue: 1 = isotropic
        te = translation_error(model.region_predictor, f32["source"])
        geo.append({"name": name, **te, "scale": float(scale[0]), "true_ratio": true_ratio,
                    "abs_angle_mean": float(np.abs(ang).mean()), "angle_gt45": float((np.abs(ang) > 45).mean()),
                    "angle_gt135": float((np.abs(ang) > 135).mean()), "det_neg": float((det < 0).mean()),
                    "affine_det_pos": float((dets_a > 0).mean()),
                    "shift_step_px": float(step.mean()), "aniso_gt_0.8": float((aniso > 0.8).mean()),
                    "angle_by_region": np.abs(ang).mean(0).round(1).tolist()})
        print(" ".join(line), f"scale {float(scale[0]):.3f} (true {true_ratio:.3f}) |angle| {np.abs(ang).mean():.1f}°"
              f" >45° {100 * geo[-1]['angle_gt45']:.1f}% det<0 {100 * geo[-1]['det_neg']:.1f}%"
              f" [{time.time() - t0:.0f} s]", flush=True)

    summary = {}
    base = {k: float(np.mean([r[k] for r in rows["no_motion"]])) for k in ("l1", "part_px")}
    print(f"\n{len(names)} pairs of {ps.meta['frames']} frames, {args.checkpoint}")
    print(f"{'variant':<18}{'part px':>9}{'ratio':>8}{'L1':>10}{'ratio':>8}{'lost':>7}")
    for v, rs in rows.items():
        m = {k: float(np.mean([r[k] for r in rs])) for k in ("l1", "part_px", "part_lost")}
        summary[v] = {**m, "part_ratio": m["part_px"] / base["part_px"], "l1_ratio": m["l1"] / base["l1"]}
        print(f"{v:<18}{m['part_px']:>9.2f}{summary[v]['part_ratio']:>8.3f}{m['l1']:>10.5f}"
              f"{summary[v]['l1_ratio']:>8.3f}{m['part_lost']:>7.3f}")
    print("part error per frame (px; frames 0, 1, 2, 4, 8, last):")
    for v, rs in rows.items():
        curve = np.nanmean([r["per_frame"] for r in rs], axis=0)
        summary[v]["per_frame"] = curve.tolist()
        print(f"  {v:<18}" + " ".join(f"{curve[i]:5.2f}" for i in (0, 1, 2, 4, 8, -1)))
    g = {k: float(np.mean([x[k] for x in geo])) for k in geo[0] if k not in ("name", "angle_by_region")}
    corr = float(np.corrcoef([x["scale"] for x in geo], [x["true_ratio"] for x in geo])[0, 1])
    print("geometry (means over pairs): " + ", ".join(f"{k} {v:.3f}" for k, v in g.items()) +
          f", corr(scale, true ratio) {corr:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"checkpoint": args.checkpoint, "pairs": str(ps.root),
                                               "frames": ps.meta["frames"], "summary": summary, "geometry": geo,
                                               "geometry_mean": g, "scale_corr": corr,
                                               "rows": rows}, indent=1) + "\n")
    return 0 if all(math.isfinite(s["part_px"]) for s in summary.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
