"""ONNX Runtime's CPU graphs of an INT8 folder: chosen per stage by speed among those passing the gate."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

import jamsdk
from jamsdk.export.calibration import load_calibration
from jamsdk.export.checks import graph_problems, qdq_problems
from jamsdk.export.int8 import CANDIDATES, quantize_model
from jamsdk.export.int8_cpu import CLOSE_CALL, SPEED_MARGIN, choose, speed_verdict, time_graphs
from jamsdk.manifest import load_manifest
from jamsdk.stages import Stage

FRAMES = 4  # calibration frames of conftest's int8_dir

CHAIN = ("region_predictor", "generator_encoder", "dense_motion", "generator")


def _proto(tag: str) -> onnx.ModelProto:
    p = onnx.ModelProto()
    p.doc_string = tag
    return p


def _fixed_timer(seconds: dict[str, float], calls: list, rounds: int = 3):
    def timer(graphs, feeds, threads):
        calls.append(sorted(graphs))
        return {form: [seconds[form]] * rounds for form in graphs}
    return timer


def test_choose_takes_the_fastest_passing_form_and_needs_a_margin():
    forms = {"s8s8": _proto("s8"), "u8s8": _proto("u8")}
    calls: list = []
    c = choose(_proto("fp32"), forms, lambda p: 40.0, [{}], 35.0,
               timer=_fixed_timer({"fp32": 1.0, "s8s8": 0.6, "u8s8": 0.7}, calls))
    assert c.form == "s8s8" and calls == [["fp32", "s8s8", "u8s8"]]
    assert "s8s8 faster" in c.rejected["u8s8"]
    # 0.93× FP32 is within this machine's run-to-run spread: FP32 it stays (the old 0.95 margin kept it)
    c = choose(_proto("fp32"), {"s8s8": forms["s8s8"]}, lambda p: 40.0, [{}], 35.0,
               timer=_fixed_timer({"fp32": 1.0, "s8s8": 0.93}, []))
    assert c.form == "fp32" and f"≤ {SPEED_MARGIN:g}×" in c.rejected["s8s8"]
    assert c.summary()["over_fp32"]["s8s8"] == 0.93
    # the neighbour: just inside the margin (and not a close call) is kept
    c = choose(_proto("fp32"), {"s8s8": forms["s8s8"]}, lambda p: 40.0, [{}], 35.0,
               timer=_fixed_timer({"fp32": 1.0, "s8s8": SPEED_MARGIN - CLOSE_CALL - 0.01}, []))
    assert c.form == "s8s8"


def _rounds_timer(rounds_of: list[dict[str, list[float]]], calls: list):
    """A timer answering each call with the next set of per-round times."""
    def timer(graphs, feeds, threads):
        calls.append(sorted(graphs))
        return rounds_of[len(calls) - 1]
    return timer


def test_the_verdict_reads_per_round_ratios():
    """A busy phase slows both forms of its round: the ratios stay put, and one outlier round does not decide."""
    busy = {"fp32": [1.0, 1.0, 1.0, 3.0, 3.0, 3.0, 3.0], "s8s8": [0.8, 0.8, 0.8, 2.4, 2.4, 2.4, 2.4]}
    v = speed_verdict(busy, "s8s8")
    assert v.keep and v.ratio == pytest.approx(0.8) and v.rounds == 7
    outlier = {"fp32": [1.0] * 5, "s8s8": [0.7, 0.7, 2.5, 0.7, 0.7]}  # S8S8's third round hit by another job
    v = speed_verdict(outlier, "s8s8")
    assert v.keep and v.ratio == pytest.approx(0.7) and v.high == pytest.approx(2.5)
    assert "0.70× FP32 [0.70–2.50 over 5 rounds]" == v.text()
    slower = {"fp32": [1.0, 2.0, 1.0], "s8s8": [0.95, 1.9, 0.95]}
    assert not speed_verdict(slower, "s8s8").keep


def test_a_close_call_is_timed_again_and_decided_on_all_rounds():
    calls: list = []
    first = {"fp32": [1.0] * 3, "s8s8": [0.88, 0.89, 0.93]}   # median 0.89: within CLOSE_CALL of 0.90
    second = {"fp32": [1.0] * 3, "s8s8": [0.95, 0.96, 0.94]}
    c = choose(_proto("fp32"), {"s8s8": _proto("s8")}, lambda p: 40.0, [{}], 35.0,
               timer=_rounds_timer([first, second], calls))
    assert len(calls) == 2 and c.verdicts["s8s8"].rounds == 6
    assert c.form == "fp32"  # median of all six rounds 0.935
    # far from the margin: timed once
    calls.clear()
    c = choose(_proto("fp32"), {"s8s8": _proto("s8")}, lambda p: 40.0, [{}], 35.0,
               timer=_rounds_timer([{"fp32": [1.0] * 3, "s8s8": [0.5] * 3}], calls))
    assert len(calls) == 1 and c.form == "s8s8"
    assert c.summary()["over_fp32_rounds"]["s8s8"] == {"median": 0.5, "min": 0.5, "max": 0.5, "rounds": 3}


def test_choose_never_times_a_form_below_the_gate():
    calls: list = []
    db = {"s8": 30.0, "u8": 38.0}
    c = choose(_proto("fp32"), {"s8s8": _proto("s8"), "u8s8": _proto("u8")}, lambda p: db[p.doc_string],
               [{}], 35.0, timer=_fixed_timer({"fp32": 1.0, "s8s8": 0.1, "u8s8": 0.8}, calls))
    assert calls == [["fp32", "u8s8"]]  # the faster but too lossy S8S8 was not even timed
    assert c.form == "u8s8" and "30.0 dB < 35 dB" in c.rejected["s8s8"]
    # nothing passes: no timing at all, FP32
    calls.clear()
    c = choose(_proto("fp32"), {"s8s8": _proto("s8")}, lambda p: 1.0, [{}], 35.0,
               timer=_fixed_timer({}, calls))
    assert c.form == "fp32" and calls == [] and c.seconds == {}


def test_time_graphs_times_every_graph(int8_dir):
    out, _ = int8_dir
    m = load_manifest(out)
    proto = onnx.load(m.stage_file("generator", "fp32"))
    e = m.stage("generator")
    feed = {s.name: np.zeros(s.shape, np.float32) for s in e.inputs}
    t = time_graphs({"a": proto, "b": proto}, [feed], rounds=2, calls=1)
    assert set(t) == {"a", "b"} and all(len(v) == 2 and min(v) > 0 for v in t.values())


def test_int8_folder_records_the_cpu_choice_and_the_animator_runs_it(int8_dir):
    out, lines = int8_dir
    m = load_manifest(out)
    cpu = m.data["export"]["int8"]["cpu"]
    assert set(cpu["graphs"]) == set(CANDIDATES)
    for name in m.stages:
        assert "int8_cpu" in m.stage(name).files
        form = cpu["graphs"].get(name, "fp32")
        want = {"fp32": m.stage_file(name, "fp32"), "s8s8": m.stage_file(name, "int8"),
                "u8s8": out / f"{name}.int8-u8s8.onnx"}[form]
        assert m.stage_file(name, "int8", prefer="int8_cpu") == want
        if name in cpu["stages"]:
            rec = cpu["stages"][name]
            assert rec["graph"] == form and rec["ms"]["fp32"] > 0
            if form != "fp32":
                assert rec["over_fp32"][form] <= SPEED_MARGIN
        if form == "u8s8":  # ONNX Runtime's form: clean but for TensorRT's Q/DQ rules, which it breaks
            proto = onnx.load(want)
            e = m.stage(name)
            stage = Stage(name, e.per, e.inputs, e.outputs)
            assert graph_problems(proto, stage, m.align_corners, m.opset, qdq_rules=False) == []
            assert qdq_problems(proto)
    assert sum("on this CPU (ONNX Runtime)" in line for line in lines) == len(CANDIDATES)
    # the CPU provider opens the int8_cpu graph, other providers the TensorRT-clean int8 one
    from jamsdk.runtime.backends.onnxruntime import OnnxRuntimeBackend

    for name in CANDIDATES:
        b = OnnxRuntimeBackend.from_manifest(m, name, {"precision": "int8"})
        assert b.path == m.stage_file(name, "int8", prefer="int8_cpu")
        b = OnnxRuntimeBackend.from_manifest(m, name, {"precision": "int8", "providers": ["CPUExecutionProvider"]})
        assert b.path == m.stage_file(name, "int8", prefer="int8_cpu")
    with jamsdk.Animator(out, backend="onnxruntime", precision="int8") as anim:
        assert anim is not None


def test_speed_gate_keeps_fp32_on_the_cpu_when_int8_is_slower(int8_dir, clip_dir):
    """A timer that makes every INT8 form slower: the TensorRT graphs stay INT8, the CPU runs FP32."""
    out, _ = int8_dir
    m = load_manifest(out)
    clip = load_calibration(clip_dir, m.image_size, FRAMES)
    files = {n: m.stage_file(n, "fp32") for n in CHAIN}

    def slow_int8(graphs, feeds, threads):
        return {form: [1.0 if form == "fp32" else 1.5] * 3 for form in graphs}

    lines: list[str] = []
    accepted, report = quantize_model(files, clip, min_psnr=20.0, candidates=("generator",), log=lines.append,
                                      timer=slow_int8)
    assert set(accepted) == {"generator"}
    assert report.cpu["generator"].form == "fp32" and report.cpu_graphs == {}
    assert report.summary()["cpu"]["graphs"] == {"generator": "fp32"}
    assert any("→ fp32" in line for line in lines)


def test_no_cpu_speed_gate_writes_no_cpu_graphs(tiny_checkpoint, clip_dir, tmp_path):
    from jamsdk.cli import main

    out = tmp_path / "model"
    assert main(["export", "--checkpoint", str(tiny_checkpoint), "--out", str(out), "--precision", "int8",
                 "--calibration", str(clip_dir), "--calibration-frames", str(FRAMES), "--no-cpu-speed-gate"]) == 0
    m = load_manifest(out)
    assert "cpu" not in m.data["export"]["int8"]
    assert all("int8_cpu" not in m.stage(n).files for n in m.stages)
    assert all(m.stage_file(n, "int8", prefer="int8_cpu") == m.stage_file(n, "int8") for n in m.stages)
    assert not list(out.glob("*.int8-u8s8.onnx"))


@pytest.mark.parametrize("key", ["int8_gpu", "int8-cpu"])
def test_manifest_refuses_unknown_file_keys(int8_dir, tmp_path, key):
    import json
    import shutil

    out, _ = int8_dir
    copy = tmp_path / "m"
    shutil.copytree(out, copy)
    data = json.loads((copy / "manifest.json").read_text())
    data["stages"]["generator"]["files"][key] = data["stages"]["generator"]["files"]["fp32"]
    (copy / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(jamsdk.errors.InputError, match="unknown precision"):
        load_manifest(copy)


def test_the_gate_times_int8_against_the_fp32_graph_that_runs(int8_dir, clip_dir):
    """INT8 is quantized from one FP32 form (before the sub-pixel rewrite) but, where it stays FP32, the
    stage runs the written one: the speed gate must time INT8 against that (fp32_timed)."""
    out, _ = int8_dir
    m = load_manifest(out)
    clip = load_calibration(clip_dir, m.image_size, FRAMES)
    files = {n: m.stage_file(n, "fp32") for n in CHAIN}
    runs = onnx.load(str(files["generator"]))
    runs.doc_string = "the graph that runs"
    seen = []

    def timer(graphs, feeds, threads):
        seen.append(graphs["fp32"].doc_string)
        return {form: [1.0 if form == "fp32" else 0.5] * 3 for form in graphs}

    quantize_model(files, clip, min_psnr=20.0, candidates=("generator",), log=lambda _l: None, timer=timer,
                   openvino=False, fp32_timed={"generator": runs})
    assert seen == ["the graph that runs"]
