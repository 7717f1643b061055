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
from cuda_standin import fake_builder as fake_builder_of
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


@pytest.fixture()
def fake_builder(fake_gpu):
    return fake_builder_of(sys.modules["tensorrt"])


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
    # strongly typed (kSTRONGLY_TYPED = 1) on the mixed FP16 graphs, no FP16 builder flag; TF32 off everywhere;
    # the helper graphs built from their FP32 graphs
    stages = [c for c in fake_builder.builds if c[0].endswith(".fp16.onnx")]
    helpers = sorted(c[0] for c in fake_builder.builds if not c[0].endswith(".fp16.onnx"))
    assert len(stages) == len(manifest.stages) and helpers == ["postprocess.onnx", "preprocess.onnx", "relative.onnx"]
    assert all(flags == 1 << 1 and "FP16" not in f and "TF32" in cleared
               for _, flags, f, cleared in fake_builder.builds)
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
    (name, flags, set_flags, cleared), = fake_builder.builds
    assert name == "avd.onnx" and "TF32" in cleared and flags == 1 << 1
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
    built = {name: (flags, set_flags) for name, flags, set_flags, _ in fake_builder.builds}
    assert "generator.int8.onnx" in built and "region_predictor.onnx" in built  # un-quantized: its FP32 graph
    assert all(flags == 1 << 1 and not set_flags for flags, set_flags in built.values())  # no precision flags
    assert load_manifest(model_copy).engines.precision == "int8"


def test_build_int8_refusals(fake_builder, model_copy):
    from jamsdk.errors import InputError
    from jamsdk.runtime.onnx2engine import build_engines

    with pytest.raises(InputError, match="no int8 graphs.*--precision int8 --calibration VIDEO"):
        build_engines(model_copy, precision="int8", log=lambda _m: None)
    with pytest.raises(InputError, match="strongly typed from the Q/DQ graphs only"):
        build_engines(_with_int8_graphs(model_copy), precision="int8", typing="weak", log=lambda _m: None)
    assert fake_builder.builds == []
