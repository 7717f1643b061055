"""Smoke tests of benchmarks/cpu_backends.py and benchmarks/fp32_rewrite.py on tiny models."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")
if importlib.util.find_spec("openvino") is None:  # not importorskip: a plain `import openvino` starts its telemetry
    pytest.skip("openvino is not installed", allow_module_level=True)
pytest.importorskip("torch")

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import cpu_backends  # noqa: E402
import fp32_rewrite  # noqa: E402


def test_cpu_backends_on_a_folder(tiny_batched, tmp_path, capsys):
    js = tmp_path / "r.json"
    assert cpu_backends.main(["--model", str(tiny_batched), "--threads", "1", "--rounds", "2", "--frames", "1",
                              "--open-rounds", "1", "--json", str(js)]) == 0
    printed = capsys.readouterr().out
    r = json.loads(js.read_text())
    assert set(r["rows"]) == {"onnxruntime fp32", "openvino fp32"}  # an FP32-only folder: no INT8 rows
    assert r["rows"]["onnxruntime fp32"]["over_onnxruntime_fp32_per_round"]["median"] == 1.0
    assert r["rows"]["openvino fp32"]["max_abs_vs_onnxruntime_fp32"] <= 1e-4
    assert {"openvino first open", "openvino cached open", "onnxruntime open"} <= set(r["open_s"])
    assert isinstance(r["machine"]["cpu_flags"], list)
    assert "| openvino fp32 |" in printed and "1-min load" in printed
    with pytest.raises(SystemExit):  # --rewrite exports jam-256 itself
        cpu_backends.main(["--model", str(tiny_batched), "--rewrite"])


def test_fp32_rewrite_on_tiny_jam(tmp_path, capsys):
    js = tmp_path / "r.json"
    assert fp32_rewrite.main(["--config", "tiny-jam", "--threads", "1", "--rounds", "1", "--json", str(js)]) == 0
    r = json.loads(js.read_text())
    assert r["rows"]["generator"]["rewritten_convs"] == ["/final/Conv"]
    for row in r["rows"].values():
        for rt in ("onnxruntime", "openvino"):
            assert row[rt]["max_abs_diff"] <= 1e-4 and row[rt]["as_exported_ms"] > 0
    assert "| generator | openvino |" in capsys.readouterr().out
