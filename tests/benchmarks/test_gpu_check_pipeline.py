"""benchmarks/gpu_check_pipeline.py and transfer_budget.py: their CPU-safe parts.

The GPU run needs an NVIDIA GPU with PyTorch CUDA and cuda-python; here it must skip cleanly, and
the same PyTorch-engine stand-in must pass on the CPU over the CUDA stand-in.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests" / "runtime"))
import gpu_check_pipeline  # noqa: E402
import standin_accounting  # noqa: E402, F401  (its imports must work)
import transfer_budget  # noqa: E402


def test_skips_cleanly_without_a_gpu(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(gpu_check_pipeline, "gpu_problem", lambda: "PyTorch sees no CUDA GPU")
    assert gpu_check_pipeline.main(["--out", str(tmp_path)]) == 0
    assert "skipped: PyTorch sees no CUDA GPU" in capsys.readouterr().out
    assert json.loads((tmp_path / "gpu_check_pipeline.json").read_text()) == {
        "status": "skipped", "reason": "PyTorch sees no CUDA GPU"}


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here: the real check runs instead")
def test_gpu_problem_says_why_here():
    assert gpu_check_pipeline.gpu_problem()


def test_torch_engines_on_the_cpu_standin_match_onnxruntime(monkeypatch):
    torch.set_num_threads(1)
    r = gpu_check_pipeline.cpu_standin(frames=2, patch=monkeypatch)
    assert r["ok"], r
    for name, m in r["modes"].items():
        assert m["max_abs_diff_model_space"] <= 1e-3 and m["syncs_per_frame"] == 1
        assert m["graph_launches_per_frame"] == (1 if name.endswith("+graph") else 0)
        assert m["h2d_bytes_per_frame"] == r["image_size"] ** 2 * 3


def test_transfer_budget_cli(tmp_path, capsys, monkeypatch):
    out = tmp_path / "b.json"
    patched = []
    monkeypatch.setattr(transfer_budget, "_Patch", lambda: patched.append(1) or monkeypatch)
    assert transfer_budget.main(["--model", "demo", "--mode", "standard", "--frames", "2", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["image_size"] == 128 and r["h2d_bytes_per_frame"] == 128 * 128 * 3 and r["syncs_per_frame"] == 1
    assert "H2D" in capsys.readouterr().out and patched


def test_standin_accounting_figures(tiny_batched, monkeypatch):
    import standin_accounting

    r = standin_accounting.measure(tiny_batched, cycles=12, frames=3, patch=monkeypatch)
    a, n, s, c = r["animator"], r["stream_batch_no_helpers"], r["serve"], r["churn"]
    assert a["after_reference_search"] == a["after_first_frame"] and a["extra_if_private"] > 0
    assert n["scratch_bytes"] == n["max_activation"] < n["sum_activation"] and n["streams"] == 1
    assert s["h2d_bytes_per_frame"] == s["d2h_bytes_per_frame"] == s["s2x3"]
    assert s["float32_h2d_bytes_per_frame"] == s["float32_d2h_bytes_per_frame"] == 4 * s["s2x3"]
    assert c["max"]["contexts"] <= c["bound"]["contexts"] and c["max"]["graphs"] <= c["bound"]["graphs"]
    assert c["after_cycle"][10] == c["after_cycle"][12]  # nothing grows with the streams seen
    assert all(part["freed_on_close"] for part in (a, n, s, c))
