"""Deterministic test inputs for the runtime tests (importable as ``rt_samples``)."""

from __future__ import annotations

import numpy as np


def driving_frames(n: int = 6, size: int = 64, seed: int = 1) -> np.ndarray:
    """``(n, size, size, 3)`` uint8 frames: smooth blobs that move, so region params change per frame."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    base = rng.uniform(0.2, 0.8, size=3).astype(np.float32)
    frames = []
    for t in range(n):
        img = np.empty((size, size, 3), np.float32)
        cx, cy = 0.3 + 0.07 * t, 0.5 + 0.05 * np.sin(t)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.02)
        blob2 = np.exp(-((xx - 0.7) ** 2 + (yy - 0.3 - 0.03 * t) ** 2) / 0.01)
        for c in range(3):
            img[..., c] = base[c] * (1 - 0.6 * blob) + 0.5 * blob2 * (c == 1) + 0.1 * xx
        frames.append(np.clip(img, 0, 1))
    return (np.stack(frames) * 255 + 0.5).astype(np.uint8)


def source_image(size: int = 64, seed: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    img = np.stack([0.5 + 0.4 * np.sin(6 * xx + rng.uniform()), 0.5 + 0.4 * np.cos(5 * yy), 0.3 + 0.5 * xx * yy], -1)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def to_tensor(frames: np.ndarray):
    """uint8 ``(T, H, W, 3)`` → float ``(T, 3, H, W)`` in [0, 1], exactly as the Animator converts."""
    x = frames.astype(np.float32) * np.float32(1.0 / 255.0)
    import torch

    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
