"""Inference backends behind one interface (:class:`~jamsdk.runtime.backends.base.Backend`).

Backends are looked up in :data:`BACKENDS` by kind, and ``backend="auto"`` walks
:data:`AUTO_ORDERS` asking each class whether it can run the model here. Both are built from the
rows of :mod:`jamsdk.backend_registry`: adding a backend is its module here plus one row there, not
another branch in the Animator. Importing this package imports neither onnxruntime, openvino nor
tensorrt (each backend imports its library when opened).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from jamsdk.backend_registry import BY_NAME, ROWS, auto_orders
from jamsdk.errors import EngineError, InputError
from jamsdk.runtime.backends.base import Backend, check_feeds

if TYPE_CHECKING:
    from jamsdk.manifest import Manifest


def _load(module: str, cls: str) -> type[Backend]:
    backend = getattr(importlib.import_module(module), cls)
    if not (isinstance(backend, type) and issubclass(backend, Backend)):
        raise TypeError(f"jamsdk.backend_registry: {module}.{cls} is not a Backend subclass")
    return backend


#: kind → backend class (one per row of :mod:`jamsdk.backend_registry`, in its order); the class's
#: ``artifact`` says which file of a stage it loads
BACKENDS: dict[str, type[Backend]] = {row.name: _load(row.module, row.cls) for row in ROWS}
#: ``backend="auto"`` takes the first of these that can run the model here, per precision (the
#: rows' ``auto_rank``; why OpenVINO comes before ONNX Runtime for INT8 only: the registry's comment)
AUTO_ORDERS: dict[str, tuple[str, ...]] = auto_orders()
#: the FP32 order (kept for callers that do not choose a precision)
AUTO_ORDER: tuple[str, ...] = AUTO_ORDERS["fp32"]


def __getattr__(name: str) -> Any:
    """The backend classes by their class names (``from jamsdk.runtime.backends import TensorRTBackend``)."""
    for row in ROWS:
        if row.cls == name:
            return BACKENDS[row.name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def auto_order(precision: str = "fp32") -> tuple[str, ...]:
    """The backends ``backend="auto"`` tries for ``precision``, in order."""
    return AUTO_ORDERS.get(precision, AUTO_ORDER)


def auto_precision(manifest: "Manifest", kind: str) -> str:
    """What ``precision="auto"`` runs on backend ``kind`` in the long-running paths: ``int8`` or ``fp32``.

    INT8 where the folder has INT8 graphs (``jamsdk export --precision int8``) and the export judged
    this runtime's INT8 chain at least ``--min-psnr`` end to end on held-out frames (OpenVINO: its
    own judge, ``export.int8.openvino``; ONNX Runtime: its CPU graphs', ``export.int8.cpu``; else
    the S8S8 graphs' on ONNX Runtime); FP32 otherwise, and always on TensorRT (it runs its engines
    as built).
    """
    judge = BY_NAME[kind].int8_judge
    if judge is None or "int8" not in manifest.precisions:
        return "fp32"
    info = ((manifest.data.get("export") or {}).get("int8")) or {}
    min_psnr = info.get("min_psnr_db")
    judged = info.get(judge)
    if judged and "held_out_ok" in judged:
        ok = judged["held_out_ok"]
    elif judged:
        held = (judged.get("psnr_db_end_to_end") or {}).get("held_out")
        ok = isinstance(min_psnr, (int, float)) and (held == "inf" or isinstance(held, (int, float)) and held >= min_psnr)
    else:
        ok = info.get("held_out_ok")
    return "int8" if ok is True else "fp32"


def resolve_long_running(manifest: "Manifest", backend: str = "auto", precision: str = "auto") -> tuple[str, str]:
    """``(backend kind, precision)`` for the long-running paths (StreamBatch: ``jamsdk batch``, ``jamsdk serve``).

    An explicit precision resolves the backend as :func:`resolve_backend` does; ``precision="auto"``
    takes INT8 where :func:`auto_precision` says the export passed it on that backend, and with
    ``backend="auto"`` too the INT8 order is tried first (TensorRT, OpenVINO, ONNX Runtime): OpenVINO's
    one-time compile (cached per user) is nothing against a job or a service, and on an AVX-512 VNNI
    CPU its INT8 ran at about half ONNX Runtime INT8's time. A folder without INT8 that passed runs
    FP32 with FP32's order (ONNX Runtime first: in FP32 the two runtimes measured within a few per
    cent, and ONNX Runtime compiles nothing).
    """
    if precision != "auto":
        return resolve_backend(manifest, backend, precision), precision
    if backend != "auto":
        kind = resolve_backend(manifest, backend, "fp32")
        return kind, auto_precision(manifest, kind)
    kind = resolve_backend(manifest, "auto", "int8")
    if auto_precision(manifest, kind) == "int8":
        return kind, "int8"
    return resolve_backend(manifest, "auto", "fp32"), "fp32"


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


__all__ = ["AUTO_ORDER", "AUTO_ORDERS", "BACKENDS", "Backend", "OnnxRuntimeBackend", "OpenVINOBackend",
           "TensorRTBackend", "auto_order", "auto_precision", "check_feeds", "resolve_backend", "resolve_long_running"]
