"""Training augmentation for frame pairs and clips, with numpy and OpenCV (no torch, no torchvision).

All random parameters are drawn once per item and applied identically to every frame of it (the
source and driving frames of a training pair see the same flip, zoom, crop and colour change), as
in MRAA/FOMM. The order is: time flip → horizontal flip → zoom + crop → colour jitter.

The defaults follow the MRAA/FOMM ``mgif`` recipe (flips, zoom 0.9–1.1 with a random crop back to
the model size, hue jitter 0.5); :func:`augment_preset` also gives the ``vox`` recipe (flips and
brightness/contrast/saturation/hue jitter 0.1) used for faces (VoxCeleb, Celeb-DF).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from jamsdk.errors import ConfigError, InputError

__all__ = ["AugmentConfig", "AugmentParams", "apply_augment", "augment", "augment_preset", "sample_params"]


@dataclass(frozen=True)
class AugmentConfig:
    """What to randomize; load from a mapping with ``jamsdk.config.from_dict(AugmentConfig, data)``.

    Attributes:
        flip_horizontal: mirror left-right with probability 1/2.
        flip_time: reverse the frame order with probability 1/2 (swaps source and driving).
        scale: (min, max) zoom factor drawn uniformly; (1, 1) disables zooming.
        crop: place the model-size window at a random position of the zoomed frame (a random
            crop; where zoomed out, a random position on a border-replicated canvas). False keeps it
            centred.
        brightness: factor drawn from [max(0, 1 − b), 1 + b].
        contrast: factor drawn from [max(0, 1 − c), 1 + c], around each frame's mean gray.
        saturation: factor drawn from [max(0, 1 − s), 1 + s], around each pixel's gray.
        hue: shift drawn from [−h, h] in turns (0.5 = any hue), h ≤ 0.5.
    """

    flip_horizontal: bool = True
    flip_time: bool = True
    scale: tuple[float, ...] = (0.9, 1.1)
    crop: bool = True
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    hue: float = 0.5

    def __post_init__(self) -> None:
        if len(self.scale) != 2 or not 0 < self.scale[0] <= self.scale[1] <= 4:
            raise ConfigError(f"scale: expected [min, max] with 0 < min ≤ max ≤ 4, got {list(self.scale)}")
        for key in ("brightness", "contrast", "saturation"):
            v = getattr(self, key)
            if not 0 <= v <= 10:
                raise ConfigError(f"{key}: expected a value in [0, 10], got {v!r}")
        if not 0 <= self.hue <= 0.5:
            raise ConfigError(f"hue: expected a value in [0, 0.5] (turns), got {self.hue!r}")


_PRESETS = {
    "mgif": AugmentConfig(),
    "vox": AugmentConfig(scale=(1.0, 1.0), crop=False, brightness=0.1, contrast=0.1, saturation=0.1, hue=0.1),
    "flip": AugmentConfig(scale=(1.0, 1.0), crop=False, hue=0.0),
}


def augment_preset(name: str) -> AugmentConfig | None:
    """``"mgif"`` (the defaults), ``"vox"`` (faces), ``"flip"`` (flips only) or ``"none"`` (None)."""
    if name == "none":
        return None
    if name not in _PRESETS:
        raise ConfigError(f"unknown augmentation preset {name!r} (expected one of: {', '.join([*_PRESETS, 'none'])})")
    return _PRESETS[name]


@dataclass(frozen=True)
class AugmentParams:
    """One draw of the random parameters, applied to all frames of an item."""

    flip_time: bool = False
    flip_horizontal: bool = False
    scale: float = 1.0
    offset: tuple[float, float] = (0.0, 0.0)  # (x, y) of the zoomed frame's corner in the window
    brightness: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0
    hue: float = 0.0
    order: tuple[int, ...] = (0, 1, 2, 3)  # jitter order, as torchvision's ColorJitter shuffles it


def _factor(rng: np.random.Generator, amount: float) -> float:
    return float(rng.uniform(max(0.0, 1.0 - amount), 1.0 + amount)) if amount > 0 else 1.0


def sample_params(cfg: AugmentConfig, rng: np.random.Generator, size: int) -> AugmentParams:
    """Draw the parameters for one item of ``size × size`` frames."""
    flip_t = bool(cfg.flip_time and rng.random() < 0.5)
    flip_h = bool(cfg.flip_horizontal and rng.random() < 0.5)
    lo, hi = cfg.scale
    s = float(rng.uniform(lo, hi)) if hi > lo else float(lo)
    room = size - s * size  # < 0 when zoomed in (crop), > 0 when zoomed out (pad)
    if cfg.crop:
        ox, oy = (float(rng.uniform(min(0.0, room), max(0.0, room))) for _ in range(2))
    else:
        ox = oy = room / 2
    return AugmentParams(
        flip_time=flip_t,
        flip_horizontal=flip_h,
        scale=s,
        offset=(ox, oy),
        brightness=_factor(rng, cfg.brightness),
        contrast=_factor(rng, cfg.contrast),
        saturation=_factor(rng, cfg.saturation),
        hue=float(rng.uniform(-cfg.hue, cfg.hue)) if cfg.hue > 0 else 0.0,
        order=tuple(int(i) for i in rng.permutation(4)),
    )


_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _jitter(img: np.ndarray, p: AugmentParams) -> np.ndarray:
    for op in p.order:
        if op == 0 and p.brightness != 1.0:
            img = img * p.brightness
        elif op == 1 and p.contrast != 1.0:
            mean = float((img @ _LUMA).mean())
            img = (img - mean) * p.contrast + mean
        elif op == 2 and p.saturation != 1.0:
            gray = (img @ _LUMA)[..., None]
            img = (img - gray) * p.saturation + gray
        elif op == 3 and p.hue != 0.0:
            hsv = cv2.cvtColor(np.clip(img, 0.0, 1.0), cv2.COLOR_RGB2HSV)  # H in degrees
            hsv[..., 0] = np.mod(hsv[..., 0] + 360.0 * p.hue, 360.0)
            img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
        img = np.clip(img, 0.0, 1.0)
    return img


def apply_augment(frames: np.ndarray, params: AugmentParams) -> np.ndarray:
    """Apply ``params`` to ``(T, S, S, 3)`` uint8 RGB frames; returns float32 in [0, 1], same shape."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[1] != frames.shape[2] or frames.dtype != np.uint8:
        raise InputError(f"expected (T, S, S, 3) uint8 frames, got {tuple(frames.shape)} {frames.dtype}")
    size = frames.shape[1]
    if params.flip_time:
        frames = frames[::-1]
    if params.flip_horizontal:
        frames = frames[:, :, ::-1]
    out = np.empty(frames.shape, np.float32)
    s, (ox, oy) = params.scale, params.offset
    warp = np.array([[s, 0.0, ox], [0.0, s, oy]], np.float64)
    identity = s == 1.0 and ox == 0.0 and oy == 0.0
    for i, frame in enumerate(frames):
        frame = np.ascontiguousarray(frame)
        if not identity:
            # One affine warp does zoom and crop/pad together (a single interpolation); replicated
            # borders keep smooth backgrounds smooth where the frame is zoomed out.
            frame = cv2.warpAffine(frame, warp, (size, size), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REPLICATE)
        out[i] = _jitter(frame.astype(np.float32) / 255.0, params)
    return out


def augment(frames: np.ndarray, cfg: AugmentConfig | None, rng: np.random.Generator) -> np.ndarray:
    """Draw parameters from ``rng`` and apply them; ``cfg=None`` only converts to float32 [0, 1]."""
    frames = np.asarray(frames)
    if cfg is None:
        return frames.astype(np.float32) / 255.0
    return apply_augment(frames, sample_params(cfg, rng, frames.shape[1]))
