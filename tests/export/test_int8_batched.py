"""Batched INT8 graphs (`export --precision int8 --batch-sizes`): calibrated like batch 1's, judged per size and runtime."""

from __future__ import annotations

import importlib.util
import shutil

import numpy as np
import onnx
import pytest

from jamsdk.errors import ManifestError
from jamsdk.export.batched import batched_file
from jamsdk.export.checks import qdq_problems
from jamsdk.export.int8_batched import JUDGED, stacked_feeds
from jamsdk.manifest import load_manifest

ort = pytest.importorskip("onnxruntime")
OPENVINO = importlib.util.find_spec("openvino") is not None


def _int8_export(folder):
    return load_manifest(folder).data["export"]["int8"]


def _activation_scales(proto: onnx.ModelProto) -> list[float]:
    """The QuantizeLinear scales of activations (not weights), sorted: what calibration decided."""
    from onnx import numpy_helper

    inits = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    out = [float(inits[n.input[1]]) for n in proto.graph.node
           if n.op_type == "QuantizeLinear" and n.input[1] in inits and inits[n.input[1]].size == 1]
    return sorted(out)


def test_every_size_has_int8_graphs_of_the_accepted_stages(tiny_batched_int8):
    m = load_manifest(tiny_batched_int8)
    info = _int8_export(tiny_batched_int8)
    assert m.batch_sizes == (1, 2, 4)
    for name, per_size in m.batched.items():
        for b, files in per_size.items():
            assert {"fp32", "int8", "int8_cpu"} <= set(files)
            if name in info["quantized"]:
                assert files["int8"].file == batched_file(name, b, "int8")
                proto = onnx.load(str(m.model_dir / files["int8"].file))
                assert qdq_problems(proto) == []  # TensorRT's rules, as the batch-1 graphs
                dims = [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
                assert dims[0] == b
            else:  # left FP32 at batch 1: FP32 at every size
                assert files["int8"] == files["fp32"]
    assert "generator" in info["quantized"]


def test_batched_graphs_have_the_batch1_scales_and_rows(tiny_batched_int8):
    """Calibrated like batch 1: the same activation scales, and each row computes the batch-1 graph's result."""
    m = load_manifest(tiny_batched_int8)
    one = onnx.load(str(m.stage_file("generator", "int8")))
    four = onnx.load(str(m.stage_file("generator", "int8", 4)))
    assert _activation_scales(four) == pytest.approx(_activation_scales(one), rel=1e-6)
    assert len(_activation_scales(one)) > 5

    rng = np.random.default_rng(0)
    e = m.stage("generator")
    rows = [{s.name: rng.random(s.shape, np.float32) for s in e.inputs} for _ in range(4)]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    s1 = ort.InferenceSession(str(m.stage_file("generator", "int8")), opts, providers=["CPUExecutionProvider"])
    s4 = ort.InferenceSession(str(m.stage_file("generator", "int8", 4)), opts, providers=["CPUExecutionProvider"])
    want = np.concatenate([s1.run(None, r)[0] for r in rows])
    got = s4.run(None, {k: np.concatenate([r[k] for r in rows]) for k in rows[0]})[0]
    assert np.abs(got - want).max() <= 1e-4
    assert np.abs(want[0] - want[1]).max() > 1e-2  # the rows differ: equality is not trivial


def test_every_size_is_judged_on_each_runtime(tiny_batched_int8):
    info = _int8_export(tiny_batched_int8)
    judged = info["batched"]["sizes"]
    assert sorted(judged) == ["2", "4"]
    runtimes = ["onnxruntime"] + (["openvino"] if OPENVINO else [])
    for size in judged.values():
        assert sorted(size) == sorted(runtimes)
        for verdict in size.values():
            assert verdict["ok"] and verdict["psnr_db_held_out"] >= info["min_psnr_db"]
    log = (tiny_batched_int8.parent / "export.log").read_text()
    assert "int8: batch 4 on onnxruntime: end to end" in log


def _report_and_section(folder, tmp_path, min_psnr):
    """The INT8 report of a fresh quantization of ``folder``'s FP32 graphs and a copy of its batched FP32 section."""
    from jamsdk.config import CONFIG_DIR
    from jamsdk.export.calibration import load_calibration
    from jamsdk.export.int8 import quantize_model

    m = load_manifest(folder)
    work = tmp_path / "m"
    shutil.copytree(folder, work)
    clip = load_calibration(CONFIG_DIR.parent / "assets" / "example_driving.mp4", m.image_size, 4)
    files = {n: work / m.stages[n].files["fp32"].file
             for n in ("region_predictor", "generator_encoder", "dense_motion", "generator")}
    _, report = quantize_model(files, clip, min_psnr=20.0, threads=1, log=lambda _l: None, cpu=False,
                               openvino=False)
    report.min_psnr = min_psnr
    section = {"sizes": [2], "stages": {name: {"2": {"fp32": {"file": batched_file(name, 2, "fp32")}}}
                                        for name in m.batched}}
    return m, work, report, section


@pytest.mark.parametrize("min_psnr, kept", [(20.0, True), (500.0, False)])
def test_a_size_below_the_gate_runs_fp32(tiny_batched_int8, tmp_path, min_psnr, kept):
    from jamsdk.export.int8_batched import add_batched_int8

    m, work, report, section = _report_and_section(tiny_batched_int8, tmp_path, min_psnr)
    lines: list[str] = []
    record = add_batched_int8(section, work, {n: _stage(m, n) for n in m.batched}, report, m.align_corners,
                              m.opset, 1, lines.append)
    verdict = record["sizes"]["2"]["onnxruntime"]
    assert verdict["ok"] is kept and set(record["sizes"]["2"]) == {"onnxruntime"}  # OpenVINO not judged at batch 1
    gen = section["stages"]["generator"]["2"]
    if kept:
        assert gen["int8"]["file"] == batched_file("generator", 2, "int8")
    else:  # the judged key falls back to the batched FP32 graphs of every stage
        assert gen["int8"]["file"] == gen["fp32"]["file"]
        assert "FP32 (below --min-psnr 500 dB)" in lines[-1]
    assert all(name in section["stages"] for name in JUDGED)


def _stage(m, name):
    from jamsdk.stages import Stage

    e = m.stage(name)
    return Stage(name, e.per, e.inputs, e.outputs)


def test_stacked_feeds_use_every_row_once_and_fill_the_last_group():
    rows = [{"x": np.full((1, 2), i, np.float32)} for i in range(5)]
    groups = stacked_feeds(rows, 2)
    assert [g["x"][:, 0].tolist() for g in groups] == [[0, 1], [2, 3], [4, 0]]
    assert [g["x"][:, 0].tolist() for g in stacked_feeds(rows, 5)] == [[0, 1, 2, 3, 4]]
    assert stacked_feeds([], 4) == []


def test_manifest_int8_folder_without_batched_int8_still_loads(tiny_batched_int8, edited_copy):
    """INT8 folders exported before batched INT8 existed list fp32 only per batched size."""
    def drop(data):
        for per_size in data["batched"]["stages"].values():
            for files in per_size.values():
                for key in ("int8", "int8_cpu", "int8_openvino"):
                    files.pop(key, None)

    m = load_manifest(edited_copy(tiny_batched_int8, drop))
    assert "int8" not in m.batched["generator"][4]
    with pytest.raises(ManifestError, match="no int8 graph of stage 'generator' for batch 4"):
        m.stage_file("generator", "int8", 4)


@pytest.mark.parametrize("key, says", [("int8_cpu", "without 'int8'"), ("int8_gpu", "and optionally")])
def test_manifest_refuses_odd_batched_int8_keys(tiny_batched_int8, edited_copy, key, says):
    def edit(data):
        files = data["batched"]["stages"]["generator"]["2"]
        if key == "int8_cpu":
            files.pop("int8")
            files.pop("int8_openvino", None)
        else:
            files[key] = files["fp32"]

    with pytest.raises(ManifestError, match=says):
        load_manifest(edited_copy(tiny_batched_int8, edit))


def test_fp32_folder_may_not_list_batched_int8(tiny_batched, edited_copy):
    def edit(data):
        files = data["batched"]["stages"]["generator"]["2"]
        files["int8"] = files["fp32"]

    with pytest.raises(ManifestError, match=r"expected files for \['fp32'\], got"):
        load_manifest(edited_copy(tiny_batched, edit))


def test_runtimes_open_their_own_batched_int8_files(tiny_batched_int8):
    m = load_manifest(tiny_batched_int8)
    for name in m.batched:
        files = m.batched[name][4]
        assert m.stage_file(name, "int8", 4, prefer="int8_cpu") == m.model_dir / files["int8_cpu"].file
        assert m.stage_file(name, "int8", 4) == m.model_dir / files["int8"].file
        if "int8_openvino" in files:
            assert m.stage_file(name, "int8", 4, prefer="int8_openvino") == m.model_dir / files["int8_openvino"].file


def test_only_the_generators_int8_graphs_are_quantized_from_the_subpixel_form(tiny_batched_int8):
    """OpenVINO ran quantized sub-pixel hourglasses far from FP32 (jamsdk.export.rewrite.SUBPIXEL_INT8):
    the FP32 graphs have the sub-pixel up blocks; the hourglasses' INT8 ones (batch 1 and batched) the
    Resize + 3×3 form, the generator's the sub-pixel form (4/9 of its up blocks' MACs in INT8 too)."""
    from jamsdk.export.rewrite import SUBPIXEL_INT8

    assert SUBPIXEL_INT8 == {"generator"}
    m = load_manifest(tiny_batched_int8)
    assert {"dense_motion", "generator"} <= set(m.data["export"]["fp32_rewrites"]["subpixel_convs"])
    info = _int8_export(tiny_batched_int8)
    assert {"generator", "dense_motion"} <= set(info["quantized"])
    for name in info["quantized"]:
        fp32 = onnx.load(str(m.stage_file(name, "fp32"))).graph.node
        assert any("/phase00" in n.name for n in fp32)
        for b in (1, 2, 4):
            int8 = onnx.load(str(m.stage_file(name, "int8", b))).graph.node
            subpixel = any("/phase" in n.name for n in int8)
            assert subpixel == (name == "generator"), (name, b)
            assert any(n.op_type == "DequantizeLinear" for n in int8), (name, b)
            if name != "generator":
                assert any(n.op_type == "Resize" for n in int8), (name, b)
