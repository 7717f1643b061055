"""Reconstruction evaluation (Table I): finite L1 per video and overall, JSON output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from jamsdk.cli import main
from jamsdk.config import load_model_config
from jamsdk.errors import CheckpointError, InputError
from jamsdk.model.checkpoint import load_model, save_checkpoint
from jamsdk.model.jam import build_model
from jamsdk.train.datasets import FramesDataset
from jamsdk.train.evaluate import evaluate, video_l1
from jamsdk.train.synth import write_dataset

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("eval")
    data = tmp / "shapes"
    write_dataset(data, clips=5, frames=5, size=64, seed=1, test_fraction=0.4)  # 2 test clips
    torch.manual_seed(0)
    model = build_model(load_model_config("tiny-jam"))
    # Move the BatchNorm statistics off their initial values so eval mode is not a special case.
    model.train()
    with torch.no_grad():
        model(torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64))
    ckpt = tmp / "model.pt"
    save_checkpoint(ckpt, model, model.cfg, meta={"step": 7})
    return data, ckpt


def test_evaluate_reports_finite_l1_per_video(setup):
    data, ckpt = setup
    result = evaluate(ckpt, data, device="cpu", batch=2)
    assert result["num_videos"] == 2 and result["num_frames"] == 10
    assert [v["name"] for v in result["videos"]] == ["clip_00003", "clip_00004"]
    assert all(0 < v["l1"] < 1 for v in result["videos"])
    assert result["l1"] == pytest.approx(np.mean([v["l1"] for v in result["videos"]]))
    assert result["step"] == 7 and result["mode"] == "standard"


def test_evaluate_matches_a_direct_computation(setup):
    """Frame t is rebuilt from frame 0; the score is the mean |prediction − frame| of pixels in [0, 1]."""
    data, ckpt = setup
    model, _ = load_model(ckpt)
    video = torch.as_tensor(FramesDataset(data, "test", image_size=64)[1]["video"])
    with torch.no_grad():
        want = [float((model(video[:1], video[t:t + 1])["prediction"] - video[t:t + 1]).abs().mean())
                for t in range(video.shape[0])]
    got = video_l1(model, video, batch=3)  # batching must not change the numbers (eval-mode BatchNorm)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    result = evaluate(ckpt, data, device="cpu")
    assert result["videos"][1]["l1"] == pytest.approx(np.mean(want), rel=1e-5)


def test_evaluate_flow_error_against_the_video(setup):
    """The flow error compares the reconstruction's frame-to-frame flow with the video's, whose own mean
    flow is what a still output scores."""
    from jamsdk.train.evaluate import reconstruct
    from jamsdk.train.motion_metrics import flow_error

    data, ckpt = setup
    model, _ = load_model(ckpt)
    video = torch.as_tensor(FramesDataset(data, "test", image_size=64)[0]["video"])
    _, pred = reconstruct(model, video)
    hwc = lambda t: t.clamp(0, 1).permute(0, 2, 3, 1).numpy()  # noqa: E731
    want = flow_error(hwc(pred), hwc(video))
    result = evaluate(ckpt, data, device="cpu")
    row = result["videos"][0]
    assert row["flow_epe"] == pytest.approx(want["epe"], rel=1e-5)
    assert row["video_flow"] == pytest.approx(want["truth_flow"], rel=1e-5) and row["video_flow"] > 0
    still = flow_error(np.broadcast_to(hwc(video)[:1], hwc(video).shape), hwc(video))
    assert still["epe"] == pytest.approx(row["video_flow"], rel=1e-5)  # the no-motion baseline
    assert result["flow_epe"] == pytest.approx(np.mean([v["flow_epe"] for v in result["videos"]]))


def test_eval_cli_writes_json(setup, tmp_path, capsys):
    data, ckpt = setup
    out = tmp_path / "res" / "eval.json"
    assert main(["eval", "--checkpoint", str(ckpt), "--data", str(data), "--json", str(out), "--device", "cpu",
                 "--max-videos", "1"]) == 0
    result = json.loads(out.read_text())
    assert result["num_videos"] == 1 and np.isfinite(result["l1"])
    text = capsys.readouterr().out
    assert "mean L1 over 1 videos" in text and "flow error" in text and "videos' own flow" in text
    assert [p.name for p in out.parent.iterdir()] == ["eval.json"]  # no temporary file left


def test_eval_errors(setup, tmp_path):
    data, ckpt = setup
    with pytest.raises(CheckpointError, match="does not exist"):
        evaluate(tmp_path / "none.pt", data, device="cpu")
    with pytest.raises(InputError, match="test"):
        evaluate(ckpt, tmp_path, device="cpu")
