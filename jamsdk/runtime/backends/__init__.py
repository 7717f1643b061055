"""Inference backends behind one interface (:class:`~jamsdk.runtime.backends.base.Backend`).

Backends are looked up in :data:`BACKENDS` by kind, and ``backend="auto"`` walks
:data:`AUTO_ORDER` asking each class whether it can run the model here; adding a backend is an
entry in each, not another branch in the Animator. Importing this package imports neither
onnxruntime, openvino nor tensorrt (each backend imports its library when opened).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jamsdk.errors import EngineError, InputError
from jamsdk.runtime.backends.base import Backend, check_feeds
from jamsdk.runtime.backends.onnxruntime import OnnxRuntimeBackend
from jamsdk.runtime.backends.openvino import OpenVINOBackend
from jamsdk.runtime.backends.tensorrt import TensorRTBackend

if TYPE_CHECKING:
    from jamsdk.manifest import Manifest

#: kind → backend class; the class's ``artifact`` says which file of a stage it loads
BACKENDS: dict[str, type[Backend]] = {
    TensorRTBackend.kind: TensorRTBackend,
    OnnxRuntimeBackend.kind: OnnxRuntimeBackend,
    OpenVINOBackend.kind: OpenVINOBackend,
}
#: ``backend="auto"`` takes the first of these that can run the model here, per precision. OpenVINO
#: comes before ONNX Runtime for INT8 only: on the same Q/DQ graphs it ran jam-256 at ~0.6x ONNX
#: Runtime's INT8 time on an AVX-512 VNNI CPU, while in FP32 the two were within noise and OpenVINO's
#: first open compiles for seconds (docs/performance.md has the numbers).
AUTO_ORDERS: dict[str, tuple[str, ...]] = {
    "fp32": ("tensorrt", "onnxruntime", "openvino"),
    "fp16": ("tensorrt", "onnxruntime", "openvino"),
    "int8": ("tensorrt", "openvino", "onnxruntime"),
}
#: the FP32 order (kept for callers that do not choose a precision)
AUTO_ORDER: tuple[str, ...] = AUTO_ORDERS["fp32"]


def auto_order(precision: str = "fp32") -> tuple[str, ...]:
    """The backends ``backend="auto"`` tries for ``precision``, in order."""
    return AUTO_ORDERS.get(precision, AUTO_ORDER)


def resolve_backend(manifest: "Manifest", backend: str = "auto", precision: str = "fp32") -> str:
    """The backend kind to use: ``backend`` itself, or for ``"auto"`` the first usable of :func:`auto_order`.

    ``auto`` takes TensorRT when the folder has engines, a GPU answers (probed first, without
    touching TensorRT) and tensorrt imports; otherwise, for ``precision="int8"`` OpenVINO when it is
    installed, else ONNX Runtime on the ONNX graphs (FP32 and FP16: ONNX Runtime first). A backend
    named explicitly is first checked against the machine (EngineError naming what is missing and
    the backends that can run here), before anything about the model folder.
    """
    if backend != "auto":
        if backend not in BACKENDS:
            raise InputError(f"backend: expected 'auto' or one of {sorted(BACKENDS)}, got {backend!r}")
        problem = BACKENDS[backend].machine_problem()
        if problem:
            here = [kind for kind in auto_order(precision) if kind != backend and not BACKENDS[kind].machine_problem()]
            hint = f"; backend {here[0]!r} (or 'auto') runs here" if here else ""
            raise EngineError(f"backend {backend!r} cannot run on this machine: {problem}{hint}")
        return backend
    reasons = []
    for kind in auto_order(precision):
        why = BACKENDS[kind].usable(manifest)
        if not why:
            return kind
        reasons.append(f"{kind}: {why}")
    raise EngineError("no backend can run this model here: " + "; ".join(reasons))


__all__ = ["AUTO_ORDER", "AUTO_ORDERS", "BACKENDS", "Backend", "OnnxRuntimeBackend", "OpenVINOBackend", "TensorRTBackend",
           "auto_order", "check_feeds", "resolve_backend"]
