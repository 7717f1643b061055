"""The TensorRT backend's plumbing on a CPU, with stand-ins for CUDA and TensorRT.

Without a GPU, TensorRT cannot run here; these tests use the stand-ins of ``cuda_standin.py``:
a ``tensorrt`` whose "engines" are the stage's ONNX graphs run by ONNX Runtime, and CUDA as host
memory whose streams run at synchronize. Everything
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
from cuda_standin import GPU, VERSION, install, make_engine_dir
from rt_samples import driving_frames, source_image, to_tensor

import jamsdk
from jamsdk.errors import EngineError
from jamsdk.model_files import sha256_file

FRAMES = driving_frames(4)


@pytest.fixture()
def fake_gpu(monkeypatch):
    return install(monkeypatch)


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
    if cuda_graph:  # one graph for the frame's engines from the second frame on (the first, the
        # reference frame with its host step, ran every engine context plainly once)
        assert fake_gpu.launches == len(FRAMES) - 1
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
        FakeBuilder.calls.append((network.path.name, network.flags, set(config.flags), set(config.cleared)))
        return network.path.read_bytes()


@pytest.fixture()
def fake_builder(fake_gpu):
    trt = sys.modules["tensorrt"]
    FakeBuilder.calls = []
    trt.builder_loggers = []
    trt.Builder = lambda logger: (trt.builder_loggers.append(logger), FakeBuilder(trt))[1]
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
    # strongly typed (flag bit 5 here) on the mixed FP16 graphs, no FP16 builder flag; TF32 off everywhere;
    # the helper graphs built from their FP32 graphs
    stages = [c for c in FakeBuilder.calls if c[0].endswith(".fp16.onnx")]
    helpers = sorted(c[0] for c in FakeBuilder.calls if not c[0].endswith(".fp16.onnx"))
    assert len(stages) == len(manifest.stages) and helpers == ["postprocess.onnx", "preprocess.onnx", "relative.onnx"]
    assert all(flags == 1 << 5 and "FP16" not in f and "TF32" in cleared for _, flags, f, cleared in FakeBuilder.calls)
    data = json.loads((out / "manifest.json").read_text())["engines"]
    assert data["tf32"] is False and sorted(data["helpers"]) == ["postprocess", "preprocess", "relative"]
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
