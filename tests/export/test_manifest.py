"""jamsdk.manifest and jamsdk.manifest_write: writer, reader and every rejection, on a hand-made folder
(no torch, no ONNX)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jamsdk.config import load_model_config
from jamsdk.errors import InputError, ManifestError
from jamsdk.manifest import FORMAT_VERSION, load_manifest
from jamsdk.manifest_write import new_manifest, stage_to_dict, write_manifest
from jamsdk.model_files import MANIFEST_NAME, file_ref
from jamsdk.stages import stage_table


def placeholder_graph(text: str) -> bytes:
    """An ONNX ModelProto holding only ``doc_string = text``: it parses (so which external data it loads
    is known: none), and no runtime could run it."""
    data = text.encode()
    assert len(data) < 128  # one-byte length
    return b"\x32" + bytes([len(data)]) + data  # field 6 (doc_string), wire type 2


def make_folder(folder: Path, config: str = "tiny-jam", with_avd: bool = True) -> dict:
    """A model folder whose 'graphs' are placeholder protobufs, and its manifest dict (not yet written)."""
    cfg = load_model_config(config)
    folder.mkdir(parents=True, exist_ok=True)
    stages = {}
    for name, stage in stage_table(cfg, with_avd=with_avd).items():
        files = {}
        for prec, fname in (("fp32", f"{name}.onnx"), ("fp16", f"{name}.fp16.onnx")):
            (folder / fname).write_bytes(placeholder_graph(f"{name} {prec}"))
            files[prec] = file_ref(folder, fname)
        stages[name] = stage_to_dict(stage, files)
    return new_manifest(cfg, cfg.image_size, 17, stages, ["fp32", "fp16"])


@pytest.fixture()
def folder(tmp_path):
    data = make_folder(tmp_path / "model")
    write_manifest(tmp_path / "model", data)
    return tmp_path / "model"


def rewrite(folder: Path, change) -> None:
    path = folder / MANIFEST_NAME
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_round_trip_matches_stage_table(folder):
    m = load_manifest(folder)
    cfg = load_model_config("tiny-jam")
    table = stage_table(cfg, with_avd=True)
    assert list(m.stages) == list(table)
    for name, stage in table.items():
        assert m.tensor_specs(name) == (stage.inputs, stage.outputs)
        assert m.stage(name).per == stage.per
    assert m.stage_file("generator", "fp16") == folder / "generator.fp16.onnx"
    assert m.modes == ("standard", "relative", "avd") and m.has_avd and m.has_bg_motion
    assert m.model == cfg and m.image_size == 64 and m.opset == 17 and m.engines is None
    assert json.loads((folder / MANIFEST_NAME).read_text())["format_version"] == FORMAT_VERSION


def test_without_avd_has_no_avd_mode(tmp_path):
    data = make_folder(tmp_path / "m", "tiny-mraa", with_avd=False)
    write_manifest(tmp_path / "m", data)
    m = load_manifest(tmp_path / "m")
    assert "avd" not in m.stages and m.modes == ("standard", "relative") and not m.has_bg_motion


def test_unknown_stage_and_precision_requests(folder):
    m = load_manifest(folder)
    with pytest.raises(ManifestError, match="no stage 'warp'.*region_predictor"):
        m.stage("warp")
    with pytest.raises(ManifestError, match="no 'int8' graph"):
        m.stage_file("generator", "int8")
    with pytest.raises(ManifestError, match="no engines built yet"):
        m.engine_file("generator")


@pytest.mark.parametrize("change, match", [
    (lambda d: d.update(format="other"), "format: expected 'jamsdk.model'"),
    (lambda d: d.update(format_version=FORMAT_VERSION + 1), "newer than this jamsdk reads"),
    (lambda d: d.update(format_version="1"), "format_version: expected a whole number"),
    (lambda d: d.pop("stages"), "stages: missing"),
    (lambda d: d["stages"].pop("generator"), "missing stage\\(s\\) generator"),
    (lambda d: d["stages"].update(extra=d["stages"]["generator"]), "unknown stage 'extra'"),
    (lambda d: d.update(image_size=48), "image_size: 48 does not fit"),
    (lambda d: d.update(num_regions=5), "num_regions: 5 differs"),
    (lambda d: d.update(align_corners=True), "align_corners: True differs"),
    (lambda d: d["pixel"].update(channels="BGR"), "pixel: expected"),
    (lambda d: d.update(precisions=["fp32", "fp8"]), "precisions: unknown value 'fp8'"),
    (lambda d: d["model"].update(num_regions="4"), "model.num_regions: expected int"),
    (lambda d: d["stages"]["generator"]["outputs"][0].update(shape=[1, 3, 32, 32]), "tensors differ from the stage table"),
    (lambda d: d["stages"]["dense_motion"].update(per="source"), "tensors differ from the stage table"),
    (lambda d: d["stages"]["generator"]["files"].pop("fp16"), "no 'fp16' file although precisions lists it"),
    (lambda d: d["stages"]["avd"]["files"]["fp32"].update(file="../avd.onnx"), "must be a plain name inside"),
    (lambda d: d["stages"]["avd"]["files"]["fp32"].update(file="/etc/passwd"), "must be a plain name inside"),
    (lambda d: d["stages"]["avd"]["files"]["fp32"].update(file="gone.onnx"), "gone.onnx is missing"),
    (lambda d: d["stages"]["avd"]["files"]["fp32"].update(sha256="x" * 64), "is not 64 lowercase hex"),
    (lambda d: d["stages"]["avd"]["files"]["fp32"].update(sha256="0" * 64), "has sha256 .* the manifest says"),
    (lambda d: d.update(engines={"tensorrt_version": "10.3", "gpu_name": "x", "compute_capability": "8.7",
                                 "precision": "fp8", "stages": {}}), "engines.precision"),
    (lambda d: d.update(engines={"tensorrt_version": "10.3", "gpu_name": "x", "compute_capability": "8.7",
                                 "precision": "fp16", "stages": {"warp": {"file": "w.engine", "sha256": "0" * 64}}}),
     "engine for unknown stage 'warp'"),
])
def test_rejects_bad_manifests(folder, change, match):
    rewrite(folder, change)
    with pytest.raises(ManifestError, match=match):
        load_manifest(folder)


def test_errors_are_input_errors(folder):
    assert issubclass(ManifestError, InputError)


def test_missing_folder_manifest_and_corrupt_json(tmp_path, folder):
    with pytest.raises(ManifestError, match="does not exist"):
        load_manifest(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ManifestError, match="has no manifest.json: not a jamsdk model folder"):
        load_manifest(empty)
    (folder / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        load_manifest(folder)
    (folder / MANIFEST_NAME).write_text("[1, 2]")
    with pytest.raises(ManifestError, match="expected a JSON object"):
        load_manifest(folder)


def test_hash_check_can_be_skipped_but_files_must_exist(folder):
    (folder / "generator.onnx").write_bytes(b"changed")
    with pytest.raises(ManifestError, match="generator.onnx has sha256"):
        load_manifest(folder)
    assert load_manifest(folder, verify_hashes=False).stage_file("generator") == folder / "generator.onnx"


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")
def test_symlink_leading_out_of_the_folder(folder, tmp_path):
    outside = tmp_path / "outside.onnx"
    outside.write_bytes((folder / "avd.onnx").read_bytes())
    (folder / "avd.onnx").unlink()
    (folder / "avd.onnx").symlink_to(outside)
    with pytest.raises(ManifestError, match="leads outside the model folder"):
        load_manifest(folder)


def test_engines_section(folder):
    (folder / "generator.engine").write_bytes(b"plan")
    rewrite(folder, lambda d: d.update(engines={
        "tensorrt_version": "10.3.0", "gpu_name": "Orin", "compute_capability": "8.7", "precision": "fp16",
        "stages": {"generator": file_ref(folder, "generator.engine")}}))
    m = load_manifest(folder)
    assert m.engines.precision == "fp16" and m.engine_file("generator") == folder / "generator.engine"
    with pytest.raises(ManifestError, match="no engine for stage 'avd'"):
        m.engine_file("avd")
    (folder / "generator.engine").write_bytes(b"other plan")
    with pytest.raises(ManifestError, match="generator.engine has sha256"):
        m.engine_file("generator")


def test_write_manifest_validates_before_writing(tmp_path):
    data = make_folder(tmp_path / "m")
    data["stages"]["generator"]["files"]["fp32"]["file"] = "missing.onnx"
    with pytest.raises(ManifestError, match="missing.onnx is missing"):
        write_manifest(tmp_path / "m", data)
    assert not (tmp_path / "m" / MANIFEST_NAME).exists()
    assert not [p for p in (tmp_path / "m").iterdir() if p.name.startswith(".")]


def test_write_manifest_is_atomic(folder, monkeypatch):
    """A write that dies half-way (disk full, kill) leaves the previous manifest whole and no temp file."""
    before = (folder / MANIFEST_NAME).read_bytes()
    data = json.loads(before)
    data["opset"] = 18  # a valid, different manifest
    real_write_text = Path.write_text

    def half_then_fail(self, text, *args, **kwargs):
        real_write_text(self, text[: len(text) // 2], *args, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", half_then_fail)
    with pytest.raises(InputError, match=r"manifest.json: no space left on the device holding .*nothing was written"):
        write_manifest(folder, data)
    monkeypatch.undo()
    assert (folder / MANIFEST_NAME).read_bytes() == before
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]
    assert load_manifest(folder).opset == 17
    write_manifest(folder, data)  # and a write that completes replaces it
    assert load_manifest(folder).opset == 18


def test_manifest_module_is_torch_free():
    code = ("import sys, jamsdk.manifest, jamsdk.manifest_write, jamsdk.model_files; "
            "bad = [m for m in ('torch', 'onnx', 'onnxruntime', 'tensorrt') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
