"""`jamsdk export` options, the CLI, and the typed errors; nothing half-written on failure."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from jamsdk.cli import main
from jamsdk.config import AvdConfig, load_model_config
from jamsdk.errors import CheckpointError, EngineError, InputError
from jamsdk.export import pipeline
from jamsdk.export.pipeline import export_checkpoint
from jamsdk.manifest import load_manifest

QUIET = {"log": lambda _line: None}


def leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


def test_cli_size_option_and_avd_auto(tiny_checkpoint, tmp_path, capsys):
    """--size 96 (the model was made at 64) and no meta.avd_trained: no avd graph, no avd mode."""
    out = tmp_path / "m96"
    assert main(["export", "--checkpoint", str(tiny_checkpoint), "--out", str(out), "--size", "96", "--precision", "fp32"]) == 0
    printed = capsys.readouterr().out
    assert "region_predictor" in printed and "avd: skipped" in printed and "done in" in printed
    m = load_manifest(out)
    assert m.image_size == 96 and m.model.image_size == 96 and m.precisions == ("fp32",)
    assert "avd" not in m.stages and m.modes == ("standard", "relative")
    assert m.data["export"]["trained_image_size"] == 64
    assert m.tensor_specs("generator")[1][0].shape == (1, 3, 96, 96)
    assert not (out / "generator.fp16.onnx").exists()
    # The 96² graph computes what the same weights compute in PyTorch at 96².
    from jamsdk.export.pipeline import load_for_export
    from jamsdk.export.samples import random_image

    model, *_ = load_for_export(tiny_checkpoint, 96)
    image = random_image(96, torch.Generator().manual_seed(0))
    sess = ort.InferenceSession(str(m.stage_file("region_predictor")), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"image": image.numpy()})
    with torch.no_grad():
        want = model.region_predictor(image)
    for g, key in zip(got, ("shift", "covar", "affine")):
        assert np.abs(g - want[key].numpy()).max() <= 1e-4


def test_cli_errors_are_one_line_exit_2(tmp_path, capsys):
    assert main(["export", "--checkpoint", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("jamsdk export: error: checkpoint") and "does not exist" in err and "\n" not in err


def test_missing_and_corrupt_checkpoint(tiny_checkpoint, tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        export_checkpoint(tmp_path / "nope.pt", tmp_path / "out", **QUIET)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(tiny_checkpoint.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="truncated.pt is corrupt or not a torch checkpoint"):
        export_checkpoint(truncated, tmp_path / "out", **QUIET)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(CheckpointError, match="garbage.pt"):
        export_checkpoint(garbage, tmp_path / "out", **QUIET)
    assert not (tmp_path / "out").exists()


def test_size_the_model_cannot_take_names_the_sizes_it_can(tiny_checkpoint, tmp_path):
    with pytest.raises(InputError, match=r"--size 48 does not fit .*divisible by 2\*\*num_blocks = 8.*Sizes it can take: 32, 64, 96, 128"):
        export_checkpoint(tiny_checkpoint, tmp_path / "out", size=48, **QUIET)
    with pytest.raises(InputError, match="expected a positive size"):
        export_checkpoint(tiny_checkpoint, tmp_path / "out", size=0, **QUIET)


@pytest.mark.parametrize("kwargs, match", [
    ({"opset": 20}, "--opset: expected one of \\(16, 17, 18, 19\\)"),
    ({"precision": "fp8"}, "--precision: expected one of"),
    ({"avd": "maybe"}, "--avd: expected one of"),
])
def test_bad_options(tiny_checkpoint, tmp_path, kwargs, match):
    with pytest.raises(InputError, match=match):
        export_checkpoint(tiny_checkpoint, tmp_path / "out", **kwargs, **QUIET)


def test_avd_on_without_an_avd_network(tmp_path):
    from jamsdk.model.checkpoint import save_checkpoint
    from jamsdk.model.jam import build_model

    cfg = dataclasses.replace(load_model_config("tiny-mraa"), avd=AvdConfig(enabled=False))
    save_checkpoint(tmp_path / "noavd.pt", build_model(cfg), cfg)
    with pytest.raises(InputError, match="--avd on: this model has no AVD network"):
        export_checkpoint(tmp_path / "noavd.pt", tmp_path / "out", avd="on", **QUIET)


def test_unwritable_or_foreign_output_folder(tiny_checkpoint, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="cannot write the output folder"):
        export_checkpoint(tiny_checkpoint, blocker / "out", **QUIET)
    with pytest.raises(InputError, match="exists and is a file"):
        export_checkpoint(tiny_checkpoint, blocker, **QUIET)
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "me.jpg").write_bytes(b"jpg")
    with pytest.raises(InputError, match="not empty and not a jamsdk model folder"):
        export_checkpoint(tiny_checkpoint, foreign, **QUIET)
    assert [p.name for p in foreign.iterdir()] == ["me.jpg"]


def test_failure_midway_leaves_nothing(tiny_checkpoint, tmp_path, monkeypatch):
    calls = []

    def broken(proto, name):
        calls.append(name)
        if len(calls) == 2:
            raise EngineError(f"{name}: simulated failure")
        return real(proto, name)

    real = pipeline.to_mixed_fp16
    monkeypatch.setattr(pipeline, "to_mixed_fp16", broken)
    with pytest.raises(EngineError, match="simulated failure"):
        export_checkpoint(tiny_checkpoint, tmp_path / "out", avd="off", **QUIET)
    assert calls == ["region_predictor", "generator_encoder"]
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


def test_failed_verify_keeps_the_previous_export(tiny_checkpoint, tmp_path, monkeypatch):
    from jamsdk.export import verify

    out = tmp_path / "out"
    export_checkpoint(tiny_checkpoint, out, precision="fp32", avd="off", **QUIET)
    before = (out / "manifest.json").read_bytes()

    def failing(manifest, model, **kwargs):
        return verify.VerifyReport([verify.Check("generator fp32 random prediction", 3e-3, 1e-4)])

    monkeypatch.setattr(verify, "verify_model_dir", failing)
    with pytest.raises(EngineError, match="verification failed .*generator fp32 random prediction = 0.003"):
        export_checkpoint(tiny_checkpoint, out, precision="fp32", avd="off", verify=True, **QUIET)
    assert (out / "manifest.json").read_bytes() == before and leftovers(tmp_path) == []
    # A successful export replaces the folder as a whole.
    export_checkpoint(tiny_checkpoint, out, precision="fp16", avd="off", **QUIET)
    assert json.loads((out / "manifest.json").read_text())["precisions"] == ["fp16"]
    assert not (out / "generator.onnx").exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("meta, flag, expected", [
    ({}, "auto", False),
    ({"avd_trained": False}, "auto", False),
    ({"avd_trained": True}, "auto", True),
    ({"converted_from": "mraa"}, "auto", True),
    ({"avd_trained": True}, "off", False),
    ({}, "on", True),
])
def test_avd_decision(meta, flag, expected):
    cfg = load_model_config("tiny-mraa")
    assert pipeline.avd_decision(cfg, {"meta": meta}, flag)[0] is expected
    no_avd = dataclasses.replace(cfg, avd=AvdConfig(enabled=False))
    if flag != "on":
        assert pipeline.avd_decision(no_avd, {"meta": meta}, flag) == (False, "the model has no AVD network")


def test_converted_mraa_checkpoint_exports_with_its_avd_network(tmp_path):
    """`convert-mraa` output exports like a jamsdk checkpoint; its AVD network counts as trained."""
    from pathlib import Path

    from jamsdk.config import read_yaml
    from jamsdk.model.jam import build_model
    from jamsdk.model.mraa_checkpoint import jam_key_to_mraa
    from jamsdk.model.mraa_config import model_config_from_mraa
    from jamsdk.model.mraa_import import convert_mraa

    mraa_yaml = Path(__file__).resolve().parents[1] / "data" / "mraa-tiny-mgif.yaml"
    torch.manual_seed(0)
    state = build_model(model_config_from_mraa(read_yaml(mraa_yaml), 64)).state_dict()
    mraa: dict = {"generator": {}, "region_predictor": {}, "bg_predictor": {}, "avd_network": {}}
    for key, value in state.items():
        section, rest = jam_key_to_mraa(key).split(".", 1)
        mraa[section][rest] = value
    torch.save(mraa, tmp_path / "mraa.pth")
    convert_mraa(tmp_path / "mraa.pth", mraa_yaml, tmp_path / "converted.pt", size=64)
    export_checkpoint(tmp_path / "converted.pt", tmp_path / "model", precision="fp32", **QUIET)
    m = load_manifest(tmp_path / "model")
    assert list(m.stages) == ["region_predictor", "generator_encoder", "avd", "dense_motion", "generator"]
    assert m.data["export"]["avd"] == "converted MRAA checkpoint with avd_network weights"
