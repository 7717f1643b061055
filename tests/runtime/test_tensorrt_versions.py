"""TensorRT older than 10.1 (JetPack 6.0's 8.6, desktop 10.0): run by feature detection, refuse what is older.

The stand-in takes the API surface of each version (``trt_standin.fake_tensorrt(api=…)``: on 8.6 no
allocation-strategy enum, no ``set_device_memory(ptr, size)``, no ``device_memory_size_v2``; on 10.0
the enum but neither v2 call), so code written only for 10.1+ fails here as it would on the device.
"""

import json

import numpy as np
import pytest
from cuda_standin import ALIGN, VERSIONS, fake_builder, install, make_engine_dir
from rt_samples import driving_frames, source_image

import jamsdk
from jamsdk.errors import EngineError, InputError

FRAMES = driving_frames(4)


def _stream(folder, backend, **kw):
    with jamsdk.Animator(folder, backend=backend, threads=1, **kw) as anim:
        anim.set_source(source_image())
        frames = np.stack([anim.run(f) for f in FRAMES])
        contexts = [b.context for b in anim._pipe.bound.values()] if backend == "tensorrt" else []
        figures = {}
        if backend == "tensorrt":
            cuda = jamsdk.runtime._cuda.cuda()
            figures = {"device": cuda.device_bytes, "engines": sum(cuda.reserved.values()),
                       "slots": sum(cuda.sizes[p] for p in anim._pipe.device.values()), "scratch": anim._pipe.scratch}
        memory = {c.memory for c in contexts}
        users = {c.user_memory for c in contexts}
        del contexts  # they keep their engines alive
    return frames, memory, users, figures


@pytest.mark.parametrize("api", ["8.6", "10.0"])
def test_animator_runs_on_older_tensorrt_with_one_shared_scratch(monkeypatch, tiny_jam, tmp_path, api):
    cuda = install(monkeypatch, api=api)
    folder = make_engine_dir(tiny_jam[1], tmp_path / "model", version=VERSIONS[api])
    got, memory, users, f = _stream(folder, "tensorrt", cuda_graph=True)
    want, *_ = _stream(tiny_jam[1], "onnxruntime")
    np.testing.assert_array_equal(got, want)
    ptr, size = f["scratch"]
    # no context took memory of its own: all run in the one scratch (the one-argument setter passes no size)
    assert users == {True} and {m[0] for m in memory} == {ptr} and max(m[1] for m in memory) == size > 0
    assert f["device"] == f["engines"] + f["slots"] + -(-size // ALIGN) * ALIGN  # nothing STATIC on the side
    assert cuda.mem == {} and cuda.device_bytes == 0


def test_tensorrt_older_than_8_6_is_refused_before_any_engine_loads(monkeypatch, tiny_jam, tmp_path):
    cuda = install(monkeypatch, api="8.5")
    folder = make_engine_dir(tiny_jam[1], tmp_path / "model", version=VERSIONS["8.5"])
    older = (r"TensorRT 8\.5\.2\.2 is older than 8\.6, the oldest jamsdk runs on; "
             r"JetPack 6\.1 or later ships TensorRT 10\.3")
    with pytest.raises(EngineError, match=f"backend 'tensorrt' cannot run on this machine: {older}"):
        jamsdk.Animator(folder, backend="tensorrt")
    from jamsdk.manifest import load_manifest
    from jamsdk.runtime.backends.tensorrt import TensorRTBackend

    with pytest.raises(EngineError, match=f"^{older}"):  # opened directly: refused before its engine loads
        TensorRTBackend.from_manifest(load_manifest(folder), "avd", {}).open()
    assert cuda.device_bytes == 0 and cuda.mem == {}
    with jamsdk.Animator(folder) as anim:  # auto picks what can run: ONNX Runtime
        assert anim.backend == "onnxruntime"


def test_version_floor_reads_versions_as_numbers():
    from jamsdk.runtime.trt_support import support_problem

    assert support_problem("8.6.1.6") == "" and support_problem("10.16.0") == "" and support_problem("11.1") == ""
    assert support_problem("8.10.0")  == ""  # 8.10 > 8.6 as numbers, not as text
    for old in ("8.5.2.2", "8.2.1", "7.1.3"):
        assert "older than 8.6" in support_problem(old), old
    assert "reports no version number ('')" in support_problem("")


# -- jamsdk build on 8.6: weakly typed FP16/FP32, explicit batch, no INT8 -------------------------------

def _builder(monkeypatch, api):
    cuda = install(monkeypatch, api=api)
    import sys

    return cuda, fake_builder(sys.modules["tensorrt"])


def test_build_on_8_6_is_weakly_typed_with_explicit_batch_and_runs(monkeypatch, tiny_jam, tmp_path):
    from jamsdk.manifest import load_manifest
    from jamsdk.runtime.onnx2engine import build_engines

    _, trt = _builder(monkeypatch, "8.6")
    out = tmp_path / "engines"
    build_engines(tiny_jam[1], out, timing_cache=tmp_path / "t.cache", log=lambda _l: None)  # fp16, typing auto
    engines = json.loads((out / "manifest.json").read_text())["engines"]
    assert engines["typing"] == "weak" and engines["tensorrt_version"] == VERSIONS["8.6"]
    assert trt.builds and all(flags == 1 << 0 for _, flags, _, _ in trt.builds)  # EXPLICIT_BATCH, not STRONGLY_TYPED
    names = load_manifest(out).stages
    stages = {name: f for name, _, f, _ in trt.builds if name.endswith(".onnx") and name[:-5] in names}
    assert {n: "FP16" in f for n, f in stages.items()} == {
        n: n[:-5] not in ("region_predictor", "avd") for n in stages}  # FP32 stages held in FP32
    helpers = [f for name, _, f, _ in trt.builds if name[:-5] in ("preprocess", "postprocess", "relative")]
    assert len(helpers) == 3 and not any(helpers)  # FP32: no precision flag
    with jamsdk.Animator(out, backend="tensorrt") as anim:
        anim.set_source(source_image())
        assert anim.run(FRAMES[0]).dtype == np.uint8


def test_build_on_8_6_refuses_int8_and_strong_typing_with_true_advice(monkeypatch, tiny_jam, tmp_path):
    from jamsdk.runtime.onnx2engine import build_engines, onnx2engine

    _, trt = _builder(monkeypatch, "8.6")
    with pytest.raises(InputError, match="TensorRT 8.6.1.6 has no strongly typed networks.*--typing weak"):
        build_engines(tiny_jam[1], tmp_path / "a", typing="strong", log=lambda _l: None)
    with pytest.raises(InputError, match="INT8 engines are built strongly typed.*TensorRT 8.6.1.6 has no strongly "
                                         "typed networks.*build fp16 or fp32 engines here"):
        build_engines(tiny_jam[1], tmp_path / "b", precision="int8", log=lambda _l: None)
    with pytest.raises(EngineError, match="no strongly typed networks.*build with typing 'weak'"):
        onnx2engine(tiny_jam[1] / "avd.onnx", tmp_path / "x.engine", typing="strong", log=lambda _l: None)
    assert trt.builds == []


def test_build_refuses_tensorrt_older_than_8_6(monkeypatch, tiny_jam, tmp_path):
    from jamsdk.runtime.onnx2engine import build_engines, onnx2engine

    _, trt = _builder(monkeypatch, "8.5")
    for build in (lambda: build_engines(tiny_jam[1], tmp_path / "a", log=lambda _l: None),
                  lambda: onnx2engine(tiny_jam[1] / "avd.onnx", tmp_path / "x.engine", typing="weak")):
        with pytest.raises(EngineError, match="TensorRT 8.5.2.2 is older than 8.6"):
            build()
    assert trt.builds == [] and not (tmp_path / "a").exists()
