"""Training configuration: the ``train:`` section of a config file, as frozen dataclasses.

Defaults are MRAA's stage-1/stage-2 values (MRAA_FACTS §9–10) except where a CPU-sized run needs
otherwise (batch size, run length); the shipped configs in ``train/configs`` set every value they
rely on. Lengths and schedules count optimizer steps; a run may instead give ``epochs`` (one epoch =
one pass over the training clips × ``repeats``), and then ``milestones`` count epochs too.

Loaded with :func:`jamsdk.config.from_dict`, so unknown keys and wrong types name the bad key
(``train.loss.perceptual: expected a list of float, got 'x'``).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from jamsdk.config import (
    ModelConfig,
    _to_plain,
    from_dict,
    model_config_from_dict,
    read_config_file,
)
from jamsdk.errors import ConfigError
from jamsdk.train.datasets import AugmentConfig


RECONSTRUCTION_LOSSES = ("vgg", "pyramid")


@dataclass(frozen=True)
class LossConfig:
    """Loss weights of stage 1 (the total is the plain sum of the weighted terms)."""

    # "vgg": the paper's VGG-19 perceptual pyramid (give ImageNet weights with vgg_weights);
    # "pyramid": image-pyramid L1 + SSIM instead, no VGG at all (cheaper per step; for runs without
    # ImageNet weights, where a random-init VGG carries no learned features).
    reconstruction: str = "vgg"
    # Weights of the "pyramid" kind, per pyramid scale.
    pyramid_l1: float = 10.0
    pyramid_ssim: float = 10.0
    # One weight per VGG-19 slice: relu1_1, relu2_1, relu3_1, relu4_1, relu5_1.
    perceptual: tuple[float, ...] = (10.0, 10.0, 10.0, 10.0, 10.0)
    # L1 on pixels in [0, 1]; MRAA has none.
    pixel: float = 0.0
    # Added to ``pixel`` when no ImageNet VGG-19 weights are given (random-feature fallback).
    fallback_pixel: float = 10.0
    equivariance_shift: float = 10.0
    equivariance_affine: float = 10.0


@dataclass(frozen=True)
class EquivarianceConfig:
    """The random affine + thin-plate-spline warp of the equivariance losses."""

    sigma_affine: float = 0.05
    sigma_tps: float = 0.005
    points_tps: int = 5


@dataclass(frozen=True)
class AnimationPairsConfig:
    """Supervised cross-identity relative-mode pairs added to each stage-1 step
    (:mod:`jamsdk.train.animation_pairs`; synthetic figures only, a departure from MRAA's recipe)."""

    # Pairs per step (0: off, MRAA's self-supervised recipe alone).
    batch: int = 0
    # Weight of their reconstruction loss (same kind as the self-supervised pairs').
    weight: float = 1.0
    # The driving frame is up to this many frames after the driver's first.
    max_offset: int = 31


@dataclass(frozen=True)
class AvdTrainConfig:
    """Stage 2: only the AVD network trains, from a stage-1 checkpoint."""

    lr: float = 1e-3
    batch_size: int = 64
    steps: int | None = 3000
    epochs: int | None = None
    milestones: tuple[int, ...] = ()
    random_scale: float = 0.25
    lambda_shift: float = 1.0
    lambda_affine: float = 1.0


@dataclass(frozen=True)
class TrainConfig:
    """Stage-1 training (and, under ``avd``, stage 2)."""

    lr: float = 2e-4
    betas: tuple[float, ...] = (0.5, 0.999)
    batch_size: int = 8
    steps: int | None = 10000
    epochs: int | None = None
    # Learning rate × gamma at each milestone (MultiStepLR).
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    # Perceptual pyramid scales (1/n each).
    scales: tuple[float, ...] = (1.0, 0.5, 0.25, 0.125)
    loss: LossConfig = field(default_factory=LossConfig)
    equivariance: EquivarianceConfig = field(default_factory=EquivarianceConfig)
    # torchvision vgg19 ImageNet weight file; null → random-init VGG-19 fallback (see vgg.py).
    vgg_weights: str | None = None
    vgg_seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 10
    num_workers: int = 0
    # Dataset: clips × repeats per epoch (MRAA's num_repeats), id sampling, frame shape, augmentation.
    repeats: int = 1
    id_sampling: bool = False
    frame_shape: tuple[int, ...] | None = None
    augment: AugmentConfig | None = field(default_factory=AugmentConfig)
    seed: int = 0
    # Mixed precision (torch.autocast + GradScaler); only ever used on CUDA.
    amp: bool = True
    animation_pairs: AnimationPairsConfig = field(default_factory=AnimationPairsConfig)
    avd: AvdTrainConfig = field(default_factory=AvdTrainConfig)

    def __post_init__(self) -> None:
        _check(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain data that :func:`train_config_from_dict` reads back."""
        return _to_plain(dataclasses.asdict(self))


def _check(cfg: TrainConfig) -> None:
    def bad(key: str, msg: str) -> None:
        raise ConfigError(f"train.{key}: {msg}")

    _check_schedule("", cfg.lr, cfg.batch_size, cfg.steps, cfg.epochs, cfg.milestones, bad)
    _check_schedule("avd.", cfg.avd.lr, cfg.avd.batch_size, cfg.avd.steps, cfg.avd.epochs, cfg.avd.milestones, bad)
    if len(cfg.betas) != 2 or not all(0 <= b < 1 for b in cfg.betas):
        bad("betas", f"expected two values in [0, 1), got {list(cfg.betas)}")
    if not 0 < cfg.gamma <= 1:
        bad("gamma", f"expected a value in (0, 1], got {cfg.gamma}")
    if not cfg.scales:
        bad("scales", "expected at least one scale")
    for s in cfg.scales:
        if not 0 < s <= 1 or abs(1 / s - round(1 / s)) > 1e-6:
            bad("scales", f"expected values 1/n for whole n ≥ 1, got {s}")
    if cfg.loss.reconstruction not in RECONSTRUCTION_LOSSES:
        bad("loss.reconstruction", f"expected one of {list(RECONSTRUCTION_LOSSES)}, got {cfg.loss.reconstruction!r}")
    if len(cfg.loss.perceptual) != 5:
        bad("loss.perceptual", f"expected 5 weights (relu1_1 … relu5_1), got {len(cfg.loss.perceptual)}")
    for key in ("pixel", "fallback_pixel", "pyramid_l1", "pyramid_ssim", "equivariance_shift", "equivariance_affine"):
        if getattr(cfg.loss, key) < 0:
            bad(f"loss.{key}", f"expected ≥ 0, got {getattr(cfg.loss, key)}")
    if any(w < 0 for w in cfg.loss.perceptual):
        bad("loss.perceptual", f"expected weights ≥ 0, got {list(cfg.loss.perceptual)}")
    eq = cfg.equivariance
    if eq.sigma_affine < 0 or eq.sigma_tps < 0:
        bad("equivariance", f"sigmas must be ≥ 0, got {eq.sigma_affine}, {eq.sigma_tps}")
    if eq.points_tps < 2:
        bad("equivariance.points_tps", f"expected ≥ 2, got {eq.points_tps}")
    for key in ("checkpoint_every", "log_every", "repeats"):
        if getattr(cfg, key) < 1:
            bad(key, f"expected ≥ 1, got {getattr(cfg, key)}")
    if cfg.num_workers < 0:
        bad("num_workers", f"expected ≥ 0, got {cfg.num_workers}")
    if cfg.frame_shape is not None and (len(cfg.frame_shape) not in (2, 3) or min(cfg.frame_shape) < 1):
        bad("frame_shape", f"expected [H, W] (or [H, W, 3]) or null, got {list(cfg.frame_shape)}")
    ap = cfg.animation_pairs
    if ap.batch < 0 or ap.max_offset < 0 or ap.weight < 0:
        bad("animation_pairs", f"batch, weight and max_offset must be ≥ 0, got {ap.batch}, {ap.weight}, {ap.max_offset}")
    if not 0 <= cfg.avd.random_scale < 1:
        bad("avd.random_scale", f"expected a value in [0, 1), got {cfg.avd.random_scale}")
    if cfg.avd.lambda_shift < 0 or cfg.avd.lambda_affine < 0:
        bad("avd", "lambda_shift and lambda_affine must be ≥ 0")


def _check_schedule(prefix: str, lr: float, batch_size: int, steps: int | None, epochs: int | None,
                    milestones: tuple[int, ...], bad) -> None:
    if lr <= 0:
        bad(f"{prefix}lr", f"expected a positive learning rate, got {lr}")
    # BatchNorm needs more than one value per channel; the deepest hourglass level is 1×1 at 128².
    if batch_size < 2:
        bad(f"{prefix}batch_size", f"expected ≥ 2 (BatchNorm statistics), got {batch_size}")
    if (steps is None) == (epochs is None):
        bad(f"{prefix}steps", f"set exactly one of {prefix}steps and {prefix}epochs (got steps={steps}, "
                              f"epochs={epochs})")
    length = steps if steps is not None else epochs
    if length is not None and length < 1:
        bad(f"{prefix}{'steps' if steps is not None else 'epochs'}", f"expected ≥ 1, got {length}")
    if any(m < 1 for m in milestones) or list(milestones) != sorted(set(milestones)):
        bad(f"{prefix}milestones", f"expected increasing whole numbers ≥ 1, got {list(milestones)}")


def _lengths(data: Mapping[str, Any]) -> dict[str, Any]:
    # Giving ``epochs`` alone means "count epochs": clear the default ``steps``.
    out = dict(data)
    if out.get("epochs") is not None and "steps" not in out:
        out["steps"] = None
    return out


def train_config_from_dict(data: Mapping[str, Any] | None) -> TrainConfig:
    """TrainConfig from the ``train`` mapping of a config file (missing keys take the defaults)."""
    data = _lengths(data or {})
    if isinstance(data.get("avd"), Mapping):
        data["avd"] = _lengths(data["avd"])
    return from_dict(TrainConfig, data, "train")


def load_run_config(name_or_path: str | os.PathLike[str]) -> tuple[ModelConfig, TrainConfig]:
    """Read ``model:`` and ``train:`` of a config file (a path or a shipped model-config name)."""
    path, data = read_config_file(name_or_path)
    try:
        return model_config_from_dict(data["model"] or {}), train_config_from_dict(data.get("train"))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def replace(cfg: TrainConfig, **changes: Any) -> TrainConfig:
    """A copy with top-level fields changed (``avd={...}`` merges into the AVD section)."""
    if "avd" in changes and isinstance(changes["avd"], Mapping):
        changes["avd"] = dataclasses.replace(cfg.avd, **changes["avd"])
    return dataclasses.replace(cfg, **changes)


def write_run_config(path: str | os.PathLike[str], model: ModelConfig, train: TrainConfig,
                     header: str = "") -> None:
    """Write the resolved ``model:``/``train:`` YAML atomically (``--config`` reads it back)."""
    import yaml

    from jamsdk._atomic import write_bytes

    text = yaml.safe_dump({"model": model.to_dict(), "train": train.to_dict()}, sort_keys=False)
    comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    write_bytes(Path(path), (comment + text).encode("utf-8"))
