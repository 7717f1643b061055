"""The trainer on synthetic clips with the tiny config: learning, exact resume, signals, crashes, NaN."""

from __future__ import annotations

import dataclasses
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
import torch

from jamsdk.cli import main
from jamsdk.errors import CheckpointError, ConfigError, InputError
from jamsdk.model.checkpoint import read_checkpoint
from jamsdk.train.losses import ReconstructionObjective
from jamsdk.train.synth import write_dataset
from jamsdk.train.train_config import load_run_config, replace, write_run_config
from jamsdk.train.trainer import NonFiniteLossError, Trainer

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "train" / "configs" / "tiny.yaml"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data") / "shapes"
    write_dataset(root, clips=6, frames=6, size=64, seed=0)  # 5 train clips, 1 test clip
    return root


def configs(full_loss: bool = False, **changes):
    """The shipped tiny config, made short; unless ``full_loss``, VGG up to relu2_1 only (cheap steps)."""
    model_cfg, train_cfg = load_run_config(TINY)
    base = dict(batch_size=2, repeats=1, steps=6, milestones=(4,), log_every=1, checkpoint_every=1000)
    if not full_loss:
        base["loss"] = dataclasses.replace(train_cfg.loss, perceptual=(10.0, 10.0, 0.0, 0.0, 0.0))
    base.update(changes)
    return model_cfg, replace(train_cfg, **base)


def make(data, out, full_loss=False, **kw) -> Trainer:
    train_keys = {k: kw.pop(k) for k in list(kw) if k not in ("stage", "resume", "init", "plot")}
    model_cfg, train_cfg = configs(full_loss, **train_keys)
    return Trainer(model_cfg, train_cfg, data, out, progress=False, echo=lambda m: None, device="cpu", **kw)


def test_loss_decreases_on_a_fixed_batch(data, tmp_path):
    """The full stage-1 loss (VGG pyramid, pixel, equivariance) on a real pair of frames goes down."""
    tr = make(data, tmp_path / "run", full_loss=True, lr=1e-3)
    items = [tr.dataset[i] for i in (0, 3)]
    src = torch.stack([torch.as_tensor(it["source"]) for it in items])
    drv = torch.stack([torch.as_tensor(it["driving"]) for it in items])
    assert float((src - drv).abs().mean()) > 0.005  # two different frames, not a copy

    def pred_l1() -> float:
        with torch.no_grad():
            return float((tr.model(src, drv)["prediction"] - drv).abs().mean())

    before = pred_l1()
    rec = []
    for _ in range(20):
        v = tr.train_step(src, drv)
        assert set(v) == {"perceptual", "pixel", "equivariance_shift", "equivariance_affine", "total"}
        rec.append(v["perceptual"] + v["pixel"])
    assert sum(rec[-3:]) / 3 < 0.5 * sum(rec[:3]) / 3, rec
    assert pred_l1() < 0.5 * before
    assert tr.step == 20


def _state(tr: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in tr.model.state_dict().items()}


def test_resume_reproduces_the_uninterrupted_run(data, tmp_path):
    straight = make(data, tmp_path / "a", steps=6)
    straight.run()
    first = make(data, tmp_path / "b", steps=3)
    assert first.run().step == 3
    assert (first.epoch, first.batch_in_epoch) == (1, 1)  # stopped inside an epoch (2 batches per epoch)
    resumed = make(data, tmp_path / "b", steps=6, resume=True)
    assert resumed.step == 3
    result = resumed.run()
    assert result.step == straight.step == 6
    a, b = _state(straight), _state(resumed)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], atol=1e-6, rtol=0, msg=k)
    oa, ob = straight.optimizer.state_dict(), resumed.optimizer.state_dict()
    for i in oa["state"]:
        torch.testing.assert_close(ob["state"][i]["exp_avg_sq"], oa["state"][i]["exp_avg_sq"], atol=1e-9, rtol=0)
    assert resumed.optimizer.param_groups[0]["lr"] == straight.optimizer.param_groups[0]["lr"] == pytest.approx(2e-5)
    # The log has one row per step, none twice.
    rows = (tmp_path / "b" / "log.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == [1, 2, 3, 4, 5, 6]


def test_failed_write_keeps_the_previous_checkpoint(data, tmp_path, monkeypatch):
    tr = make(data, tmp_path / "run", steps=2, checkpoint_every=1)
    tr.run()
    ckpt = tmp_path / "run" / "checkpoint.pt"
    before = ckpt.read_bytes()

    def torn_save(obj, path, *a, **k):  # dies half-way through writing
        Path(path).write_bytes(before[: len(before) // 2])
        raise OSError("disk full")

    import jamsdk.model.checkpoint as ck

    monkeypatch.setattr(ck.torch, "save", torn_save)
    tr.step += 1
    with pytest.raises(OSError):
        tr.save()
    assert ckpt.read_bytes() == before
    assert read_checkpoint(ckpt)["train_state"]["step"] == 2
    assert [p.name for p in ckpt.parent.iterdir() if p.name.startswith(".")] == []


def test_nan_loss_names_the_step_and_keeps_the_last_checkpoint(data, tmp_path, monkeypatch):
    calls = {"n": 0}
    real = ReconstructionObjective.forward

    def poisoned(self, source, driving):
        losses = real(self, source, driving)
        calls["n"] += 1
        if calls["n"] == 3:
            losses["perceptual"] = losses["perceptual"] * float("nan")
        return losses

    monkeypatch.setattr(ReconstructionObjective, "forward", poisoned)
    tr = make(data, tmp_path / "run", steps=10, checkpoint_every=2)
    with pytest.raises(NonFiniteLossError, match="non-finite loss at step 3") as info:
        tr.run()
    assert info.value.step == 3
    data_ = read_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert data_["train_state"]["step"] == 2
    assert all(torch.isfinite(v).all() for v in data_["model"].values() if v.is_floating_point())


def test_stage2_trains_only_the_avd_network(data, tmp_path):
    stage1 = make(data, tmp_path / "s1", steps=2)
    stage1.run()
    with pytest.raises(InputError, match="stage 2 .*init"):
        make(data, tmp_path / "s2x", stage=2)
    stage2 = make(data, tmp_path / "s2", stage=2, init=tmp_path / "s1" / "checkpoint.pt",
                  avd={"steps": 3, "batch_size": 4})
    assert stage2.run().step == 3
    s1 = read_checkpoint(tmp_path / "s1" / "checkpoint.pt")
    s2 = read_checkpoint(tmp_path / "s2" / "checkpoint.pt")
    assert s2["meta"]["avd_trained"] is True and s1["meta"]["avd_trained"] is False
    assert s2["meta"]["stage"] == 2 and s2["meta"]["finished"] is True
    assert s2["meta"]["init_checkpoint"] == str(tmp_path / "s1" / "checkpoint.pt")
    changed = [k for k in s1["model"] if not torch.equal(s1["model"][k], s2["model"][k])]
    assert changed and all(k.startswith("avd.") for k in changed)
    # Resuming a stage-2 run as stage 1 is refused.
    with pytest.raises(InputError, match="stage-2 run"):
        make(data, tmp_path / "s2", resume=True)


def test_epochs_and_config_errors(data, tmp_path):
    tr = make(data, tmp_path / "run", steps=None, epochs=3, milestones=(2,))
    assert tr.steps_per_epoch == 2 and tr.total_steps == 6
    assert tr.scheduler.milestones == {4: 1}
    model_cfg, train_cfg = load_run_config(TINY)
    with pytest.raises(ConfigError, match="exactly one of steps and epochs"):
        replace(train_cfg, epochs=3)
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {name: x}\ntrain: {lr: fast}\n")
    with pytest.raises(ConfigError, match="train.lr: expected float"):
        load_run_config(bad)
    bad.write_text("model: {name: x}\ntrain: {loss: {perceptul: [1]}}\n")
    with pytest.raises(ConfigError, match="train.loss.perceptul: unknown key"):
        load_run_config(bad)
    with pytest.raises(CheckpointError, match="no such file"):
        make(data, tmp_path / "v", vgg_weights=str(tmp_path / "missing.pth"))


def test_cli_train_resume_and_plot(data, tmp_path, capsys):
    cfg = tmp_path / "cfg.yaml"
    write_run_config(cfg, *configs(log_every=1))
    out = tmp_path / "run"
    args = ["train", "--config", str(cfg), "--data", str(data), "--out", str(out), "--no-progress", "--device", "cpu"]
    assert main(args + ["--max-steps", "2", "--plot"]) == 0
    err = capsys.readouterr().err
    assert "WARNING: no VGG-19 weights" in err
    resolved = (out / "config.yaml").read_text()
    assert "FALLBACK" in resolved and "steps: 2" in resolved
    assert load_run_config(out / "config.yaml")[1].steps == 2
    png = cv2.imread(str(out / "loss.png"))
    assert png is not None and png.shape == (540, 960, 3)
    # A second fresh run into the same folder is refused; --resume continues it.
    assert main(args + ["--max-steps", "3"]) == 2
    assert "already holds a checkpoint" in capsys.readouterr().err
    assert main(["train", "--out", str(out), "--resume", "--max-steps", "3", "--no-progress", "--device", "cpu"]) == 0
    assert read_checkpoint(out / "checkpoint.pt")["train_state"]["step"] == 3
    # --milestones decays a resumed run from that step on (and is recorded in the run's config)
    lr = load_run_config(out / "config.yaml")[1].lr
    assert main(["train", "--out", str(out), "--resume", "--max-steps", "5", "--milestones", "4", "--no-progress",
                 "--device", "cpu"]) == 0
    rows = [line.split(",") for line in (out / "log.csv").read_text().splitlines()[1:]]
    lrs = {int(r[0]): float(r[2]) for r in rows}
    gamma = load_run_config(out / "config.yaml")[1].gamma
    # the log's lr is the one the next step uses: steps 1-4 ran at lr, step 5 at lr × gamma
    assert lrs[3] == pytest.approx(lr) and lrs[4] == pytest.approx(lr * gamma) and lrs[5] == pytest.approx(lr * gamma)
    assert load_run_config(out / "config.yaml")[1].milestones == (4,)
    # a milestone at or before the resumed step applies at once (MultiStepLR alone would skip it),
    # and the config decides: without milestones the rate is back to lr
    assert main(["train", "--out", str(out), "--resume", "--max-steps", "6", "--milestones", "none", "--no-progress",
                 "--device", "cpu"]) == 0
    rows = [line.split(",") for line in (out / "log.csv").read_text().splitlines()[1:]]
    assert float(rows[-1][2]) == pytest.approx(lr)
    assert main(["train", "--out", str(out), "--resume", "--max-steps", "7", "--milestones", "6", "--no-progress",
                 "--device", "cpu"]) == 0
    rows = [line.split(",") for line in (out / "log.csv").read_text().splitlines()[1:]]
    assert int(rows[-1][0]) == 7 and float(rows[-1][2]) == pytest.approx(lr * gamma)
    assert main(["train", "--out", str(out), "--resume", "--milestones", "4,x", "--no-progress"]) == 2
    assert "--milestones: expected whole numbers" in capsys.readouterr().err
    assert main(["train", "--out", str(out), "--resume", "--milestones", "5,4", "--no-progress"]) == 2
    assert "milestones" in capsys.readouterr().err


# ---- real processes: SIGTERM and SIGKILL -----------------------------------------------------


def _spawn(data: Path, tmp_path: Path, checkpoint_every: int) -> tuple[subprocess.Popen, Path]:
    cfg = tmp_path / "cfg.yaml"
    write_run_config(cfg, *configs(log_every=1, checkpoint_every=checkpoint_every))
    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jamsdk", "train", "--config", str(cfg), "--data", str(data), "--out", str(out),
         "--max-steps", "100000", "--no-progress", "--device", "cpu"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    return proc, out


def _wait_for(cond, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if proc.poll() is not None:
            raise AssertionError(f"trainer exited early ({proc.returncode}): {proc.stderr.read()}")
        if time.monotonic() > end:
            proc.kill()
            raise AssertionError("trainer made no progress")
        time.sleep(0.05)


def _logged_steps(out: Path) -> int:
    try:
        return max(0, len((out / "log.csv").read_text().splitlines()) - 1)
    except OSError:
        return 0


def test_sigterm_saves_and_exits_cleanly(data, tmp_path):
    proc, out = _spawn(data, tmp_path, checkpoint_every=1000)
    _wait_for(lambda: _logged_steps(out) >= 2, proc)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "stopped by SIGTERM" in stdout
    ckpt = read_checkpoint(out / "checkpoint.pt")
    step = ckpt["train_state"]["step"]
    assert step >= 2 and ckpt["meta"]["finished"] is False
    assert f"at step {step}:" in stdout


def test_sigkill_at_a_random_moment_leaves_a_loadable_checkpoint(data, tmp_path):
    proc, out = _spawn(data, tmp_path, checkpoint_every=1)  # writing checkpoints all the time
    _wait_for(lambda: (out / "checkpoint.pt").exists(), proc)
    time.sleep(random.Random().uniform(0.0, 0.6))
    proc.kill()
    proc.communicate(timeout=30)
    step = read_checkpoint(out / "checkpoint.pt")["train_state"]["step"]
    assert step >= 1
    # The run continues from it (and drops the leftover temporary file, if the kill left one).
    tr = make(data, out, resume=True, steps=step + 1, checkpoint_every=1, log_every=1)
    assert tr.run().step == step + 1
    assert not [p for p in out.iterdir() if p.name.startswith(".checkpoint.pt.tmp-")]


def test_init_from_a_checkpoint_of_another_model_names_the_key_and_both_sides(data, tmp_path):
    from jamsdk.model.checkpoint import save_checkpoint
    from jamsdk.model.jam import build_model

    model_cfg, _ = configs()
    rp = model_cfg.region_predictor
    other = dataclasses.replace(model_cfg, region_predictor=dataclasses.replace(rp, temperature=rp.temperature * 2))
    save_checkpoint(tmp_path / "other.pt", build_model(other), other)
    want = (rf"--init .*model\.region_predictor\.temperature: {rp.temperature * 2!r} in the checkpoint, "
            rf"{rp.temperature!r} in the config")
    with pytest.raises(ConfigError, match=want):
        make(data, tmp_path / "run", init=tmp_path / "other.pt")
