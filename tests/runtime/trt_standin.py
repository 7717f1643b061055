"""A stand-in for TensorRT's Python API that keeps its contracts (engines are ONNX graphs run by ONNX Runtime).

Every imitated behaviour names, in a comment on its line, the real source it copies. TensorRT sources
(``NVIDIA/TensorRT`` at the tag named; v10.3.0, the JetPack 6.1/6.2 version, unless noted; the same
lines hold in 10.16 and 11.1 unless noted): ``include/NvInferRuntime.h`` (``RT.h``),
``include/NvInferRuntimeBase.h`` (``RTBase.h``), ``include/NvInfer.h``, ``python/src/infer/pyCore.cpp``,
``pyFoundationalTypes.cpp``, ``python/docstrings/infer/pyCoreDoc.h``, ``samples/common/sampleDevice.h``
and ``sampleInference.cpp``; ``onnx/onnx-tensorrt`` ``ModelImporter.cpp`` (branch ``release/8.6-GA``);
pybind11 3.0.4 ``include/pybind11/pybind11.h`` and ``detail/init.h``.

:func:`fake_tensorrt` takes the API surface of one TensorRT version (``api``):

* ``"10.3"`` (default) and newer: ``ExecutionContextAllocationStrategy``, ``create_execution_context(strategy)``,
  ``set_device_memory(ptr, size)`` and ``device_memory_size_v2`` (pyCore v10.1.0:1042, :1181);
* ``"10.0"``: the strategy enum and ``create_execution_context(strategy)``, but only the one-argument
  ``device_memory`` setter and ``device_memory_size`` (pyCore v10.0.1:1036, :1095-1101, :1158-1167);
* ``"8.6"`` (and ``"8.5"``, refused by jamsdk): no strategy enum, ``create_execution_context()`` without
  arguments, ``create_execution_context_without_device_memory()``, the ``device_memory`` setter and
  ``device_memory_size`` (pyCore v8.6.1:835, :920-928); no bf16/int64/int4 data types
  (pyFoundationalTypes.cpp v8.6.1:175-190).

A method a version lacks is absent (``AttributeError``), as on a pybind11 class without it.
:func:`fake_builder` adds a builder whose "plans" are the ONNX files it was given.

Importable as ``trt_standin`` from the runtime tests; ``cuda_standin`` re-exports what tests use.
"""

from __future__ import annotations

import types
import weakref
from pathlib import Path
from typing import Any

import numpy as np

ALIGN = 256  # RT.h:4003 "The pointer must have at least 256-byte alignment"; cudaMalloc gives ≥ 256
VERSIONS = {"10.3": "10.3.0.30", "10.0": "10.0.1.6", "8.6": "8.6.1.6", "8.5": "8.5.2.2"}
VERSION = VERSIONS["10.3"]


def _round(nbytes: int) -> int:
    return max(ALIGN, -(-int(nbytes) // ALIGN) * ALIGN)


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
# NvInfer.h v10.3.0 NetworkDefinitionCreationFlag: kEXPLICIT_BATCH = 0 (deprecated), kSTRONGLY_TYPED = 1;
# v8.6.1:9933-9937: kEXPLICIT_BATCH = 0, kEXPLICIT_PRECISION = 1 (no strong typing before 9.x)
NetworkFlag10 = _enum("NetworkDefinitionCreationFlag", {"EXPLICIT_BATCH": 0, "STRONGLY_TYPED": 1})
NetworkFlag8 = _enum("NetworkDefinitionCreationFlag", {"EXPLICIT_BATCH": 0, "EXPLICIT_PRECISION": 1})


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


def _nbytes(tensor: Any) -> int:
    dt = _NP[_ORT_TYPES[tensor.type]]
    return int(np.prod(tensor.shape)) * np.dtype(dt).itemsize


def fake_tensorrt(cuda: Any, dtype_override: dict | None = None, api: str = "10.3") -> types.ModuleType:
    """A ``tensorrt`` of version ``api`` whose engines are ONNX graphs run by ONNX Runtime on ``cuda``'s memory."""
    import onnxruntime as ort

    if api not in VERSIONS:
        raise ValueError(f"api: one of {sorted(VERSIONS)}")
    v10 = api.startswith("10.")  # the allocation strategy enum (pyCore v10.0.1:1095-1101)
    v2 = api == "10.3"  # set_device_memory(ptr, size), device_memory_size_v2 (pyCore v10.1.0:1042, :1181)
    trt = types.ModuleType("tensorrt")
    trt.__version__ = VERSIONS[api]
    trt.DataType, trt.TensorIOMode = DataType, TensorIOMode
    if v10:
        trt.ExecutionContextAllocationStrategy = ExecutionContextAllocationStrategy
    # pyFoundationalTypes.cpp:193-202: module attributes are their own instances of the enum values
    trt.float32, trt.float16, trt.int8, trt.int32 = DataType(0), DataType(1), DataType(2), DataType(3)
    trt.bool, trt.uint8, trt.fp8 = DataType(4), DataType(5), DataType(6)
    if v10:  # pyFoundationalTypes.cpp v8.6.1:183-190 has none of these
        trt.bfloat16, trt.int64, trt.int4 = DataType(7), DataType(8), DataType(9)
    trt.runtimes = []

    def nptype(dt):  # bindings_wheel/tensorrt/__init__.py:151-173: a dict lookup, TypeError for bf16/fp8
        mapping = {trt.float32: np.float32, trt.float16: np.float16, trt.int8: np.int8, trt.int32: np.int32,
                   trt.bool: np.bool_, trt.uint8: np.uint8}
        if v10:
            mapping[trt.int64] = np.int64
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
        def __init__(self, engine, user_memory: bool):
            self.engine, self.addr, self.refs, self.user_memory = engine, {}, {}, user_memory
            self.memory: tuple[int, int] | None = None
            self.memory_ref = None
            self.initialised = False
            if not user_memory:
                # RT.h:2612-2615: STATIC "will pre-allocate a block of device memory" for the context
                token = cuda.reserve(engine.activation)
                weakref.finalize(self, cuda.release, token)

        def set_tensor_address(self, name, ptr):
            # pyCore.cpp:116-119 returns setTensorAddress's bool: false for an unknown name (RT.h:3986)
            # or an address without 256-byte alignment (RT.h:4003, 4037)
            if name not in self.engine.tensors or int(ptr) % ALIGN:
                return False
            self.addr[name] = int(ptr)
            # The address is only stored; the memory is read when the engine runs (resolved then: a
            # buffer freed since, even if its range was handed out again, is a use after free).
            self.refs[name] = cuda.try_ref(int(ptr), _nbytes(self.engine.tensors[name][0]))
            return True

        def _take_memory(self, memory, size, what):
            # pyCoreDoc.h:421-428 (v2): "256-byte aligned device memory", size "at least as large as
            # CudaEngine.get_device_memory_size_v2"; RT.h v8.6.1:2692-2699 (one argument): aligned, "at least
            # that returned by getDeviceMemorySize()". A violation is logged, the memory not taken.
            if int(memory) % ALIGN or int(size) < self.engine.activation:
                log(self.engine.runtime.logger, 1, f"IExecutionContext::{what}: invalid memory 0x{int(memory):x} "
                    f"of {size} bytes (need {self.engine.activation}, 256-aligned)")
                return
            self.memory = (int(memory), int(size))
            self.memory_ref = cuda.try_ref(int(memory), self.engine.activation) if self.engine.activation else None

        if v2:
            def set_device_memory(self, memory, size):  # pyCore.cpp v10.1.0:339-342, :1042 (void)
                self._take_memory(memory, size, "setDeviceMemoryV2")

        def _set_memory_v1(self, memory):
            # pyCore.cpp v8.6.1:360-362, :835 (v10.0.1:334-336, :1036): a write-only property, one argument;
            # the size is the engine's (RT.h v10.0.1:3414-3416 "large enough … getDeviceMemorySize()")
            self._take_memory(memory, self.engine.activation, "setDeviceMemory")

        device_memory = property(None, _set_memory_v1)

        def _execute(self):
            e = self.engine
            feeds = {}
            for i in e.inputs:
                dt = _NP[_ORT_TYPES[i.type]]
                feeds[i.name] = np.frombuffer(bytes(cuda.view(self.refs[i.name], f"{e.name} input {i.name}")),
                                              dt).reshape(i.shape)
            if self.memory_ref is not None:  # the scratch must still be allocated when the kernels run
                cuda.view(self.memory_ref, f"{e.name} activation memory")
            for out, value in zip(e.outputs, e.session.run([o.name for o in e.outputs], feeds), strict=True):
                data = np.ascontiguousarray(value).tobytes()
                cuda.view(self.refs[out.name], f"{e.name} output {out.name}")[:] = data

        def execute_async_v3(self, stream):
            # pyCore.cpp:111-114: enqueueV3's bool; RT.h:3988-3989 every I/O tensor needs an address first;
            # RT.h:2525 + pyCoreDoc.h:731-733 a USER_MANAGED context's memory "must be supplied by the
            # application". TensorRT reports both through the logger and returns False (never raises).
            missing = [n for n in self.engine.tensors if n not in self.addr]
            if missing:
                log(self.engine.runtime.logger, 1, f"IExecutionContext::enqueueV3: Error Code 3: API Usage Error "
                    f"(Parameter check failed, condition: address of tensors {missing} set)")
                return False
            if self.user_memory and self.memory is None and self.engine.activation > 0:
                log(self.engine.runtime.logger, 1, "IExecutionContext::enqueueV3: Error Code 3: API Usage Error "
                    "(a context created USER_MANAGED or without device memory has none: set it first)")
                return False
            if not self.initialised:
                # A context's first enqueue makes initialisation calls that must not be captured
                # (sampleInference.cpp:960-962); inside a capture they invalidate it and enqueueV3 returns
                # False ("the enqueue call may return false if the current CUDA graph capture fails", :971-972).
                if cuda.capturing_thread() is not None:
                    cuda.invalidate_thread_capture("a context's first enqueue during capture")
                    log(self.engine.runtime.logger, 1, "IExecutionContext::enqueueV3: initialisation during capture")
                    return False
                self.initialised = True
            cuda.counts["engine_runs"] += 1
            # RT.h:3675-3683: the context's memory is in use "until network execution is complete": the
            # CUDA stand-in fails when another stream's queued work still uses the same scratch.
            scratch = self.memory[0] if (self.memory is not None and self.engine.activation) else None
            cuda.enqueue(stream, self._execute, 0, "enqueues", scratch=scratch)
            return True

    class Engine:
        def __init__(self, data, runtime):
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1  # like the ONNX Runtime side of the tests: same reductions
            self.session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
            self.runtime = runtime
            self.name = "engine"
            self.inputs, self.outputs = self.session.get_inputs(), self.session.get_outputs()
            self.tensors = {t.name: (t, 1) for t in self.inputs}
            self.tensors |= {t.name: (t, 2) for t in self.outputs}
            # TensorRT's own order, not the stage table's: outputs first, each group reversed.
            self.names = [t.name for t in self.outputs][::-1] + [t.name for t in self.inputs][::-1]
            self.activation = activation_bytes(data)
            token = cuda.reserve(len(data))  # the deserialised weights live in device memory
            weakref.finalize(self, cuda.release, token)

        num_io_tensors = property(lambda self: len(self.names))
        # pyCore v8.6.1:928, v10.0.1:1167 (deprecated from 10.1, still there in 10.3: :1178-1180)
        device_memory_size = property(lambda self: self.activation)
        if v2:
            device_memory_size_v2 = property(lambda self: self.activation)  # RT.h:2725 (pyCore.cpp v10.1.0:1181)

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

        if v10:
            def create_execution_context(self, strategy=ExecutionContextAllocationStrategy.STATIC):
                # pyCore.cpp v10.0.1:1158-1159: strategy defaults to STATIC; pybind11 refuses another type
                # with TypeError
                if not isinstance(strategy, ExecutionContextAllocationStrategy):
                    raise TypeError("create_execution_context(): incompatible function arguments")
                return Context(self, strategy == ExecutionContextAllocationStrategy.USER_MANAGED)
        else:
            def create_execution_context(self):
                # pyCore.cpp v8.6.1:920-921: &ICudaEngine::createExecutionContext, no arguments (an
                # argument is a pybind11 TypeError); its memory is allocated with the context
                return Context(self, False)

        def create_execution_context_without_device_memory(self):
            # pyCore.cpp v8.6.1:926-927 (v10.0.1:1161-1163: deprecated for create_execution_context(strategy));
            # RT.h v8.6.1:1844-1848 "The memory for execution … must be supplied by the application"
            return Context(self, True)

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
    trt.api = api
    return trt


class FakeBuilder:
    """Records what the builder was asked; its "plan" is the parsed ONNX file (run by the fake runtime)."""

    def __init__(self, trt):
        self.trt = trt

    def create_network(self, flags):
        return types.SimpleNamespace(flags=int(flags), path=None, num_layers=0)

    def create_builder_config(self):
        trt = self.trt

        class Config:
            def __init__(self):
                self.flags, self.cleared, self.progress_monitor, self.cache = set(), set(), None, b""

            def set_memory_pool_limit(self, pool, size):
                self.workspace = size

            def set_flag(self, flag):
                self.flags.add(flag)

            def clear_flag(self, flag):
                self.cleared.add(flag)

            def create_timing_cache(self, blob):
                if bytes(blob).startswith(b"corrupt"):
                    return None  # what TensorRT does with a blob it cannot read
                return types.SimpleNamespace(blob=bytes(blob), serialize=lambda: bytes(blob) + b"+")

            def set_timing_cache(self, cache, ignore_mismatch):
                self.cache = cache
                return True

            def get_timing_cache(self):
                return self.cache

        trt.last_config = Config()
        return trt.last_config

    def build_serialized_network(self, network, config):
        monitor = config.progress_monitor
        if monitor is not None:
            monitor.phase_start("Building", None, 2)
            monitor.step_complete("Building", 0)
            monitor.phase_finish("Building")
        self.trt.builds.append((network.path.name, network.flags, set(config.flags), set(config.cleared)))
        return network.path.read_bytes()


def fake_builder(trt: types.ModuleType) -> types.ModuleType:
    """Give a :func:`fake_tensorrt` module a builder and ONNX parser of its version; builds land in ``trt.builds``.

    ``trt.builds``: ``(graph file name, network flags, builder flags set, builder flags cleared)`` per build.
    Builder flags are strings here (only membership is checked).
    """
    trt.builds = []
    trt.builder_loggers = []
    trt.Builder = lambda logger: (trt.builder_loggers.append(logger), FakeBuilder(trt))[1]
    trt.NetworkDefinitionCreationFlag = NetworkFlag10 if trt.api.startswith("10.") else NetworkFlag8
    trt.BuilderFlag = types.SimpleNamespace(FP16="FP16", INT8="INT8", TF32="TF32", OBEY_PRECISION_CONSTRAINTS="OBEY")
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE="WORKSPACE")
    trt.LayerType = types.SimpleNamespace(CONVOLUTION="CONVOLUTION", POOLING="POOLING", ACTIVATION="ACTIVATION")
    explicit_only = not trt.api.startswith("10.")

    class IProgressMonitor:  # pyCore.cpp v9.3.0:917 (absent in 8.6)
        def __init__(self):
            pass

    class OnnxParser:
        def __init__(self, network, logger):
            self.network, self.errors = network, []

        num_errors = property(lambda self: len(self.errors))

        def get_error(self, i):
            return self.errors[i]

        def parse_from_file(self, path):
            # ModelImporter.cpp (onnx-tensorrt release/8.6-GA):547: an implicit-batch network is refused
            if explicit_only and not self.network.flags & 1 << int(NetworkFlag8.EXPLICIT_BATCH):
                self.errors.append("This version of the ONNX parser only supports TensorRT INetworkDefinitions "
                                   "with an explicit batch dimension.")
                return False
            self.network.path = Path(path)
            return True

    if trt.api.startswith("10."):
        trt.IProgressMonitor = IProgressMonitor
    trt.OnnxParser = OnnxParser
    return trt


__all__ = ["ALIGN", "DataType", "Dims", "ExecutionContextAllocationStrategy", "Severity", "TensorIOMode", "VERSION",
           "VERSIONS", "activation_bytes", "fake_builder", "fake_tensorrt"]
