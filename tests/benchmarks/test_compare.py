"""Smoke test of benchmarks/compare.py on the tiny configs (the real run is jam-256 vs mraa-256)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxsim")

# benchmarks/ is a folder of scripts, not a package: its modules import as top-level modules.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import compare  # noqa: E402

ROWS = ("baseline_eager", "candidate_eager", "candidate_jamsdk", "candidate_jamsdk_int8")


@pytest.fixture(autouse=True)
def _restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_tiny_configs_end_to_end(tmp_path, capsys):
    md, png, js = tmp_path / "c.md", tmp_path / "c.png", tmp_path / "c.json"
    rc = compare.main(["--config-baseline", "tiny-mraa", "--config-candidate", "tiny-jam", "--threads", "1",
                       "--rounds", "1", "--frames", "2", "--warmup", "0", "--weights", "random",
                       "--markdown", str(md), "--png", str(png), "--json", str(js)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert printed == md.read_text()
    for label in ("tiny-mraa PyTorch eager", "tiny-jam PyTorch eager", "tiny-jam jamsdk (ONNX Runtime FP32)",
                  "tiny-jam jamsdk (ONNX Runtime INT8)", "INT8 row:", "jamsdk INT8 |",
                  "Target:", "Where the time goes", "generator_encoder (source)", "set_source"):
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
    ratio = jam["latency_ms"]["median"] / r["rows"]["baseline_eager"]["latency_ms"]["median"]
    assert r["target"]["ratio"] == pytest.approx(ratio) and r["target"]["met"] == (ratio <= 0.2)
    assert f"{ratio:.3f}" in printed
    import cv2

    img = cv2.imread(str(png))
    assert img is not None and img.shape == (510, 1200, 3) and img.std() > 10


def test_configs_of_different_sizes_are_refused(capsys):
    rc = compare.main(["--config-baseline", "tiny-mraa", "--config-candidate", "jam-256", "--rounds", "1"])
    assert rc == 2
    assert "must share a resolution" in capsys.readouterr().err
