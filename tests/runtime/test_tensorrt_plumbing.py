"""The TensorRT backend's plumbing on a CPU, with stand-ins for CUDA and TensorRT.

Without a GPU, TensorRT cannot run here; these tests replace ``tensorrt`` with a small fake whose
"engines" are the stage's ONNX graphs run by ONNX Runtime, and CUDA with host memory. Everything
the backend itself does is real: the GPU probe order, the compatibility check, binding tensors by
name, the pinned/device buffers and copies, CUDA-graph capture and replay, and freeing on close.
The real thing runs in test_tensorrt.py on machines with a GPU.
"""

import json
import shutil
import sys
import types

import numpy as np
import pytest
from rt_samples import driving_frames, source_image, to_tensor

import jamsdk
from jamsdk.errors import EngineError
from jamsdk.manifest import sha256_file
from jamsdk.runtime import _cuda

FRAMES = driving_frames(4)
GPU = _cuda.GpuInfo("Fake GPU", "8.7")
VERSION = "10.3.0.30"


class FakeCuda(_cuda.Cuda):
    """Device memory as host bytearrays addressed by fake pointers; graphs as recorded closures."""

    binding = "fake"
    supports_graphs = True

    def __init__(self):
        self.mem: dict[int, bytearray] = {}
        self.next = 0x1000
        self.pinned: list[np.ndarray] = []
        self.streams: set[int] = set()
        self.capturing: list | None = None
        self.graphs: dict[int, list] = {}
        self.launches = 0

    def device_count(self):
        return 1, ""

    def device_info(self):
        return GPU

    def malloc(self, nbytes):
        ptr, self.next = self.next, self.next + nbytes + 256
        self.mem[ptr] = bytearray(nbytes)
        return ptr

    def free(self, ptr):
        del self.mem[ptr]

    def pinned_empty(self, shape, dtype):
        arr = np.empty(shape, dtype)
        self.pinned.append(arr)
        return arr

    def free_pinned(self, array):
        self.pinned = [a for a in self.pinned if a is not array]

    def stream_create(self):
        s = 7 + len(self.streams)
        self.streams.add(s)
        return s

    def stream_destroy(self, stream):
        self.streams.remove(stream)

    def h2d(self, dst, src, stream):
        assert stream in self.streams and self.capturing is None
        self.mem[dst][:] = src.tobytes()

    def d2h(self, dst, src, stream):
        dst[...] = np.frombuffer(bytes(self.mem[src]), dst.dtype).reshape(dst.shape)

    def synchronize(self, stream):
        assert stream in self.streams

    def begin_capture(self, stream):
        self.capturing = []

    def end_capture(self, stream):
        graph, self.capturing = self.capturing, None
        handle = id(graph)
        self.graphs[handle] = graph
        return handle

    def launch_graph(self, graph_exec, stream):
        self.launches += 1
        for fn in self.graphs[graph_exec]:
            fn()

    def destroy_graph(self, graph_exec):
        del self.graphs[graph_exec]


def fake_tensorrt(cuda: FakeCuda) -> types.ModuleType:
    import onnxruntime as ort

    trt = types.ModuleType("tensorrt")
    trt.__version__ = VERSION
    trt.TensorIOMode = types.SimpleNamespace(INPUT="INPUT", OUTPUT="OUTPUT")
    trt.nptype = lambda dtype: np.float32

    class Logger:
        WARNING = 2

        def __init__(self, severity):
            pass

    class Context:
        def __init__(self, engine):
            self.engine, self.addr = engine, {}

        def set_tensor_address(self, name, ptr):
            self.addr[name] = ptr
            return True

        def _execute(self):
            e = self.engine
            feeds = {i.name: np.frombuffer(bytes(cuda.mem[self.addr[i.name]]), np.float32).reshape(i.shape)
                     for i in e.session.get_inputs()}
            for out, value in zip(e.outputs, e.session.run([o.name for o in e.outputs], feeds), strict=True):
                cuda.mem[self.addr[out.name]][:] = np.ascontiguousarray(value, np.float32).tobytes()

        def execute_async_v3(self, stream):
            if cuda.capturing is not None:
                cuda.capturing.append(self._execute)
            else:
                self._execute()
            return True

    class Engine:
        def __init__(self, data):
            self.session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
            self.inputs, self.outputs = self.session.get_inputs(), self.session.get_outputs()
            self.tensors = {t.name: (t, "INPUT") for t in self.inputs} | {t.name: (t, "OUTPUT") for t in self.outputs}
            self.names = list(self.tensors)

        num_io_tensors = property(lambda self: len(self.names))

        def get_tensor_name(self, i):
            return self.names[i]

        def get_tensor_mode(self, name):
            return self.tensors[name][1]

        def get_tensor_shape(self, name):
            return tuple(self.tensors[name][0].shape)

        def get_tensor_dtype(self, name):
            return "float32"

        def create_execution_context(self):
            return Context(self)

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, data):
            try:
                return Engine(data)
            except Exception:
                return None  # what TensorRT does with a plan it cannot read

    trt.Logger, trt.Runtime = Logger, Runtime
    return trt


@pytest.fixture()
def fake_gpu(monkeypatch):
    cuda = FakeCuda()
    monkeypatch.setattr(_cuda, "_probe", lambda: (GPU, ""))
    monkeypatch.setattr(_cuda, "cuda", lambda: cuda)
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(cuda))
    return cuda


def make_engine_dir(model_dir, out, precision: str = "fp32"):
    """A copy of ``model_dir`` whose "engines" are its ONNX graphs (for the fake TensorRT)."""
    shutil.copytree(model_dir, out)
    data = json.loads((out / "manifest.json").read_text())
    refs = {}
    for name in data["stages"]:
        shutil.copy(out / f"{name}.onnx", out / f"{name}.engine")
        refs[name] = {"file": f"{name}.engine", "sha256": sha256_file(out / f"{name}.engine")}
    data["engines"] = {"tensorrt_version": VERSION, "gpu_name": GPU.name, "compute_capability": GPU.compute_capability,
                       "precision": precision, "stages": refs}
    (out / "manifest.json").write_text(json.dumps(data))
    return out


@pytest.fixture()
def engine_dir(tiny_jam, tmp_path):
    return make_engine_dir(tiny_jam[1], tmp_path / "model")


def _animate(model_dir, backend, **kw):
    with jamsdk.Animator(model_dir, backend=backend, threads=1, **kw) as anim:
        assert anim.backend == backend
        anim.set_source(source_image())
        return np.concatenate([anim.run_tensor(to_tensor(f[None]).numpy()) for f in FRAMES])


@pytest.mark.parametrize("cuda_graph", [False, True])
def test_tensorrt_backend_plumbing_matches_onnxruntime(fake_gpu, engine_dir, tiny_jam, cuda_graph):
    with jamsdk.Animator(engine_dir, threads=1) as anim:
        assert anim.backend == "tensorrt"  # auto: engines + GPU + tensorrt
    got = _animate(engine_dir, "tensorrt", cuda_graph=cuda_graph)
    want = _animate(tiny_jam[1], "onnxruntime")
    np.testing.assert_array_equal(got, want)
    if cuda_graph:  # every stage replays its graph from its second run on
        # region_predictor ran once for the source and once per frame; dense_motion and
        # generator once per frame; generator_encoder only once (never replayed)
        assert fake_gpu.launches == len(FRAMES) + 2 * (len(FRAMES) - 1)
    # everything allocated was freed on close
    assert fake_gpu.mem == {} and fake_gpu.pinned == [] and fake_gpu.streams == set() and fake_gpu.graphs == {}


def test_outputs_are_not_overwritten_by_the_next_run(fake_gpu, engine_dir):
    with jamsdk.Animator(engine_dir, backend="tensorrt") as anim:
        backend = anim._backends["region_predictor"]
        a = backend.run({"image": np.zeros((1, 3, 64, 64), np.float32)})
        kept = {k: v.copy() for k, v in a.items()}
        backend.run({"image": np.ones((1, 3, 64, 64), np.float32)})
        for k in a:
            np.testing.assert_array_equal(a[k], kept[k])


def test_engines_for_another_gpu_refused_before_loading(fake_gpu, engine_dir):
    path = engine_dir / "manifest.json"
    data = json.loads(path.read_text())
    data["engines"]["gpu_name"] = "Other GPU"
    path.write_text(json.dumps(data))
    with pytest.raises(EngineError, match="different GPU model.*rebuild"):
        jamsdk.Animator(engine_dir, backend="tensorrt")
    assert fake_gpu.mem == {}  # nothing was allocated


def test_unreadable_engine(fake_gpu, engine_dir):
    path = engine_dir / "dense_motion.engine"
    path.write_bytes(b"not a plan")
    mpath = engine_dir / "manifest.json"
    data = json.loads(mpath.read_text())
    data["engines"]["stages"]["dense_motion"]["sha256"] = sha256_file(path)
    mpath.write_text(json.dumps(data))
    with pytest.raises(EngineError, match="dense_motion: TensorRT cannot load"):
        jamsdk.Animator(engine_dir, backend="tensorrt")
    assert fake_gpu.mem == {} and fake_gpu.streams == set()  # stages opened before were closed again


def test_engine_with_other_tensors(fake_gpu, engine_dir):
    shutil.copy(engine_dir / "avd.onnx", engine_dir / "generator.engine")
    mpath = engine_dir / "manifest.json"
    data = json.loads(mpath.read_text())
    data["engines"]["stages"]["generator"]["sha256"] = sha256_file(engine_dir / "generator.engine")
    mpath.write_text(json.dumps(data))
    with pytest.raises(EngineError, match="generator: generator.engine has tensors"):
        jamsdk.Animator(engine_dir, backend="tensorrt")


class FakeBuilder:
    """Records what the builder was asked; its "plan" is the parsed ONNX file (run by FakeRuntime)."""

    calls: list = []

    def __init__(self, trt):
        self.trt = trt

    def create_network(self, flags):
        return types.SimpleNamespace(flags=flags, path=None, num_layers=0)

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
        FakeBuilder.calls.append((network.path.name, network.flags, set(config.flags), set(config.cleared)))
        return network.path.read_bytes()


@pytest.fixture()
def fake_builder(fake_gpu):
    trt = sys.modules["tensorrt"]
    FakeBuilder.calls = []
    trt.Builder = lambda logger: FakeBuilder(trt)
    trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(STRONGLY_TYPED=5)
    trt.BuilderFlag = types.SimpleNamespace(FP16="FP16", TF32="TF32", OBEY_PRECISION_CONSTRAINTS="OBEY")
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE="WORKSPACE")

    class IProgressMonitor:
        def __init__(self):
            pass

    class OnnxParser:
        def __init__(self, network, logger):
            self.network, self.num_errors = network, 0

        def parse_from_file(self, path):
            from pathlib import Path

            self.network.path = Path(path)
            return True

    trt.IProgressMonitor, trt.OnnxParser = IProgressMonitor, OnnxParser
    return trt


def test_build_engines_fills_the_manifest_and_runs(fake_builder, tiny_jam, tmp_path):
    from jamsdk.manifest import load_manifest
    from jamsdk.runtime.onnx2engine import build_engines

    model_dir = tiny_jam[1]
    before = (model_dir / "manifest.json").read_bytes()
    lines = []
    out = tmp_path / "engines"
    build_engines(model_dir, out, workspace_mb=64, timing_cache=tmp_path / "t.cache", log=lines.append)
    assert (model_dir / "manifest.json").read_bytes() == before  # the source folder is untouched
    manifest = load_manifest(out)
    assert manifest.engines.tensorrt_version == VERSION and manifest.engines.gpu_name == GPU.name
    assert manifest.engines.precision == "fp16" and set(manifest.engines.stages) == set(manifest.stages)
    # strongly typed (flag bit 5 on TensorRT 10.x) on the mixed FP16 graphs, no FP16 builder flag
    assert all(name.endswith(".fp16.onnx") and flags == 1 << 5 and "FP16" not in f
               for name, flags, f, _ in FakeBuilder.calls)
    assert (tmp_path / "t.cache").read_bytes().endswith(b"+")  # saved after every stage
    assert any("Building (2 steps)" in line for line in lines) and any("[1/" in line for line in lines)
    got = _animate(out, "tensorrt")
    want = _animate(model_dir, "onnxruntime", precision="fp16")
    np.testing.assert_array_equal(got, want)


def test_build_fp32_turns_tf32_off(fake_builder, model_copy):
    from jamsdk.runtime.onnx2engine import build_engines

    build_engines(model_copy, precision="fp32", timing_cache=model_copy / "t.cache", stages=["avd"],
                  log=lambda _m: None)
    (name, flags, set_flags, cleared), = FakeBuilder.calls
    assert name == "avd.onnx" and "TF32" in cleared and flags == 1 << 5
    assert json.loads((model_copy / "manifest.json").read_text())["engines"]["stages"].keys() == {"avd"}


def _with_int8_graphs(model_dir, quantized=("generator",)):
    """``model_dir`` with an ``int8`` precision: ``<stage>.int8.onnx`` for ``quantized`` (copies of the
    FP32 graphs: the fake builder only records which file it was given), the FP32 file for the others."""
    data = json.loads((model_dir / "manifest.json").read_text())
    for name, entry in data["stages"].items():
        file = f"{name}.int8.onnx" if name in quantized else f"{name}.onnx"
        if name in quantized:
            shutil.copy(model_dir / f"{name}.onnx", model_dir / file)
        entry["files"]["int8"] = {"file": file, "sha256": sha256_file(model_dir / file)}
    data["precisions"] = [*data["precisions"], "int8"]
    (model_dir / "manifest.json").write_text(json.dumps(data))
    return model_dir


def test_build_int8_uses_the_qdq_graphs_strongly_typed(fake_builder, model_copy):
    from jamsdk.manifest import load_manifest
    from jamsdk.runtime.onnx2engine import build_engines

    build_engines(_with_int8_graphs(model_copy), precision="int8", timing_cache=model_copy / "t.cache",
                  log=lambda _m: None)
    built = {name: (flags, set_flags) for name, flags, set_flags, _ in FakeBuilder.calls}
    assert "generator.int8.onnx" in built and "region_predictor.onnx" in built  # un-quantized: its FP32 graph
    assert all(flags == 1 << 5 and not set_flags for flags, set_flags in built.values())  # no precision flags
    assert load_manifest(model_copy).engines.precision == "int8"


def test_build_int8_refusals(fake_builder, model_copy):
    from jamsdk.errors import InputError
    from jamsdk.runtime.onnx2engine import build_engines

    with pytest.raises(InputError, match="no int8 graphs.*--precision int8 --calibration VIDEO"):
        build_engines(model_copy, precision="int8", log=lambda _m: None)
    with pytest.raises(InputError, match="strongly typed from the Q/DQ graphs only"):
        build_engines(_with_int8_graphs(model_copy), precision="int8", typing="weak", log=lambda _m: None)
    assert FakeBuilder.calls == []
