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
#: ``backend="auto"`` takes the first of these that can run the model here
AUTO_ORDER: tuple[str, ...] = ("tensorrt", "onnxruntime")


def resolve_backend(manifest: "Manifest", backend: str = "auto") -> str:
    """The backend kind to use: ``backend`` itself, or for ``"auto"`` the first usable of :data:`AUTO_ORDER`.

    ``auto`` takes TensorRT when the folder has engines, a GPU answers (probed first, without
    touching TensorRT) and tensorrt imports; otherwise ONNX Runtime on the ONNX graphs.
    """
    if backend != "auto":
        if backend not in BACKENDS:
            raise InputError(f"backend: expected 'auto' or one of {sorted(BACKENDS)}, got {backend!r}")
        return backend
    reasons = []
    for kind in AUTO_ORDER:
        why = BACKENDS[kind].usable(manifest)
        if not why:
            return kind
        reasons.append(f"{kind}: {why}")
    raise EngineError("no backend can run this model here: " + "; ".join(reasons))


__all__ = ["AUTO_ORDER", "BACKENDS", "Backend", "OnnxRuntimeBackend", "OpenVINOBackend", "TensorRTBackend",
           "check_feeds", "resolve_backend"]
