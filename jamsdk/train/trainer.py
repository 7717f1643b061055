"""The training loop: stage 1 (reconstruction) and stage 2 (AVD), resumable, interruptible.

One readable loop (nanoGPT style) around :mod:`jamsdk.train.losses`. What it guarantees:

* **Atomic checkpoints** (``RUN/checkpoint.pt``) every ``checkpoint_every`` steps, at the end, and on
  SIGINT/SIGTERM (the current step finishes, the checkpoint is written, the run exits cleanly). A
  SIGKILL at any moment loses at most one interval and never leaves a torn file (temporary file,
  fsync, rename).
* **Exact resume** (``resume=True``): weights, optimizer, LR schedule, GradScaler, every RNG (torch,
  CUDA, numpy, python ``random`` and the trainer's own warp generator — stored as tensors and lists
  so ``torch.load(weights_only=True)`` reads them) and the data position (epoch and batch within it;
  the data order is a function of seed and epoch; :mod:`jamsdk.train.resume`) are restored: N steps
  straight and N/2 + resume + N/2 give the same weights. ``log.csv`` is cut back to the checkpoint's
  step (:mod:`jamsdk.train.run_log`).
* **A non-finite loss or gradient** stops the run with :class:`NonFiniteLossError` naming the step;
  nothing is written after the last good checkpoint.
* **Stage 2** (``stage=2``) starts from a stage-1 checkpoint (``init``), freezes everything but the
  AVD network and records ``meta["avd_trained"] = True`` in its checkpoints (the exporter reads it).
* Multi-GPU with ``torchrun`` (DistributedDataParallel when ``WORLD_SIZE > 1``; rank 0 writes; the
  process group and the ranks' agreement are :mod:`jamsdk.train.distributed`) and
  mixed precision on CUDA (``torch.autocast`` + ``GradScaler``); both are thin and guarded, since
  they cannot be exercised on a CPU-only machine.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import random
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from jamsdk.config import ModelConfig, first_difference
from jamsdk.errors import CheckpointError, ConfigError, InputError, JamError
from jamsdk.model.checkpoint import config_of, load_state_strict, read_checkpoint, save_checkpoint
from jamsdk.model.jam import build_model
from jamsdk.train.distributed import any_rank, init_distributed, mean_over_ranks, shutdown_distributed
from jamsdk.train.resume import EpochSampler, rng_state, set_rng_state
from jamsdk.train.run_log import CsvLog
from jamsdk.train.train_config import TrainConfig, write_run_config

CHECKPOINT_NAME = "checkpoint.pt"
CONFIG_NAME = "config.yaml"
LOG_NAME = "log.csv"
PLOT_NAME = "loss.png"


class NonFiniteLossError(JamError, FloatingPointError):
    """A loss or gradient became NaN/inf; the run stopped and the last checkpoint is untouched."""

    def __init__(self, step: int, what: str, values: dict[str, float]):
        shown = ", ".join(f"{k}={v:.6g}" for k, v in values.items())
        super().__init__(f"non-finite {what} at step {step} ({shown}); stopped without writing a checkpoint, "
                         "the last good one is kept (lower the learning rate or check the data)")
        self.step = step
        self.values = values


@dataclass
class TrainResult:
    """How a run ended."""

    step: int
    stopped_by: str  # "finished" or the signal name ("SIGTERM", "SIGINT")
    checkpoint: Path | None
    losses: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Small pieces: stop signals, config comparison


class StopSignals:
    """SIGINT/SIGTERM set a flag the loop checks after each step; a second Ctrl-C aborts at once."""

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name


def _config_mismatch(config: ModelConfig, checkpoint: ModelConfig) -> str | None:
    found = first_difference(config.to_dict(), checkpoint.to_dict(), "model")
    if found is None:
        return None
    where, ours, theirs = found
    return f"{where}: {theirs!r} in the checkpoint, {ours!r} in the config"


# ---------------------------------------------------------------------------------------------
# The trainer


class Trainer:
    """Everything one training run needs; :meth:`run` trains, :meth:`train_step` does one step.

    Args:
        model_cfg: the model to train (must match the checkpoint when resuming or in stage 2).
        train_cfg: the resolved training config (command-line overrides already applied).
        data_root: dataset folder (``train/`` and ``test/``; see :mod:`jamsdk.train.datasets`).
        out_dir: the run folder: ``checkpoint.pt``, ``config.yaml``, ``log.csv``, ``tb/``, ``loss.png``.
        stage: 1 (reconstruction) or 2 (AVD network only).
        resume: continue the run in ``out_dir`` exactly where its checkpoint left it.
        init: start from these weights (required for stage 2: the stage-1 checkpoint).
        device: ``cpu``, ``cuda`` (default: CUDA when available); under torchrun, each rank's GPU.
        plot: also draw ``loss.png`` from the log at each checkpoint.
        progress: show a tqdm bar.
        echo: where one-line messages go (default: stderr, above the progress bar).
    """

    def __init__(self, model_cfg: ModelConfig, train_cfg: TrainConfig, data_root: str | os.PathLike[str],
                 out_dir: str | os.PathLike[str], *, stage: int = 1, resume: bool = False,
                 init: str | os.PathLike[str] | None = None, device: str | None = None, plot: bool = False,
                 progress: bool = True, echo: Callable[[str], None] | None = None):
        if stage not in (1, 2):
            raise InputError(f"stage: expected 1 or 2, got {stage!r}")
        if resume and init is not None:
            raise InputError("pass either resume (continue this run) or init (start from other weights), not both")
        self.model_cfg, self.cfg, self.stage = model_cfg, train_cfg, stage
        self.data_root = Path(data_root)
        self.out = Path(out_dir)
        self.ckpt_path = self.out / CHECKPOINT_NAME
        self.plot = plot
        self.progress = progress
        self._echo = echo
        self.dist, self.device = init_distributed(device)
        self.amp = bool(train_cfg.amp and self.device.type == "cuda")
        # Stage-specific schedule values.
        sc = train_cfg if stage == 1 else train_cfg.avd
        self.lr, self.batch_size, self.milestones = sc.lr, sc.batch_size, sc.milestones
        self.steps_cfg, self.epochs_cfg = sc.steps, sc.epochs
        if self.batch_size % self.dist.world:
            raise ConfigError(f"batch size {self.batch_size} is not divisible by the {self.dist.world} processes")
        self.local_batch = self.batch_size // self.dist.world

        resume_data = self._check_out_dir(resume)
        if stage == 2 and resume_data is None and init is None:
            raise InputError("stage 2 trains the AVD network on a trained model: pass init=<stage-1 checkpoint> "
                             "(--init) or resume a stage-2 run (--resume)")
        self._build_data()  # bad data fails fast, before the model and VGG are built
        torch.manual_seed(train_cfg.seed)
        np.random.seed(train_cfg.seed % 2**32)
        random.seed(train_cfg.seed)
        # The same on every process: each draws the global batch's warps and keeps its rows.
        self.transform_gen = torch.Generator().manual_seed(train_cfg.seed)

        if stage == 1 and train_cfg.animation_pairs.batch and model_cfg.bg_motion.bg_type != "zero":
            raise ConfigError(f"train.animation_pairs needs model.bg_motion.bg_type: zero, got "
                              f"{model_cfg.bg_motion.bg_type!r} (the pairs' truth has no background motion)")
        self.model = build_model(model_cfg)
        self.init_meta: dict[str, Any] = {}
        if init is not None:
            self._load_init(init)
        if stage == 2 and self.model.avd is None:
            raise ConfigError("model.avd.enabled is false: stage 2 trains the AVD network; enable it in the config")
        self.model.to(self.device)
        self.objective, self.params = self._build_objective()
        self.objective.shard = (self.dist.rank, self.dist.world)
        self.wrapped = self.objective
        if self.dist.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            if self.device.type == "cuda" and self.stage == 1:
                # BatchNorm statistics over the global batch, as MRAA's synchronized BatchNorm
                # (torch's SyncBatchNorm is GPU-only: on CPU/gloo each process normalises its share).
                torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.objective)
            self.wrapped = DistributedDataParallel(self.objective, device_ids=ids)

        self.optimizer = torch.optim.Adam(self.params, lr=self.lr, betas=tuple(train_cfg.betas))
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        mult = self.steps_per_epoch if self.epochs_cfg is not None else 1
        self.total_steps = (self.steps_cfg if self.steps_cfg is not None else self.epochs_cfg * self.steps_per_epoch)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(
            self.optimizer, milestones=[m * mult for m in self.milestones], gamma=train_cfg.gamma)

        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self._saved_step = -1
        self._saved_finished = False
        self.resumed = resume_data is not None
        if self.resumed:
            self._restore(resume_data)
        self.last_losses: dict[str, float] = {}
        self._animation_pairs: Any = None

    # -- setup ------------------------------------------------------------------------------

    def echo(self, msg: str) -> None:
        if not self.dist.main:
            return
        if self._echo is not None:
            self._echo(msg)
            return
        from tqdm import tqdm

        tqdm.write(msg, file=sys.stderr)

    def _check_out_dir(self, resume: bool) -> dict[str, Any] | None:
        if self.dist.main:
            # Leftovers of a write interrupted by SIGKILL; never read, safe to drop.
            for tmp in self.out.glob(f".{CHECKPOINT_NAME}.tmp-*"):
                with contextlib.suppress(OSError):
                    tmp.unlink()
        if not resume:
            if self.ckpt_path.exists():
                raise InputError(f"{self.out} already holds a checkpoint; pass --resume to continue that run "
                                 "or choose another --out")
            return None
        if not self.ckpt_path.exists():
            raise InputError(f"--resume: no checkpoint to resume in {self.out} (expected {self.ckpt_path})")
        data = read_checkpoint(self.ckpt_path)
        state = data.get("train_state")
        if not isinstance(state, dict) or "step" not in state:
            raise CheckpointError(f"{self.ckpt_path} holds no training state to resume; start a new run with "
                                  "--init to use its weights")
        if state.get("stage") != self.stage:
            raise InputError(f"--resume: {self.ckpt_path} is a stage-{state.get('stage')} run, "
                             f"but stage {self.stage} was asked for")
        diff = _config_mismatch(self.model_cfg, config_of(data, str(self.ckpt_path)))
        if diff:
            raise ConfigError(f"--resume: the config's model differs from the checkpoint's ({diff})")
        return data

    def _load_init(self, init: str | os.PathLike[str]) -> None:
        data = read_checkpoint(init)
        ckpt_cfg = config_of(data, f"checkpoint {init}")
        diff = _config_mismatch(self.model_cfg, ckpt_cfg)
        if diff:
            raise ConfigError(f"--init {init}: the config's model differs from the checkpoint's ({diff})")
        load_state_strict(self.model, data["model"], f"checkpoint {init}")
        meta = data.get("meta") or {}
        self.init_meta = {"init_checkpoint": str(init), "init_stage": meta.get("stage"), "init_step": meta.get("step")}

    def _build_objective(self) -> tuple[torch.nn.Module, list[torch.nn.Parameter]]:
        from jamsdk.train.losses import AvdObjective, ReconstructionObjective

        if self.stage == 1:
            pixel = self.cfg.loss.pixel
            if self.cfg.loss.reconstruction == "pyramid":
                vgg = None
                lw = self.cfg.loss
                self.perceptual_source = (f"image pyramid L1 (weight {lw.pyramid_l1:g}) + SSIM (weight "
                                          f"{lw.pyramid_ssim:g}), no VGG")
                if self.cfg.vgg_weights is not None:
                    self.echo("note: train.loss.reconstruction is 'pyramid', so the VGG-19 weights are not used")
            else:
                from jamsdk.train.vgg import Vgg19

                vgg = Vgg19(self.cfg.vgg_weights, seed=self.cfg.vgg_seed)
                self.perceptual_source = vgg.source
                if not vgg.pretrained:
                    pixel += self.cfg.loss.fallback_pixel
                    self.echo(f"WARNING: no VGG-19 weights given (--vgg-weights): the perceptual loss uses a "
                              f"{vgg.source} plus an L1 pixel term (weight {pixel:g}) instead of ImageNet "
                              "features; pass torchvision's vgg19 ImageNet file (vgg19-dcbb9e9d.pth) for the "
                              "paper's loss, or set train.loss.reconstruction: pyramid (cheaper, no VGG)")
            self.pixel_weight = pixel
            if self.model.avd is not None:  # not part of stage 1 (and DDP rejects unused parameters)
                self.model.avd.requires_grad_(False)
            obj = ReconstructionObjective(self.model, vgg, self.cfg, pixel, self.transform_gen).to(self.device)
            params = [p for n, p in self.model.named_parameters() if p.requires_grad and not n.startswith("avd.")]
        else:
            self.perceptual_source = None
            self.pixel_weight = 0.0
            self.model.requires_grad_(False)
            self.model.avd.requires_grad_(True)
            obj = AvdObjective(self.model, self.cfg, self.transform_gen).to(self.device)
            params = list(self.model.avd.parameters())
        return obj, params

    def _set_modes(self) -> None:
        if self.stage == 1:
            self.model.train()
            if self.model.avd is not None:
                self.model.avd.eval()
        else:
            self.model.eval()  # frozen region predictor: running BatchNorm statistics
            self.model.avd.train()

    def _build_data(self) -> None:
        from jamsdk.train.datasets import FramesDataset

        cfg = self.cfg
        self.dataset = FramesDataset(self.data_root, split="train", image_size=self.model_cfg.image_size,
                                     frame_shape=cfg.frame_shape, id_sampling=cfg.id_sampling,
                                     augment=cfg.augment, repeats=cfg.repeats, seed=cfg.seed)
        self.sampler = EpochSampler(self.dataset, cfg.seed, self.dist.rank, self.dist.world)
        self.steps_per_epoch = self.sampler.per_epoch // self.local_batch
        if self.steps_per_epoch < 1:
            raise InputError(f"{self.data_root}: {len(self.dataset)} training items (× repeats) are fewer than one "
                             f"batch of {self.batch_size}; lower the batch size or raise train.repeats")
        self.loader = torch.utils.data.DataLoader(
            self.dataset, batch_size=self.local_batch, sampler=self.sampler, num_workers=cfg.num_workers,
            drop_last=True, pin_memory=self.device.type == "cuda",
            # Its own generator: creating an iterator must not consume the global RNG (exact resume).
            generator=torch.Generator().manual_seed(cfg.seed),
        )

    def _restore(self, data: dict[str, Any]) -> None:
        state = data["train_state"]
        load_state_strict(self.model, data["model"], f"checkpoint {self.ckpt_path}")
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            if state.get("scaler"):
                self.scaler.load_state_dict(state["scaler"])
        except (KeyError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"{self.ckpt_path}: optimizer/schedule state does not fit ({exc})") from None
        # The config (not the checkpoint) decides the learning-rate schedule from here on, milestones
        # already passed included: MultiStepLR decays only on reaching a milestone exactly, so the
        # rate for the next step is set here from the closed form (base lr × gamma^milestones passed).
        mult = self.steps_per_epoch if self.epochs_cfg is not None else 1
        self.scheduler.milestones = Counter([m * mult for m in self.milestones])
        passed = sum(1 for m in self.milestones if m * mult <= int(state["step"]))
        for group in self.optimizer.param_groups:
            group["lr"] = group["initial_lr"] * self.cfg.gamma ** passed
        self.scheduler._last_lr = [g["lr"] for g in self.optimizer.param_groups]
        self.step = int(state["step"])
        self.epoch = int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])
        if int(state.get("global_batch", self.batch_size)) != self.batch_size or \
                int(state.get("world_size", 1)) != self.dist.world:
            samples = self.batch_in_epoch * int(state.get("global_batch", self.batch_size))
            self.batch_in_epoch = min(samples // self.batch_size, self.steps_per_epoch - 1)
            self.echo("note: batch size or process count changed since the checkpoint; the data position is "
                      "approximate (exact resume needs the same settings)")
        if self.batch_in_epoch >= self.steps_per_epoch:
            self.epoch, self.batch_in_epoch = self.epoch + 1, 0
        set_rng_state(state["rng"], self.transform_gen)
        self.init_meta = {k: v for k, v in (data.get("meta") or {}).items() if k.startswith("init_")}
        self._saved_step = self.step
        self._saved_finished = bool((data.get("meta") or {}).get("finished"))
        self.echo(f"resumed {self.ckpt_path} at step {self.step} (epoch {self.epoch}, batch {self.batch_in_epoch})")

    # -- checkpoints ----------------------------------------------------------------------------

    def train_state(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "global_batch": self.batch_size,
            "world_size": self.dist.world,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.amp else None,
            "rng": rng_state(self.transform_gen),
        }

    def meta(self, finished: bool) -> dict[str, Any]:
        avd_trained = self.stage == 2
        return {
            "stage": self.stage,
            "avd_trained": avd_trained,
            "step": self.step,
            "finished": finished,
            "perceptual": self.perceptual_source,
            "pixel_weight": self.pixel_weight,
            "train_config": self.cfg.to_dict(),
            "data": str(self.data_root),
            **self.init_meta,
        }

    def save(self, finished: bool = False) -> Path:
        """Write ``checkpoint.pt`` atomically (rank 0 only); returns its path."""
        if self.dist.main and (self._saved_step != self.step or (finished and not self._saved_finished)):
            save_checkpoint(self.ckpt_path, self.model, self.model_cfg, self.train_state(), self.meta(finished))
            self._saved_step, self._saved_finished = self.step, finished
            if self.plot:
                self.write_plot()
        return self.ckpt_path

    def write_plot(self) -> None:
        from jamsdk.train.plot import plot_log

        log = self.out / LOG_NAME
        if log.is_file():
            plot_log(log, self.out / PLOT_NAME)

    # -- the loop -------------------------------------------------------------------------------

    def animation_batch(self) -> dict[str, torch.Tensor] | None:
        """This step's training animation pairs (stage 1 with ``train.animation_pairs.batch``), else None.

        A function of the step number, so a resumed run gets the same pairs.
        """
        ap = self.cfg.animation_pairs
        if self.stage != 1 or not ap.batch:
            return None
        if self._animation_pairs is None:
            from jamsdk.train.animation_pairs import AnimationPairs

            self._animation_pairs = AnimationPairs(self.model_cfg.image_size, self.cfg.seed, ap.max_offset)
        if ap.batch % self.dist.world:
            raise ConfigError(f"train.animation_pairs.batch {ap.batch} is not divisible by the {self.dist.world} "
                              "processes")
        arrays = self._animation_pairs.batch(self.step, ap.batch, slice(self.dist.rank, None, self.dist.world))
        return {k: torch.from_numpy(v).to(self.device) for k, v in arrays.items() if k != "offset"}

    def train_step(self, source: torch.Tensor, driving: torch.Tensor,
                   animation: dict[str, torch.Tensor] | None = None) -> dict[str, float]:
        """One optimizer step on a batch (and, when given, the step's training animation pairs);
        returns the (weighted) losses and their ``total``."""
        self._set_modes()
        source = source.to(self.device, non_blocking=True)
        driving = driving.to(self.device, non_blocking=True)
        with torch.autocast(device_type=self.device.type, dtype=torch.float16, enabled=self.amp):
            losses = self.wrapped(source, driving) if animation is None else self.wrapped(source, driving, animation)
        total = sum(losses.values())
        values = {k: float(v.detach()) for k, v in losses.items()}
        values["total"] = float(total.detach())
        values = mean_over_ranks(values, self.dist, self.device)
        # Agreed across processes, so no rank is left waiting in a collective when one stops.
        if any_rank(not all(math.isfinite(v) for v in values.values()), self.dist, self.device):
            raise NonFiniteLossError(self.step + 1, "loss", values)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        if not self.amp:  # with AMP, GradScaler skips steps with inf/NaN gradients by design
            grads = [p.grad for p in self.params if p.grad is not None]
            norm = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))) \
                if grads else 0.0
            if any_rank(not math.isfinite(norm), self.dist, self.device):
                raise NonFiniteLossError(self.step + 1, "gradient", {**values, "grad_norm": norm})
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.step += 1
        return values

    def close(self) -> None:
        """Let go of the process group this trainer started (under torchrun), after all ranks finished.

        Called by :func:`train`; a script that drives a :class:`Trainer` itself under torchrun calls
        it after :meth:`run`. Single-process trainers have nothing to close.
        """
        if self.dist.world > 1 and self.dist.owned:
            self.wrapped = self.objective  # DDP holds the process group: drop it first
            gc.collect()
            shutdown_distributed(self.dist)
            self.dist.owned = False

    def run(self) -> TrainResult:
        """Train until ``total_steps`` or a stop signal; returns how it ended."""
        from tqdm import tqdm

        if self.dist.main:
            self.out.mkdir(parents=True, exist_ok=True)
            write_run_config(self.out / CONFIG_NAME, self.model_cfg, self.cfg, self._config_header())
        log = CsvLog(self.out / LOG_NAME, self.step if self.resumed else None) if self.dist.main else None
        tb = self._tensorboard() if self.dist.main else None
        bar = tqdm(total=self.total_steps, initial=self.step, disable=not (self.progress and self.dist.main),
                   dynamic_ncols=True, desc=f"stage {self.stage}")
        sums: dict[str, float] = {}
        window_start, window_steps = time.perf_counter(), 0
        stopped_by = "finished"
        try:
            with StopSignals() as signals:
                while self.step < self.total_steps and stopped_by == "finished":
                    self.dataset.set_epoch(self.epoch)
                    self.sampler.set_position(self.epoch, self.batch_in_epoch * self.local_batch)
                    for batch in self.loader:
                        values = self.train_step(batch["source"], batch["driving"], self.animation_batch())
                        self.last_losses = values
                        self.batch_in_epoch += 1
                        if self.batch_in_epoch >= self.steps_per_epoch:
                            self.epoch, self.batch_in_epoch = self.epoch + 1, 0
                        for k, v in values.items():
                            sums[k] = sums.get(k, 0.0) + v
                        window_steps += 1
                        bar.update(1)
                        bar.set_postfix({k: f"{v:.4g}" for k, v in values.items()}, refresh=False)
                        if self.step % self.cfg.log_every == 0 or self.step == self.total_steps:
                            elapsed = time.perf_counter() - window_start
                            row = {"step": self.step, "epoch": self.epoch, "lr": self.optimizer.param_groups[0]["lr"],
                                   **{k: v / window_steps for k, v in sums.items()},
                                   "sec_per_step": elapsed / window_steps}
                            if log is not None:
                                log.write(row)
                            if tb is not None:
                                for k, v in row.items():
                                    if k not in ("step", "epoch"):
                                        tb.add_scalar(k if k in ("lr", "sec_per_step") else f"loss/{k}", v, self.step)
                            sums, window_start, window_steps = {}, time.perf_counter(), 0
                        if self.step % self.cfg.checkpoint_every == 0:
                            self.save()
                        if any_rank(signals.received is not None, self.dist, self.device):
                            stopped_by = signals.received or "signal"
                            break
                        if self.step >= self.total_steps:
                            break
                path = self.save(finished=stopped_by == "finished")
        finally:
            bar.close()
            if tb is not None:
                tb.close()
        if stopped_by != "finished":
            self.echo(f"{stopped_by}: saved {self.ckpt_path} at step {self.step}; continue with --resume")
        return TrainResult(self.step, stopped_by, path if self.dist.main else None, self.last_losses)

    def _config_header(self) -> str:
        lines = [f"Resolved config of this run (stage {self.stage}); `jamsdk train --config` reads it back."]
        if self.stage == 1:
            lines.append(f"Perceptual features: {self.perceptual_source}; L1 pixel weight in use: "
                         f"{self.pixel_weight:g}.")
            if self.cfg.vgg_weights is None and self.cfg.loss.reconstruction == "vgg":
                lines.append("FALLBACK: no VGG-19 ImageNet weights were given, so the random-init VGG-19 plus "
                             "loss.fallback_pixel replaces the paper's perceptual loss.")
        lines.append(f"Data: {self.data_root}; device: {self.device}; processes: {self.dist.world}; "
                     f"AMP: {self.amp}.")
        return "\n".join(lines)

    def _tensorboard(self) -> Any:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            self.echo("note: tensorboard is not installed; logging to log.csv only (pip install tensorboard)")
            return None
        return SummaryWriter(str(self.out / "tb"), purge_step=self.step + 1 if self.step else None)


def train(model_cfg: ModelConfig, train_cfg: TrainConfig, data_root: str | os.PathLike[str],
          out_dir: str | os.PathLike[str], **kwargs: Any) -> TrainResult:
    """Build a :class:`Trainer` and run it (keyword arguments as for :class:`Trainer`).

    Under torchrun, the process group the trainer started is torn down before this returns.
    """
    trainer = Trainer(model_cfg, train_cfg, data_root, out_dir, **kwargs)
    result = trainer.run()
    trainer.close()
    return result
