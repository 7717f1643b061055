"""INT8 export judged on OpenVINO too: the manifest's record, the int8_openvino files, the Animator on them."""

from __future__ import annotations

import importlib.util
import json
import shutil

import numpy as np
import pytest

import jamsdk
from jamsdk.export.calibration import StageChain, load_calibration
from jamsdk.export.int8 import CANDIDATES, quantize_model
from jamsdk.export.psnr import psnr
from jamsdk.export.int8_cpu import SPEED_MARGIN
from jamsdk.export.int8_openvino import OpenVINOChain, time_openvino
from jamsdk.manifest import load_manifest

if importlib.util.find_spec("openvino") is None:  # not importorskip: a plain `import openvino` starts its telemetry
    pytest.skip("openvino is not installed", allow_module_level=True)

FRAMES = 4  # calibration frames of conftest's int8_dir
CHAIN = ("region_predictor", "generator_encoder", "dense_motion", "generator")


def _animate(folder, backend, precision, source, driving):
    with jamsdk.Animator(folder, backend=backend, mode="standard", precision=precision, threads=1) as anim:
        anim.set_source_tensor(source.numpy())
        return np.concatenate([anim.run_tensor(driving[t:t + 1].numpy()) for t in range(len(driving))])


def test_manifest_records_openvino_and_the_animator_runs_its_graphs(int8_dir):
    out, lines = int8_dir
    m = load_manifest(out)
    info = m.data["export"]["int8"]
    ov = info["openvino"]
    assert ov["runtime"].startswith("openvino ") and ov["threads"] is None and "cpu_flags" in ov
    assert set(ov["graphs"]) == set(CHAIN)
    assert set(ov["stages"]) == set(info["quantized"])  # every stage the gates accepted was judged again
    for name, rec in ov["stages"].items():
        assert rec["ms"]["fp32"] > 0 and rec["ms"]["int8"] > 0
        if rec["graph"] == "int8":
            assert rec["over_fp32"] <= SPEED_MARGIN and rec["psnr_db_end_to_end"] >= info["min_psnr_db"]
        else:
            assert rec["rejected"]
    for name in m.stages:
        want = m.stage_file(name, "int8" if ov["graphs"].get(name) == "int8" else "fp32")
        assert m.stage_file(name, "int8", prefer="int8_openvino") == want
    assert isinstance(ov["psnr_db_end_to_end"]["held_out"], (float, str)) and "held_out_ok" in ov
    assert any("on OpenVINO, end to end vs FP32" in line for line in lines)
    with jamsdk.Animator(out, backend="openvino", precision="int8") as anim:
        for name, b in anim._backends.items():
            assert b.path == m.stage_file(name, "int8", prefer="int8_openvino")


def test_openvino_runs_the_int8_graphs_as_onnxruntime_does(int8_dir, tmp_path):
    """Forced onto the S8S8 graphs (the export's choice removed), OpenVINO's frames are INT8 frames:
    close to FP32 and to ONNX Runtime's run of the same graphs, and not the FP32 graphs in disguise."""
    out, _ = int8_dir
    copy = tmp_path / "s8s8"
    shutil.copytree(out, copy)
    data = json.loads((copy / "manifest.json").read_text())
    for entry in data["stages"].values():
        entry["files"].pop("int8_cpu", None)
        entry["files"].pop("int8_openvino", None)
    (copy / "manifest.json").write_text(json.dumps(data))
    from jamsdk.export.samples import synthetic_clip

    source, driving = synthetic_clip(64, 3, seed=5)
    fp32 = _animate(copy, "onnxruntime", "fp32", source, driving)
    ov8, ort8 = (_animate(copy, b, "int8", source, driving) for b in ("openvino", "onnxruntime"))
    assert 30.0 <= psnr(ov8, fp32) < 200.0
    assert psnr(ov8, ort8) >= 35.0


def test_openvino_chain_equals_the_onnxruntime_chain_in_fp32(int8_dir, clip_dir):
    out, _ = int8_dir
    m = load_manifest(out)
    clip = load_calibration(clip_dir, m.image_size, FRAMES)
    files = {n: m.stage_file(n, "fp32") for n in CHAIN}
    a = StageChain(files).animate(clip.source, clip.calibration)
    b = OpenVINOChain(files).animate(clip.source, clip.calibration)
    assert np.abs(a - b).max() <= 1e-4


def test_openvino_gate_keeps_fp32_when_its_psnr_is_too_low(int8_dir, clip_dir):
    """A --min-psnr no INT8 graph can reach on OpenVINO's judge, after the ONNX Runtime gates passed it."""
    out, _ = int8_dir
    m = load_manifest(out)
    clip = load_calibration(clip_dir, m.image_size, FRAMES)
    files = {n: m.stage_file(n, "fp32") for n in CHAIN}
    accepted, report = quantize_model(files, clip, min_psnr=20.0, candidates=("generator",), cpu=False,
                                      openvino=True, log=lambda _l: None)
    assert set(accepted) == {"generator"}
    assert report.openvino["stages"]["generator"]["psnr_db_end_to_end"] >= 20.0
    from jamsdk.export.int8_openvino import choose_openvino_graphs
    ref_cal = StageChain(files).animate(clip.source, clip.calibration)
    ref_held = StageChain(files).animate(clip.source, clip.held_out)
    record: dict[str, list] = {}
    StageChain(files).animate(clip.source, clip.calibration, record)
    graphs, summary = choose_openvino_graphs(files, accepted, record, clip, (ref_cal, ref_held), 500.0,
                                             ("generator",), None, log=lambda _l: None)
    assert graphs["generator"] == "fp32" and "dB < 500 dB" in summary["stages"]["generator"]["rejected"]


def test_time_openvino_times_every_graph(int8_dir):
    out, _ = int8_dir
    m = load_manifest(out)
    e = m.stage("generator")
    feed = {s.name: np.zeros(s.shape, np.float32) for s in e.inputs}
    path = str(m.stage_file("generator", "fp32"))
    t = time_openvino({"a": path, "b": path}, [feed], rounds=2, calls=1)
    assert set(t) == {"a", "b"} and all(len(v) == 2 and min(v) > 0 for v in t.values())
