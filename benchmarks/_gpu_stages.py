"""Shared by gpu_fp16_numerics.py and gpu_latency.py: a model's stage modules in FP32 and in the
export's mixed FP16 (the same FP16 bodies and FP32 islands), on any torch device.

The mixed FP16 stages are PyTorch proxies of the FP16 TensorRT engines, not the engines: each
module scope that :data:`jamsdk.export.fp16.FP16_BODIES` puts in the FP16 body is converted with
``.half()`` and wrapped so tensors are cast to the half dtype on the way in and back to float32 on
the way out (the Casts the exporter inserts at the body's boundary; a float16 → float32 → float16
round trip between two body modules is exact). Everything else (the region predictor, the 2×2
algebra, heatmaps, grids, warps, AVD, heads) stays float32, like the export's FP32 islands. Inside
a body every op runs in half here; the export keeps the few ops outside
:data:`jamsdk.export.fp16.FP16_OPS` in FP32, so this is a close proxy, not bit-identical.

No GPU needed: on the CPU, float16 runs in current torch (slowly); ``half_dtype`` may be float32 as
a stand-in where a build lacks half kernels.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

import _mini_yaml

#: True where PyYAML is missing and the shipped configs are read by ``_mini_yaml`` (lent GPU machines)
MINI_YAML = _mini_yaml.install()

from jamsdk.config import load_model_config  # noqa: E402
from jamsdk.export.fp16 import FP16_BODIES  # noqa: E402
from jamsdk.export.samples import synthetic_clip, trained_like  # noqa: E402
from jamsdk.export.torch2onnx import stage_module  # noqa: E402
from jamsdk.stages import stage_table  # noqa: E402

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


def resolve_device(name: str) -> tuple[torch.device | None, str]:
    """``(device, "")``, or ``(None, why)`` when CUDA is asked for and torch has none."""
    if name.startswith("cuda") and not torch.cuda.is_available():
        return None, (f"CUDA requested but torch.cuda.is_available() is False (torch {torch.__version__}, "
                      f"built for CUDA {torch.version.cuda or 'none'})")
    return torch.device(name), ""


def set_tf32(on: bool) -> None:
    """TF32 for matmuls and cuDNN convolutions (CUDA only; no effect on the CPU)."""
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on


def _cast(value: Any, dtype: torch.dtype) -> Any:
    if torch.is_tensor(value):
        return value.to(dtype) if value.is_floating_point() else value
    if isinstance(value, (list, tuple)):
        return type(value)(_cast(v, dtype) for v in value)
    if isinstance(value, dict):
        return {k: _cast(v, dtype) for k, v in value.items()}
    return value


class HalfBody(nn.Module):
    """A module of the FP16 body: its weights in ``dtype``, float32 in and out."""

    def __init__(self, module: nn.Module, dtype: torch.dtype):
        super().__init__()
        self.body = module.to(dtype)
        self.dtype = dtype

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return _cast(self.body(*_cast(args, self.dtype), **_cast(kwargs, self.dtype)), torch.float32)


def body_module_names(wrapper: nn.Module, stage_name: str) -> list[str]:
    """Names (in ``wrapper``) of the outermost modules inside the stage's FP16 body scopes.

    The exporter names nodes by module scope below the module the wrapper *calls*; stages that
    call a method of their child (``generator.encode``) have scopes that omit the child's name,
    so a scope matches a module's path with or without its first component.
    """
    prefixes = [s.strip("/").replace("/", ".") for s in FP16_BODIES.get(stage_name, ())]
    if not prefixes:
        return []
    chosen: list[str] = []
    for name, _ in wrapper.named_modules():
        if not name or any(name.startswith(c + ".") for c in chosen):
            continue
        paths = {name, name.partition(".")[2]}
        if any(p == prefix or (prefix.endswith(".") and p.startswith(prefix)) for p in paths for prefix in prefixes):
            chosen.append(name)
    if not chosen:
        raise RuntimeError(f"{stage_name}: no module matched the FP16 body scopes {prefixes}")
    return chosen


def mixed_precision(wrapper: nn.Module, stage_name: str, dtype: torch.dtype) -> nn.Module:
    """A copy of ``wrapper`` whose FP16-body modules run in ``dtype`` (FP32 islands untouched)."""
    out = copy.deepcopy(wrapper)
    for name in body_module_names(out, stage_name):
        parent_name, _, child = name.rpartition(".")
        parent = out.get_submodule(parent_name) if parent_name else out
        setattr(parent, child, HalfBody(getattr(parent, child), dtype))
    return out.eval()


@dataclass
class StageSet:
    """One model's stage table and a module per stage, on one device."""

    name: str
    size: int
    stages: dict  # name → jamsdk.stages.Stage
    modules: dict[str, nn.Module]

    def run(self, name: str, values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Run stage ``name`` on the tensors in ``values`` named like its inputs; outputs by name."""
        stage = self.stages[name]
        outs = self.modules[name](*[values[s.name] for s in stage.inputs])
        outs = outs if isinstance(outs, tuple) else (outs,)
        return {spec.name: out for spec, out in zip(stage.outputs, outs)}


def build_model(config: str, seed: int = 0) -> nn.Module:
    """``config`` (name or YAML) with trained-like random weights (see ``trained_like``), on the CPU."""
    from jamsdk.model.jam import build_model as build

    torch.manual_seed(seed)
    return trained_like(build(load_model_config(config)).eval(), seed)


def stage_sets(model: nn.Module, device: torch.device, half_dtype: torch.dtype) -> tuple[StageSet, StageSet]:
    """``(fp32, mixed)``: the model's stage modules in float32 and in the export's mixed precision."""
    table = stage_table(model.cfg)
    fp32 = {name: stage_module(model, st).to(device).eval() for name, st in table.items()}
    mixed = {name: mixed_precision(m, name, half_dtype) for name, m in fp32.items()}
    name, size = model.cfg.name, model.cfg.image_size
    return StageSet(name, size, table, fp32), StageSet(name, size, table, mixed)


def clip(size: int, frames: int, device: torch.device, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    source, driving = synthetic_clip(size, frames, seed)
    return source.to(device), driving.to(device)


def animate(s: StageSet, source: torch.Tensor, frames: torch.Tensor, mode: str = "standard",
            per_frame: Callable[[dict[str, torch.Tensor]], None] | None = None) -> torch.Tensor:
    """The streaming pipeline (standard or avd mode): per-source stages once, then every frame.

    Returns the predictions (T, 3, S, S). ``per_frame`` sees each frame's stage inputs (for the
    per-stage comparisons).
    """
    values: dict[str, torch.Tensor] = {"source": source}
    values.update({f"source_{k}": v for k, v in s.run("region_predictor", {"image": source}).items()})
    values.update(s.run("generator_encoder", {"source": source}))
    preds = []
    for i in range(frames.shape[0]):
        frame = frames[i:i + 1]
        values["driving"] = frame
        values.update({f"driving_{k}": v for k, v in s.run("region_predictor", {"image": frame}).items()})
        if "bg_motion" in s.stages:
            values.update(s.run("bg_motion", values))
        if mode == "avd":
            values.update({f"driving_{k}": v for k, v in s.run("avd", values).items()})
        values.update(s.run("dense_motion", values))
        if per_frame is not None:
            per_frame(values)
        preds.append(s.run("generator", values)["prediction"])
    return torch.cat(preds)


def per_frame_call(s: StageSet, source: torch.Tensor, frame: torch.Tensor) -> tuple[dict, Callable[[], Any]]:
    """Static inputs of one frame and a call computing the per-frame chain on them (source cached)."""
    values: dict[str, torch.Tensor] = {"source": source, "driving": frame}
    values.update({f"source_{k}": v for k, v in s.run("region_predictor", {"image": source}).items()})
    values.update(s.run("generator_encoder", {"source": source}))

    def chain() -> torch.Tensor:
        vals = dict(values)
        vals.update({f"driving_{k}": v for k, v in s.run("region_predictor", {"image": vals["driving"]}).items()})
        if "bg_motion" in s.stages:
            vals.update(s.run("bg_motion", vals))
        vals.update(s.run("dense_motion", vals))
        return s.run("generator", vals)["prediction"]

    return values, chain


def machine(device: torch.device) -> dict[str, Any]:
    """torch version, device name and, on CUDA, compute capability and CUDA version."""
    out: dict[str, Any] = {"torch": torch.__version__, "device": str(device)}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        out.update({"gpu": props.name, "compute_capability": f"{props.major}.{props.minor}",
                    "cuda": torch.version.cuda, "memory_mb": props.total_memory // 2**20})
    else:
        import platform

        out["cpu"] = platform.processor() or platform.machine()
    return out
