"""INT8 export: Q/DQ structure TensorRT accepts, parity with FP32, the quality gates' fallback, bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper

import jamsdk
from jamsdk.errors import InputError
from jamsdk.export.calibration import load_calibration
from jamsdk.export.checks import graph_problems, qdq_problems
from jamsdk.export.int8 import CANDIDATES, conv_counts, quantize_model, quantize_stage
from jamsdk.export.psnr import psnr
from jamsdk.export.pipeline import export_checkpoint
from jamsdk.manifest import load_manifest
from jamsdk.stages import Stage

QUIET = {"log": lambda _line: None}
FRAMES = 4  # calibration frames of conftest's int8_dir


def _stage(manifest, name):
    e = manifest.stage(name)
    return Stage(name, e.per, e.inputs, e.outputs)


def test_int8_folder_manifest_and_graph_structure(int8_dir):
    out, lines = int8_dir
    m = load_manifest(out)
    assert m.precisions == ("fp32", "int8")
    info = m.data["export"]["int8"]
    assert info["calibration"]["calibration_frames"] == FRAMES and info["calibration"]["held_out_frames"] >= 1
    assert set(info["stages"]) == set(CANDIDATES)
    assert info["quantized"], "no stage passed the gates on the tiny model"
    for name in m.stages:
        path = m.stage_file(name, "int8")
        if name not in info["quantized"]:
            assert path == m.stage_file(name, "fp32")  # left un-quantized: the FP32 graph serves
            continue
        assert path.name == f"{name}.int8.onnx"
        proto = onnx.load(path)
        assert graph_problems(proto, _stage(m, name), m.align_corners, m.opset) == []
        inits = {t.name: t for t in proto.graph.initializer}
        qdq = [n for n in proto.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
        assert qdq
        for n in qdq:  # symmetric INT8: every zero point an INT8 zero
            zp = inits[n.input[2]]
            assert zp.data_type == TensorProto.INT8 and not numpy_helper.to_array(zp).any()
        weights = [n for n in proto.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits]
        convs = {n.input[1]: n for n in proto.graph.node if n.op_type == "Conv"}
        for n in weights:  # per-channel weights on the output-channel axis, INT8 values
            w = inits[n.input[0]]
            assert w.data_type == TensorProto.INT8
            assert {a.name: a.i for a in n.attribute}["axis"] == 0
            assert numpy_helper.to_array(inits[n.input[1]]).shape == (w.dims[0],)
            assert n.output[0] in convs
        n_q, n_all = conv_counts(proto)
        assert 0 < n_q <= n_all
    assert any("int8:" in line and "held out" in line for line in lines)


def _without_cpu_choice(out, tmp_path):
    """A copy of the INT8 folder whose manifest has no ``int8_cpu`` files: ONNX Runtime runs the
    TensorRT-clean ``int8`` graphs, which the CPU speed gate may have passed over on this CPU."""
    import shutil

    copy = tmp_path / "int8-graphs"
    shutil.copytree(out, copy)
    data = json.loads((copy / "manifest.json").read_text())
    for entry in data["stages"].values():
        entry["files"].pop("int8_cpu", None)
    (copy / "manifest.json").write_text(json.dumps(data))
    return copy


def _animate(folder, precision, source, driving):
    with jamsdk.Animator(folder, backend="onnxruntime", mode="standard", precision=precision) as anim:
        anim.set_source_tensor(source.numpy())
        return np.concatenate([anim.run_tensor(driving[t:t + 1].numpy()) for t in range(len(driving))])


def test_int8_animator_close_to_fp32(int8_dir, tmp_path):
    out, _ = int8_dir
    from jamsdk.export.samples import synthetic_clip

    source, driving = synthetic_clip(64, 3, seed=5)
    fp32 = _animate(out, "fp32", source, driving)
    value = psnr(_animate(_without_cpu_choice(out, tmp_path), "int8", source, driving), fp32)
    assert 30.0 <= value < 200.0  # close, and not secretly the FP32 graphs
    # on this CPU: INT8 exactly where the speed gate chose it
    cpu = load_manifest(out).data["export"]["int8"]["cpu"]["graphs"]
    value = psnr(_animate(out, "int8", source, driving), fp32)
    assert (value == float("inf")) == all(form == "fp32" for form in cpu.values()), (value, cpu)


def test_fallback_when_a_stage_is_too_sensitive(tiny_checkpoint, clip_dir, tmp_path, capsys):
    """An unreachable --min-psnr (CLI) leaves every stage FP32; the manifest and the log say which and why."""
    from jamsdk.cli import main

    out = tmp_path / "model"
    assert main(["export", "--checkpoint", str(tiny_checkpoint), "--out", str(out), "--precision", "int8",
                 "--calibration", str(clip_dir), "--calibration-frames", str(FRAMES), "--min-psnr", "500"]) == 0
    lines = capsys.readouterr().out.splitlines()
    m = load_manifest(out)
    info = m.data["export"]["int8"]
    assert info["quantized"] == [] and set(info["fp32_fallback"]) == set(CANDIDATES)
    assert all("< --min-psnr 500 dB" in why for why in info["fp32_fallback"].values())
    assert all(m.stage_file(n, "int8") == m.stage_file(n, "fp32") for n in m.stages)
    assert not list(out.glob("*.int8.onnx"))
    assert sum("left FP32" in line for line in lines) == len(CANDIDATES)


def _with_outlier_channel(path, scale=1e4):
    """The graph at ``path`` with one output channel of its first Conv scaled by ``scale``.

    The FP32 graph just computes with a large channel; per-tensor INT8 activations then spend their
    whole range on that channel and round the others to a few levels: a stage made sensitive.
    """
    proto = onnx.load(path)
    conv = next(n for n in proto.graph.node if n.op_type == "Conv")
    for t in proto.graph.initializer:
        if t.name in conv.input[1:]:
            arr = numpy_helper.to_array(t).copy()
            arr[0] *= scale
            t.CopyFrom(numpy_helper.from_array(arr, t.name))
    return proto


def test_gate_rejects_only_the_perturbed_stage(int8_dir, clip_dir, tmp_path):
    out, _ = int8_dir
    m = load_manifest(out)
    clip = load_calibration(clip_dir, m.image_size, FRAMES)
    files = {n: m.stage_file(n, "fp32") for n in ("region_predictor", "generator_encoder", "dense_motion",
                                                  "generator")}
    files["generator"] = tmp_path / "generator.onnx"
    onnx.save(_with_outlier_channel(m.stage_file("generator", "fp32")), files["generator"])
    lines: list[str] = []
    accepted, report = quantize_model(files, clip, min_psnr=30.0, candidates=("generator", "dense_motion"),
                                      log=lines.append)
    assert set(accepted) == {"dense_motion"}, report.stages
    assert report.fallback.keys() == {"generator"} and "< --min-psnr 30 dB" in report.fallback["generator"]
    assert any("generator" in line and "left FP32" in line for line in lines)


def test_qdq_check_catches_what_tensorrt_refuses(int8_dir):
    out, _ = int8_dir
    m = load_manifest(out)
    name = load_manifest(out).data["export"]["int8"]["quantized"][0]
    clean = onnx.load(m.stage_file(name, "int8"))
    assert qdq_problems(clean) == []

    def mutated(fn):
        proto = onnx.ModelProto()
        proto.CopyFrom(clean)
        fn(proto)
        return qdq_problems(proto)

    def nonzero_zero_point(proto):
        node = next(n for n in proto.graph.node if n.op_type == "QuantizeLinear")
        zp = next(t for t in proto.graph.initializer if t.name == node.input[2])
        zp.CopyFrom(numpy_helper.from_array(np.array(3, np.int8), zp.name))

    def wrong_axis(proto):
        inits = {t.name for t in proto.graph.initializer}
        node = next(n for n in proto.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits)
        next(a for a in node.attribute if a.name == "axis").i = 1

    def uint8_zero_point(proto):
        node = next(n for n in proto.graph.node if n.op_type == "QuantizeLinear")
        zp = next(t for t in proto.graph.initializer if t.name == node.input[2])
        zp.CopyFrom(numpy_helper.from_array(np.array(0, np.uint8), zp.name))

    assert any("zero point not 0" in p for p in mutated(nonzero_zero_point))
    assert any("axis 0, got axis 1" in p for p in mutated(wrong_axis))
    assert any("zero point type UINT8" in p for p in mutated(uint8_zero_point))


def test_u8s8_variant_is_flagged_for_tensorrt(int8_dir, clip_dir):
    """ONNX Runtime's x86 default (asymmetric UINT8 activations, INT32 biases) is not TensorRT's scheme."""
    out, _ = int8_dir
    m = load_manifest(out)
    clip = load_calibration(clip_dir, m.image_size, FRAMES)
    from jamsdk.export.calibration import StageChain

    record: dict[str, list] = {}
    StageChain({n: m.stage_file(n, "fp32") for n in ("region_predictor", "generator_encoder", "dense_motion",
                                                     "generator")}).animate(clip.source, clip.calibration[:2], record)
    feeds = record["generator"]
    problems = qdq_problems(quantize_stage(m.stage_file("generator", "fp32"), "generator", feeds, "u8s8"))
    assert any("UINT8" in p for p in problems) and any("INT32" in p for p in problems)
    assert qdq_problems(quantize_stage(m.stage_file("generator", "fp32"), "generator", feeds, "s8s8")) == []


# -- bad input ---------------------------------------------------------------------------------

def test_int8_without_calibration_writes_nothing(tiny_checkpoint, tmp_path):
    out = tmp_path / "model"
    with pytest.raises(InputError, match="--calibration VIDEO"):
        export_checkpoint(tiny_checkpoint, out, precision="int8", **QUIET)
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["missing", "unreadable", "short"])
def test_bad_calibration_clip(tiny_checkpoint, clip_dir, tmp_path, kind):
    out = tmp_path / "model"
    if kind == "missing":
        clip, match, frames = tmp_path / "nope.mp4", "no such file", FRAMES
    elif kind == "unreadable":
        clip = tmp_path / "broken.mp4"
        clip.write_bytes(b"not a video at all")
        match, frames = "cannot open|no frame could be decoded", FRAMES
    else:
        clip, match, frames = clip_dir, "7 driving frame.*needs at least 9", 8
    with pytest.raises(InputError, match=match):
        export_checkpoint(tiny_checkpoint, out, precision="all", calibration=clip, calibration_frames=frames,
                          **QUIET)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["broken.mp4"])


def test_animator_int8_on_a_folder_without_int8(tmp_path):
    import shutil

    from jamsdk.config import CONFIG_DIR

    folder = tmp_path / "fp32-only"
    shutil.copytree(CONFIG_DIR.parent / "assets" / "demo_model", folder)  # FP32 graphs only
    with pytest.raises(InputError, match="no 'int8' graph.*--precision int8 --calibration"):
        jamsdk.Animator(folder, backend="onnxruntime", precision="int8")


def test_cli_int8_without_calibration(tiny_checkpoint, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "jamsdk", "export", "--checkpoint", str(tiny_checkpoint),
                           "--out", str(tmp_path / "m"), "--precision", "int8"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "--calibration VIDEO" in proc.stderr + proc.stdout and "Traceback" not in proc.stderr
    assert not (tmp_path / "m").exists()


def test_manifest_reads_int8_engines_record(int8_dir, tmp_path):
    """An engines section built from the INT8 graphs (``jamsdk build --precision int8``) validates."""
    import shutil

    out, _ = int8_dir
    copy = tmp_path / "m"
    shutil.copytree(out, copy)
    data = json.loads((copy / "manifest.json").read_text())
    (copy / "generator.engine").write_bytes(b"plan")
    from jamsdk.model_files import sha256_file

    data["engines"] = {"tensorrt_version": "10.3.0", "gpu_name": "Orin", "compute_capability": "8.7",
                       "precision": "int8", "stages": {"generator": {"file": "generator.engine",
                                                                     "sha256": sha256_file(copy / "generator.engine")}}}
    (copy / "manifest.json").write_text(json.dumps(data))
    assert load_manifest(copy).engines.precision == "int8"


def test_cli_bench_and_animate_int8(int8_dir, clip_dir, tmp_path, capsys):
    """jamsdk bench --precision int8 and jamsdk animate --precision int8 run the INT8 graphs."""
    from jamsdk.cli import main

    out, _ = int8_dir
    report = tmp_path / "bench.json"
    assert main(["bench", "--model", str(out), "--backend", "onnxruntime", "--precision", "int8", "--frames", "2",
                 "--warmup", "0", "--threads", "1", "--no-progress", "--json", str(report)]) == 0
    assert json.loads(report.read_text())["settings"]["precision"] == "int8"
    video = tmp_path / "out.mp4"
    assert main(["animate", "--model", str(out), "--source", str(clip_dir / "000.png"), "--driving", str(clip_dir),
                 "--out", str(video), "--backend", "onnxruntime", "--precision", "int8", "--no-progress"]) == 0
    assert video.is_file() and video.stat().st_size > 0


def test_the_closing_summary_says_each_target_s_choice():
    # TensorRT's gates took all three stages, this CPU kept two in FP32 and OpenVINO one: the summary
    # said "3 stage(s) in INT8" above lines that chose FP32 for some.
    from jamsdk.export.int8 import Int8Report
    from jamsdk.export.int8_cpu import CpuChoice

    report = Int8Report(35.0, "s8s8", {}, psnr_calibration=40.0, psnr_held_out=39.0)
    for name in ("generator", "dense_motion", "region_predictor"):
        report.stages[name] = {"int8": True}
    report.cpu = {"generator": CpuChoice("s8s8"), "dense_motion": CpuChoice("fp32"),
                  "region_predictor": CpuChoice("fp32")}
    report.cpu_psnr = {"calibration": 45.0, "held_out": 44.0}
    report.openvino_graphs = {"generator": "int8", "dense_motion": "int8", "region_predictor": "fp32"}
    report.openvino = {"psnr_db_end_to_end": {"calibration": 41.0, "held_out": 34.0}}
    trt, cpu, ov = report.summary_lines()
    assert trt.startswith("int8: TensorRT's graphs (<stage>.int8.onnx): 3 of 3 stage(s) INT8 (generator int8, "
                          "dense_motion int8, region_predictor int8); end to end vs FP32 40.0 dB")
    assert cpu.startswith("int8: ONNX Runtime on this CPU: 1 of 3 stage(s) INT8 (generator s8s8, dense_motion fp32, "
                          "region_predictor fp32); end to end vs FP32 45.0 dB on the calibration frames, 44.0 dB held")
    assert "BELOW" not in trt + cpu
    assert "2 of 3 stage(s) INT8 (generator int8, dense_motion int8, region_predictor fp32)" in ov
    assert ov.endswith("34.0 dB held out — BELOW --min-psnr 35 dB on held-out frames")
    # The neighbour: a stage the gates refused is FP32 on every line.
    report.stages["region_predictor"] = {"int8": False}
    assert "2 of 3 stage(s) INT8" in report.summary_lines()[0]
