"""TensorRT backend: one deserialised plan per stage; the Animator's frames run device-resident.

:meth:`TensorRTBackend.open` deserialises the engine and checks its tensors (by *name*, never by
index: TensorRT lists them in its own order) against the stage table. The Animator then runs its
plans through :meth:`TensorRTBackend.open_pipeline` (``trt_pipeline.DevicePipeline``): device
buffers shared between stages, one non-default stream (the default stream makes TensorRT add
device-wide synchronisation), one sync per frame, optional CUDA graphs. A stage run on its own
(``backend.run(feeds)``) is a one-step plan on a private pipeline: same code (for a caller
that runs one stage by itself; the Animator and StreamBatch run all their stages in one pipeline each).

TensorRT 8.6 is the oldest version it runs on (:func:`~jamsdk.runtime.trt_support.support_problem`):
the name-based tensor API it uses exists there, and where the 10.1 calls (``device_memory_size_v2``,
two-argument ``set_device_memory``) or the 10.0 allocation strategies are missing, the same shared
scratch is set through the older calls (:meth:`TensorRTBackend.new_context` says which, with sources).

Before anything in ``tensorrt`` is touched a GPU is probed with the CUDA binding: deserialising an
engine without a usable GPU segfaults instead of raising (ENV_FACTS §5). TensorRT's own CUDA can
still fail where the binding's works (another CUDA major), so the runtime is created with the
process-wide logger (:func:`trt_logger`), which records ERROR messages, and no engine is
deserialised after one.

For benchmarks (``jamsdk bench``), :meth:`TensorRTBackend.enable_gpu_timing` makes the pipeline
record CUDA events between copies and engines (``trt_pipeline.EventClock``), and
:func:`device_memory` reads ``cudaMemGetInfo``; both need cuda-python (not pycuda).
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import os
import re
import sys
import threading
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from jamsdk._lazy import install_command, require
from jamsdk.errors import EngineError
from jamsdk.runtime import _cuda
from jamsdk.runtime.trt_support import support_problem
from jamsdk.runtime.backends.base import Backend, manifest_stage
from jamsdk.runtime.backends.trt_pipeline import DevicePipeline
from jamsdk.runtime.plan import Pipeline, slot_specs, stage_plan
from jamsdk.stages import Stage, TensorSpec

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


#: TensorRT data type name → numpy dtype; anything else (bf16, fp8, int4 …) has no numpy twin
_NUMPY_TYPES = {"float32": "float32", "float16": "float16", "int8": "int8", "int32": "int32", "int64": "int64",
                "bool": "bool", "uint8": "uint8"}


def numpy_dtype(trt: Any, dtype: Any) -> np.dtype | None:
    """The numpy dtype of a TensorRT ``DataType``, or None where numpy has none (bf16, fp8, int4).

    A dict lookup keyed by ``trt.float32`` … , as NVIDIA's ``trt.nptype`` does: ``DataType`` is a
    pybind11 enum, so every ``engine.get_tensor_dtype`` call returns a new object that is equal
    (``==``, same hash) to ``trt.float32`` but never identical to it. ``trt.nptype`` itself is not
    used because it raises a bare TypeError for bf16/fp8, which should be an EngineError here.
    """
    table = {getattr(trt, name): np.dtype(np_name) for name, np_name in _NUMPY_TYPES.items() if hasattr(trt, name)}
    try:
        return table.get(dtype)
    except TypeError:  # an unhashable object is no DataType
        return None


class _Logger:
    """The one TensorRT logger of the process (see :func:`trt_logger`)."""

    instance: Any = None
    lock = threading.Lock()


def trt_logger(trt: Any) -> Any:
    """The process-wide TensorRT logger: prints warnings and errors, and records every error.

    One logger for the whole process: TensorRT uses the logger a builder or runtime was created
    with for everything created through it, and it must stay valid until all of those are
    released (``NvInferRuntimeBase.h``, ILogger); a logger per object risks logging through one
    that was already freed. :attr:`errors` lets callers refuse to go on after TensorRT reported an
    error (e.g. its CUDA could not initialise), instead of calling into a broken runtime.
    """
    with _Logger.lock:
        if _Logger.instance is None:
            base = trt.ILogger

            class RecordingLogger(base):  # type: ignore[misc, valid-type]
                def __init__(self) -> None:
                    base.__init__(self)
                    self.errors: list[str] = []
                    self._worst = (trt.Logger.INTERNAL_ERROR, trt.Logger.ERROR)
                    self._shown = self._worst + (trt.Logger.WARNING,)

                def log(self, severity: Any, msg: str) -> None:  # noexcept in TensorRT: never raise
                    try:
                        if severity in self._worst:
                            self.errors.append(str(msg))
                        if severity in self._shown:
                            print(f"[TensorRT] {msg}", file=sys.stderr)
                    except Exception:
                        pass

            _Logger.instance = RecordingLogger()
        return _Logger.instance


@functools.lru_cache(maxsize=1)
def tensorrt_cuda_major() -> int | None:
    """The CUDA major the installed TensorRT wheel was built for (``tensorrt-cu12`` → 12), None if unknown.

    Jetson's apt-installed TensorRT has no wheel metadata: unknown there (it matches JetPack's CUDA).
    Cached: it scans every installed distribution's metadata, and a StreamBatch opens dozens of backends.
    """
    for dist in importlib.metadata.distributions():
        name = (dist.metadata.get("Name") or "").lower().replace("_", "-")
        match = re.fullmatch(r"tensorrt-cu(\d+)(-libs|-bindings)?", name)
        if match:
            return int(match.group(1))
    return None


def check_cuda_versions(driver_version: int | None, trt_cuda_major: int | None) -> None:
    """EngineError when the driver is older than the CUDA major TensorRT was built for."""
    if driver_version is None or trt_cuda_major is None:
        return
    if driver_version // 1000 < trt_cuda_major:
        raise EngineError(f"TensorRT was built for CUDA {trt_cuda_major}, but the driver supports CUDA "
                          f"{driver_version // 1000}.{driver_version % 1000 // 10}; install the TensorRT wheel for "
                          f"your CUDA (e.g. tensorrt-cu{driver_version // 1000}) or update the driver")


class TensorRTBackend(Backend):
    """Runs a stage's TensorRT plan (``<stage>.engine``).

    Args:
        stage: the stage's tensor specs.
        path: the plan file.
        engines: the manifest's ``engines`` entry (TensorRT version, GPU); checked on open.
        cuda_graph: replay the engines as a CUDA graph after their first plain run (less launch
            overhead); falls back to plain execution, with a warning, if capture fails.
        gpu_timing: time every run's copies and engines with CUDA events (see
            :meth:`enable_gpu_timing`).
    """

    kind = "tensorrt"
    artifact = "engine"
    device_resident = True

    def __init__(self, stage: Stage, path: str | os.PathLike[str], engines: Mapping[str, Any] | None = None,
                 cuda_graph: bool = False, gpu_timing: bool = False):
        super().__init__(stage, path)
        self.engines = engines
        self.cuda_graph = cuda_graph
        self.gpu_timing = gpu_timing
        #: the last run's ``{"h2d_ms", "compute_ms", "d2h_ms"}`` while GPU timing is on, else None
        self.last_gpu_ms: dict[str, float] | None = None
        self._trt: Any = None
        self._runtime: Any = None
        self._engine: Any = None
        self._solo: Pipeline | None = None  # for run() on this stage alone, made on first use

    @classmethod
    def usable(cls, manifest: "Manifest") -> str:
        if manifest.engines is None:
            return "no engines in the model folder (build them with `jamsdk build`)"
        return cls.machine_problem()

    @classmethod
    def machine_problem(cls) -> str:
        if _cuda.gpu_info() is None:  # probed before tensorrt is imported or touched
            from jamsdk.runtime.cudaenv import driver_cuda_version

            # Without a driver, that is the news (the binding's state would only distract).
            driver, why = driver_cuda_version()
            return f"no usable NVIDIA GPU ({_cuda.gpu_problem() if driver else 'no NVIDIA driver: ' + why})"
        try:  # safe now that a GPU answered; a broken install must not break "auto"
            trt = importlib.import_module("tensorrt")
        except Exception as exc:
            return f"tensorrt does not import ({exc}); {install_command('tensorrt')}"
        return support_problem(getattr(trt, "__version__", ""))

    @classmethod
    def from_manifest(cls, manifest: "Manifest", name: str, options: Mapping[str, Any]) -> "TensorRTBackend":
        stage, batch = manifest_stage(manifest, name, options)  # a static engine per batch size
        path = manifest.engine_file(name, verify_hash=options.get("verify_hashes", True), batch=batch,
                                    batched_set=bool(options.get("batched_set", False)))
        return cls(stage, path, engines=manifest.data.get("engines"), cuda_graph=bool(options.get("cuda_graph", False)),
                   gpu_timing=bool(options.get("gpu_timing", False)))

    @classmethod
    def helper_backends(cls, manifest: "Manifest", options: Mapping[str, Any]) -> dict[str, "Backend"]:
        """The helper graphs' engines (``jamsdk.runtime.helpers``), when the folder has them all built."""
        from jamsdk.runtime.helpers import load_helpers, helper_engine

        verify = options.get("verify_hashes", True)
        out: dict[str, Backend] = {}
        for name, (stage, _onnx) in load_helpers(manifest, verify).items():
            path = helper_engine(manifest, name, verify)
            if path is not None:
                out[name] = cls(stage, path, engines=manifest.data.get("engines"),
                                cuda_graph=bool(options.get("cuda_graph", False)))
        return out

    @classmethod
    def open_pipeline(cls, backends: Mapping[str, "Backend"], slots: Mapping[str, TensorSpec],
                      options: Mapping[str, Any]) -> Pipeline:
        return DevicePipeline(backends, slots, cuda_graph=bool(options.get("cuda_graph", False)))  # type: ignore[arg-type]

    def enable_gpu_timing(self) -> str:
        """Time each later run's copies and engines with CUDA events into :attr:`last_gpu_ms`.

        Returns why not ("" when on). Costs a few event records per run (microseconds); meant
        for benchmarks. Needs cuda-python; with the pycuda fallback it stays off.
        """
        self.gpu_timing = True
        if getattr(_cuda.cuda(), "rt", None) is None:
            return "GPU timing needs cuda-python (the pycuda fallback has no event support here)"
        return ""

    def _open(self) -> None:
        gpu = _cuda.require_gpu("the TensorRT backend")  # before any TensorRT object exists
        trt = require("tensorrt")
        problem = support_problem(getattr(trt, "__version__", ""))
        if problem:  # before any engine is loaded: an older API would fail only after all of them were
            raise EngineError(problem)
        check_engine_compat(self.engines, trt.__version__, gpu)
        check_cuda_versions(_cuda.cuda().driver_version(), tensorrt_cuda_major())
        self._trt = trt
        try:
            self._load(trt)
        except BaseException:
            try:
                self._close()
            except Exception:  # the load error is the one to report
                pass
            raise

    def _load(self, trt: Any) -> None:
        logger = trt_logger(trt)
        seen = len(logger.errors)
        advice = "check that the TensorRT wheel matches the driver's CUDA (`jamsdk doctor`)"
        try:
            # A pybind11 factory: a nullptr from createInferRuntime is a TypeError ("factory function
            # returned nullptr"), never a None; TensorRT logs the reason first.
            runtime = trt.Runtime(logger)
        except Exception as exc:
            why = "; ".join(logger.errors[seen:]) or str(exc)
            raise EngineError(f"{self.name}: TensorRT cannot start here ({why}); {advice}") from None
        if len(logger.errors) > seen:
            # Deserialising on a runtime whose CUDA failed to initialise crashes the process.
            raise EngineError(f"{self.name}: TensorRT cannot start here ({'; '.join(logger.errors[seen:])}); {advice}")
        self._runtime = runtime  # the runtime must outlive the engine
        engine = runtime.deserialize_cuda_engine(self.path.read_bytes())
        if engine is None:
            raise EngineError(f"{self.name}: TensorRT cannot load {self.path} (corrupt, or built for another "
                              "TensorRT/GPU); rebuild it with `jamsdk build --model MODEL_DIR`")
        self._engine = engine
        names = {engine.get_tensor_name(i) for i in range(engine.num_io_tensors)}
        want = {s.name for s in self.stage.inputs + self.stage.outputs}
        if names != want:
            raise EngineError(f"{self.name}: {self.path.name} has tensors {sorted(names)}, the manifest says "
                              f"{sorted(want)}")
        for spec, is_input in [(s, True) for s in self.stage.inputs] + [(s, False) for s in self.stage.outputs]:
            mode = engine.get_tensor_mode(spec.name)
            if (mode == trt.TensorIOMode.INPUT) != is_input:
                raise EngineError(f"{self.name}: tensor {spec.name!r} is an {mode} in the engine")
            shape = tuple(int(d) for d in engine.get_tensor_shape(spec.name))  # a trt.Dims, not a tuple
            raw = engine.get_tensor_dtype(spec.name)
            dtype = numpy_dtype(trt, raw)
            if shape != tuple(spec.shape) or dtype != np.dtype(spec.dtype):
                got = dtype if dtype is not None else f"{raw} (no numpy type)"
                raise EngineError(f"{self.name}: tensor {spec.name!r} is {shape} {got} in the engine, "
                                  f"{tuple(spec.shape)} {spec.dtype} in the manifest; rebuild the engine")

    @property
    def activation_bytes(self) -> int:
        """Device memory one execution context needs for its activations.

        ``device_memory_size_v2`` (TensorRT ≥ 10.1, pyCore v10.1.0:1181), else ``device_memory_size``
        (pyCore v8.6.1:928, v10.0.1:1167; the same figure for the static-shape engines jamsdk builds).
        """
        if self._engine is None:
            raise EngineError(f"{self.name}: the tensorrt backend is not open")
        size = getattr(self._engine, "device_memory_size_v2", None)
        return int(self._engine.device_memory_size if size is None else size)

    def new_context(self, addresses: Mapping[str, int], scratch: tuple[int, int]) -> Any:
        """A new execution context with every I/O tensor bound (by name) to ``addresses``.

        The context allocates no activation memory of its own: it runs in ``scratch`` = ``(device
        pointer, bytes)``, which its pipeline shares between all contexts on one stream (they never
        run at the same time) and sizes for the largest engine. Which calls say so depends on the
        version (each version's ``pyCore.cpp``): ``create_execution_context(USER_MANAGED)`` from 10.0
        (v10.0.1:1095-1101, :1158), ``create_execution_context_without_device_memory()`` on 8.6
        (v8.6.1:926); ``set_device_memory(ptr, size)`` from 10.1 (v10.1.0:1042), else the one-argument
        ``device_memory`` setter (v8.6.1:835, v10.0.1:1036), whose size is the engine's.
        """
        if self._engine is None:
            raise EngineError(f"{self.name}: the tensorrt backend is not open")
        strategy = getattr(self._trt, "ExecutionContextAllocationStrategy", None)
        if strategy is not None:
            context = self._engine.create_execution_context(strategy.USER_MANAGED)
        else:
            context = self._engine.create_execution_context_without_device_memory()
        if context is None:
            raise EngineError(f"{self.name}: cannot create an execution context (out of GPU memory?)")
        ptr, size = scratch
        if size < self.activation_bytes:
            raise EngineError(f"{self.name}: scratch of {size} bytes, the engine needs {self.activation_bytes}")
        if hasattr(context, "set_device_memory"):
            context.set_device_memory(int(ptr), int(size))
        else:
            context.device_memory = int(ptr)
        for spec in self.stage.inputs + self.stage.outputs:
            if not context.set_tensor_address(spec.name, int(addresses[spec.name])):
                raise EngineError(f"{self.name}: set_tensor_address({spec.name!r}) failed")
        return context

    def _run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        plan = stage_plan(self.name, self.stage)
        if self._solo is None:  # made on first use only: chains run on their owner's pipeline instead
            self._solo = self.open_pipeline({self.name: self}, slot_specs([plan], {self.name: self.stage}),
                                            {"cuda_graph": self.cuda_graph})
        out = self._solo.run(plan, {f"{self.name}/{t}": a for t, a in feeds.items()})
        return {s.name: out[f"{self.name}/{s.name}"] for s in self.stage.outputs}

    def _close(self) -> None:
        solo, self._solo = self._solo, None
        try:
            if solo is not None:
                solo.close()
        finally:
            self.last_gpu_ms = None
            # Contexts (in the pipelines) before engine before runtime: TensorRT's destruction order.
            self._engine = None
            self._runtime = None
