"""``jamsdk eval --animation``: scores against ground truth, the two baselines, errors, both model kinds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from jamsdk.cli import main
from jamsdk.errors import InputError
from jamsdk.train import animation_eval
from jamsdk.train.animation_eval import PSNR_CAP, evaluate_animation, frame_scores
from jamsdk.train.pairs import open_pairs
from jamsdk.train.synth import write_dataset

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> tuple[Path, Path]:
    from jamsdk.config import load_model_config
    from jamsdk.export.samples import trained_like
    from jamsdk.model.checkpoint import save_checkpoint
    from jamsdk.model.jam import build_model

    tmp = tmp_path_factory.mktemp("anim")
    data = tmp / "data"
    write_dataset(data, clips=1, frames=3, size=64, seed=4, pairs=2)
    torch.manual_seed(0)
    cfg = load_model_config("tiny-jam")
    model = trained_like(build_model(cfg).eval(), 0)  # non-constant outputs, so scores say something
    ckpt = tmp / "model.pt"
    save_checkpoint(ckpt, model, cfg, meta={"step": 3, "avd_trained": True})
    return data, ckpt


def _direct_no_motion(data: Path, truth: str) -> float:
    ps = open_pairs(data)
    per_pair = []
    for name in ps.names():
        p = {k: v.astype(np.float64) / 255 for k, v in ps.load(name).items()}
        per_pair.append(np.abs(p[truth] - p["source"][None]).mean())
    return float(np.mean(per_pair))


def test_baselines_and_model_scores(setup):
    data, ckpt = setup
    r = evaluate_animation(data, checkpoint=ckpt, modes=("relative", "standard", "avd"), device="cpu")
    assert r["num_pairs"] == 2 and r["pairs_version"] == 2
    for mode, truth in (("relative", "relative"), ("standard", "standard"), ("avd", "standard")):
        m = r["modes"][mode]
        assert m["truth"] == truth
        gt = m["ground_truth"]
        assert (gt["l1"], gt["psnr"], gt["flow_epe"]) == (0.0, PSNR_CAP, 0.0)  # ground truth scores 0
        assert gt["part_px"] < 0.5 and gt["part_lost"] == 0  # the colour classifier's own error
        assert m["no_motion"]["part_px"] > gt["part_px"] and m["no_motion"]["flow_epe"] > 0
        assert m["motion_vs_no_motion"] == pytest.approx(m["model"]["part_px"] / m["no_motion"]["part_px"])
        assert m["flow_vs_no_motion"] == pytest.approx(m["model"]["flow_epe"] / m["no_motion"]["flow_epe"])
        assert m["no_motion"]["l1"] == pytest.approx(_direct_no_motion(data, truth), rel=1e-6)
        assert m["no_motion"]["l1"] > 0.005  # the figures move
        assert np.isfinite(m["model"]["l1"]) and m["model"]["l1"] > 0
        assert m["l1_vs_no_motion"] == pytest.approx(m["model"]["l1"] / m["no_motion"]["l1"])
    # Determinism: the same run again gives the same numbers.
    again = evaluate_animation(data, checkpoint=ckpt, modes=("relative",), device="cpu")
    assert again["modes"]["relative"]["model"] == r["modes"]["relative"]["model"]


def test_scoring_of_perfect_and_still_outputs(setup, monkeypatch):
    """A model that outputs the truth scores like the truth; one that outputs the source like no motion."""
    data, ckpt = setup
    ps = open_pairs(data)
    truths = {ps.load(n)["driving"].tobytes(): ps.load(n)["relative"] for n in ps.names()}

    def perfect(self, source, driving, mode):
        return truths[(np.round(driving * 255).astype(np.uint8)).tobytes()].astype(np.float32) / 255

    monkeypatch.setattr(animation_eval._TorchRunner, "animate", perfect)
    r = evaluate_animation(data, checkpoint=ckpt, device="cpu")["modes"]["relative"]
    assert r["model"] == r["ground_truth"] and r["l1_vs_no_motion"] == 0.0 and r["flow_vs_no_motion"] == 0.0
    assert r["motion_vs_no_motion"] < 0.2

    monkeypatch.setattr(animation_eval._TorchRunner, "animate",
                        lambda self, source, driving, mode: np.broadcast_to(source, driving.shape))
    r = evaluate_animation(data, checkpoint=ckpt, device="cpu")["modes"]["relative"]
    assert r["model"] == r["no_motion"] and r["l1_vs_no_motion"] == 1.0 and r["motion_vs_no_motion"] == 1.0
    assert r["flow_vs_no_motion"] == 1.0


def test_frame_scores():
    a = np.zeros((2, 4, 4, 3))
    b = a.copy()
    b[1] += 0.1
    l1, psnr = frame_scores(a, b)
    assert l1 == pytest.approx([0.0, 0.1]) and psnr == pytest.approx([PSNR_CAP, 20.0])


def test_exported_model_through_the_animator_matches_the_checkpoint(setup, tmp_path):
    pytest.importorskip("onnxruntime")
    from jamsdk.export.pipeline import export_checkpoint

    data, ckpt = setup
    export_checkpoint(ckpt, tmp_path / "model", precision="fp32", log=lambda m: None)
    a = evaluate_animation(data, model_dir=tmp_path / "model", modes=("relative", "avd"), threads=1)
    b = evaluate_animation(data, checkpoint=ckpt, modes=("relative", "avd"), device="cpu")
    for mode in ("relative", "avd"):
        assert a["modes"][mode]["model"]["l1"] == pytest.approx(b["modes"][mode]["model"]["l1"], abs=2e-4)
        assert a["modes"][mode]["no_motion"] == b["modes"][mode]["no_motion"]


def test_errors(setup, tmp_path):
    data, ckpt = setup
    write_dataset(tmp_path / "clips", clips=2, frames=2, size=64, seed=0)
    with pytest.raises(InputError, match="no animation pairs"):
        evaluate_animation(tmp_path / "clips", checkpoint=ckpt, device="cpu")
    write_dataset(tmp_path / "small", clips=1, frames=2, size=32, seed=0, pairs=1)
    with pytest.raises(InputError, match=r"64×64, but the pairs .* 32×32"):
        evaluate_animation(tmp_path / "small", checkpoint=ckpt, device="cpu")
    with pytest.raises(InputError, match="exactly one"):
        evaluate_animation(data, device="cpu")
    with pytest.raises(InputError, match="mode"):
        evaluate_animation(data, checkpoint=ckpt, modes=("sideways",), device="cpu")


def test_cli(setup, tmp_path, capsys):
    data, ckpt = setup
    out = tmp_path / "anim.json"
    assert main(["eval", "--animation", str(data), "--checkpoint", str(ckpt), "--device", "cpu",
                 "--mode", "relative", "--mode", "standard", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "part px" in text and "flow px" in text and "relative" in text
    result = json.loads(out.read_text())
    assert set(result["modes"]) == {"relative", "standard"}
    assert main(["eval", "--animation", str(tmp_path), "--checkpoint", str(ckpt)]) == 2
    assert "no animation pairs" in capsys.readouterr().err
    assert main(["eval", "--animation", str(data)]) == 2
    assert "needs one model to score: --checkpoint CKPT (PyTorch) or --model DIR" in capsys.readouterr().err
    # The bundled model works at 128×128: pairs at 64×64 are refused before anything runs.
    assert main(["eval", "--animation", str(data), "--model", "demo"]) == 2
    assert "128×128, but the pairs" in capsys.readouterr().err
