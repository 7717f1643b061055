"""Check exported graphs in ONNX Runtime (CPU) against the PyTorch modules they came from.

Per stage and precision, on plausible random inputs and on inputs the PyTorch pipeline produces
for a synthetic clip: the max absolute difference of every output. End to end: the graphs chained
as the runtime chains them (region predictor → [AVD] → dense motion → generator) against
:meth:`JamModel.animate`, in standard mode and, when there is an AVD graph, in avd mode; with a
background graph, also against the reconstruction :meth:`JamModel.forward` (which uses it).

Pass criteria: every FP32 graph's outputs within ``tolerance`` (1e-4) of its PyTorch module; the
FP32 chain within max(``tolerance``, 2 × PyTorch float32's own error) of a float64 run of the model
(chaining amplifies rounding; see :func:`verify_model_dir`); the FP16 chain's PSNR against the
FP32 chain ≥ ``psnr_min`` (40 dB) over the clip. FP16 per-stage differences are reported, not judged.
ONNX Runtime's CPU provider computes FP16 graphs in FP32 on FP16-rounded weights and activations
(it inserts casts), so the PSNR measures the FP16 storage and the islands' placement, not FP16
arithmetic (confirm that on the GPU).
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch

from jamsdk._lazy import require
from jamsdk.export.psnr import db_json, psnr
from jamsdk.export.samples import pipeline_feeds, random_feeds, synthetic_clip
from jamsdk.export.torch2onnx import stage_module
from jamsdk.stages import Stage

if TYPE_CHECKING:
    from jamsdk.manifest import Manifest
    from jamsdk.model.jam import JamModel

DEFAULT_TOLERANCE = 1e-4
DEFAULT_PSNR_MIN = 40.0


@dataclass
class Check:
    """One compared quantity. ``limit`` is None for reported-only numbers."""

    what: str
    value: float
    limit: float | None = None
    higher_is_better: bool = False

    @property
    def ok(self) -> bool:
        if self.limit is None:
            return True
        if math.isnan(self.value):
            return False
        return self.value >= self.limit if self.higher_is_better else self.value <= self.limit


@dataclass
class VerifyReport:
    checks: list[Check] = field(default_factory=list)
    fp16_psnr: float | None = None

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def summary(self) -> dict:
        """Plain-data digest for the manifest's ``export.verify``."""
        judged = [c for c in self.checks if c.limit is not None]
        stages = [c.value for c in judged if not c.what.startswith("end to end")]
        chains = [c.value for c in judged if c.what.startswith("end to end fp32")]
        psnr_db = self.fp16_psnr
        return {"ok": self.ok, "checks": len(judged), "failed": len(self.failures),
                "max_abs_diff_stages_fp32": max(stages, default=None),
                "max_abs_diff_end_to_end_fp32": max(chains, default=None),
                "fp16_psnr_db": None if psnr_db is None else db_json(psnr_db)}


class OrtChain:
    """The exported graphs of one precision, chained like the runtime does (for checking only)."""

    def __init__(self, manifest: "Manifest", precision: str, threads: int | None = None):
        from jamsdk.runtime.backends.onnxruntime import session_options

        ort = require("onnxruntime")
        opts = session_options(ort.SessionOptions())  # one session per stage: no spinning pools
        if threads:
            opts.intra_op_num_threads = threads
        opts.log_severity_level = 3  # ORT warns about the Cast nodes it inserts for FP16 on CPU
        self.sessions = {name: ort.InferenceSession(os.fspath(manifest.stage_file(name, precision)), opts,
                                                    providers=["CPUExecutionProvider"])
                         for name in manifest.stages}

    def run(self, stage: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        sess = self.sessions[stage]
        names = [o.name for o in sess.get_outputs()]
        return dict(zip(names, sess.run(names, {i.name: feeds[i.name] for i in sess.get_inputs()})))

    def animate(self, source: np.ndarray, driving: np.ndarray, mode: str = "standard",
                background: bool = False) -> np.ndarray:
        """(T, 3, S, S) frames for ``source`` (1, 3, S, S) and ``driving`` (T, 3, S, S)."""
        src = self.run("region_predictor", {"image": source})
        feats = self.run("generator_encoder", {"source": source})
        frames = []
        for t in range(driving.shape[0]):
            frame = driving[t:t + 1]
            drv = self.run("region_predictor", {"image": frame})
            if mode == "avd":
                drv = self.run("avd", {"source_shift": src["shift"], "source_affine": src["affine"],
                                       "driving_shift": drv["shift"], "driving_affine": drv["affine"]})
            feeds = {"source": source, **{f"source_{k}": v for k, v in src.items()},
                     **{f"driving_{k}": v for k, v in drv.items()}}
            if "bg_motion" in self.sessions:
                # Animation uses no background motion (MRAA's animate); the identity is its no-op.
                feeds["bg_params"] = (self.run("bg_motion", {"source": source, "driving": frame})["bg_params"]
                                      if background else np.eye(3, dtype=np.float32)[None])
            motion = self.run("dense_motion", feeds)
            frames.append(self.run("generator", {"source": source, **feats, **motion})["prediction"])
        return np.concatenate(frames)


def _flag(check: Check) -> str:
    return "" if check.ok else " FAIL"


def _end_to_end_check(report: VerifyReport, label: str, got: np.ndarray, torch32: np.ndarray, exact: np.ndarray,
                      tolerance: float, log: Callable[[str], None]) -> None:
    floor = float(np.abs(torch32 - exact).max())
    limit = max(tolerance, 2 * floor)
    check = Check(f"end to end fp32 ({label}) vs float64", float(np.abs(got - exact).max()), limit)
    report.checks.append(check)
    log(f"  end to end ({label}) fp32: max|Δ| vs PyTorch {float(np.abs(got - torch32).max()):.1e}, "
        f"vs float64 {check.value:.1e} (PyTorch float32 vs float64: {floor:.1e}; limit {limit:.1e}){_flag(check)}")


def _np(feeds: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().astype(np.float32) for k, v in feeds.items()}


@torch.no_grad()
def verify_model_dir(manifest: "Manifest", model: "JamModel", tolerance: float = DEFAULT_TOLERANCE,
                     psnr_min: float = DEFAULT_PSNR_MIN, frames: int = 4, seed: int = 0,
                     log: Callable[[str], None] = print, threads: int | None = None) -> VerifyReport:
    """Run every graph of ``manifest`` against ``model`` (eval mode, the exported weights)."""
    report = VerifyReport()
    stages: dict[str, Stage] = {}
    for name, entry in manifest.stages.items():
        stages[name] = Stage(name, entry.per, entry.inputs, entry.outputs)
    gen = torch.Generator().manual_seed(seed)
    source, driving = synthetic_clip(manifest.image_size, frames, seed)
    input_sets = {"random": {name: random_feeds(st, gen) for name, st in stages.items()},
                  "sample": pipeline_feeds(model, stages, source, driving[-1:])}
    chains = {p: OrtChain(manifest, p, threads) for p in manifest.precisions}

    for name, stage in stages.items():
        module = stage_module(model, stage)
        for label, sets in input_sets.items():
            feeds = sets[name]
            ref = module(*[feeds[s.name] for s in stage.inputs])
            ref = ref if isinstance(ref, tuple) else (ref,)
            ref_np = {s.name: r.numpy() for s, r in zip(stage.outputs, ref)}
            for precision, chain in chains.items():
                got = chain.run(name, _np(feeds))
                limit = tolerance if precision == "fp32" else None
                parts = []
                for out_name, want in ref_np.items():
                    diff = float(np.abs(got[out_name] - want).max())
                    check = Check(f"{name} {precision} {label} {out_name}", diff, limit)
                    report.checks.append(check)
                    parts.append(f"{out_name} {diff:.1e}{_flag(check)}")
                log(f"  {name:18s} {precision} {label:6s} max|Δ|: " + ", ".join(parts))

    # End to end, judged against a float64 run of the same model: chaining region → motion → frame
    # amplifies float32 rounding (a random 256² model moves its output by ~2e-4 for 1e-7 changes
    # of the region params), so the exported chain must be as exact as PyTorch's own float32 chain,
    # i.e. within max(tolerance, 2 × PyTorch float32's distance to float64).
    src_np, drv_np = _np({"s": source})["s"], _np({"d": driving})["d"]
    exact = copy.deepcopy(model).double()
    modes = ["standard"] + (["avd"] if "avd" in stages else [])
    for mode in modes:
        want = model.animate(source, driving, mode).numpy()
        outs = {p: chain.animate(src_np, drv_np, mode) for p, chain in chains.items()}
        if "fp32" in outs:
            ref64 = exact.animate(source.double(), driving.double(), mode).numpy()
            _end_to_end_check(report, f"{mode}, {frames} frames", outs["fp32"], want, ref64, tolerance, log)
        if "fp16" in outs:
            ref = outs.get("fp32", want)
            value = psnr(outs["fp16"], ref)
            check = Check(f"end to end fp16 {mode} PSNR dB", value, psnr_min, higher_is_better=True)
            report.checks.append(check)
            if mode == "standard":
                report.fp16_psnr = value
            log(f"  end to end ({mode}, {frames} frames) fp16 vs fp32: PSNR {value:.1f} dB, max|Δ| "
                f"{float(np.abs(outs['fp16'] - ref).max()):.1e}{_flag(check)}")
    if "bg_motion" in stages and "fp32" in chains:
        # The reconstruction (training forward) is the one place that uses the background transform.
        want = torch.cat([model(source, driving[t:t + 1])["prediction"] for t in range(frames)]).numpy()
        ref64 = torch.cat([exact(source.double(), driving[t:t + 1].double())["prediction"]
                           for t in range(frames)]).numpy()
        got = chains["fp32"].animate(src_np, drv_np, "standard", background=True)
        _end_to_end_check(report, "with bg_motion, vs reconstruction", got, want, ref64, tolerance, log)
    return report
