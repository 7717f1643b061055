"""CUDA access for the TensorRT backend and builder, and a GPU probe that is safe anywhere.

The probe must run before any TensorRT object is created: without a usable GPU, TensorRT's
``Runtime`` is created with only a logged error and ``deserialize_cuda_engine`` then segfaults
(ENV_FACTS §5), so exceptions cannot be relied on.

Binding order (DEPLOY_FACTS §8): cuda-python's ``cuda.bindings.runtime`` (cuda-python ≥ 12.6),
then its older ``from cuda import cudart`` layout (removed in cuda-python 13), then pycuda only when
neither exists. Both sit behind the small :class:`Cuda` interface the backend uses, so the backend
never sees which binding is in use.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from jamsdk._lazy import install_command
from jamsdk.errors import EngineError, MissingDependencyError

_JETPACK_HINT = '(on JetPack 6: pip install "cuda-python>=12.6,<12.7")'


@dataclass(frozen=True)
class GpuInfo:
    """The GPU the process uses (the current device of the visible ones)."""

    name: str
    compute_capability: str  # "8.7" (Orin), "9.0" (H100/H200) …
    device: int = 0


class Cuda:
    """What the TensorRT backend needs from CUDA: memory, copies, a stream, optional graphs."""

    binding = ""
    supports_graphs = False

    def device_count(self) -> tuple[int, str]:  # (count, why-zero)
        raise NotImplementedError

    def device_info(self) -> GpuInfo:
        raise NotImplementedError

    def malloc(self, nbytes: int) -> int:
        raise NotImplementedError

    def free(self, ptr: int) -> None:
        raise NotImplementedError

    def pinned_bytes(self, nbytes: int) -> np.ndarray:
        """``nbytes`` of page-locked host memory as a flat uint8 array (free with :meth:`free_pinned`)."""
        raise NotImplementedError

    def pinned_empty(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """Page-locked host memory viewed as ``shape``/``dtype``.

        Allocated as bytes and viewed: ctypes has no float16 (``as_ctypes_type`` raises
        NotImplementedError) and TensorRT's bf16/fp8 have no numpy type, so a typed allocation
        would fail for them.
        """
        dtype = np.dtype(dtype)
        count = int(np.prod(shape, dtype=np.int64))
        raw = self.pinned_bytes(max(1, count * dtype.itemsize))
        return raw[:count * dtype.itemsize].view(dtype).reshape(shape)

    def free_pinned(self, array: np.ndarray) -> None:
        raise NotImplementedError

    def stream_create(self) -> int:
        raise NotImplementedError

    def stream_destroy(self, stream: int) -> None:
        raise NotImplementedError

    def h2d(self, dst: int, src: np.ndarray, stream: int) -> None:
        raise NotImplementedError

    def d2h(self, dst: np.ndarray, src: int, stream: int) -> None:
        raise NotImplementedError

    def d2d(self, dst: int, src: int, nbytes: int, stream: int) -> None:
        """``nbytes`` from device address ``src`` to ``dst``, on ``stream`` (capturable)."""
        raise NotImplementedError

    def synchronize(self, stream: int) -> None:
        raise NotImplementedError

    def last_error(self) -> str:
        """The error of the last runtime call of *this binding* (``cudaGetLastError``), "" when none.

        cuda-python keeps its own runtime state: TensorRT's CUDA errors never show here, and a failed
        capture shows as ``end_capture`` raising (``cudaErrorStreamCaptureInvalidated``), not here.
        """
        return ""

    def driver_version(self) -> int | None:
        """``cudaDriverGetVersion()`` (e.g. 12060 for CUDA 12.6), None when unknown or no driver is installed."""
        return None

    # CUDA graphs (only where supports_graphs)
    def begin_capture(self, stream: int) -> None:
        raise NotImplementedError

    def end_capture(self, stream: int, instantiate: bool = True) -> Any:
        """End the capture on ``stream``; the instantiated graph, or None when ``instantiate`` is False.

        The capture must always be ended (the stream stays in capture mode otherwise); a capture
        whose enqueue failed is ended with ``instantiate=False`` and thrown away.
        """
        raise NotImplementedError

    def launch_graph(self, graph_exec: Any, stream: int) -> None:
        raise NotImplementedError

    def destroy_graph(self, graph_exec: Any) -> None:
        raise NotImplementedError


def _code(err: Any) -> int:
    return int(getattr(err, "value", err))


class _CudaPython(Cuda):
    """cuda-python's runtime API (``cudaMalloc`` … returning ``(err, value)`` tuples)."""

    supports_graphs = True

    def __init__(self, cudart: Any, binding: str):
        self.rt = cudart
        self.binding = binding

    def _check(self, result: Any, what: str) -> Any:
        err, values = (result[0], result[1:]) if isinstance(result, tuple) else (result, ())
        if _code(err) != 0:
            raise EngineError(f"CUDA call {what} failed: {getattr(err, 'name', err)} ({_code(err)})")
        if not values:
            return None
        return values[0] if len(values) == 1 else values

    def device_count(self) -> tuple[int, str]:
        err, count = self.rt.cudaGetDeviceCount()[:2]
        if _code(err) != 0:
            return 0, f"cudaGetDeviceCount: {getattr(err, 'name', err)}"
        return int(count or 0), "" if count else "cudaGetDeviceCount reports 0 devices"

    def device_info(self) -> GpuInfo:
        dev = self._check(self.rt.cudaGetDevice(), "cudaGetDevice")
        prop = self._check(self.rt.cudaGetDeviceProperties(dev), "cudaGetDeviceProperties")
        raw = prop.name
        name = raw.split(b"\0", 1)[0].decode("utf-8", "replace") if isinstance(raw, (bytes, bytearray)) else str(raw)
        return GpuInfo(name=name.strip(), compute_capability=f"{prop.major}.{prop.minor}", device=int(dev))

    def malloc(self, nbytes: int) -> int:
        return int(self._check(self.rt.cudaMalloc(nbytes), "cudaMalloc"))

    def free(self, ptr: int) -> None:
        self._check(self.rt.cudaFree(ptr), "cudaFree")

    def pinned_bytes(self, nbytes: int) -> np.ndarray:
        ptr = int(self._check(self.rt.cudaMallocHost(max(1, nbytes)), "cudaMallocHost"))
        return np.frombuffer((ctypes.c_uint8 * max(1, nbytes)).from_address(ptr), np.uint8)

    def free_pinned(self, array: np.ndarray) -> None:
        self._check(self.rt.cudaFreeHost(array.ctypes.data), "cudaFreeHost")

    def stream_create(self) -> int:
        # Non-blocking: TensorRT warns that the default stream forces extra synchronisation.
        flags = self.rt.cudaStreamNonBlocking
        return int(self._check(self.rt.cudaStreamCreateWithFlags(flags), "cudaStreamCreateWithFlags"))

    def stream_destroy(self, stream: int) -> None:
        self._check(self.rt.cudaStreamDestroy(stream), "cudaStreamDestroy")

    def h2d(self, dst: int, src: np.ndarray, stream: int) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._check(self.rt.cudaMemcpyAsync(dst, src.ctypes.data, src.nbytes, kind, stream), "cudaMemcpyAsync(H2D)")

    def d2h(self, dst: np.ndarray, src: int, stream: int) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._check(self.rt.cudaMemcpyAsync(dst.ctypes.data, src, dst.nbytes, kind, stream), "cudaMemcpyAsync(D2H)")

    def d2d(self, dst: int, src: int, nbytes: int, stream: int) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToDevice
        self._check(self.rt.cudaMemcpyAsync(dst, src, nbytes, kind, stream), "cudaMemcpyAsync(D2D)")

    def synchronize(self, stream: int) -> None:
        self._check(self.rt.cudaStreamSynchronize(stream), "cudaStreamSynchronize")

    def last_error(self) -> str:
        result = self.rt.cudaGetLastError()
        err = result[0] if isinstance(result, tuple) else result
        return "" if _code(err) == 0 else f"{getattr(err, 'name', err)} ({_code(err)})"

    def driver_version(self) -> int | None:
        try:
            err, version = self.rt.cudaDriverGetVersion()[:2]
        except Exception:  # cuda-python 12.6 raises without a driver
            return None
        # cudaDriverGetVersion reports 0 when no driver is installed (cuda-python 12.9 answers (cudaSuccess, 0))
        return int(version) if _code(err) == 0 and int(version or 0) > 0 else None

    def begin_capture(self, stream: int) -> None:
        mode = self.rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        self._check(self.rt.cudaStreamBeginCapture(stream, mode), "cudaStreamBeginCapture")

    def end_capture(self, stream: int, instantiate: bool = True) -> Any:
        # An invalidated capture returns (cudaErrorStreamCaptureInvalidated, None): _check raises.
        graph = self._check(self.rt.cudaStreamEndCapture(stream), "cudaStreamEndCapture")
        if not instantiate:
            self.rt.cudaGraphDestroy(graph)
            return None
        try:
            graph_exec = self._check(self.rt.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")
        finally:
            self.rt.cudaGraphDestroy(graph)  # the executable graph keeps what it needs
        return graph_exec

    def launch_graph(self, graph_exec: Any, stream: int) -> None:
        self._check(self.rt.cudaGraphLaunch(graph_exec, stream), "cudaGraphLaunch")

    def destroy_graph(self, graph_exec: Any) -> None:
        self._check(self.rt.cudaGraphExecDestroy(graph_exec), "cudaGraphExecDestroy")


class _PyCuda(Cuda):
    """pycuda, used only where no cuda-python is installed (no CUDA-graph replay here).

    pycuda keeps a per-thread context stack and calls ``abort()`` at interpreter exit when that
    stack is not empty ("The context stack was not empty upon module cleanup", pycuda's
    ``context_stack::~context_stack``). So the primary context (the one TensorRT uses) is pushed
    around each call and popped again (:meth:`_active`), never left on the stack, and released at
    exit; calls from any thread then leave that thread's stack as they found it.
    """

    binding = "pycuda"

    def __init__(self, driver: Any):
        self.drv = driver
        self._context: Any = None
        self._allocs: dict[int, Any] = {}
        self._streams: dict[int, Any] = {}

    @contextlib.contextmanager
    def _active(self) -> Iterator[None]:
        if self._context is None:
            self.drv.init()
            self._context = self.drv.Device(0).retain_primary_context()
            atexit.register(self._release)
        self._context.push()
        try:
            yield
        finally:
            self.drv.Context.pop()

    def _release(self) -> None:
        context, self._context = self._context, None
        if context is not None:
            try:
                context.detach()
            except Exception:  # at exit: nothing useful to do with a failure
                pass

    def device_count(self) -> tuple[int, str]:
        try:
            self.drv.init()
            count = self.drv.Device.count()
        except Exception as exc:  # pycuda raises its own LogicError/RuntimeError without a driver
            return 0, f"pycuda: {exc}"
        return count, "" if count else "pycuda reports 0 devices"

    def device_info(self) -> GpuInfo:
        with self._active():
            dev = self.drv.Context.get_device()
            major, minor = dev.compute_capability()
            return GpuInfo(name=dev.name(), compute_capability=f"{major}.{minor}", device=0)

    def driver_version(self) -> int | None:
        try:
            return int(self.drv.get_driver_version())
        except Exception:
            return None

    def malloc(self, nbytes: int) -> int:
        with self._active():
            alloc = self.drv.mem_alloc(max(1, nbytes))
        self._allocs[int(alloc)] = alloc
        return int(alloc)

    def free(self, ptr: int) -> None:
        alloc = self._allocs.pop(ptr, None)
        if alloc is not None:
            with self._active():
                alloc.free()

    def pinned_bytes(self, nbytes: int) -> np.ndarray:
        with self._active():
            return self.drv.pagelocked_empty((max(1, nbytes),), np.uint8)

    def free_pinned(self, array: np.ndarray) -> None:
        base: Any = array
        while base is not None and not hasattr(base, "free"):  # views of the allocation lead to it
            base = getattr(base, "base", None)
        if base is not None:
            with self._active():
                base.free()

    def stream_create(self) -> int:
        with self._active():
            stream = self.drv.Stream()
        self._streams[int(stream.handle)] = stream
        return int(stream.handle)

    def stream_destroy(self, stream: int) -> None:
        self._streams.pop(stream, None)

    def h2d(self, dst: int, src: np.ndarray, stream: int) -> None:
        with self._active():
            self.drv.memcpy_htod_async(dst, src, self._streams[stream])

    def d2h(self, dst: np.ndarray, src: int, stream: int) -> None:
        with self._active():
            self.drv.memcpy_dtoh_async(dst, src, self._streams[stream])

    def d2d(self, dst: int, src: int, nbytes: int, stream: int) -> None:
        with self._active():
            self.drv.memcpy_dtod_async(dst, src, nbytes, self._streams[stream])

    def synchronize(self, stream: int) -> None:
        with self._active():
            self._streams[stream].synchronize()


@functools.lru_cache(maxsize=1)
def _binding() -> tuple[Cuda | None, str]:
    try:
        from cuda.bindings import runtime as cudart  # cuda-python ≥ 12.6

        return _CudaPython(cudart, "cuda.bindings.runtime"), ""
    except ImportError:
        pass
    try:
        from cuda import cudart  # type: ignore[no-redef]  # cuda-python < 12.6 layout

        return _CudaPython(cudart, "cuda.cudart"), ""
    except ImportError:
        pass
    try:
        import pycuda.driver as driver  # last resort: source-built, needs a matching toolkit

        return _PyCuda(driver), ""
    except Exception as exc:  # pycuda without a driver raises ImportError or an undefined-symbol error
        return None, (f"no CUDA binding imports (cuda-python missing; pycuda: {exc}); install it with: "
                      f"{install_command('tensorrt')} {_JETPACK_HINT}")


def cuda() -> Cuda:
    """The CUDA binding in use, or MissingDependencyError with the pip command."""
    api, why = _binding()
    if api is None:
        raise MissingDependencyError(why)
    return api


@functools.lru_cache(maxsize=1)
def _probe() -> tuple[GpuInfo | None, str]:
    api, why = _binding()
    if api is None:
        return None, why
    try:
        count, why = api.device_count()
        if count < 1:
            return None, why
        return api.device_info(), ""
    except Exception as exc:  # a broken install must read as "no GPU", not crash backend selection
        return None, f"CUDA probe failed: {exc}"


def gpu_info() -> GpuInfo | None:
    """The visible GPU, or None when no CUDA binding imports or no device answers (never raises)."""
    return _probe()[0]


def gpu_problem() -> str:
    """Why :func:`gpu_info` returned None (empty when a GPU answers)."""
    return _probe()[1]


def require_gpu(feature: str) -> GpuInfo:
    """The visible GPU, or EngineError naming why ``feature`` cannot run here."""
    info, why = _probe()
    if info is None:
        raise EngineError(f"{feature} needs an NVIDIA GPU, but none is usable here: {why}")
    return info
