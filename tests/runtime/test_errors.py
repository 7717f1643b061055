"""Bad input gets a typed error naming what was expected, and nothing is lost or half-written."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from rt_samples import driving_frames, source_image

import jamsdk
from jamsdk.errors import EngineError, InputError, ManifestError
from jamsdk.model_files import sha256_file
from jamsdk.runtime import _cuda
from jamsdk.runtime.backends import OnnxRuntimeBackend, resolve_backend
from jamsdk.runtime.backends.tensorrt import check_engine_compat
from jamsdk.stages import Stage, TensorSpec

FRAMES = driving_frames(3)


@pytest.fixture(scope="module")
def anim(tiny_jam):
    _, model_dir = tiny_jam
    with jamsdk.Animator(model_dir, threads=1) as a:
        a.set_source(source_image())
        yield a


@pytest.mark.parametrize("frame, match", [
    (np.zeros((64, 64), np.uint8), r"expected an \(H, W, 3\) uint8.*got \(64, 64\) uint8"),
    (np.zeros((64, 64, 4), np.uint8), r"got \(64, 64, 4\) uint8"),
    (np.zeros((64, 64, 1), np.uint8), r"got \(64, 64, 1\) uint8"),
    (np.zeros((64, 64, 3), np.int32), r"got \(64, 64, 3\) int32"),
    (np.zeros((0, 64, 3), np.uint8), r"got \(0, 64, 3\) uint8"),
    (np.zeros((64, 0, 3), np.uint8), r"got \(64, 0, 3\) uint8"),
    (np.zeros((1, 64, 64, 3), np.uint8), r"got \(1, 64, 64, 3\) uint8"),
    ([[0, 1, 2]], r"numpy array, got list"),
])
def test_bad_frames(anim, frame, match):
    with pytest.raises(InputError, match=match):
        anim.run(frame)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_float_frames(anim, bad):
    frame = FRAMES[0].astype(np.float32) / 255
    frame[10, 20, 1] = bad
    with pytest.raises(InputError, match="1 NaN or infinite"):
        anim.run(frame)
    with pytest.raises(InputError, match="source image: 1 NaN"):
        anim.set_source(frame)
    ok = anim.run(FRAMES[0])  # the stream is still usable after a rejected frame
    assert ok.shape == (64, 64, 3)


def test_float_frames_in_0_255_are_refused_not_clipped(anim):
    """frame.astype(np.float32) of a uint8 frame would be clipped to white: an error says what to do."""
    frame = FRAMES[1].astype(np.float32)
    with pytest.raises(InputError, match=r"driving frame: float values must lie in \[0, 1\].*divide by 255"):
        anim.run(frame)
    with pytest.raises(InputError, match=r"source image: float values must lie in \[0, 1\].*or pass the uint8"):
        anim.set_source(source_image().astype(np.float64))
    got = anim.run(frame / 255)  # the remedy, equal to the uint8 frame's result up to rounding
    assert np.abs(got.astype(int) - anim.run(FRAMES[1]).astype(int)).max() <= 2
    with pytest.raises(InputError, match=r"driving: float values must lie in \[0, 1\], got values from 0 to 255"):
        anim.run_tensor(np.full((1, 3, 64, 64), 255, np.float32) * np.linspace(0, 1, 64, dtype=np.float32))


def test_bad_model_space_tensors(anim):
    with pytest.raises(InputError, match=r"expected a \(1, 3, 64, 64\) float32.*got \(1, 3, 64, 64\) float64"):
        anim.run_tensor(np.zeros((1, 3, 64, 64)))
    with pytest.raises(InputError, match=r"got \(3, 64, 64\) float32"):
        anim.run_tensor(np.zeros((3, 64, 64), np.float32))
    with pytest.raises(InputError, match="NaN"):
        anim.run_tensor(np.full((1, 3, 64, 64), np.nan, np.float32))


def test_bad_arguments(tiny_jam, monkeypatch):
    _, model_dir = tiny_jam
    with pytest.raises(InputError, match=r"mode: expected one of .*got 'dance'"):
        jamsdk.Animator(model_dir, mode="dance")
    with pytest.raises(InputError, match=r"backend: expected 'auto' or one of .*got 'cuda'"):
        jamsdk.Animator(model_dir, backend="cuda")
    with pytest.raises(InputError, match="precision"):
        jamsdk.Animator(model_dir, precision="int8")
    with pytest.raises(InputError, match="output_size"):
        jamsdk.Animator(model_dir, output_size=0)
    # Where TensorRT could run, a folder without engines is the problem (without a GPU, the machine
    # is: tests/runtime/test_cli.py).
    from jamsdk.runtime.backends import TensorRTBackend

    monkeypatch.setattr(TensorRTBackend, "machine_problem", classmethod(lambda cls: ""))
    with pytest.raises(ManifestError, match="no engines built yet"):
        jamsdk.Animator(model_dir, backend="tensorrt")


def _edit_manifest(model_dir: Path, edit) -> None:
    path = model_dir / "manifest.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_avd_mode_needs_an_avd_stage(model_copy):
    def drop_avd(data):
        del data["stages"]["avd"]
        data["modes"] = ["standard", "relative"]

    _edit_manifest(model_copy, drop_avd)
    with pytest.raises(InputError, match="mode 'avd' needs a model exported with its AVD network"):
        jamsdk.Animator(model_copy, mode="avd")
    with jamsdk.Animator(model_copy, mode="standard", threads=1) as anim:  # the other modes still work
        anim.set_source(source_image())
        assert anim.run(FRAMES[0]).shape == (64, 64, 3)


def test_fp16_graphs_missing(model_copy):
    def fp32_only(data):
        data["precisions"] = ["fp32"]
        for entry in data["stages"].values():
            entry["files"].pop("fp16", None)

    _edit_manifest(model_copy, fp32_only)
    with pytest.raises(ManifestError, match="no 'fp16' graph"):
        jamsdk.Animator(model_copy, precision="fp16")


def test_missing_folder_manifest_and_graph(model_copy, tmp_path):
    with pytest.raises(ManifestError, match=r"nowhere does not exist: expected a folder written by jamsdk export "
                                            r"\(or 'demo' for the bundled model\)$"):
        jamsdk.Animator(tmp_path / "nowhere")  # the CLI's hint, in the Python API too
    with pytest.raises(ManifestError, match=r"is not a folder: .* \(or 'demo'"):
        jamsdk.Animator(model_copy / "manifest.json")  # its neighbour: a file, not a folder
    (model_copy / "generator.onnx").unlink()
    with pytest.raises(ManifestError, match="generator.onnx is missing"):
        jamsdk.Animator(model_copy)
    (model_copy / "manifest.json").unlink()
    with pytest.raises(ManifestError, match="no manifest.json"):
        jamsdk.Animator(model_copy)


def test_corrupt_manifest(model_copy):
    (model_copy / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        jamsdk.Animator(model_copy)


def test_sha256_mismatch(model_copy):
    path = model_copy / "dense_motion.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ManifestError, match="dense_motion.onnx has sha256 .* the manifest says"):
        jamsdk.Animator(model_copy)


def test_corrupt_onnx_with_matching_hash_is_an_engine_error(model_copy):
    path = model_copy / "generator.onnx"
    path.write_bytes(b"\x08\x07")  # a ModelProto (ir_version 7) without a graph: it parses, nothing runs it
    _edit_manifest(model_copy, lambda d: d["stages"]["generator"]["files"]["fp32"].update(sha256=sha256_file(path)))
    with pytest.raises(EngineError, match="generator: cannot load"):
        jamsdk.Animator(model_copy)


def test_a_graph_whose_external_data_cannot_be_read_is_refused(model_copy):
    """Not a protobuf: which files it would load is unknown, so the folder is refused (fail closed),
    not assumed to load none."""
    path = model_copy / "generator.onnx"
    path.write_bytes(b"this is not an onnx graph")
    _edit_manifest(model_copy, lambda d: d["stages"]["generator"]["files"]["fp32"].update(sha256=sha256_file(path)))
    with pytest.raises(ManifestError, match="cannot tell which external data generator.onnx loads"):
        jamsdk.Animator(model_copy)


def test_graph_with_other_tensors_is_an_engine_error(model_copy):
    # A valid graph in the wrong place: the avd graph where the generator should be.
    shutil.copy(model_copy / "avd.onnx", model_copy / "generator.onnx")
    path = model_copy / "generator.onnx"
    _edit_manifest(model_copy, lambda d: d["stages"]["generator"]["files"]["fp32"].update(sha256=sha256_file(path)))
    with pytest.raises(EngineError, match="generator: generator.onnx has inputs"):
        jamsdk.Animator(model_copy)


@pytest.mark.parametrize("name", ["../outside.onnx", "/etc/passwd", "sub/../../x.onnx"])
def test_file_names_may_not_leave_the_model_folder(model_copy, name):
    _edit_manifest(model_copy, lambda d: d["stages"]["generator"]["files"]["fp32"].update(file=name))
    with pytest.raises(ManifestError, match="must be a plain name inside the model folder"):
        jamsdk.Animator(model_copy)


def test_symlink_out_of_the_folder(model_copy, tmp_path):
    outside = tmp_path / "elsewhere.onnx"
    shutil.move(model_copy / "generator.onnx", outside)
    os.symlink(outside, model_copy / "generator.onnx")
    with pytest.raises(ManifestError, match="leads outside the model folder"):
        jamsdk.Animator(model_copy)


def test_manifest_from_a_newer_format(model_copy):
    _edit_manifest(model_copy, lambda d: d.update(format_version=99))
    with pytest.raises(ManifestError, match="99 is newer than this jamsdk reads"):
        jamsdk.Animator(model_copy)


ENGINES = {"tensorrt_version": "10.3.0.30", "gpu_name": "Orin", "compute_capability": "8.7", "precision": "fp16"}


@pytest.mark.parametrize("here, what", [
    (("10.3.0.30", _cuda.GpuInfo("NVIDIA H200", "9.0")), "compute capability and GPU model"),
    (("10.16.1.11", _cuda.GpuInfo("Orin", "8.7")), "TensorRT version"),
    (("11.4.0.106", _cuda.GpuInfo("NVIDIA GeForce RTX 4090", "8.9")),
     "TensorRT version, compute capability and GPU model"),
])
def test_engines_built_for_another_gpu_or_tensorrt(here, what):
    version, gpu = here
    with pytest.raises(EngineError, match=rf"different {what}\); rebuild them here with `jamsdk build"):
        check_engine_compat(ENGINES, version, gpu)
    check_engine_compat(ENGINES, "10.3.0.30", _cuda.GpuInfo("Orin", "8.7"))  # the machine it was built on


def test_engines_for_another_gpu_in_the_manifest_are_refused(model_copy, monkeypatch):
    """With engines from elsewhere, an explicit TensorRT request fails with a clear error, never a crash."""
    import types

    from jamsdk.runtime.backends import tensorrt as trt_backend

    names = json.loads((model_copy / "manifest.json").read_text())["stages"]
    refs = {}
    for name in names:  # a complete set of engines, so only the GPU can be what is wrong
        (model_copy / f"{name}.engine").write_bytes(name.encode() * 16)
        refs[name] = {"file": f"{name}.engine", "sha256": sha256_file(model_copy / f"{name}.engine")}
    _edit_manifest(model_copy, lambda d: d.update(engines={**ENGINES, "stages": refs}))
    # auto never picks them here (no GPU) and falls back to ONNX Runtime on the graphs
    if _cuda.gpu_info() is None:
        with jamsdk.Animator(model_copy, threads=1) as anim:
            assert anim.backend == "onnxruntime"
    # This machine, as TensorRT would see it: an H200 with the engines' TensorRT version. Nothing may
    # deserialise the engines (they are not plans): the compatibility check must refuse them first.
    monkeypatch.setattr(_cuda, "require_gpu", lambda what: _cuda.GpuInfo("NVIDIA H200", "9.0"))
    monkeypatch.setattr(trt_backend, "require", lambda name: types.SimpleNamespace(__version__="10.3.0.30"))
    monkeypatch.setattr(trt_backend.TensorRTBackend, "machine_problem", classmethod(lambda cls: ""))  # it has both
    with pytest.raises(EngineError, match=r"^the engines were built with TensorRT 10\.3\.0\.30 on Orin \(compute "
                                          r"capability 8\.7\), this machine has TensorRT 10\.3\.0\.30 on NVIDIA H200 "
                                          r"\(compute capability 9\.0\) \(different compute capability and GPU model\); "
                                          r"rebuild them here with `jamsdk build"):
        jamsdk.Animator(model_copy, backend="tensorrt")


def test_backend_checks_feed_names_dtypes_and_shapes(tiny_jam):
    _, model_dir = tiny_jam
    outputs = (TensorSpec("shift", (1, 4, 2)), TensorSpec("covar", (1, 4, 2, 2)), TensorSpec("affine", (1, 4, 2, 2)))
    stage = Stage("region_predictor", "frame", (TensorSpec("image", (1, 3, 64, 64)),), outputs)
    backend = OnnxRuntimeBackend(stage, model_dir / "region_predictor.onnx", threads=1)
    x = np.zeros((1, 3, 64, 64), np.float32)
    with pytest.raises(EngineError, match="not open"):
        backend.run({"image": x})
    with backend:
        assert backend.run({"image": x})["shift"].shape == (1, 4, 2)
        with pytest.raises(InputError, match=r"expected inputs \['image'\], got \['img'\].*missing \['image'\]"):
            backend.run({"img": x})
        with pytest.raises(InputError, match=r"unexpected \['extra'\]"):
            backend.run({"image": x, "extra": x})
        want = r"input 'image': expected \(1, 3, 64, 64\) float32, got \(1, 3, 64, 64\) float16"
        with pytest.raises(InputError, match=want):
            backend.run({"image": x.astype(np.float16)})
        with pytest.raises(InputError, match=r"got \(1, 3, 32, 32\) float32"):
            backend.run({"image": x[:, :, :32, :32].copy()})
    assert not backend.is_open
    with pytest.raises(EngineError, match="does not exist"):
        OnnxRuntimeBackend(stage, model_dir / "missing.onnx").open()


def test_auto_backend_here_is_onnxruntime_and_the_gpu_probe_never_raises(tiny_jam):
    from jamsdk.manifest import load_manifest

    manifest = load_manifest(tiny_jam[1])
    assert resolve_backend(manifest, "auto") == "onnxruntime"
    info = _cuda.gpu_info()
    assert info is None or info.name
    if info is None:
        assert _cuda.gpu_problem()
