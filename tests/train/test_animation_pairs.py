"""Training animation pairs (jamsdk.train.animation_pairs) and their use in stage 1."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from jamsdk.errors import ConfigError, InputError
from jamsdk.model.jam import build_model
from jamsdk.train.animation_pairs import ANIMATION_STREAM, AnimationPairs, render_training_pair
from jamsdk.train.losses import ReconstructionObjective
from jamsdk.train.pairs import PAIRS_STREAM, render_pair
from jamsdk.train.train_config import AnimationPairsConfig, load_run_config, replace, train_config_from_dict

torch.set_num_threads(1)
TINY = Path(__file__).resolve().parents[2] / "train" / "configs" / "tiny.yaml"


def test_truth_is_the_held_out_pairs_relative_truth():
    """Same scene, same rule: a training pair's truth is the relative truth the eval scores against."""
    for j in range(3):
        want = render_pair(np.random.default_rng([9, PAIRS_STREAM, j]), 12, 64)
        got = render_training_pair(np.random.default_rng([9, PAIRS_STREAM, j]), 64, max_offset=11)
        k = got["offset"]
        assert np.array_equal(got["source"], want["source"])
        assert np.array_equal(got["driving_initial"], want["driving"][0])
        assert np.array_equal(got["driving"], want["driving"][k])
        assert np.array_equal(got["truth"], want["relative"][k])


def test_offsets_cover_zero_to_max_and_zero_is_the_source():
    offsets = set()
    for i in range(60):
        p = render_training_pair(np.random.default_rng([0, ANIMATION_STREAM, 0, i]), 32, max_offset=3)
        offsets.add(p["offset"])
        if p["offset"] == 0:  # the driver has not moved: the truth is the source picture itself
            assert np.array_equal(p["truth"], p["source"])
            assert np.array_equal(p["driving"], p["driving_initial"])
    assert offsets == {0, 1, 2, 3}  # inclusive at both ends


def test_batches_are_a_function_of_the_step():
    ap = AnimationPairs(32, seed=5, max_offset=8)
    a, b, c = ap.batch(7, 3), ap.batch(7, 3), ap.batch(8, 3)
    assert set(a) == {"source", "driving_initial", "driving", "truth", "offset"}
    assert a["source"].shape == (3, 3, 32, 32) and a["source"].dtype == np.float32
    assert 0 <= a["truth"].min() and a["truth"].max() <= 1
    for k in a:
        assert np.array_equal(a[k], b[k])  # a resumed run sees the same pairs
    assert not np.array_equal(a["source"], c["source"])
    assert not np.array_equal(a["source"], AnimationPairs(32, seed=6, max_offset=8).batch(7, 3)["source"])
    # A process's share under DDP is its rows of the global batch.
    assert np.array_equal(ap.batch(7, 4, slice(1, None, 2))["truth"], ap.batch(7, 4)["truth"][1::2])


@pytest.mark.parametrize("bad", [dict(size=8), dict(seed=-1), dict(max_offset=-1), dict(max_offset=True)])
def test_animation_pairs_reject_bad_arguments(bad):
    args = {"size": 32, "seed": 0, "max_offset": 4, **bad}
    with pytest.raises(InputError, match="animation pairs: expected"):
        AnimationPairs(**args)


def test_animation_pairs_config():
    assert train_config_from_dict({}).animation_pairs.batch == 0  # off by default: MRAA's recipe
    cfg = train_config_from_dict({"animation_pairs": {"batch": 2, "max_offset": 0}})
    assert cfg.animation_pairs == AnimationPairsConfig(batch=2, weight=1.0, max_offset=0)
    for bad in ({"batch": -1}, {"weight": -0.5}, {"max_offset": -1}):
        with pytest.raises(ConfigError, match="animation_pairs"):
            train_config_from_dict({"animation_pairs": bad})
    with pytest.raises(ConfigError, match="animation_pairs.size"):
        train_config_from_dict({"animation_pairs": {"size": 3}})


@pytest.fixture(scope="module")
def tiny_zero_bg():
    model_cfg, train_cfg = load_run_config(TINY)
    model_cfg = dataclasses.replace(model_cfg, bg_motion=dataclasses.replace(model_cfg.bg_motion, bg_type="zero"))
    torch.manual_seed(0)
    return build_model(model_cfg), replace(train_cfg, animation_pairs=AnimationPairsConfig(batch=2))


def test_objective_animates_the_pairs_as_relative_mode_does(tiny_zero_bg):
    """The training path of the pairs is the run-time relative mode: the same pictures come out."""
    model, train_cfg = tiny_zero_bg
    model.eval()  # BatchNorm on running statistics: batch composition no longer matters
    pairs = {k: torch.from_numpy(v) for k, v in AnimationPairs(64, 0, 8).batch(0, 2).items() if k != "offset"}
    src, drv = pairs["driving"], pairs["source"]  # any self-supervised pair will do
    obj = ReconstructionObjective(model, None, train_cfg, 0.0)
    with torch.no_grad():
        out, animated = obj._with_animation_pairs(src, drv, pairs)
        recon = model(src, drv)["prediction"]
        for i in range(2):
            clip = torch.stack([pairs["driving_initial"][i], pairs["driving"][i]])
            want = model.animate(pairs["source"][i:i + 1], clip, "relative")[1]
            torch.testing.assert_close(animated[i], want, atol=1e-5, rtol=0)
    torch.testing.assert_close(out["prediction"], recon, atol=1e-5, rtol=0)


def test_objective_adds_the_animation_loss(tiny_zero_bg):
    model, train_cfg = tiny_zero_bg
    model.train()
    pairs = {k: torch.from_numpy(v) for k, v in AnimationPairs(64, 0, 8).batch(1, 2).items() if k != "offset"}
    obj = ReconstructionObjective(model, None, replace(train_cfg, loss=dataclasses.replace(
        train_cfg.loss, reconstruction="pyramid")), 0.0)
    plain = obj(pairs["source"], pairs["truth"])
    both = obj(pairs["source"], pairs["truth"], pairs)
    assert "animation" not in plain and both["animation"] > 0
    obj.cfg = replace(obj.cfg, animation_pairs=AnimationPairsConfig(batch=2, weight=3.0))
    tripled = obj(pairs["source"], pairs["truth"], pairs)
    assert float(tripled["animation"].detach()) == pytest.approx(3 * float(both["animation"].detach()), rel=1e-4)
    tripled["animation"].backward()
    rp = next(model.region_predictor.parameters())
    assert rp.grad is not None and rp.grad.abs().sum() > 0  # the regions learn from the pairs


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    from jamsdk.train.synth import write_dataset

    root = tmp_path_factory.mktemp("data") / "shapes"
    write_dataset(root, clips=4, frames=4, size=64, seed=0)
    return root


def _trainer(clips, out, bg_type="zero", batch=2, steps=4, **kw):
    from jamsdk.train.trainer import Trainer

    model_cfg, train_cfg = load_run_config(TINY)
    model_cfg = dataclasses.replace(model_cfg, bg_motion=dataclasses.replace(model_cfg.bg_motion, bg_type=bg_type))
    train_cfg = replace(train_cfg, batch_size=2, repeats=1, steps=steps, milestones=(), log_every=1, checkpoint_every=1000,
                        loss=dataclasses.replace(train_cfg.loss, reconstruction="pyramid"),
                        animation_pairs=AnimationPairsConfig(batch=batch, max_offset=4))
    return Trainer(model_cfg, train_cfg, clips, out, progress=False, echo=lambda m: None, device="cpu", **kw)


def test_trainer_refuses_animation_pairs_with_background_motion(clips, tmp_path):
    with pytest.raises(ConfigError, match="animation_pairs needs model.bg_motion.bg_type: zero, got 'affine'"):
        _trainer(clips, tmp_path / "a", bg_type="affine")
    _trainer(clips, tmp_path / "b", bg_type="affine", batch=0)  # without pairs: any background model
    _trainer(clips, tmp_path / "c", bg_type="zero", batch=2)


def test_animation_pairs_train_log_and_resume_exactly(clips, tmp_path):
    straight = _trainer(clips, tmp_path / "a")
    result = straight.run()
    assert result.step == 4 and result.losses["animation"] > 0
    header = (tmp_path / "a" / "log.csv").read_text().splitlines()[0].split(",")
    assert "animation" in header
    first = _trainer(clips, tmp_path / "b", steps=2)
    first.run()
    resumed = _trainer(clips, tmp_path / "b", resume=True)
    assert resumed.run().step == 4
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    for k in a:
        torch.testing.assert_close(b[k], a[k], atol=1e-6, rtol=0, msg=k)
