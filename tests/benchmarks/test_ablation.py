"""benchmarks/ablation.py at smoke scale: tiny JAM vs tiny MRAA, 3 steps in 2-step chunks, 1 thread."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "train" / "configs" / "tiny.yaml"
# benchmarks/ is a folder of scripts, not a package: its modules import as top-level modules.
sys.path.insert(0, str(REPO / "benchmarks"))
import ablation  # noqa: E402


def _main(argv: list[str]) -> int:
    threads = torch.get_num_threads()
    try:
        return ablation.main(argv)
    finally:
        torch.set_num_threads(threads)  # the script sets the process-wide thread count


def test_smoke_run_reports_both_sides_and_matches_a_straight_run(tmp_path, capsys):
    from jamsdk.config import load_model_config
    from jamsdk.model.checkpoint import read_checkpoint
    from jamsdk.train.train_config import load_run_config, replace
    from jamsdk.train.trainer import Trainer

    work, out_json, out_md = tmp_path / "work", tmp_path / "abl.json", tmp_path / "abl.md"
    rc = _main(["--config-jam", "tiny-jam", "--config-mraa", "tiny-mraa", "--train-config", str(TINY),
                "--steps", "3", "--chunk", "2", "--threads", "1", "--clips", "4", "--frames", "4",
                "--vgg-rounds", "1", "--pairs", "2", "--workdir", str(work), "--json", str(out_json),
                "--markdown", str(out_md), "--quiet"])
    assert rc == 0
    res = json.loads(out_json.read_text())
    for key in ("machine", "settings", "data", "calibration", "configs", "ratios", "l1_paired", "target", "paper"):
        assert key in res, key
    assert {"cpu", "torch", "torch_threads", "logical_cpus"} <= set(res["machine"])
    assert res["settings"]["threads"] == 1 and res["settings"]["steps"] == 3

    j, m = res["configs"]["jam"], res["configs"]["mraa"]
    assert (j["model"], m["model"]) == ("tiny-jam", "tiny-mraa")
    for c in (j, m):
        assert math.isfinite(c["eval"]["l1"]) and 0 < c["eval"]["l1"] < 1
        assert c["eval"]["num_videos"] == 1 and c["eval"]["num_frames"] == 4
        # Chunks of 2 + 1 steps; the first step of each chunk is the warm-up, not timed.
        assert [s["chunk"] for s in c["steps"]] == [0, 0, 1]
        assert [s["warmup"] for s in c["steps"]] == [True, False, True]
        assert c["timed_steps"] == 1 and c["median_s"] == c["steps"][1]["wall"] > 0
        assert all(math.isfinite(s["total"]) for s in c["steps"])
        v = c["vgg_phase"]
        assert 0 < v["no_vgg_s"] < v["full_s"] and 0 < v["vgg_share"] < 1
        assert v["gmacs"]["model"] > 0 and v["gmacs"]["vgg"] > 0
        assert c["params"] > c["params_stage1"] > 0
    # One VGG-19 and one batch shape: the same VGG MACs on both sides.
    assert j["vgg_phase"]["gmacs"]["vgg"] == m["vgg_phase"]["gmacs"]["vgg"]
    # The animation metric on the held-out pairs, both sides, with the same no-motion baseline.
    for c in (j, m):
        a = c["animation"]
        assert a["num_pairs"] == 2 and a["mode"] == "relative" and math.isfinite(a["model"]["l1"])
        assert a["l1_vs_no_motion"] == pytest.approx(a["model"]["l1"] / a["no_motion"]["l1"])
        assert a["motion_vs_no_motion"] == pytest.approx(a["model"]["part_px"] / a["no_motion"]["part_px"])
    assert j["animation"]["no_motion"] == m["animation"]["no_motion"]
    r = res["ratios"]
    assert r["animation_l1"] == pytest.approx(j["animation"]["model"]["l1"] / m["animation"]["model"]["l1"])
    assert r["l1"] == pytest.approx(j["eval"]["l1"] / m["eval"]["l1"])
    assert r["s_per_step"] == pytest.approx(j["median_s"] / m["median_s"])
    assert r["no_vgg_s_per_step"] == pytest.approx(j["vgg_phase"]["no_vgg_s"] / m["vgg_phase"]["no_vgg_s"])
    assert r["params"] == pytest.approx(j["params"] / m["params"])
    assert res["target"]["l1_no_worse"] == (j["eval"]["l1"] <= m["eval"]["l1"])
    assert len(res["calibration"]["checks"]) == 5  # before each of the 4 chunks, and at the end
    text = capsys.readouterr().out
    assert out_md.read_text() == text
    assert "| eval L1 (lower is better) |" in text and "JAM/MRAA" in text
    assert "| animation L1 vs ground truth, relative mode (2 held-out pairs) |" in text
    assert "| part position error, px (no motion " in text

    # Interleaving through resume leaves each side with the weights of a straight run. Same thread
    # count as the ablation run: a different reduction order changes gradients in the last bits,
    # and Adam's first steps (≈ lr·sign(g)) turn that into visible weight differences.
    torch.set_num_threads(1)
    _, train_cfg = load_run_config(TINY)
    straight = Trainer(load_model_config("tiny-jam"), replace(train_cfg, steps=3, epochs=None, batch_size=4),
                       work / "data", tmp_path / "straight", device="cpu", progress=False, echo=lambda msg: None)
    straight.run()
    chunked = read_checkpoint(work / "jam" / "checkpoint.pt")["model"]
    want = straight.model.state_dict()
    assert chunked.keys() == want.keys()
    for k in want:
        torch.testing.assert_close(chunked[k], want[k], atol=1e-6, rtol=0, msg=k)

    # The --max-frames fallback scores like the real evaluator: all 4 frames give its L1, 2 frames fewer.
    ckpt = work / "jam" / "checkpoint.pt"
    assert ablation.evaluate_run(ckpt, work / "data", "cpu", None, 4)["l1"] == pytest.approx(j["eval"]["l1"], abs=1e-7)
    assert ablation.evaluate_run(ckpt, work / "data", "cpu", 1, 2)["num_frames"] == 2


def test_different_recipes_are_refused_before_any_work(tmp_path, capsys):
    # tiny.yaml's train: section against tiny-mraa's defaults: not one recipe.
    rc = _main(["--config-jam", str(TINY), "--config-mraa", "tiny-mraa", "--workdir", str(tmp_path / "w"), "--quiet"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "train differently" in err and "--train-config" in err
    assert not (tmp_path / "w").exists()


def test_pyramid_recipe_skips_the_vgg_phase(tmp_path):
    import dataclasses

    from jamsdk.train.train_config import load_run_config, replace, write_run_config

    model_cfg, train_cfg = load_run_config(TINY)
    recipe = tmp_path / "pyramid.yaml"
    write_run_config(recipe, model_cfg, replace(train_cfg, loss=dataclasses.replace(train_cfg.loss,
                                                                                    reconstruction="pyramid")))
    out_json = tmp_path / "abl.json"
    rc = _main(["--config-jam", "tiny-jam", "--config-mraa", "tiny-mraa", "--train-config", str(recipe),
                "--steps", "2", "--chunk", "2", "--threads", "1", "--clips", "3", "--frames", "3", "--pairs", "1",
                "--json", str(out_json), "--quiet"])
    assert rc == 0
    res = json.loads(out_json.read_text())
    assert res["configs"]["jam"]["vgg_phase"] == {} and res["ratios"]["no_vgg_s_per_step"] is None
    assert "image pyramid" in res["configs"]["jam"]["perceptual"]
    assert res["configs"]["mraa"]["animation"]["num_pairs"] == 1
