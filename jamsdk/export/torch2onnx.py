"""PyTorch stage modules → ONNX graphs, one per stage of :func:`jamsdk.stages.stage_table`.

Each wrapper takes exactly the stage's input tensors (in the table's order) and returns exactly its
output tensors, so a graph's I/O names are the table's. The graphs are batch 1 with static shapes
at one resolution per export.

Exporter choice: the TorchScript exporter (``dynamo=False``) at the requested opset. The dynamo
exporter builds at opset 18 and fails to convert the region predictor, dense motion and generator
down to 17 (they stay at 18, breaking the opset pin TensorRT needs, DEPLOY_FACTS §3.1), and is 3–15×
slower per stage (``python benchmarks/export_time.py --compare-exporters``; docs/export.md).
The TorchScript exporter also names nodes by module scope (``/region_predictor/predictor/…``),
which :mod:`jamsdk.export.fp16` uses to choose the FP16 body. Its graphs are then simplified with
onnxsim (constant folding of the shape arithmetic).
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

import torch
from torch import nn

from jamsdk._lazy import require
from jamsdk.errors import EngineError
from jamsdk.stages import Stage

if TYPE_CHECKING:
    import onnx

    from jamsdk.model.jam import JamModel

DEFAULT_OPSET = 17
# GridSample needs opset ≥ 16; opset 20 renames its modes and TensorRT then silently samples
# nearest (NVIDIA/TensorRT#4646), so 20+ is refused.
SUPPORTED_OPSETS = (16, 17, 18, 19)


def _params(shift: torch.Tensor, covar: torch.Tensor | None, affine: torch.Tensor) -> dict[str, torch.Tensor]:
    out = {"shift": shift, "affine": affine}
    if covar is not None:
        out["covar"] = covar
    return out


class RegionPredictorStage(nn.Module):
    """``image`` → ``shift``, ``covar``, ``affine`` (the heatmaps stay inside the graph)."""

    def __init__(self, model: "JamModel"):
        super().__init__()
        self.region_predictor = model.region_predictor

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.region_predictor(image)
        return out["shift"], out["covar"], out["affine"]


class GeneratorEncoderStage(nn.Module):
    """``source`` → ``source_feature_0`` … ``source_feature_N`` (once per source)."""

    def __init__(self, model: "JamModel"):
        super().__init__()
        self.generator = model.generator

    def forward(self, source: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.generator.encode(source))


class BgMotionStage(nn.Module):
    """``source``, ``driving`` → ``bg_params`` (1, 3, 3)."""

    def __init__(self, model: "JamModel"):
        super().__init__()
        self.bg_motion = model.bg_motion

    def forward(self, source: torch.Tensor, driving: torch.Tensor) -> torch.Tensor:
        return self.bg_motion(source, driving)


class AvdStage(nn.Module):
    """Source and driving ``shift``/``affine`` → the driving pose in the source's shape."""

    def __init__(self, model: "JamModel"):
        super().__init__()
        if model.avd is None:
            raise EngineError("the model has no AVD network (avd.enabled: false)")
        self.avd = model.avd

    def forward(self, source_shift: torch.Tensor, source_affine: torch.Tensor, driving_shift: torch.Tensor,
                driving_affine: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.avd(_params(source_shift, None, source_affine), _params(driving_shift, None, driving_affine))
        return out["shift"], out["covar"], out["affine"]


class DenseMotionStage(nn.Module):
    """Source image, source and driving region params (and ``bg_params``) → flow and occlusion."""

    def __init__(self, model: "JamModel"):
        super().__init__()
        self.dense_motion = model.dense_motion

    def forward(self, source: torch.Tensor, source_shift: torch.Tensor, source_covar: torch.Tensor,
                source_affine: torch.Tensor, driving_shift: torch.Tensor, driving_covar: torch.Tensor,
                driving_affine: torch.Tensor, bg_params: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        out = self.dense_motion(source, _params(driving_shift, driving_covar, driving_affine),
                                _params(source_shift, source_covar, source_affine), bg_params)
        return out["optical_flow"], out["occlusion_map"]


class GeneratorStage(nn.Module):
    """``source``, the cached ``source_feature_*``, ``optical_flow``, ``occlusion_map`` → ``prediction``."""

    def __init__(self, model: "JamModel"):
        super().__init__()
        self.generator = model.generator

    def forward(self, source: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        *feats, optical_flow, occlusion_map = rest
        return self.generator.decode(source, list(feats), optical_flow, occlusion_map)


STAGE_WRAPPERS: dict[str, type[nn.Module]] = {
    "region_predictor": RegionPredictorStage,
    "generator_encoder": GeneratorEncoderStage,
    "bg_motion": BgMotionStage,
    "avd": AvdStage,
    "dense_motion": DenseMotionStage,
    "generator": GeneratorStage,
}


def stage_module(model: "JamModel", stage: Stage) -> nn.Module:
    """The eval-mode wrapper that computes ``stage`` with ``model``'s submodules."""
    try:
        wrapper = STAGE_WRAPPERS[stage.name]
    except KeyError:
        raise EngineError(f"no exporter for stage {stage.name!r}") from None
    return wrapper(model).eval()


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    # The TorchScript exporter warns about its own deprecation and about traced Python values that
    # are constants here by design (static shapes); neither is actionable for a user of `export`.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def export_stage(model: "JamModel", stage: Stage, inputs: Sequence[torch.Tensor], opset: int = DEFAULT_OPSET,
                 simplify: bool = True) -> "onnx.ModelProto":
    """Trace ``stage`` of ``model`` on ``inputs`` (one tensor per stage input) into an ONNX model.

    The graph is simplified with onnxsim, and its inputs are put back in the stage table's order
    (the TorchScript exporter drops inputs a model does not read; they are re-added unused so every
    graph of a stage has the table's signature).
    """
    onnx = require("onnx")
    if opset not in SUPPORTED_OPSETS:
        raise EngineError(f"opset {opset} is not supported (expected one of {SUPPORTED_OPSETS})")
    if len(inputs) != len(stage.inputs):
        raise EngineError(f"{stage.name}: expected {len(stage.inputs)} example inputs, got {len(inputs)}")
    module = stage_module(model, stage)
    buf = io.BytesIO()
    with torch.no_grad(), _quiet_exporter():
        torch.onnx.export(module, tuple(inputs), buf, opset_version=opset, dynamo=False,
                          input_names=[s.name for s in stage.inputs],
                          output_names=[s.name for s in stage.outputs], do_constant_folding=True)
    proto = onnx.load_from_string(buf.getvalue())
    if simplify:
        proto = simplify_model(proto, stage.name)
    _restore_inputs(proto, stage)
    proto.doc_string = f"jamsdk stage {stage.name}: {stage.doc}"
    return proto


def simplify_model(proto: "onnx.ModelProto", name: str) -> "onnx.ModelProto":
    """onnxsim with its own output check; a failed check is an export error, not a warning."""
    onnxsim = require("onnxsim")
    with _captured_stdio() as captured:
        try:
            simplified, ok = onnxsim.simplify(proto)
        except Exception as exc:  # noqa: BLE001 - onnxsim raises plain RuntimeErrors from C++
            error: Exception | None = exc
        else:
            error = None
    if error is not None:
        raise EngineError(f"{name}: onnxsim failed ({type(error).__name__}: {error}) {captured()[-2000:]}") from error
    if not ok:
        raise EngineError(f"{name}: onnxsim's check of the simplified graph failed {captured()[-2000:]}")
    return simplified


@contextlib.contextmanager
def _captured_stdio() -> Iterator[Callable[[], str]]:
    """Send C-level stdout/stderr to a temporary file (onnxsim prints "failed to run …, skip" lines
    for data-dependent ops it cannot fold, which are expected here); yields a reader of the text."""
    import sys
    import tempfile

    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    text = ""
    with tempfile.TemporaryFile(mode="w+b") as sink:
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield lambda: text
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            sink.seek(0)
            text = sink.read().decode(errors="replace")


def _restore_inputs(proto: "onnx.ModelProto", stage: Stage) -> None:
    from onnx import TensorProto, helper

    have = {vi.name: vi for vi in proto.graph.input}
    ordered = []
    for spec in stage.inputs:
        vi = have.pop(spec.name, None)
        if vi is None:
            vi = helper.make_tensor_value_info(spec.name, TensorProto.FLOAT, list(spec.shape))
        ordered.append(vi)
    if have:
        raise EngineError(f"{stage.name}: unexpected graph inputs {sorted(have)}")
    del proto.graph.input[:]
    proto.graph.input.extend(ordered)


def save_model(proto: "onnx.ModelProto", path: str | os.PathLike[str]) -> None:
    """Write an ONNX model atomically (single file; the models here are far below protobuf's 2 GB)."""
    from jamsdk._atomic import write_bytes

    write_bytes(path, proto.SerializeToString())
