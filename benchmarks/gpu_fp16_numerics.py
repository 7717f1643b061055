"""FP16 numerics of every stage on a GPU: the export's mixed precision (FP16 bodies, FP32 islands)
against FP32, per stage and end to end, with TF32 off and on. A PyTorch CUDA proxy of the FP16
TensorRT engines (no TensorRT needed).

    python benchmarks/gpu_fp16_numerics.py --device cuda --json fp16_numerics.json
    python benchmarks/gpu_fp16_numerics.py --device cpu --config tiny-jam --frames 2   # the logic, on a CPU

Reference: the FP32 stage modules with TF32 off. Variants, on the same inputs (the TF32 ones on
CUDA only: TF32 changes nothing on a CPU):

- ``fp32+tf32``: FP32 modules with TF32 on (what Ampere/Orin/Hopper do to FP32 convolutions and
  matmuls unless told not to; TensorRT enables it by default: BuilderFlag.TF32);
- ``fp16``: the mixed modules (``_gpu_stages.mixed_precision``) with TF32 off, as the FP16 engines
  should run;
- ``fp16+tf32``: the mixed modules with TF32 on in the FP32 islands.

Per stage: every output's PSNR (peak = the reference's range) and max |error|, on the inputs the
FP32 pipeline produces for each frame of a synthetic clip (so stage errors do not compound).
End to end: the whole pipeline (standard mode, and avd mode where the model has one) in each
variant against the FP32 reference, PSNR of the predicted frames (peak 1). Weights are random
but trained-like (``jamsdk.export.samples.trained_like``). On a CPU TF32 has no effect; float16
runs on current torch CPUs (slowly) and ``--half-dtype float32`` is a stand-in where it does not.
With ``--device cuda`` and no CUDA, the script says so, writes ``{"status": "skipped"}`` and exits 0.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _gpu_stages as gs  # noqa: E402

VARIANTS = {"fp32+tf32": ("fp32", True), "fp16": ("mixed", False), "fp16+tf32": ("mixed", True)}


def psnr(ref: torch.Tensor, out: torch.Tensor, peak: float | None = None) -> float | None:
    """PSNR in dB (peak: ``peak``, else the reference's range); None when the two are identical."""
    ref, out = ref.double(), out.double()
    mse = float(((ref - out) ** 2).mean())
    if mse == 0.0:
        return None
    if not math.isfinite(mse):
        return float("-inf")
    span = peak if peak is not None else float(ref.max() - ref.min()) or 1.0
    return 10.0 * math.log10(span * span / mse)


def _worst(values: list[float | None]) -> float | None:
    finite = [v for v in values if v is not None]
    return min(finite) if finite else None


class StageErrors:
    """Per stage and variant: the worst PSNR and max |error| of each output over the frames seen."""

    def __init__(self) -> None:
        self.data: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}

    def add(self, stage: str, variant: str, ref: dict[str, torch.Tensor], out: dict[str, torch.Tensor]) -> None:
        slot = self.data.setdefault(stage, {}).setdefault(variant, {})
        for name, r in ref.items():
            o = out[name]
            peak = 1.0 if name == "prediction" else None
            entry = slot.setdefault(name, {"psnr_db": [], "max_abs": 0.0})
            entry["psnr_db"].append(psnr(r, o, peak))
            entry["max_abs"] = max(entry["max_abs"], float((r.double() - o.double()).abs().max()))

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for stage, variants in self.data.items():
            out[stage] = {}
            for variant, outputs in variants.items():
                per = {n: {"psnr_db_min": _worst(e["psnr_db"]), "max_abs": e["max_abs"]} for n, e in outputs.items()}
                out[stage][variant] = {"psnr_db_min": _worst([v["psnr_db_min"] for v in per.values()]),
                                       "max_abs": max(v["max_abs"] for v in per.values()), "outputs": per}
        return out


def variants_for(device: torch.device) -> list[str]:
    """The variants worth running: TF32 only changes anything on CUDA."""
    return list(VARIANTS) if device.type == "cuda" else [v for v in VARIANTS if not VARIANTS[v][1]]


def _variant_run(sets: dict[str, gs.StageSet], variant: str, stage: str, values: dict) -> dict[str, torch.Tensor]:
    which, tf32 = VARIANTS[variant]
    gs.set_tf32(tf32)
    try:
        return sets[which].run(stage, values)
    finally:
        gs.set_tf32(False)


@torch.inference_mode()
def measure(config: str, device: torch.device, half_dtype: torch.dtype, frames: int) -> dict[str, Any]:
    """Per-stage and end-to-end errors of every variant for one model config."""
    model = gs.build_model(config)
    fp32, mixed = gs.stage_sets(model, device, half_dtype)
    sets = {"fp32": fp32, "mixed": mixed}
    source, clip = gs.clip(fp32.size, frames, device)
    errors = StageErrors()
    variants = variants_for(device)
    gs.set_tf32(False)
    for stage, key in (("region_predictor", "image"), ("generator_encoder", "source")):  # per source
        ref = fp32.run(stage, {key: source})
        for variant in variants:
            errors.add(stage, variant, ref, _variant_run(sets, variant, stage, {key: source}))

    per_frame = [n for n, st in fp32.stages.items() if st.per == "frame"]

    def compare(values: dict[str, torch.Tensor]) -> None:
        vals = {**values, "image": values["driving"]}
        for stage in per_frame:
            ref = fp32.run(stage, vals)
            for variant in variants:
                errors.add(stage, variant, ref, _variant_run(sets, variant, stage, vals))

    modes = ["standard"] + (["avd"] if "avd" in fp32.stages else [])
    end_to_end: dict[str, Any] = {}
    for mode in modes:
        ref = gs.animate(fp32, source, clip, mode, per_frame=compare if mode == "standard" else None)
        end_to_end[mode] = {}
        for variant in variants:
            which, tf32 = VARIANTS[variant]
            gs.set_tf32(tf32)
            try:
                out = gs.animate(sets[which], source, clip, mode)
            finally:
                gs.set_tf32(False)
            values = [psnr(ref[i], out[i], 1.0) for i in range(ref.shape[0])]
            finite = [v for v in values if v is not None]
            end_to_end[mode][variant] = {"psnr_db_mean": sum(finite) / len(finite) if finite else None,
                                         "psnr_db_min": _worst(values), "psnr_db_per_frame": values,
                                         "max_abs": float((ref - out).abs().max())}
    return {"config": config, "image_size": fp32.size, "variants": variants, "stages": errors.summary(), "end_to_end": end_to_end,
            "fp16_bodies": {n: gs.body_module_names(fp32.modules[n], n) for n in fp32.stages}}


def _half_dtype(name: str, device: torch.device) -> tuple[torch.dtype, str]:
    """The dtype for the FP16 body; float32 (a stand-in, reported) where this device lacks half kernels."""
    dtype = gs.DTYPES[name]
    if dtype == torch.float32:
        return dtype, "float32 (stand-in: no FP16 rounding measured)"
    try:
        conv = torch.nn.Conv2d(4, 4, 3, padding=1).to(device, dtype)
        torch.nn.functional.grid_sample(conv(torch.zeros(1, 4, 8, 8, device=device, dtype=dtype)),
                                        torch.zeros(1, 4, 4, 2, device=device, dtype=dtype), align_corners=False)
    except RuntimeError as exc:
        return torch.float32, f"float32 (stand-in: {name} is not supported on {device}: {str(exc)[:120]})"
    return dtype, name


def _fmt(v: float | None) -> str:
    return "identical" if v is None else f"{v:.1f}"


def report(result: dict[str, Any]) -> str:
    lines = [f"FP16 numerics on {result['machine'].get('gpu') or result['device']} ({result['half_dtype']}); "
             "PSNR dB (worst output, worst frame) against FP32 with TF32 off"]
    for m in result["models"]:
        names = m["variants"]
        lines += ["", f"### {m['config']} ({m['image_size']}²)", "",
                  "| stage | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
        for stage, variants in m["stages"].items():
            lines.append(f"| {stage} | " + " | ".join(_fmt(variants[v]["psnr_db_min"]) for v in names) + " |")
        for mode, variants in m["end_to_end"].items():
            lines.append(f"| **end to end, {mode}** (mean / min) | " + " | ".join(
                f"{_fmt(variants[v]['psnr_db_mean'])} / {_fmt(variants[v]['psnr_db_min'])}" for v in names) + " |")
    return "\n".join(lines)


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def write_json(result: dict[str, Any], path: str) -> None:
    from jamsdk._atomic import write_bytes

    write_bytes(path, (json.dumps(_finite(result), indent=1, allow_nan=False) + "\n").encode())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", help="torch device (default cuda)")
    p.add_argument("--config", action="append", dest="configs", metavar="NAME",
                   help="model config, repeatable (default: jam-256 and mraa-256)")
    p.add_argument("--frames", type=int, default=8, help="driving frames of the synthetic clip (default 8)")
    p.add_argument("--half-dtype", choices=sorted(gs.DTYPES), default="float16",
                   help="dtype of the FP16 body (default float16; float32 = stand-in)")
    p.add_argument("--json", metavar="OUT", help="write the result as JSON")
    args = p.parse_args(argv)
    if args.frames < 1:
        p.error(f"--frames: expected at least 1, got {args.frames}")
    device, why = gs.resolve_device(args.device)
    if device is None:
        print(f"gpu_fp16_numerics: skipped: {why}")
        if args.json:
            write_json({"status": "skipped", "reason": why}, args.json)
        return 0
    dtype, dtype_text = _half_dtype(args.half_dtype, device)
    start = time.perf_counter()
    result = {"status": "running", "device": str(device), "machine": gs.machine(device), "half_dtype": dtype_text,
              "tf32_effective": device.type == "cuda", "frames": args.frames, "models": []}
    for config in args.configs or ["jam-256", "mraa-256"]:
        result["models"].append(measure(config, device, dtype, args.frames))
        if args.json:  # each model as soon as it is measured: a timeout keeps what was done
            write_json({**result, "seconds": round(time.perf_counter() - start, 1)}, args.json)
    result.update(status="ok", seconds=round(time.perf_counter() - start, 1))
    print(report(result))
    if args.json:
        write_json(result, args.json)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
