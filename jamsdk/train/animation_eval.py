"""Animation scored against ground truth: the model on held-out pairs vs two baselines, per mode.

For each pair (:mod:`jamsdk.train.pairs`) the model animates the source picture A by B's driving
clip in the chosen mode, and every output frame is compared with the mode's ground-truth frame
(relative → ``relative/``; standard and avd → ``standard/``):

* **L1**: mean |output − truth| of pixels in [0, 1]; per pair over its frames, overall over pairs.
* **PSNR**: 10·log10(1 / MSE) per frame (pixels in [0, 1]), averaged like L1. A frame that matches
  exactly has infinite PSNR; it is capped at 100 dB so averages stay finite (only the
  ground-truth baseline reaches it).

* **Part position error** (``part_px``, ``part_frac``): where the figure's colour groups are in the
  output against the truth, in pixels and as a fraction of the figure's size
  (:mod:`jamsdk.train.motion_metrics`; from the pairs' label maps and background).
* **Flow error** (``flow_epe``): optical flow between consecutive output frames against the same in
  the truth, pixels per frame.

Two baselines are computed in the same run: **no motion** (every output frame is the source
picture; its score says how much the figures move) and **ground truth** (L1 0, PSNR capped, flow
error 0; its part error is the colour classifier's own error on the truth frames). The headline
numbers are the model's scores over no motion's: ``l1_vs_no_motion`` (below 1: the model moves the
figure closer to the truth than leaving it still; blur counts against a model here as much as a
wrong place) and ``motion_vs_no_motion`` (the part position error: blur cannot make it better than
the truth's, and no motion scores 1) with ``flow_vs_no_motion`` beside it.

The model is either a jamsdk checkpoint (PyTorch, :meth:`JamModel.animate`) or an exported model
folder run through :class:`jamsdk.Animator` (``run_tensor`` in model space, so both see the same
pixels).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from jamsdk.errors import InputError
from jamsdk.train.motion_metrics import PartTruth, flow_error, frame_flows
from jamsdk.train.pairs import MODE_GT, PairSet, open_pairs

PSNR_CAP = 100.0
MODES = tuple(MODE_GT)
SCORES = ("l1", "psnr", "part_px", "part_frac", "part_lost", "flow_epe")


def frame_scores(output: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame L1 and PSNR of (T, S, S, 3) float arrays in [0, 1]."""
    diff = output.astype(np.float64) - truth.astype(np.float64)
    l1 = np.abs(diff).mean(axis=(1, 2, 3))
    mse = (diff ** 2).mean(axis=(1, 2, 3))
    with np.errstate(divide="ignore"):
        psnr = np.minimum(10 * np.log10(1.0 / mse), PSNR_CAP)
    return l1, psnr


class _TorchRunner:
    """A checkpoint in PyTorch: ``animate(source, driving) → (T, S, S, 3)`` in [0, 1]."""

    def __init__(self, checkpoint: str | os.PathLike[str], device: str | None):
        import torch

        from jamsdk.model.checkpoint import load_model

        if device in (None, "auto"):
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise InputError(f"device {device!r} requested but torch sees no CUDA GPU")
        self.torch = torch
        self.device = device
        self.model, data = load_model(checkpoint)
        self.model.to(device).eval()
        self.image_size = self.model.cfg.image_size
        self.name = self.model.cfg.name
        self.has_avd = self.model.avd is not None
        self.step = (data.get("meta") or {}).get("step")

    def animate(self, source: np.ndarray, driving: np.ndarray, mode: str) -> np.ndarray:
        t = self.torch
        src = t.from_numpy(source.transpose(2, 0, 1)[None].copy()).to(self.device)
        drv = t.from_numpy(driving.transpose(0, 3, 1, 2).copy()).to(self.device)
        with t.no_grad():
            out = self.model.animate(src, drv, mode)
        return out.float().clamp(0, 1).cpu().numpy().transpose(0, 2, 3, 1)

    def close(self) -> None:
        pass


class _AnimatorRunner:
    """An exported model folder through :class:`jamsdk.Animator` (one Animator per mode)."""

    def __init__(self, model_dir: str | os.PathLike[str], backend: str, threads: int | None):
        from jamsdk.manifest import load_manifest

        self.model_dir, self.backend, self.threads = model_dir, backend, threads
        manifest = load_manifest(model_dir)
        self.image_size = manifest.image_size
        self.name = getattr(manifest, "name", None) or Path(model_dir).name
        self.has_avd = manifest.has_avd
        self.step = None
        self._animators: dict[str, Any] = {}

    def animate(self, source: np.ndarray, driving: np.ndarray, mode: str) -> np.ndarray:
        from jamsdk.runtime.animator import Animator

        if mode not in self._animators:
            self._animators[mode] = Animator(self.model_dir, backend=self.backend, mode=mode, threads=self.threads)
        anim = self._animators[mode]
        anim.reset()
        anim.set_source_tensor(np.ascontiguousarray(source.transpose(2, 0, 1)[None]))
        frames = [anim.run_tensor(np.ascontiguousarray(f.transpose(2, 0, 1)[None]))[0] for f in driving]
        return np.clip(np.stack(frames).transpose(0, 2, 3, 1), 0, 1)

    def close(self) -> None:
        for anim in self._animators.values():
            anim.close()


def evaluate_animation(pairs: str | os.PathLike[str] | PairSet, *, checkpoint: str | os.PathLike[str] | None = None,
                       model_dir: str | os.PathLike[str] | None = None, modes: tuple[str, ...] = ("relative",),
                       device: str | None = None, backend: str = "onnxruntime", threads: int | None = None,
                       max_pairs: int | None = None, echo: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Score a model on animation pairs, with the no-motion and ground-truth baselines, per mode.

    Args:
        pairs: a folder written by ``jamsdk synth --pairs N`` (or its ``pairs/``), or an opened set.
        checkpoint: a jamsdk checkpoint (PyTorch). Exactly one of ``checkpoint`` and ``model_dir``.
        model_dir: an exported model folder (run through :class:`jamsdk.Animator`).
        modes: any of ``relative``, ``standard``, ``avd`` (avd needs a model with an AVD network).
        device: PyTorch device for a checkpoint (default: CUDA when available).
        backend, threads: Animator backend and ONNX Runtime threads for a model folder.
        max_pairs: score only the first N pairs.
        echo: called with one line per pair and mode.

    Returns:
        ``{"modes": {mode: {"truth": which ground truth, "model": {"l1", "psnr"},
        "no_motion": {...}, "ground_truth": {...}, "l1_vs_no_motion", "pairs": [...]}}, ...}``.

    Raises:
        InputError: no or foreign pairs, a model whose image size differs from the pairs', a bad mode.
    """
    if (checkpoint is None) == (model_dir is None):
        raise InputError("pass exactly one of --checkpoint (PyTorch) and --model (exported folder)")
    modes = tuple(modes)
    if not modes:
        raise InputError("modes: expected at least one of " + ", ".join(MODES))
    for mode in modes:
        if mode not in MODES:
            raise InputError(f"mode: expected one of {MODES}, got {mode!r}")
    ps = pairs if isinstance(pairs, PairSet) else open_pairs(pairs)
    runner = _TorchRunner(checkpoint, device) if checkpoint is not None else _AnimatorRunner(model_dir, backend, threads)
    try:
        what = f"checkpoint {checkpoint}" if checkpoint is not None else f"model {model_dir}"
        if runner.image_size != ps.size:
            raise InputError(f"{what} works at {runner.image_size}×{runner.image_size}, but the pairs in {ps.root} are "
                             f"{ps.size}×{ps.size}; write pairs at the model's size (jamsdk synth --size "
                             f"{runner.image_size} --pairs N)")
        if "avd" in modes and not runner.has_avd:
            raise InputError(f"mode 'avd': {what} has no AVD network")
        names = ps.names()[:max_pairs] if max_pairs is not None else ps.names()
        if max_pairs is not None and max_pairs < 1:
            raise InputError(f"max_pairs: expected ≥ 1, got {max_pairs}")
        per_mode: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
        for name in names:
            raw = ps.load(name)
            pair = {k: v.astype(np.float32) / 255.0 for k, v in raw.items() if not k.endswith("_labels")}
            still = np.broadcast_to(pair["source"], pair["driving"].shape)
            truths: dict[str, tuple[PartTruth, np.ndarray]] = {}  # per ground truth, shared by its modes
            for mode in modes:
                key = MODE_GT[mode]
                truth = pair[key]
                if key not in truths:
                    truths[key] = (PartTruth(raw[key], raw[f"{key}_labels"], raw["background"], raw["source"],
                                             raw["source_labels"]), frame_flows(raw[key]))
                parts, flows = truths[key]
                out = runner.animate(pair["source"], pair["driving"], mode)
                row = {"name": name, "frames": int(truth.shape[0])}
                for kind, pred in (("model", out), ("no_motion", still), ("ground_truth", truth)):
                    l1, psnr = frame_scores(pred, truth)
                    part = parts.error(pred)
                    row[kind] = {"l1": float(l1.mean()), "psnr": float(psnr.mean()), "part_px": part["px"],
                                 "part_frac": part["frac"], "part_lost": part["lost"]}
                fe = flow_error(out, raw[key], flows) if truth.shape[0] > 1 else {"epe": 0.0, "truth_flow": 0.0}
                row["model"]["flow_epe"] = fe["epe"]
                row["no_motion"]["flow_epe"] = fe["truth_flow"]  # a still output has no flow
                row["ground_truth"]["flow_epe"] = 0.0
                per_mode[mode].append(row)
                if echo is not None:
                    echo(f"{name} {mode}: L1 {row['model']['l1']:.5f} (no motion {row['no_motion']['l1']:.5f}), "
                         f"PSNR {row['model']['psnr']:.2f} dB, part error {row['model']['part_px']:.2f} px "
                         f"(no motion {row['no_motion']['part_px']:.2f}), flow error {fe['epe']:.3f} px "
                         f"(no motion {fe['truth_flow']:.3f})")
    finally:
        runner.close()

    result: dict[str, Any] = {
        "pairs": str(ps.root), "pairs_version": ps.meta["version"], "pairs_seed": ps.meta.get("seed"),
        "model": runner.name, "checkpoint": None if checkpoint is None else str(checkpoint),
        "model_dir": None if model_dir is None else str(model_dir), "step": runner.step,
        "image_size": ps.size, "num_pairs": len(names),
        "metric": ("L1: mean |output - truth| of pixels in [0, 1]; PSNR: 10 log10(1/MSE) per frame, capped at "
                   f"{PSNR_CAP:g} dB; part_px/part_frac: distance of the figure's colour groups' centroids from "
                   "the truth's, pixels / fraction of the figure's size (part_lost: share of groups lost); "
                   "flow_epe: |DIS flow between consecutive output frames - the same in the truth|, pixels per "
                   "frame (no motion: the truth's own mean flow); all per pair over frames, overall over pairs"),
        "modes": {},
    }
    for mode, rows in per_mode.items():
        summary = {key: {m: float(np.mean([r[key][m] for r in rows])) for m in SCORES}
                   for key in ("model", "no_motion", "ground_truth")}
        if not all(math.isfinite(v) for s in summary.values() for v in s.values()):
            raise InputError(f"{mode}: the model produced non-finite outputs; the weights are broken")

        def ratio(metric: str) -> float | None:
            base = summary["no_motion"][metric]
            return summary["model"][metric] / base if base > 0 else None

        result["modes"][mode] = {"truth": MODE_GT[mode], **summary, "l1_vs_no_motion": ratio("l1"),
                                 "motion_vs_no_motion": ratio("part_px"), "flow_vs_no_motion": ratio("flow_epe"),
                                 "pairs": rows}
    return result


def format_table(result: dict[str, Any]) -> str:
    """The plain-text table ``jamsdk eval --animation`` prints: per mode, the model and no motion on each
    score and their ratio (the ground truth's L1 and flow error are 0; its part error is printed)."""

    def r3(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    head = (f"{'mode':<10}{'truth':<10}{'L1':>9}{'no-motion':>11}{'ratio':>7}"
            f"{'part px':>9}{'no-motion':>11}{'ratio':>7}{'truth':>7}"
            f"{'flow px':>9}{'no-motion':>11}{'ratio':>7}{'PSNR':>8}{'no-motion':>11}")
    lines = [head]
    for mode, r in result["modes"].items():
        m, n, g = r["model"], r["no_motion"], r["ground_truth"]
        lines.append(f"{mode:<10}{r['truth']:<10}{m['l1']:>9.5f}{n['l1']:>11.5f}{r3(r['l1_vs_no_motion']):>7}"
                     f"{m['part_px']:>9.2f}{n['part_px']:>11.2f}{r3(r['motion_vs_no_motion']):>7}"
                     f"{g['part_px']:>7.2f}{m['flow_epe']:>9.3f}{n['flow_epe']:>11.3f}"
                     f"{r3(r['flow_vs_no_motion']):>7}{m['psnr']:>8.2f}{n['psnr']:>11.2f}")
    return "\n".join(lines)
