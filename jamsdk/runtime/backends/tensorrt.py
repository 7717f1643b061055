"""TensorRT backend: one deserialised plan per stage, fixed buffers, one stream, bound by name.

Per stage, :meth:`TensorRTBackend.open` allocates every device buffer and a pinned host mirror
once, binds each I/O tensor by *name* (``set_tensor_address``; never by index, whose order differs
between TensorRT and ONNX Runtime) and creates one non-default stream (the default stream makes
TensorRT add device-wide synchronisation). A frame is then: copy inputs into the pinned mirrors,
async H2D, ``execute_async_v3`` (or the replay of a captured CUDA graph), async D2H, one stream
synchronise.

A GPU is probed with cuda-python before anything in ``tensorrt`` is touched: deserialising an
engine without a usable GPU segfaults instead of raising (ENV_FACTS §5).

For benchmarks (``jamsdk bench``), :meth:`TensorRTBackend.enable_gpu_timing` brackets the copies
and the engine of every run with CUDA events (:class:`GpuTimer`), and :func:`device_memory` reads
``cudaMemGetInfo``; both need cuda-python (not pycuda).
"""

from __future__ import annotations

import importlib
import os
import warnings
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from jamsdk._lazy import require
from jamsdk.errors import EngineError
from jamsdk.runtime import _cuda
from jamsdk.runtime.backends.base import Backend
from jamsdk.stages import Stage

if TYPE_CHECKING:
    from jamsdk.manifest import Manifest


def check_engine_compat(engines: Mapping[str, Any] | None, tensorrt_version: str, gpu: _cuda.GpuInfo) -> None:
    """EngineError unless engines described by a manifest's ``engines`` entry fit this machine.

    A TensorRT plan only loads on the TensorRT version and the GPU model it was built for; this
    check turns what would be a cryptic deserialisation failure (or a crash) into a message that
    says to rebuild.
    """
    if not engines:
        raise EngineError("this model folder has no TensorRT engines; build them on this machine with "
                          "`jamsdk build --model MODEL_DIR`")
    built = (f"TensorRT {engines.get('tensorrt_version')} on {engines.get('gpu_name')} "
             f"(compute capability {engines.get('compute_capability')})")
    here = f"TensorRT {tensorrt_version} on {gpu.name} (compute capability {gpu.compute_capability})"
    problems = []
    if str(engines.get("tensorrt_version")) != str(tensorrt_version):
        problems.append("TensorRT version")
    if str(engines.get("compute_capability")) != gpu.compute_capability:
        problems.append("compute capability")
    if str(engines.get("gpu_name")) != gpu.name:
        problems.append("GPU model")
    if problems:
        what = problems[0] if len(problems) == 1 else ", ".join(problems[:-1]) + " and " + problems[-1]
        raise EngineError(f"the engines were built with {built}, this machine has {here} (different "
                          f"{what}); rebuild them here with `jamsdk build --model MODEL_DIR`")


def _rt(result: Any, what: str) -> Any:
    """The value(s) of a cuda-python runtime call ``(err, *values)``; EngineError when ``err`` is not 0."""
    err, values = (result[0], result[1:]) if isinstance(result, tuple) else (result, ())
    code = int(getattr(err, "value", err))
    if code != 0:
        raise EngineError(f"CUDA call {what} failed: {getattr(err, 'name', err)} ({code})")
    return values[0] if len(values) == 1 else (values or None)


def device_memory() -> tuple[int, int] | None:
    """``(free, total)`` bytes of the current GPU from ``cudaMemGetInfo``, or None when unknown.

    None without a usable GPU or without cuda-python (the pycuda fallback is not asked). The numbers
    are device-wide (other processes included); on a Jetson the GPU shares system memory, so they
    describe that memory. Creates the CUDA context if none exists yet.
    """
    if _cuda.gpu_info() is None:
        return None
    rt = getattr(_cuda.cuda(), "rt", None)
    if rt is None:
        return None
    free, total = _rt(rt.cudaMemGetInfo(), "cudaMemGetInfo")
    return int(free), int(total)


class GpuTimer:
    """Four CUDA events on a stage's stream: before the H2D copies, before and after the engine, after D2H.

    Recorded outside any CUDA-graph capture and read after the run's stream synchronise, so the
    elapsed-time queries wait for nothing. The engine interval is what trtexec calls GPU compute
    time (kernel launch gaps included); the copy intervals are the PCIe (or, on a Jetson, memory)
    transfers.

    Args:
        rt: cuda-python's runtime module (``cuda.bindings.runtime`` or ``cuda.cudart``).
    """

    MARKS = 4

    def __init__(self, rt: Any):
        self.rt = rt
        self.events: list[Any] = []
        # CUDA 12.8 added an _v2 variant; take the plain name where the binding still has it.
        self._elapsed = getattr(rt, "cudaEventElapsedTime", None) or getattr(rt, "cudaEventElapsedTime_v2")
        try:
            for _ in range(self.MARKS):
                self.events.append(_rt(rt.cudaEventCreate(), "cudaEventCreate"))
        except BaseException:
            self.close()
            raise

    def record(self, mark: int, stream: int) -> None:
        _rt(self.rt.cudaEventRecord(self.events[mark], stream), "cudaEventRecord")

    def read(self) -> dict[str, float]:
        """``{"h2d_ms", "compute_ms", "d2h_ms"}`` of the last run (call after its stream synchronise)."""
        ms = [float(_rt(self._elapsed(a, b), "cudaEventElapsedTime"))
              for a, b in zip(self.events, self.events[1:])]
        return {"h2d_ms": ms[0], "compute_ms": ms[1], "d2h_ms": ms[2]}

    def close(self) -> None:
        events, self.events = self.events, []
        for event in events:
            try:
                self.rt.cudaEventDestroy(event)
            except Exception:  # freeing must not mask the error that got us here
                pass


class TensorRTBackend(Backend):
    """Runs a stage's TensorRT plan (``<stage>.engine``).

    Args:
        stage: the stage's tensor specs.
        path: the plan file.
        engines: the manifest's ``engines`` entry (TensorRT version, GPU); checked on open.
        cuda_graph: after the first run, capture ``execute_async_v3`` in a CUDA graph and replay
            it (less launch overhead for small stages); falls back to plain execution if capture
            fails.
        gpu_timing: time every run's copies and engine with CUDA events (see
            :meth:`enable_gpu_timing`).
    """

    kind = "tensorrt"
    artifact = "engine"

    def __init__(self, stage: Stage, path: str | os.PathLike[str], engines: Mapping[str, Any] | None = None,
                 cuda_graph: bool = False, gpu_timing: bool = False):
        super().__init__(stage, path)
        self.engines = engines
        self.cuda_graph = cuda_graph
        self.gpu_timing = gpu_timing
        #: the last run's ``{"h2d_ms", "compute_ms", "d2h_ms"}`` while GPU timing is on, else None
        self.last_gpu_ms: dict[str, float] | None = None
        self._timer: GpuTimer | None = None
        self._cuda: _cuda.Cuda | None = None
        self._trt: Any = None
        self._runtime: Any = None
        self._engine: Any = None
        self._context: Any = None
        self._stream: int | None = None
        self._device: dict[str, int] = {}
        self._host: dict[str, np.ndarray] = {}
        self._graph: Any = None
        self._runs = 0

    @classmethod
    def usable(cls, manifest: "Manifest") -> str:
        if manifest.engines is None:
            return "no engines in the model folder (build them with `jamsdk build`)"
        if _cuda.gpu_info() is None:  # probed before tensorrt is imported or touched
            return f"no usable GPU ({_cuda.gpu_problem()})"
        try:  # safe now that a GPU answered; a broken install must not break "auto"
            importlib.import_module("tensorrt")
        except Exception as exc:
            return f'tensorrt does not import ({exc}); pip install "jamsdk[tensorrt]"'
        return ""

    @classmethod
    def from_manifest(cls, manifest: "Manifest", name: str, options: Mapping[str, Any]) -> "TensorRTBackend":
        entry = manifest.stage(name)
        stage = Stage(name, entry.per, entry.inputs, entry.outputs)
        path = manifest.engine_file(name, verify_hash=options.get("verify_hashes", True))
        engines = manifest.data.get("engines")
        return cls(stage, path, engines=engines, cuda_graph=bool(options.get("cuda_graph", False)),
                   gpu_timing=bool(options.get("gpu_timing", False)))

    def enable_gpu_timing(self) -> str:
        """Time each later run with CUDA events into :attr:`last_gpu_ms`; returns why not ("" when on).

        Costs four event records and three elapsed-time queries per run (microseconds); meant for
        benchmarks. Needs cuda-python; with the pycuda fallback it stays off.
        """
        self.gpu_timing = True
        if self._is_open and self._timer is None:
            self._timer = self._make_timer()
        if self._is_open and self._timer is None:
            return "GPU timing needs cuda-python (the pycuda fallback has no event support here)"
        return ""

    def _make_timer(self) -> GpuTimer | None:
        rt = getattr(self._cuda, "rt", None)
        return GpuTimer(rt) if rt is not None else None

    def _open(self) -> None:
        gpu = _cuda.require_gpu("the TensorRT backend")  # before any TensorRT object exists
        trt = require("tensorrt")
        check_engine_compat(self.engines, trt.__version__, gpu)
        self._trt = trt
        self._cuda = _cuda.cuda()
        try:
            self._load(trt)
        except BaseException:
            self._close()
            raise

    def _load(self, trt: Any) -> None:
        logger = trt.Logger(trt.Logger.WARNING)
        runtime = trt.Runtime(logger)
        engine = runtime.deserialize_cuda_engine(self.path.read_bytes())
        if engine is None:
            raise EngineError(f"{self.name}: TensorRT cannot load {self.path} (corrupt, or built for another "
                              "TensorRT/GPU); rebuild it with `jamsdk build --model MODEL_DIR`")
        self._runtime, self._engine = runtime, engine  # the runtime must outlive the engine
        names = {engine.get_tensor_name(i) for i in range(engine.num_io_tensors)}
        want = {s.name for s in self.stage.inputs + self.stage.outputs}
        if names != want:
            raise EngineError(f"{self.name}: {self.path.name} has tensors {sorted(names)}, the manifest says "
                              f"{sorted(want)}")
        context = engine.create_execution_context()
        if context is None:
            raise EngineError(f"{self.name}: cannot create an execution context (out of GPU memory?)")
        self._context = context
        cu = self._cuda
        assert cu is not None
        for spec, is_input in [(s, True) for s in self.stage.inputs] + [(s, False) for s in self.stage.outputs]:
            mode = engine.get_tensor_mode(spec.name)
            if (mode == trt.TensorIOMode.INPUT) != is_input:
                raise EngineError(f"{self.name}: tensor {spec.name!r} is an {mode} in the engine")
            shape = tuple(engine.get_tensor_shape(spec.name))
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(spec.name)))
            if shape != tuple(spec.shape) or dtype != np.dtype(spec.dtype):
                raise EngineError(f"{self.name}: tensor {spec.name!r} is {shape} {dtype} in the engine, "
                                  f"{tuple(spec.shape)} {spec.dtype} in the manifest; rebuild the engine")
            host = cu.pinned_empty(shape, dtype)
            self._host[spec.name] = host
            self._device[spec.name] = cu.malloc(host.nbytes)
            if not context.set_tensor_address(spec.name, self._device[spec.name]):
                raise EngineError(f"{self.name}: set_tensor_address({spec.name!r}) failed")
        self._stream = cu.stream_create()
        if self.gpu_timing:
            self._timer = self._make_timer()

    def _execute(self) -> None:
        if not self._context.execute_async_v3(self._stream):
            raise EngineError(f"{self.name}: execute_async_v3 failed (see the TensorRT log above)")

    def _capture(self) -> None:
        """Record one execution as a CUDA graph; on any failure keep plain execution."""
        cu = self._cuda
        assert cu is not None and self._stream is not None
        try:
            cu.begin_capture(self._stream)
        except EngineError as exc:
            self.cuda_graph = False
            warnings.warn(f"{self.name}: CUDA graph capture unavailable ({exc}); running without it", stacklevel=3)
            return
        ok = True
        try:
            ok = bool(self._context.execute_async_v3(self._stream))
        finally:
            try:
                graph = cu.end_capture(self._stream)
            except EngineError as exc:
                graph, ok = None, False
                warnings.warn(f"{self.name}: CUDA graph capture failed ({exc}); running without it", stacklevel=3)
        if ok and graph is not None:
            self._graph = graph
        else:
            if graph is not None:
                cu.destroy_graph(graph)
            self.cuda_graph = False

    def _run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        cu, stream, timer = self._cuda, self._stream, self._timer
        assert cu is not None and stream is not None
        for spec in self.stage.inputs:
            np.copyto(self._host[spec.name], feeds[spec.name])
        # Host copies first, then the events: the copy interval must not include host work.
        if timer is not None:
            timer.record(0, stream)
        for spec in self.stage.inputs:
            cu.h2d(self._device[spec.name], self._host[spec.name], stream)
        # The first run is a plain one: TensorRT does lazy setup on it that must not be captured.
        if self._graph is None and self.cuda_graph and cu.supports_graphs and self._runs > 0:
            self._capture()
        if timer is not None:  # after the capture: an event recorded inside it would join the graph
            timer.record(1, stream)
        if self._graph is not None:
            cu.launch_graph(self._graph, stream)
        else:
            self._execute()
        if timer is not None:
            timer.record(2, stream)
        for spec in self.stage.outputs:
            cu.d2h(self._host[spec.name], self._device[spec.name], stream)
        if timer is not None:
            timer.record(3, stream)
        cu.synchronize(stream)
        self._runs += 1
        if timer is not None:
            self.last_gpu_ms = timer.read()
        # Copies: the pinned mirrors are overwritten by the next run.
        return {spec.name: self._host[spec.name].copy() for spec in self.stage.outputs}

    def _close(self) -> None:
        cu = self._cuda
        if cu is not None:
            if self._stream is not None:
                try:
                    cu.synchronize(self._stream)
                except EngineError:
                    pass
            if self._timer is not None:
                self._timer.close()
            if self._graph is not None:
                cu.destroy_graph(self._graph)
            for ptr in self._device.values():
                cu.free(ptr)
            for host in self._host.values():
                cu.free_pinned(host)
            if self._stream is not None:
                cu.stream_destroy(self._stream)
        self._graph = None
        self._timer = None
        self.last_gpu_ms = None
        self._device.clear()
        self._host.clear()
        self._stream = None
        # Context before engine before runtime: TensorRT's required destruction order.
        self._context = None
        self._engine = None
        self._runtime = None
