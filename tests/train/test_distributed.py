"""DDP on CPU (gloo): ``jamsdk train --nproc 2`` and a resume under ``torchrun``, against one process.

What "matching a single-process run at the same global batch" means on CPU: every process gets
the global batch's items r, r + world, … (DistributedSampler), draws the same random warps for
them as one process would, and DDP averages the gradients. The one difference torch leaves is
BatchNorm: ``SyncBatchNorm`` is CUDA-only, so on CPU each process normalises with the statistics
of its own share. The test therefore compares DDP against one process that computes the same
thing — the mean of the per-share gradients, each share with its own BatchNorm statistics and
rank 0's running statistics kept (DDP broadcasts rank 0's buffers) — to 1e-4 relative (float
summation order), and records how far a plain one-process run at the same global batch is.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from jamsdk.model.checkpoint import read_checkpoint
from jamsdk.train.synth import write_dataset
from jamsdk.train.train_config import load_run_config, replace, write_run_config
from jamsdk.train.trainer import Trainer

pytest.importorskip("torch.distributed")
if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
    pytest.skip("torch built without gloo", allow_module_level=True)

torch.set_num_threads(1)  # as the launched processes (OMP_NUM_THREADS=1)
REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "train" / "configs" / "tiny.yaml"
WORLD = 2


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    write_dataset(tmp / "data", clips=6, frames=6, size=64, seed=0)
    model_cfg, train_cfg = load_run_config(TINY)
    # The pyramid loss keeps the steps cheap (no VGG); everything else is the tiny recipe.
    train_cfg = replace(train_cfg, batch_size=4, repeats=2, steps=2, milestones=(), log_every=1,
                        checkpoint_every=1, loss=dataclasses.replace(train_cfg.loss, reconstruction="pyramid"))
    write_run_config(tmp / "cfg.yaml", model_cfg, train_cfg)
    return tmp, model_cfg, train_cfg


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.setdefault("GLOO_SOCKET_IFNAME", "lo")  # loopback only
    return env


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _emulated(model_cfg, train_cfg, data: Path, out: Path, steps: int) -> Trainer:
    """One process doing what WORLD DDP processes do on CPU (see the module docstring)."""
    tr = Trainer(model_cfg, train_cfg, data, out, device="cpu", progress=False, echo=lambda m: None)
    batches = iter(tr.loader)
    tr.dataset.set_epoch(0)
    tr.sampler.set_position(0, 0)
    for _ in range(steps):
        batch = next(batches)
        tr._set_modes()
        gen = tr.transform_gen.get_state()
        buffers = {k: v.clone() for k, v in tr.model.named_buffers()}
        tr.optimizer.zero_grad(set_to_none=True)
        for rank in range(WORLD):
            tr.transform_gen.set_state(gen)
            tr.objective.shard = (rank, WORLD)
            if rank == 0:
                losses = tr.objective(batch["source"][rank::WORLD], batch["driving"][rank::WORLD])
                kept = {k: v.clone() for k, v in tr.model.named_buffers()}
            else:
                with torch.no_grad():
                    for k, v in tr.model.named_buffers():
                        v.copy_(buffers[k])
                losses = tr.objective(batch["source"][rank::WORLD], batch["driving"][rank::WORLD])
            (sum(losses.values()) / WORLD).backward()
        with torch.no_grad():
            for k, v in tr.model.named_buffers():
                v.copy_(kept[k])
        tr.optimizer.step()
        tr.scheduler.step()
        tr.step += 1
    return tr


def _max_rel(a: dict, b: dict) -> float:
    """‖a − b‖ / ‖a‖ over all tensors together (a per-tensor ratio would divide float noise by the
    near-zero gradients some parameters get)."""
    num = sum(float(((a[k].double() - b[k].double()) ** 2).sum()) for k in a)
    den = sum(float((a[k].double() ** 2).sum()) for k in a)
    return (num / den) ** 0.5


def _exp_avg(opt_state: dict) -> dict[int, torch.Tensor]:
    return {i: s["exp_avg"] for i, s in opt_state["state"].items()}


def test_ddp_two_processes_gloo_resume_and_parity(setup, tmp_path):
    tmp, model_cfg, train_cfg = setup
    out = tmp_path / "ddp"
    common = ["--device", "cpu", "--no-progress"]
    # Step 1 through the --nproc launcher...
    _run([sys.executable, "-m", "jamsdk", "train", "--nproc", str(WORLD), "--config", str(tmp / "cfg.yaml"),
          "--data", str(tmp / "data"), "--out", str(out), "--max-steps", "1", *common])
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "config.yaml", "log.csv"]  # rank 0 only
    step1 = read_checkpoint(out / "checkpoint.pt")
    assert step1["train_state"]["step"] == 1 and step1["train_state"]["world_size"] == WORLD
    assert step1["train_state"]["global_batch"] == 4
    # ...step 2 by resuming under torchrun itself.
    _run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={WORLD}",
          "-m", "jamsdk", "train", "--out", str(out), "--resume", "--max-steps", "2", *common])
    step2 = read_checkpoint(out / "checkpoint.pt")
    assert step2["train_state"]["step"] == 2
    assert len((out / "log.csv").read_text().strip().splitlines()) == 3  # header + 2 steps, no duplicate rows

    emu = _emulated(model_cfg, train_cfg, tmp / "data", tmp_path / "emu", 1)
    # Adam's first moment after one step is (1 − β1)·gradient: the averaged gradients agree.
    assert _max_rel(_exp_avg(emu.optimizer.state_dict()), _exp_avg(step1["train_state"]["optimizer"])) < 1e-4
    emu = _emulated(model_cfg, train_cfg, tmp / "data", tmp_path / "emu2", 2)
    params = {n for n, _ in emu.model.named_parameters()}
    want = {k: v for k, v in emu.model.state_dict().items() if k in params}
    got = {k: v.float() for k, v in step2["model"].items() if k in params}
    assert _max_rel(want, got) < 1e-4
    assert _max_rel(_exp_avg(emu.optimizer.state_dict()), _exp_avg(step2["train_state"]["optimizer"])) < 1e-3

    # A plain one-process run at the same global batch differs only through BatchNorm statistics.
    single = Trainer(model_cfg, train_cfg, tmp / "data", tmp_path / "single", device="cpu", progress=False,
                     echo=lambda m: None)
    single.run()
    ref = {k: v for k, v in single.model.state_dict().items() if k in params}
    init = Trainer(model_cfg, replace(train_cfg, steps=1), tmp / "data", tmp_path / "init", device="cpu",
                   progress=False, echo=lambda m: None)
    start = {k: v.clone() for k, v in init.model.state_dict().items() if k in params}
    moved = max(float((ref[k] - start[k]).abs().max()) for k in params)
    differ = max(float((ref[k] - got[k]).abs().max()) for k in params)
    # Adam moves each weight by at most ~lr per step; BatchNorm on 2 vs 4 samples changes the
    # gradients' directions a little, never the order of the steps.
    assert moved > 0 and differ <= 2 * moved, (differ, moved)


# Run under torchrun by the test below: train one step, then report what is left of the process group.
_TEARDOWN_SCRIPT = """
import os, sys
import torch.distributed as dist
from jamsdk.train.train_config import load_run_config
from jamsdk.train.trainer import train

model_cfg, train_cfg = load_run_config(sys.argv[1])
train(model_cfg, train_cfg, sys.argv[2], sys.argv[3], device="cpu", progress=False, echo=lambda m: None)
names = sorted(open(f"/proc/self/task/{t}/comm").read().strip() for t in os.listdir("/proc/self/task"))
with open(f"{sys.argv[4]}.{os.environ['RANK']}", "w") as fh:
    fh.write(f"initialized={dist.is_initialized()} threads={','.join(names)}")
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads the thread names from /proc")
def test_ddp_tears_down_its_process_group_before_the_interpreter_exits(setup, tmp_path):
    """A rank that finishes first must not exit with gloo's threads still running.

    Those threads release the last collective's tensors after the caller has its result, and that
    takes the GIL: once the interpreter is shutting down, Python ends such a thread with a forced
    unwind and the process aborts ("terminate called without an active exception") — rarely, and
    more often on a loaded machine. train() must destroy the process group (which joins the
    threads) before it returns, on every rank.
    """
    tmp, _, _ = setup
    script = tmp_path / "teardown.py"
    script.write_text(_TEARDOWN_SCRIPT)
    cfg = tmp_path / "cfg.yaml"
    model_cfg, train_cfg = load_run_config(tmp / "cfg.yaml")
    write_run_config(cfg, model_cfg, replace(train_cfg, steps=1))
    proc = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={WORLD}",
                 str(script), str(cfg), str(tmp / "data"), str(tmp_path / "run"), str(tmp_path / "report")])
    for rank in range(WORLD):
        report = (tmp_path / f"report.{rank}").read_text()
        assert "initialized=False" in report, f"rank {rank}: {report}\n{proc.stdout[-2000:]}"
        assert "gloo" not in report, f"rank {rank}: gloo threads still running when train() returned: {report}"
