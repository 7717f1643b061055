"""Smoke test of benchmarks/compare.py on the tiny configs (the real run is jam-256 vs mraa-256)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxsim")

# benchmarks/ is a folder of scripts, not a package: its modules import as top-level modules.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import compare  # noqa: E402

import importlib.util

OPENVINO = importlib.util.find_spec("openvino") is not None
ROWS = ("baseline_eager", "candidate_eager", "candidate_jamsdk", "candidate_jamsdk_int8") + (
    ("candidate_jamsdk_openvino", "candidate_jamsdk_openvino_int8") if OPENVINO else ())


def test_tiny_configs_end_to_end(tmp_path, capsys):
    md, png, js = tmp_path / "c.md", tmp_path / "c.png", tmp_path / "c.json"
    rc = compare.main(["--config-baseline", "tiny-mraa", "--config-candidate", "tiny-jam", "--threads", "1",
                       "--rounds", "1", "--frames", "2", "--warmup", "0", "--weights", "random",
                       "--markdown", str(md), "--png", str(png), "--json", str(js)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert printed == md.read_text()
    for label in ("tiny-mraa PyTorch eager", "tiny-jam PyTorch eager", "tiny-jam jamsdk (ONNX Runtime FP32)",
                  "tiny-jam jamsdk (ONNX Runtime INT8)", "jamsdk ONNX Runtime INT8 |", "flags ",
                  "Target:", "Where the time goes", "generator_encoder (source)", "set_source", "1-min load"):
        assert label in printed
    r = json.loads(js.read_text())
    assert (r["baseline"], r["candidate"], r["image_size"]) == ("tiny-mraa", "tiny-jam", 64)
    for key in ROWS:
        lat = r["rows"][key]["latency_ms"]
        assert lat["count"] == 2 and 0 < lat["p10"] <= lat["median"] <= lat["p90"]
        assert len(r["samples_ms"][key]) == 2
    for key in ROWS[:2]:  # eager loops: every stage timed on every timed frame
        stages = r["rows"][key]["stages_ms"]
        assert list(stages) == ["region_predictor", "dense_motion", "generator_encoder", "generator"]
        assert all(s["count"] == 2 and s["median"] > 0 for s in stages.values())
        assert sum(s["median"] for s in stages.values()) <= r["rows"][key]["latency_ms"]["median"] * 1.5
    q = r["rows"]["candidate_jamsdk_int8"]
    assert list(q["stages_ms"]) == ["region_predictor", "dense_motion", "generator"]
    assert set(q["int8"]["quantized"]) | set(q["int8"]["fp32_fallback"]) == {"generator", "dense_motion",
                                                                             "region_predictor"}
    assert r["ratios"]["candidate_jamsdk_int8/candidate_jamsdk"] == pytest.approx(
        q["latency_ms"]["median"] / r["rows"]["candidate_jamsdk"]["latency_ms"]["median"])
    jam = r["rows"]["candidate_jamsdk"]
    assert list(jam["stages_ms"]) == ["region_predictor", "dense_motion", "generator"] and jam["set_source_ms"] > 0
    base = r["rows"]["baseline_eager"]["latency_ms"]["median"]
    jamsdk_rows = [k for k in ROWS if k.startswith("candidate_jamsdk")]
    best = min(jamsdk_rows, key=lambda k: r["rows"][k]["latency_ms"]["median"])
    ratio = r["rows"][best]["latency_ms"]["median"] / base
    assert r["target"]["row"] == best and r["target"]["ratio"] == pytest.approx(ratio)
    assert r["target"]["met"] == (ratio <= compare.TARGET_RATIO) and f"{ratio:.3f}" in printed
    assert compare.TARGET_RATIO == 0.10  # the goal for the best single-stream row
    assert r["fp32_target"]["row"] in ("candidate_jamsdk", "candidate_jamsdk_openvino")
    for key in jamsdk_rows:
        assert r["ratios"][f"{key}/baseline_eager"] == pytest.approx(r["rows"][key]["latency_ms"]["median"] / base)
    if OPENVINO:
        assert "tiny-jam jamsdk (OpenVINO INT8)" in printed and r["machine"]["openvino"]
        assert set(r["rows"]["candidate_jamsdk_openvino_int8"]["int8"]["openvino_graphs"]) >= {"generator"}
    import cv2

    img = cv2.imread(str(png))
    assert img is not None and img.shape == (420 + 90 * (len(ROWS) - 3), 1200, 3) and img.std() > 10


def test_configs_of_different_sizes_are_refused(capsys):
    rc = compare.main(["--config-baseline", "tiny-mraa", "--config-candidate", "jam-256", "--rounds", "1"])
    assert rc == 2
    assert "must share a resolution" in capsys.readouterr().err


def test_model_without_int8_is_refused_before_timing(tiny_batched, capsys):
    """--model runs an existing folder; one without INT8 graphs is named (unless --no-int8)."""
    rc = compare.main(["--config-baseline", "tiny-mraa", "--config-candidate", "tiny-jam", "--model",
                       str(tiny_batched), "--rounds", "1", "--frames", "1", "--warmup", "0"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "has no INT8 graphs" in err and str(tiny_batched) in err
