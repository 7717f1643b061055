"""TensorRT: engine building and the TensorRT backend against ONNX Runtime.

The ``gpu`` tests skip where no GPU answers or tensorrt does not import (tests/conftest.py);
the helpers at the top run everywhere.
"""

import json
import shutil

import numpy as np
import pytest
from rt_samples import driving_frames, source_image, to_tensor

import jamsdk
from jamsdk.errors import EngineError, InputError
from jamsdk.runtime.onnx2engine import resolve_typing, version_tuple

FRAMES = driving_frames(5)


def test_version_tuple():
    assert version_tuple("10.3.0.30") == (10, 3, 0, 30)
    assert version_tuple("11.4.0.106") >= (11,)
    assert version_tuple("10.12.0b1") == (10, 12, 0)


def test_resolve_typing():
    assert resolve_typing("auto", "fp16", "10.3.0", True) == "strong"
    assert resolve_typing("auto", "fp16", "11.4.0", False) == "strong"
    assert resolve_typing("weak", "fp16", "10.3.0", True) == "weak"
    with pytest.raises(InputError, match="no weakly typed FP16"):
        resolve_typing("weak", "fp16", "11.4.0", False)
    with pytest.raises(InputError, match="typing"):
        resolve_typing("loose", "fp16", "10.3.0", True)
    with pytest.raises(InputError, match="precision"):
        resolve_typing("auto", "fp8", "10.3.0", True)
    assert resolve_typing("auto", "int8", "10.3.0", True) == "strong"
    with pytest.raises(InputError, match="strongly typed from the Q/DQ graphs"):
        resolve_typing("weak", "int8", "10.3.0", True)


def _animate(model_dir, backend, mode="relative", **kw):
    with jamsdk.Animator(model_dir, backend=backend, mode=mode, **kw) as anim:
        assert anim.backend == backend
        anim.set_source(source_image())
        return np.concatenate([anim.run_tensor(to_tensor(f[None]).numpy()) for f in FRAMES])


@pytest.fixture(scope="module")
def fp32_engines(tiny_jam, tmp_path_factory):
    from jamsdk.runtime.onnx2engine import build_engines

    _, model_dir = tiny_jam
    out = tmp_path_factory.mktemp("engines") / "fp32"
    cache = out.parent / "timing.cache"
    build_engines(model_dir, out, precision="fp32", timing_cache=cache)
    assert cache.is_file() and cache.stat().st_size > 0
    return out


@pytest.mark.gpu
def test_fp32_engines_match_onnxruntime(tiny_jam, fp32_engines):
    manifest = json.loads((fp32_engines / "manifest.json").read_text())
    engines = manifest["engines"]
    assert engines["precision"] == "fp32" and engines["tensorrt_version"] and engines["compute_capability"]
    assert set(engines["stages"]) == set(manifest["stages"])
    for ref in engines["stages"].values():
        assert (fp32_engines / ref["file"]).read_bytes()[:4] != b"{"  # a plain plan, no JSON header
    for mode in ("standard", "relative", "avd"):
        trt_out = _animate(fp32_engines, "tensorrt", mode)
        ort_out = _animate(tiny_jam[1], "onnxruntime", mode, threads=1)
        np.testing.assert_allclose(trt_out, ort_out, atol=1e-3)


@pytest.mark.gpu
def test_auto_picks_tensorrt_and_cuda_graphs_match(fp32_engines):
    with jamsdk.Animator(fp32_engines) as anim:
        assert anim.backend == "tensorrt"
    plain = _animate(fp32_engines, "tensorrt")
    graphs = _animate(fp32_engines, "tensorrt", cuda_graph=True)
    np.testing.assert_allclose(graphs, plain, atol=1e-6)


@pytest.mark.gpu
def test_fp16_engines_within_fp16_tolerance(tiny_jam, tmp_path):
    from jamsdk.manifest import load_manifest
    from jamsdk.runtime.onnx2engine import build_engines

    model, model_dir = tiny_jam
    if "fp16" not in load_manifest(model_dir).precisions:
        pytest.skip("this export has no fp16 graphs")
    out = tmp_path / "fp16"
    build_engines(model_dir, out, precision="fp16", timing_cache=tmp_path / "timing.cache")
    got = _animate(out, "tensorrt")
    ref = _animate(model_dir, "onnxruntime", threads=1)
    err = np.abs(got - ref)
    assert err.mean() < 1e-2 and err.max() < 0.1, (err.mean(), err.max())


@pytest.mark.gpu
def test_weak_fp16_fallback_where_available(tiny_jam, tmp_path):
    import tensorrt as trt

    from jamsdk.runtime.onnx2engine import build_engines

    if not hasattr(trt.BuilderFlag, "FP16"):
        pytest.skip(f"TensorRT {trt.__version__} has no weakly typed FP16")
    out = tmp_path / "weak"
    build_engines(tiny_jam[1], out, precision="fp16", typing="weak", timing_cache=tmp_path / "timing.cache")
    err = np.abs(_animate(out, "tensorrt") - _animate(tiny_jam[1], "onnxruntime", threads=1))
    assert err.mean() < 1e-2 and err.max() < 0.1, (err.mean(), err.max())


@pytest.mark.gpu
def test_engines_for_another_tensorrt_are_refused(fp32_engines, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(fp32_engines, copy)
    path = copy / "manifest.json"
    data = json.loads(path.read_text())
    data["engines"]["tensorrt_version"] = "9.0.0"
    path.write_text(json.dumps(data))
    with pytest.raises(EngineError, match="different TensorRT version.*jamsdk build"):
        jamsdk.Animator(copy, backend="tensorrt")


@pytest.mark.gpu
def test_corrupt_engine_is_an_engine_error(fp32_engines, tmp_path):
    from jamsdk.model_files import sha256_file

    copy = tmp_path / "copy"
    shutil.copytree(fp32_engines, copy)
    (copy / "generator.engine").write_bytes(b"garbage" * 100)
    path = copy / "manifest.json"
    data = json.loads(path.read_text())
    data["engines"]["stages"]["generator"]["sha256"] = sha256_file(copy / "generator.engine")
    path.write_text(json.dumps(data))
    with pytest.raises(EngineError, match="generator: TensorRT cannot load"):
        jamsdk.Animator(copy, backend="tensorrt")
