"""Stand-ins for CUDA and TensorRT that keep their contracts, so that a test fails where the real thing would.

Every imitated behaviour names, in a comment on its line, the real source it copies. Sources:
TensorRT v10.3.0 (the JetPack 6 version; the same lines hold in 10.16 and 11.1 unless noted):
``include/NvInferRuntime.h`` (``RT.h``), ``include/NvInferRuntimeBase.h`` (``RTBase.h``),
``python/src/infer/pyCore.cpp``, ``pyFoundationalTypes.cpp``, ``python/docstrings/infer/pyCoreDoc.h``,
``samples/common/sampleDevice.h``; pybind11 3.0.4 ``include/pybind11/pybind11.h`` and
``detail/init.h`` (as shipped in torch 2.13's include folder); cuda-bindings 12.9.10 ``runtime.pyx``
(``rt.pyx``); the CUDA C++ Programming Guide, "CUDA Graphs: Prohibited and Unhandled Operations"
(``Guide``).

* :class:`FakeCuda` implements jamsdk's small ``_cuda.Cuda`` interface the way ``_CudaPython`` does
  over the real binding: a failed call raises ``EngineError("CUDA call … failed: <name> (<code>)")``.
  Device memory is host bytearrays behind 256-byte-aligned fake pointers, and it counts the device
  bytes in use (:attr:`FakeCuda.device_bytes`, :attr:`FakeCuda.peak_bytes`), TensorRT's own
  allocations (engine weights, STATIC context memory) included. Copies and engine runs enqueued on
  a stream take effect only when the stream is synchronised (or a graph launched on it is), so a
  missing or misplaced sync gives stale results. Stream capture is strict: what would invalidate a
  real capture does, and ``end_capture`` then fails. It counts bytes per direction, syncs and graph
  launches (:attr:`FakeCuda.counts`).
* :func:`fake_tensorrt`: an engine is the stage's ONNX graph run by ONNX Runtime on that memory.
  Enums behave like pybind11's (fresh equal-but-not-identical objects from every getter), tensors
  are listed in an order other than the stage table's, shapes are ``Dims``-like (not tuples), the
  factories raise TypeError on failure, ``execute_async_v3`` returns False and logs for what the
  real one refuses, and contexts allocate (STATIC) or expect (USER_MANAGED) activation memory.

Where a rule is stricter than CUDA (work on a second stream during a capture invalidates it here;
CUDA runs it eagerly, outside the graph) it says so: either way the graph would lack that work.

Importable as ``cuda_standin`` from the runtime tests (like ``rt_samples``).
"""

from __future__ import annotations

import json
import shutil
import threading
import types
import weakref
from collections import Counter

import numpy as np

from jamsdk.errors import EngineError
from jamsdk.model_files import sha256_file
from jamsdk.runtime import _cuda

GPU = _cuda.GpuInfo("Fake GPU", "8.7")
VERSION = "10.3.0.30"
ALIGN = 256  # RT.h:4003 "The pointer must have at least 256-byte alignment"; cudaMalloc gives ≥ 256

# cudaError_t values (rt.pyx enum cudaError_t; the numbers are CUDA's driver_types.h)
_UNSUPPORTED = ("cudaErrorStreamCaptureUnsupported", 900)  # rt.pyx: "not permitted when the stream is capturing"
_INVALIDATED = ("cudaErrorStreamCaptureInvalidated", 901)  # rt.pyx: "invalidated due to a previous error"
_UNMATCHED = ("cudaErrorStreamCaptureUnmatched", 903)      # rt.pyx: "The capture was not initiated in this stream"
_ILLEGAL = ("cudaErrorIllegalState", 401)


def _fail(call: str, error: tuple[str, int]) -> EngineError:
    """What ``_cuda._CudaPython._check`` raises for a call that returned ``error``."""
    return EngineError(f"CUDA call {call} failed: {error[0]} ({error[1]})")


def _round(nbytes: int) -> int:
    return max(ALIGN, -(-int(nbytes) // ALIGN) * ALIGN)


class FakeCuda(_cuda.Cuda):
    """Device memory as bytearrays; streams as queues that run at synchronize; strict stream capture."""

    binding = "fake"
    supports_graphs = True

    def __init__(self):
        self.mem: dict[int, bytearray] = {}
        self.sizes: dict[int, int] = {}          # ptr → bytes counted for it (rounded like an allocator)
        self.reserved: dict[int, int] = {}       # TensorRT-internal allocations: token → bytes
        self.next = 0x10000
        self.pinned: list[np.ndarray] = []
        self.queues: dict[int, list] = {}
        self.capture: dict | None = None         # {"stream", "ops", "invalid", "thread"}
        self.graphs: dict[int, list] = {}
        self.counts: Counter = Counter()
        self.launches = 0
        self.peak_bytes = 0
        self._tokens = 0

    # -- memory -------------------------------------------------------------------------------------

    @property
    def streams(self) -> set[int]:
        return set(self.queues)

    @property
    def device_bytes(self) -> int:
        """Device memory in use: cudaMalloc'd blocks plus TensorRT's own (engines, STATIC contexts)."""
        return sum(self.sizes.values()) + sum(self.reserved.values())

    def _account(self) -> None:
        self.peak_bytes = max(self.peak_bytes, self.device_bytes)

    def reserve(self, nbytes: int) -> int:
        """Count ``nbytes`` that TensorRT allocates itself; returns a token for :meth:`release`."""
        self._tokens += 1
        self.reserved[self._tokens] = _round(nbytes)
        self._account()
        return self._tokens

    def release(self, token: int) -> None:
        self.reserved.pop(token, None)

    def block(self, ptr: int, nbytes: int) -> memoryview:
        """``nbytes`` of device memory at ``ptr`` (inside one live allocation), or EngineError."""
        for base, buf in self.mem.items():
            if base <= ptr and ptr + nbytes <= base + len(buf):
                return memoryview(buf)[ptr - base:ptr - base + nbytes]
        raise EngineError(f"illegal address: {nbytes} bytes at 0x{ptr:x} are not inside a live allocation "
                          "(cudaErrorIllegalAddress, 700)")

    def _unsafe_call(self, call: str) -> None:
        # cudaMalloc/cudaFree are "potentially unsafe" during a capture: with the ThreadLocal mode the
        # capturing thread may not call them (rt.pyx:18438-18444, 18462-18466); the capture is invalidated.
        if self.capture is not None and self.capture["thread"] == threading.get_ident():
            self.capture["invalid"] = self.capture["invalid"] or f"{call} during capture"
            raise _fail(call, _UNSUPPORTED)

    def device_count(self):
        return 1, ""

    def device_info(self):
        return GPU

    def driver_version(self):
        return 12060

    def last_error(self):
        # cuda-python's cudaGetLastError reads cuda-python's own runtime state, never TensorRT's
        # libcudart: a failed capture shows only as EndCapture's (cudaErrorStreamCaptureInvalidated,
        # None) (cuda-bindings 13.0.3 runtime.pyx:17199).
        return ""

    def malloc(self, nbytes):
        self._unsafe_call("cudaMalloc")
        ptr = self.next
        self.next += _round(nbytes) + ALIGN  # a gap: an overrun lands outside every allocation
        self.mem[ptr] = bytearray(int(nbytes))
        self.sizes[ptr] = _round(nbytes)
        self._account()
        return ptr

    def free(self, ptr):
        self._unsafe_call("cudaFree")
        del self.mem[ptr]
        del self.sizes[ptr]

    def pinned_bytes(self, nbytes):
        arr = np.zeros(nbytes, np.uint8)
        self.pinned.append(arr)
        return arr

    def _is_pinned(self, array) -> bool:
        base = array
        while isinstance(getattr(base, "base", None), np.ndarray):
            base = base.base
        return any(a is base for a in self.pinned)

    def free_pinned(self, array):
        base = array
        while base.base is not None and isinstance(base.base, np.ndarray):
            base = base.base
        before = len(self.pinned)
        self.pinned = [a for a in self.pinned if a is not base]
        assert len(self.pinned) == before - 1, "free_pinned of memory that is not pinned"

    def stream_create(self):
        s = 7 + len(self.queues) + 100 * len(self.graphs)
        while s in self.queues:
            s += 1
        self.queues[s] = []
        return s

    def stream_destroy(self, stream):
        assert not self.queues.pop(stream), "stream destroyed with work still queued"

    # -- work on streams -------------------------------------------------------------------------------

    def enqueue(self, stream, op, nbytes=0, kind=""):
        """Queue ``op`` on ``stream``, or record it into the capture in progress on that stream."""
        assert stream in self.queues, f"unknown stream {stream}"
        cap = self.capture
        if cap is not None and stream == cap["stream"]:
            cap["ops"].append((op, nbytes, kind))  # rt.pyx:18275-18278: captured, not executed
            return
        if cap is not None:
            # Stricter than CUDA, which runs work on an unjoined stream eagerly and leaves it out of the
            # graph (Guide, "Cross-stream Dependencies and Events"): here it invalidates the capture.
            cap["invalid"] = cap["invalid"] or f"work on stream {stream} while stream {cap['stream']} captures"
        self.counts[kind] += nbytes
        self.queues[stream].append(op)

    def h2d(self, dst, src, stream):
        assert isinstance(src, np.ndarray) and src.flags.c_contiguous
        if self.capture is not None and not self._is_pinned(src):
            # A copy from pageable memory is synchronous for the host (CUDA Runtime API, "API
            # synchronization behavior"); synchronising during a capture is prohibited and invalidates it
            # (Guide, Prohibited and Unhandled Operations).
            self.capture["invalid"] = self.capture["invalid"] or "pageable copy during capture"
            raise _fail("cudaMemcpyAsync(H2D)", _UNSUPPORTED)
        target = self.block(dst, src.nbytes)

        def op():
            target[:] = src.tobytes()  # read when it runs, like a DMA from pinned memory
        self.enqueue(stream, op, src.nbytes, "h2d_bytes")

    def d2h(self, dst, src, stream):
        if self.capture is not None and not self._is_pinned(dst):
            self.capture["invalid"] = self.capture["invalid"] or "pageable copy during capture"
            raise _fail("cudaMemcpyAsync(D2H)", _UNSUPPORTED)
        source = self.block(src, dst.nbytes)

        def op():
            dst[...] = np.frombuffer(bytes(source), dst.dtype).reshape(dst.shape)
        self.enqueue(stream, op, dst.nbytes, "d2h_bytes")

    def d2d(self, dst, src, nbytes, stream):
        target, source = self.block(dst, nbytes), self.block(src, nbytes)

        def op():
            target[:] = bytes(source)
        self.enqueue(stream, op, nbytes, "d2d_bytes")

    def synchronize(self, stream):
        if self.capture is not None:
            # Guide, Prohibited and Unhandled Operations: synchronising or querying a capturing stream is
            # invalid (cudaErrorStreamCaptureUnsupported) and invalidates the capture sequence.
            self.capture["invalid"] = self.capture["invalid"] or "synchronize during capture"
            raise _fail("cudaStreamSynchronize", _UNSUPPORTED)
        self.counts["syncs"] += 1
        queue, self.queues[stream] = self.queues[stream], []
        for op in queue:
            op()

    # -- graphs -----------------------------------------------------------------------------------------

    def begin_capture(self, stream):
        if stream not in self.queues or self.capture is not None:
            # rt.pyx:18276-18279: capture "may only be initiated if the stream is not already in capture mode"
            raise _fail("cudaStreamBeginCapture", _ILLEGAL)
        self.capture = {"stream": stream, "ops": [], "invalid": "", "thread": threading.get_ident()}
        self.counts["captures"] += 1

    def end_capture(self, stream, instantiate=True):
        cap = self.capture
        if cap is None or cap["stream"] != stream:
            # rt.pyx:18276-18277 "Capture must be ended on the same stream in which it was initiated";
            # the capture on the other stream goes on.
            raise _fail("cudaStreamEndCapture", _UNMATCHED)
        self.capture = None
        if cap["invalid"]:
            # rt.pyx:18503-18505 + 18548-18549: an invalidated capture returns (cudaErrorStreamCaptureInvalidated,
            # None); nothing sticky is left for cudaGetLastError (sampleDevice.h:196-201).
            self.counts["invalidated_captures"] += 1
            self.last_invalidation = cap["invalid"]
            raise _fail("cudaStreamEndCapture", _INVALIDATED)
        if not instantiate:
            return None
        handle = 0x9000 + len(self.graphs) + self.counts["captures"]
        self.graphs[handle] = cap["ops"]
        return handle

    def launch_graph(self, graph_exec, stream):
        self.launches += 1
        self.counts["graph_launches"] += 1
        for op, nbytes, kind in self.graphs[graph_exec]:
            self.enqueue(stream, op, nbytes, kind)

    def destroy_graph(self, graph_exec):
        del self.graphs[graph_exec]


class _PybindEnum:
    """A pybind11 ``py::enum_`` value of a C++ ``enum class`` (not a Python ``enum.Enum``).

    pybind11.h 3.0.4:3073-3074: ``==`` is true only for the same enum type and value (strict: no int
    equality for a scoped enum); :3095 hashes by value; :3198-3200 ``.value``, ``__int__``, ``__index__``;
    :2964 ``str()`` is ``Type.NAME``. Each C++ value returned by value becomes a new Python object
    (pyCore.cpp:1192 binds ``getTensorDataType`` directly), so a getter's result is equal to
    ``trt.float32`` but never identical to it (pyFoundationalTypes.cpp:193 makes ``trt.float32`` its
    own instance).
    """

    _names: dict[int, str] = {}
    __slots__ = ("_value",)

    def __init__(self, value):
        if int(value) not in self._names:
            raise ValueError(f"{type(self).__name__}: no value {value}")
        self._value = int(value)

    value = property(lambda self: self._value)
    name = property(lambda self: self._names[self._value])

    def __int__(self):
        return self._value

    __index__ = __int__

    def __eq__(self, other):
        return type(other) is type(self) and other._value == self._value

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return self._value

    def __repr__(self):
        return f"<{type(self).__name__}.{self.name}: {self._value}>"

    def __str__(self):
        return f"{type(self).__name__}.{self.name}"


def _enum(name: str, values: dict[str, int]) -> type:
    cls = type(name, (_PybindEnum,), {"__slots__": (), "_names": {v: k for k, v in values.items()}})
    for key, value in values.items():  # one instance per class attribute (pybind11.h:3110-3111, 3220-3222)
        setattr(cls, key, cls(value))
    return cls


# RTBase.h v10.3.0:137-176; pyFoundationalTypes.cpp:179-190
DataType = _enum("DataType", {"FLOAT": 0, "HALF": 1, "INT8": 2, "INT32": 3, "BOOL": 4, "UINT8": 5, "FP8": 6,
                              "BF16": 7, "INT64": 8, "INT4": 9})
TensorIOMode = _enum("TensorIOMode", {"NONE": 0, "INPUT": 1, "OUTPUT": 2})  # RTBase.h:1102-1108; pyCore.cpp:1149
# RT.h:2523-2525; pyCore.cpp:1102-1108 (py::arithmetic, still strict ==: an enum class)
ExecutionContextAllocationStrategy = _enum("ExecutionContextAllocationStrategy",
                                           {"STATIC": 0, "ON_PROFILE_CHANGE": 1, "USER_MANAGED": 2})
# pyCore.cpp:687-694 (ILogger.Severity, export_values: also ILogger.ERROR …)
Severity = _enum("Severity", {"INTERNAL_ERROR": 0, "ERROR": 1, "WARNING": 2, "INFO": 3, "VERBOSE": 4})


class Dims:
    """Like ``tensorrt.Dims``: a sequence (len, indexing), not a tuple (never equal to one)."""

    def __init__(self, shape):
        self._d = [int(x) for x in shape]

    def __len__(self):
        return len(self._d)

    def __getitem__(self, i):
        return self._d[i]

    def __eq__(self, other):
        return isinstance(other, Dims) and other._d == self._d

    __hash__ = None

    def __repr__(self):
        return f"Dims({self._d})"


_ORT_TYPES = {"tensor(float)": 0, "tensor(float16)": 1, "tensor(uint8)": 5, "tensor(int32)": 3, "tensor(int64)": 8}
_NP = {0: np.float32, 1: np.float16, 5: np.uint8, 3: np.int32, 8: np.int64}
_ONNX_ITEMSIZE = {1: 4, 10: 2, 2: 1, 3: 1, 6: 4, 7: 8, 9: 1, 11: 8}  # onnx TensorProto elem type → bytes


def activation_bytes(data: bytes) -> int:
    """The activation memory the fake engine reports: every intermediate tensor of the graph, 256-aligned.

    Real TensorRT reuses activation memory between layers, so its ``device_memory_size_v2`` is
    smaller; this upper bound keeps the stand-in's figure deterministic and model-dependent.
    """
    import onnx

    model = onnx.shape_inference.infer_shapes(onnx.load_from_string(data))
    total = 0
    for info in model.graph.value_info:
        t = info.type.tensor_type
        dims = [d.dim_value for d in t.shape.dim]
        if dims and all(d > 0 for d in dims):
            total += _round(int(np.prod(dims)) * _ONNX_ITEMSIZE.get(t.elem_type, 4))
    return total


def fake_tensorrt(cuda: FakeCuda, dtype_override: dict | None = None) -> types.ModuleType:
    """A ``tensorrt`` module whose engines are ONNX graphs run by ONNX Runtime on ``cuda``'s memory."""
    import onnxruntime as ort

    trt = types.ModuleType("tensorrt")
    trt.__version__ = VERSION
    trt.DataType, trt.TensorIOMode = DataType, TensorIOMode
    trt.ExecutionContextAllocationStrategy = ExecutionContextAllocationStrategy
    # pyFoundationalTypes.cpp:193-202: module attributes are their own instances of the enum values
    trt.float32, trt.float16, trt.int8, trt.int32 = DataType(0), DataType(1), DataType(2), DataType(3)
    trt.bool, trt.uint8, trt.fp8, trt.bfloat16 = DataType(4), DataType(5), DataType(6), DataType(7)
    trt.int64, trt.int4 = DataType(8), DataType(9)
    trt.runtimes = []

    def nptype(dt):  # bindings_wheel/tensorrt/__init__.py:151-173: a dict lookup, TypeError for bf16/fp8
        mapping = {trt.float32: np.float32, trt.float16: np.float16, trt.int8: np.int8, trt.int32: np.int32,
                   trt.int64: np.int64, trt.bool: np.bool_, trt.uint8: np.uint8}
        if dt in mapping:
            return mapping[dt]
        raise TypeError("Could not resolve TensorRT datatype to an equivalent numpy datatype.")

    trt.nptype = nptype

    class ILogger:
        Severity = globals()["Severity"]
        INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = (Severity(i) for i in range(5))

        def __init__(self):
            pass

    class Logger(ILogger):
        def __init__(self, min_severity=None):
            super().__init__()

        def log(self, severity, msg):
            pass

    def log(logger, severity: int, msg: str) -> None:
        logger.log(Severity(severity), msg)  # a fresh enum object per call, as pybind11 passes it

    class Context:
        def __init__(self, engine, strategy):
            self.engine, self.addr, self.strategy = engine, {}, strategy
            self.memory: tuple[int, int] | None = None
            self.initialised = False
            if strategy == ExecutionContextAllocationStrategy.STATIC:
                # RT.h:2612-2615: STATIC "will pre-allocate a block of device memory" for the context
                token = cuda.reserve(engine.device_memory_size_v2)
                weakref.finalize(self, cuda.release, token)

        def set_tensor_address(self, name, ptr):
            # pyCore.cpp:116-119 returns setTensorAddress's bool: false for an unknown name (RT.h:3986)
            # or an address without 256-byte alignment (RT.h:4003, 4037)
            if name not in self.engine.tensors or int(ptr) % ALIGN:
                return False
            self.addr[name] = int(ptr)
            return True

        def set_device_memory(self, memory, size):
            # pyCore.cpp:339-342 (void); pyCoreDoc.h:421-428: "256-byte aligned device memory", size "at least
            # as large as CudaEngine.get_device_memory_size_v2"; a violation is logged, the memory not taken.
            if int(memory) % ALIGN or int(size) < self.engine.device_memory_size_v2:
                log(self.engine.runtime.logger, 1, f"IExecutionContext::setDeviceMemoryV2: invalid memory "
                    f"0x{int(memory):x} of {size} bytes (need {self.engine.device_memory_size_v2}, 256-aligned)")
                return
            self.memory = (int(memory), int(size))

        def _execute(self):
            e = self.engine
            feeds = {}
            for i in e.inputs:
                dt = _NP[_ORT_TYPES[i.type]]
                n = int(np.prod(i.shape)) * np.dtype(dt).itemsize
                feeds[i.name] = np.frombuffer(bytes(cuda.block(self.addr[i.name], n)), dt).reshape(i.shape)
            if self.memory is not None:  # the scratch must still be allocated when the kernels run
                cuda.block(self.memory[0], self.engine.device_memory_size_v2)
            for out, value in zip(e.outputs, e.session.run([o.name for o in e.outputs], feeds), strict=True):
                data = np.ascontiguousarray(value).tobytes()
                cuda.block(self.addr[out.name], len(data))[:] = data

        def execute_async_v3(self, stream):
            # pyCore.cpp:111-114: enqueueV3's bool; RT.h:3988-3989 every I/O tensor needs an address first;
            # RT.h:2525 + pyCoreDoc.h:731-733 a USER_MANAGED context's memory "must be supplied by the
            # application". TensorRT reports both through the logger and returns False (never raises).
            missing = [n for n in self.engine.tensors if n not in self.addr]
            if missing:
                log(self.engine.runtime.logger, 1, f"IExecutionContext::enqueueV3: Error Code 3: API Usage Error "
                    f"(Parameter check failed, condition: address of tensors {missing} set)")
                return False
            if self.strategy == ExecutionContextAllocationStrategy.USER_MANAGED and self.memory is None \
                    and self.engine.device_memory_size_v2 > 0:
                log(self.engine.runtime.logger, 1, "IExecutionContext::enqueueV3: Error Code 3: API Usage Error "
                    "(context created with USER_MANAGED has no device memory: call set_device_memory first)")
                return False
            if not self.initialised:
                # A context's first enqueue makes initialisation calls that must not be captured
                # (sampleInference.cpp:960-962); inside a capture they invalidate it and enqueueV3 returns
                # False ("the enqueue call may return false if the current CUDA graph capture fails", :971-972).
                if cuda.capture is not None and cuda.capture["thread"] == threading.get_ident():
                    cuda.capture["invalid"] = cuda.capture["invalid"] or "a context's first enqueue during capture"
                    log(self.engine.runtime.logger, 1, "IExecutionContext::enqueueV3: initialisation during capture")
                    return False
                self.initialised = True
            cuda.counts["engine_runs"] += 1
            cuda.enqueue(stream, self._execute, 0, "enqueues")
            return True

    class Engine:
        def __init__(self, data, runtime):
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1  # like the ONNX Runtime side of the tests: same reductions
            self.session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
            self.runtime = runtime
            self.inputs, self.outputs = self.session.get_inputs(), self.session.get_outputs()
            self.tensors = {t.name: (t, 1) for t in self.inputs}
            self.tensors |= {t.name: (t, 2) for t in self.outputs}
            # TensorRT's own order, not the stage table's: outputs first, each group reversed.
            self.names = [t.name for t in self.outputs][::-1] + [t.name for t in self.inputs][::-1]
            self.device_memory_size_v2 = activation_bytes(data)  # RT.h:2725 (pyCore.cpp:1181)
            token = cuda.reserve(len(data))  # the deserialised weights live in device memory
            weakref.finalize(self, cuda.release, token)

        num_io_tensors = property(lambda self: len(self.names))

        def get_tensor_name(self, i):
            return self.names[i]

        def get_tensor_mode(self, name):  # RT.h:2669: kNONE for an unknown name
            return TensorIOMode(self.tensors[name][1] if name in self.tensors else 0)

        def get_tensor_shape(self, name):
            return Dims(self.tensors[name][0].shape)

        def get_tensor_dtype(self, name):  # pyCore.cpp:1192: a fresh enum object on every call
            if dtype_override and name in dtype_override:
                return DataType(int(dtype_override[name]))
            return DataType(_ORT_TYPES[self.tensors[name][0].type])

        def create_execution_context(self, strategy=ExecutionContextAllocationStrategy.STATIC):
            # pyCore.cpp:1165-1166: strategy defaults to STATIC; pybind11 refuses another type with TypeError
            if not isinstance(strategy, ExecutionContextAllocationStrategy):
                raise TypeError("create_execution_context(): incompatible function arguments")
            return Context(self, strategy)

    class Runtime:
        fail = False  # a test sets it: createInferRuntime returns nullptr (e.g. TensorRT's CUDA cannot start)

        def __init__(self, logger):
            if not isinstance(logger, ILogger):
                raise TypeError("__init__(): incompatible constructor arguments")
            if Runtime.fail:
                log(logger, 1, "CUDA initialization failure with error: 35")
                # pyCore.cpp:1538 py::init(&createInferRuntime) + pybind11 detail/init.h:42
                raise TypeError("pybind11::init(): factory function returned nullptr")
            self.logger = logger
            trt.runtimes.append(self)

        def deserialize_cuda_engine(self, data):
            try:  # pyCore.cpp:1539-1540 (deserialize returns the engine or None)
                return Engine(bytes(data), self)
            except Exception:
                log(self.logger, 1, "IRuntime::deserializeCudaEngine: Error Code 1: Serialization")
                return None

    trt.ILogger, trt.Logger, trt.Runtime = ILogger, Logger, Runtime
    return trt


def install(monkeypatch, cuda: FakeCuda | None = None, trt=None):
    """Put the stand-ins in place of the CUDA binding and ``tensorrt``; returns the FakeCuda."""
    import sys

    from jamsdk.runtime.backends import tensorrt as trt_backend

    cuda = cuda or FakeCuda()
    monkeypatch.setattr(_cuda, "_probe", lambda: (GPU, ""))
    monkeypatch.setattr(_cuda, "cuda", lambda: cuda)
    monkeypatch.setitem(sys.modules, "tensorrt", trt or fake_tensorrt(cuda))
    monkeypatch.setattr(trt_backend._Logger, "instance", None)  # one logger per (fake) tensorrt module
    monkeypatch.setattr(trt_backend, "tensorrt_cuda_major", lambda: 12)
    return cuda


def make_engine_dir(model_dir, out, precision: str = "fp32", helpers: bool = True, batched: bool = False):
    """A copy of ``model_dir`` whose "engines" are its ONNX graphs (for the fake TensorRT).

    ``helpers``: give the helper graphs engines too (False: a folder whose engines were built before
    helper graphs existed). ``batched``: engines for the batched graphs too (``export --batch-sizes``).
    """
    shutil.copytree(model_dir, out)
    data = json.loads((out / "manifest.json").read_text())
    refs = {}
    for name in data["stages"]:
        shutil.copy(out / f"{name}.onnx", out / f"{name}.engine")
        refs[name] = {"file": f"{name}.engine", "sha256": sha256_file(out / f"{name}.engine")}
    engines = {"tensorrt_version": VERSION, "gpu_name": GPU.name, "compute_capability": GPU.compute_capability,
               "precision": precision, "typing": "strong", "stages": refs}
    if helpers and data.get("helpers"):
        engines["helpers"] = {}
        for name, entry in data["helpers"].items():
            shutil.copy(out / entry["file"], out / f"{name}.engine")
            engines["helpers"][name] = {"file": f"{name}.engine", "sha256": sha256_file(out / f"{name}.engine")}
    if batched and data.get("batched"):
        engines["batched"] = {}
        for name, sizes in data["batched"]["stages"].items():
            for b in sizes:
                shutil.copy(out / f"{name}.b{b}.onnx", out / f"{name}.b{b}.engine")
                engines["batched"].setdefault(name, {})[b] = {
                    "file": f"{name}.b{b}.engine", "sha256": sha256_file(out / f"{name}.b{b}.engine")}
    data["engines"] = engines
    (out / "manifest.json").write_text(json.dumps(data))
    return out
