"""Smoke test of benchmarks/int8.py on the bundled demo model (the real run adds jam-256)."""

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
import int8  # noqa: E402


def test_demo_three_variants_and_the_cpu_choice(tmp_path, capsys):
    js, md = tmp_path / "i.json", tmp_path / "i.md"
    assert int8.main(["--models", "demo", "--rounds", "1", "--frames", "1", "--threads", "1",
                      "--calibration-frames", "8", "--json", str(js), "--markdown", str(md)]) == 0
    result = json.loads(js.read_text())
    r = result["models"]["demo"]
    assert set(r["frame_ms"]) == set(int8.VARIANTS)
    cpu = r["cpu"]["graphs"]
    assert set(cpu) == {"generator", "dense_motion", "region_predictor"}
    assert set(cpu.values()) <= {"fp32", "s8s8", "u8s8"}
    # the CPU's chain is what precision="int8" streamed: all FP32 there means identical frames
    same = r["psnr_db_frames_timed"]["int8"] == float("inf")
    assert same == all(v == "fp32" for v in cpu.values())
    assert result["demo_target_met"] == (int8._num(result["demo_psnr_db_held_out"]) >= int8.TARGET_PSNR)
    out = capsys.readouterr().out
    assert "| int8_trt |" in out and "The export's speed gate" in out and md.read_text() in out
