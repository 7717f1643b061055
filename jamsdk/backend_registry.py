"""The inference backends, one row each: everything outside a backend's own module that names it.

A backend is a module in :mod:`jamsdk.runtime.backends` (its :class:`~jamsdk.runtime.backends.base.Backend`
subclass) plus one :class:`BackendRow` here. The CLI's ``--backend`` choices, ``backend="auto"``'s
orders, ``jamsdk doctor``'s checks and verdict, the extra that :mod:`jamsdk._lazy` names when the
backend's package is missing, and the versions ``jamsdk info`` and benchmark reports print are all
read from :data:`ROWS`.

Standard library only, and importing it imports no other part of jamsdk: parsing a command line
and ``jamsdk doctor`` read it where numpy is missing or broken.
"""

from __future__ import annotations

from dataclasses import dataclass

PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class BackendRow:
    """One backend as the rest of jamsdk sees it.

    Args:
        name: the word on the command line, the registry key, the class's ``kind``.
        module: the module holding its :class:`~jamsdk.runtime.backends.base.Backend` subclass.
        cls: that subclass's name.
        extra: the ``pip install "jamsdk[extra]"`` that brings it (an extra of ``pyproject.toml``).
        packages: the top-level imports that extra brings, for the missing-package message.
        package: the one import whose version ``jamsdk info`` and benchmark reports print.
        distributions: the distribution names to ask package metadata for ``package``'s version
            (GPU and Jetson builds rename them); empty: the import name itself.
        auto_rank: per precision, its place in ``backend="auto"``'s order (lowest first); for a
            precision it has no place in, ``auto`` never picks it (naming it still works).
        graph: which files of the model folder it runs: ``"onnx"`` (the stage graphs) or
            ``"engine"`` (the engines ``jamsdk build`` made).
        int8_graph: for INT8, the manifest's file key of the graph it prefers where the export wrote
            one (``int8_cpu``, ``int8_openvino``); else the ``int8`` graph.
        int8_judge: the key under the manifest's ``export.int8`` whose held-out verdict decides
            whether ``precision="auto"`` runs INT8 on it in the long-running paths; None: it runs
            FP32 there (TensorRT runs its engines as built).
        doctor: the functions of :mod:`jamsdk.runtime.doctor` that check it, in order; empty: the
            generic check (its package imports, and which version).
        needs_gpu: it runs only where a GPU, the CUDA binding and its engines answer.
        auto_max_batch: the most frames per stage call that ``StreamBatch(max_batch="auto")`` (what
            ``jamsdk batch`` and ``serve`` use) gives it; None: every exported size.
    """

    name: str
    module: str
    cls: str
    extra: str
    packages: tuple[str, ...]
    package: str
    distributions: tuple[str, ...] = ()
    auto_rank: tuple[tuple[str, int], ...] = ()
    graph: str = "onnx"
    int8_graph: str | None = None
    int8_judge: str | None = None
    doctor: tuple[str, ...] = ()
    needs_gpu: bool = False
    auto_max_batch: int | None = None

    def rank(self, precision: str) -> int | None:
        """Its place in ``backend="auto"``'s order for ``precision`` (None: not tried automatically)."""
        return dict(self.auto_rank).get(precision)


ROWS: tuple[BackendRow, ...] = (
    BackendRow(
        name="tensorrt", module="jamsdk.runtime.backends.tensorrt", cls="TensorRTBackend",
        extra="tensorrt", packages=("tensorrt", "cuda"), package="tensorrt",
        distributions=("tensorrt", "tensorrt-cu12", "tensorrt-cu13", "tensorrt-cu12-bindings",
                       "tensorrt-cu13-bindings"),
        auto_rank=(("fp32", 0), ("fp16", 0), ("int8", 0)),
        graph="engine", doctor=("check_cuda", "check_tensorrt"), needs_gpu=True),
    # The CPU backends run one frame per stage call under max_batch="auto": on a 2-core AVX-512 VNNI
    # CPU a batched call was slower per frame than single frames for both, in every precision
    # (benchmarks/batch.py at B = 1, 4, 8: OpenVINO INT8 11.3 / 9.1 / 8.1 frames/s; docs/performance.md
    # "CPU throughput for many streams"): 256² activations of several frames leave the caches, and two
    # cores are already busy with one frame. Not measured on more cores (max_batch="tune" times it).
    # OpenVINO comes before ONNX Runtime for INT8 only: on the same Q/DQ graphs it ran jam-256 at
    # ~0.6x ONNX Runtime's INT8 time on an AVX-512 VNNI CPU, while in FP32 the two were within noise
    # and OpenVINO's first open compiles for seconds (docs/performance.md has the numbers).
    BackendRow(
        name="onnxruntime", module="jamsdk.runtime.backends.onnxruntime", cls="OnnxRuntimeBackend",
        extra="onnxruntime", packages=("onnxruntime",), package="onnxruntime",
        distributions=("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino"),
        auto_rank=(("fp32", 1), ("fp16", 1), ("int8", 2)),
        int8_graph="int8_cpu", int8_judge="cpu", doctor=("check_onnxruntime",), auto_max_batch=1),
    BackendRow(
        name="openvino", module="jamsdk.runtime.backends.openvino", cls="OpenVINOBackend",
        extra="openvino", packages=("openvino",), package="openvino",
        auto_rank=(("fp32", 2), ("fp16", 2), ("int8", 1)),
        int8_graph="int8_openvino", int8_judge="openvino", doctor=("check_openvino",), auto_max_batch=1),
)

#: name → row
BY_NAME: dict[str, BackendRow] = {row.name: row for row in ROWS}
#: the backend words, in registry order (``--backend`` adds ``auto``)
NAMES: tuple[str, ...] = tuple(BY_NAME)


def auto_orders() -> dict[str, tuple[str, ...]]:
    """Per precision, the backends ``backend="auto"`` tries, in order."""
    return {p: tuple(row.name for row in sorted((r for r in ROWS if r.rank(p) is not None), key=lambda r: r.rank(p)))
            for p in PRECISIONS}


__all__ = ["BY_NAME", "NAMES", "PRECISIONS", "ROWS", "BackendRow", "auto_orders"]
