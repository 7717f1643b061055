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
#: first open compiles for seconds (runtime/README.md, "OpenVINO", has the numbers).
AUTO_ORDERS: dict[str, tuple[str, ...]] = {
    "fp32": ("tensorrt", "onnxruntime", "openvino"),
    "fp16": ("tensorrt", "onnxruntime", "openvino"),
    "int8": ("tensorrt", "openvino", "onnxruntime"),
}
#: the FP32 order (kept for callers that do not choose a precision)
AUTO_ORDER: tuple[str, ...] = AUTO_ORDERS["fp32"]
#: ``auto`` for the long-running paths (:class:`~jamsdk.runtime.batch.StreamBatch`: ``jamsdk batch``,
#: ``jamsdk serve``), every precision: OpenVINO before ONNX Runtime. Its compile (seconds per graph,
#: once; then cached per user) is nothing against a job or a service, and on an AVX-512 VNNI CPU it
#: was the fastest measured there: INT8 at about half ONNX Runtime INT8's time, FP32 within a few
#: per cent of ONNX Runtime FP32 (docs: the CPU throughput page has the numbers).
LONG_RUNNING_ORDER: tuple[str, ...] = ("tensorrt", "openvino", "onnxruntime")


def auto_order(precision: str = "fp32", long_running: bool = False) -> tuple[str, ...]:
    """The backends ``backend="auto"`` tries for ``precision``, in order (``long_running``: for StreamBatch)."""
    return LONG_RUNNING_ORDER if long_running else AUTO_ORDERS.get(precision, AUTO_ORDER)


def auto_precision(manifest: "Manifest", kind: str) -> str:
    """What ``precision="auto"`` runs on backend ``kind`` in the long-running paths: ``int8`` or ``fp32``.

    INT8 where the folder has INT8 graphs (``jamsdk export --precision int8``) and the export judged
    this runtime's INT8 chain at least ``--min-psnr`` end to end on held-out frames (OpenVINO: its
    own judge, ``export.int8.openvino``; ONNX Runtime: its CPU graphs', ``export.int8.cpu``; else
    the S8S8 graphs' on ONNX Runtime); FP32 otherwise, and always on TensorRT (it runs its engines
    as built).
    """
    if kind == "tensorrt" or "int8" not in manifest.precisions:
        return "fp32"
    info = ((manifest.data.get("export") or {}).get("int8")) or {}
    min_psnr = info.get("min_psnr_db")
    judged = info.get("openvino") if kind == "openvino" else info.get("cpu")
    if judged and "held_out_ok" in judged:
        ok = judged["held_out_ok"]
    elif judged:
        held = (judged.get("psnr_db_end_to_end") or {}).get("held_out")
        ok = isinstance(min_psnr, (int, float)) and (held == "inf" or isinstance(held, (int, float)) and held >= min_psnr)
    else:
        ok = info.get("held_out_ok")
    return "int8" if ok is True else "fp32"


def resolve_backend(manifest: "Manifest", backend: str = "auto", precision: str = "fp32",
                    long_running: bool = False) -> str:
    """The backend kind to use: ``backend`` itself, or for ``"auto"`` the first usable of :func:`auto_order`.

    ``auto`` takes TensorRT when the folder has engines, a GPU answers (probed first, without
    touching TensorRT) and tensorrt imports; otherwise, for ``precision="int8"`` or a
    ``long_running`` caller OpenVINO when it is installed, else ONNX Runtime on the ONNX graphs (FP32
    and FP16 for one stream: ONNX Runtime first). A backend named explicitly is first checked against
    the machine (EngineError naming what is missing and the backends that can run here), before
    anything about the model folder.
    """
    if backend != "auto":
        if backend not in BACKENDS:
            raise InputError(f"backend: expected 'auto' or one of {sorted(BACKENDS)}, got {backend!r}")
        problem = BACKENDS[backend].machine_problem()
        if problem:
            here = [kind for kind in auto_order(precision, long_running)
                    if kind != backend and not BACKENDS[kind].machine_problem()]
            hint = f"; backend {here[0]!r} (or 'auto') runs here" if here else ""
            raise EngineError(f"backend {backend!r} cannot run on this machine: {problem}{hint}")
        return backend
    reasons = []
    for kind in auto_order(precision, long_running):
        why = BACKENDS[kind].usable(manifest)
        if not why:
            return kind
        reasons.append(f"{kind}: {why}")
    raise EngineError("no backend can run this model here: " + "; ".join(reasons))


__all__ = ["AUTO_ORDER", "AUTO_ORDERS", "BACKENDS", "LONG_RUNNING_ORDER", "Backend", "OnnxRuntimeBackend",
           "OpenVINOBackend", "TensorRTBackend", "auto_order", "auto_precision", "check_feeds", "resolve_backend"]
