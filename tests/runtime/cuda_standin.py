"""Stand-ins for CUDA and TensorRT that behave like them where a test could otherwise be fooled.

* :class:`FakeCuda`: device memory is host bytearrays behind fake pointers. Copies and engine
  runs enqueued on a stream take effect only when the stream is synchronised (or a graph launched
  on it is, which replays what was captured), so a missing or misplaced sync gives stale results
  (an async H2D also reads its pinned source only then, like the DMA engine). It counts bytes per
  direction, syncs and graph launches (:attr:`FakeCuda.counts`).
* :func:`fake_tensorrt`: an engine is the stage's ONNX graph run by ONNX Runtime on that memory;
  tensors are listed in an order other than the stage table's, shapes are ``Dims``-like objects
  (not tuples), dtypes and modes are enums, so binding by index or a wrong type map fails.

Importable as ``cuda_standin`` from the runtime tests (like ``rt_samples``).
"""

from __future__ import annotations

import enum
import json
import shutil
import types
from collections import Counter

import numpy as np

from jamsdk.manifest import sha256_file
from jamsdk.runtime import _cuda

GPU = _cuda.GpuInfo("Fake GPU", "8.7")
VERSION = "10.3.0.30"


class FakeCuda(_cuda.Cuda):
    """Device memory as bytearrays; streams as queues that run at synchronize; graphs as recorded ops."""

    binding = "fake"
    supports_graphs = True

    def __init__(self):
        self.mem: dict[int, bytearray] = {}
        self.next = 0x1000
        self.pinned: list[np.ndarray] = []
        self.queues: dict[int, list] = {}
        self.capturing: list | None = None
        self.graphs: dict[int, list] = {}
        self.counts: Counter = Counter()
        self.launches = 0
        self.fail_capture = False
        self.sticky = ""

    @property
    def streams(self) -> set[int]:
        return set(self.queues)

    def device_count(self):
        return 1, ""

    def device_info(self):
        return GPU

    def driver_version(self):
        return 12060

    def last_error(self):
        err, self.sticky = self.sticky, ""
        return err

    def malloc(self, nbytes):
        ptr, self.next = self.next, self.next + nbytes + 256
        self.mem[ptr] = bytearray(nbytes)
        return ptr

    def free(self, ptr):
        del self.mem[ptr]

    def pinned_bytes(self, nbytes):
        arr = np.zeros(nbytes, np.uint8)
        self.pinned.append(arr)
        return arr

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

    def enqueue(self, stream, op, nbytes=0, kind=""):
        """Queue ``op`` on ``stream`` (or record it into the capture in progress)."""
        assert stream in self.queues, f"unknown stream {stream}"
        if self.capturing is not None:
            self.capturing.append((op, nbytes, kind))
            return
        self.counts[kind] += nbytes
        self.queues[stream].append(op)

    def h2d(self, dst, src, stream):
        assert isinstance(src, np.ndarray) and src.flags.c_contiguous
        assert len(self.mem[dst]) >= src.nbytes

        def op():
            self.mem[dst][:src.nbytes] = src.tobytes()  # read when it runs, like a DMA from pinned memory
        self.enqueue(stream, op, src.nbytes, "h2d_bytes")

    def d2h(self, dst, src, stream):
        def op():
            dst[...] = np.frombuffer(bytes(self.mem[src][:dst.nbytes]), dst.dtype).reshape(dst.shape)
        self.enqueue(stream, op, dst.nbytes, "d2h_bytes")

    def synchronize(self, stream):
        assert self.capturing is None, "synchronize inside a capture"
        self.counts["syncs"] += 1
        queue, self.queues[stream] = self.queues[stream], []
        for op in queue:
            op()

    def begin_capture(self, stream):
        assert self.capturing is None and stream in self.queues
        self.capturing = []
        self.counts["captures"] += 1

    def end_capture(self, stream, instantiate=True):
        ops, self.capturing = self.capturing, None
        if not instantiate:
            return None
        if self.fail_capture:
            self.sticky = "cudaErrorStreamCaptureInvalidated (901)"
        handle = 0x9000 + len(self.graphs) + self.counts["captures"]
        self.graphs[handle] = ops
        return handle

    def launch_graph(self, graph_exec, stream):
        self.launches += 1
        self.counts["graph_launches"] += 1
        for op, nbytes, kind in self.graphs[graph_exec]:
            self.enqueue(stream, op, nbytes, kind)

    def destroy_graph(self, graph_exec):
        del self.graphs[graph_exec]


class DataType(enum.Enum):
    """Like ``tensorrt.DataType``: enum members, not numpy types."""

    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3
    BOOL = 4
    UINT8 = 5
    FP8 = 6
    BF16 = 7
    INT64 = 8


class TensorIOMode(enum.Enum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


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


_ORT_TYPES = {"tensor(float)": DataType.FLOAT, "tensor(float16)": DataType.HALF, "tensor(uint8)": DataType.UINT8,
              "tensor(int32)": DataType.INT32, "tensor(int64)": DataType.INT64}
_NP = {DataType.FLOAT: np.float32, DataType.HALF: np.float16, DataType.UINT8: np.uint8, DataType.INT32: np.int32,
       DataType.INT64: np.int64}


def fake_tensorrt(cuda: FakeCuda, dtype_override: dict | None = None) -> types.ModuleType:
    """A ``tensorrt`` module whose engines are ONNX graphs run by ONNX Runtime on ``cuda``'s memory."""
    import onnxruntime as ort

    trt = types.ModuleType("tensorrt")
    trt.__version__ = VERSION
    trt.DataType, trt.TensorIOMode = DataType, TensorIOMode
    trt.float32, trt.float16, trt.int8, trt.int32 = DataType.FLOAT, DataType.HALF, DataType.INT8, DataType.INT32
    trt.bool, trt.uint8, trt.int64, trt.bfloat16 = DataType.BOOL, DataType.UINT8, DataType.INT64, DataType.BF16
    trt.runtimes = []

    def nptype(dt):  # the real one raises TypeError for bf16/fp8
        if dt not in _NP:
            raise TypeError("Could not resolve TensorRT datatype to an equivalent numpy datatype.")
        return _NP[dt]

    trt.nptype = nptype

    class ILogger:
        INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)

        def __init__(self):
            pass

    class Logger(ILogger):
        def __init__(self, severity=2):
            super().__init__()

    class Context:
        def __init__(self, engine):
            self.engine, self.addr = engine, {}

        def set_tensor_address(self, name, ptr):
            if name not in self.engine.tensors:
                return False
            self.addr[name] = int(ptr)
            return True

        def _execute(self):
            e = self.engine
            feeds = {}
            for i in e.inputs:
                dt = _NP[_ORT_TYPES[i.type]]
                n = int(np.prod(i.shape)) * np.dtype(dt).itemsize
                feeds[i.name] = np.frombuffer(bytes(cuda.mem[self.addr[i.name]][:n]), dt).reshape(i.shape)
            for out, value in zip(e.outputs, e.session.run([o.name for o in e.outputs], feeds), strict=True):
                data = np.ascontiguousarray(value).tobytes()
                cuda.mem[self.addr[out.name]][:len(data)] = data

        def execute_async_v3(self, stream):
            missing = [n for n in self.engine.tensors if n not in self.addr]
            if missing:
                raise RuntimeError(f"tensor addresses not set: {missing}")
            cuda.counts["engine_runs"] += 1
            cuda.enqueue(stream, self._execute, 0, "enqueues")
            return True

    class Engine:
        def __init__(self, data):
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1  # like the ONNX Runtime side of the tests: same reductions
            self.session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
            self.inputs, self.outputs = self.session.get_inputs(), self.session.get_outputs()
            self.tensors = {t.name: (t, TensorIOMode.INPUT) for t in self.inputs}
            self.tensors |= {t.name: (t, TensorIOMode.OUTPUT) for t in self.outputs}
            # TensorRT's own order, not the stage table's: outputs first, each group reversed.
            self.names = [t.name for t in self.outputs][::-1] + [t.name for t in self.inputs][::-1]

        num_io_tensors = property(lambda self: len(self.names))

        def get_tensor_name(self, i):
            return self.names[i]

        def get_tensor_mode(self, name):
            return self.tensors[name][1]

        def get_tensor_shape(self, name):
            return Dims(self.tensors[name][0].shape)

        def get_tensor_dtype(self, name):
            if dtype_override and name in dtype_override:
                return dtype_override[name]
            return _ORT_TYPES[self.tensors[name][0].type]

        def create_execution_context(self):
            return Context(self)

    class Runtime:
        def __init__(self, logger):
            assert isinstance(logger, ILogger)
            self.logger = logger
            trt.runtimes.append(self)

        def deserialize_cuda_engine(self, data):
            try:
                return Engine(data)
            except Exception:
                return None  # what TensorRT does with a plan it cannot read

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


def make_engine_dir(model_dir, out, precision: str = "fp32", helpers: bool = True):
    """A copy of ``model_dir`` whose "engines" are its ONNX graphs (for the fake TensorRT).

    ``helpers``: give the helper graphs engines too (False: a folder whose engines were built before
    helper graphs existed).
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
    data["engines"] = engines
    (out / "manifest.json").write_text(json.dumps(data))
    return out
