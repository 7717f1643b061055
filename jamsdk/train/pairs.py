"""Held-out animation pairs with ground truth: picture A, a driving clip of B, and A moving like B.

Real videos cannot say what "picture A performing video B's motion" should look like; jamsdk's
synthetic figures are parametric (:class:`jamsdk.train.figures.Pose`), so it can render it. Each pair
has two figures A and B with the same structure (limb count, which limbs are arms, mirroring — so
their joints correspond one to one) and their own proportions, colours, background and motion:

* ``source.png``: A at its own time t_A (a random point of its motion cycles);
* ``driving/``: B's clip, frames t_B, t_B + 1, …;
* ``relative/`` — the ground truth of the **relative** mode: A's pose at t_A plus B's changes since
  its first frame: every joint angle and the head tilt get B's change (θ_A + θ_B(i) − θ_B(0)), the
  rotation gets B's change, the scale is multiplied by B's ratio, and the position moves by B's
  displacement times the ratio of the figures' on-screen sizes (MRAA's relative mode scales
  movement by the source/driving size ratio too). Frame 0 is exactly the source picture.
* ``standard/`` — the ground truth of the **standard** and **avd** modes: A's body (proportions,
  colours, background) in B's *absolute* pose (B's joint angles, position, rotation and scale).
  Well defined here because the joints correspond; note that an image model's standard mode also
  copies B's shape (limb lengths, body size), which this ground truth does not have — exactly the
  identity leak the AVD mode is meant to remove, so the error shows it.

Pair ``j`` is rendered from ``np.random.default_rng([seed, PAIRS_STREAM, j])`` (training clips use
``[seed, i]``), so pairs are figures the model never saw, and the same seed gives the same bytes.
Everything is written as PNG frames (lossless: the ground truth must be exact).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from jamsdk.errors import InputError
from jamsdk.train.figures import Canvas, Figure, Pose, background

PAIRS_DIR = "pairs"
PAIRS_JSON = "pairs.json"
FORMAT = "jamsdk-animation-pairs"
# Bump when the rendering or the ground-truth definition changes: scores are only comparable
# between pair sets of the same version.
VERSION = 1
PAIRS_STREAM = 7  # third seed word of pair generators: a stream no training clip uses
GT_MODES = ("relative", "standard")
# Which ground truth scores which animation mode.
MODE_GT = {"relative": "relative", "standard": "standard", "avd": "standard"}


def relative_pose(a0: Pose, b0: Pose, b: Pose, size_ratio: float) -> Pose:
    """A's pose ``a0`` plus B's change from ``b0`` to ``b`` (see the module docstring)."""
    angles = tuple(tuple(x + (y - y0) for x, y, y0 in zip(ca, cb, cb0))
                   for ca, cb, cb0 in zip(a0.angles, b.angles, b0.angles))
    center = (a0.center[0] + size_ratio * (b.center[0] - b0.center[0]),
              a0.center[1] + size_ratio * (b.center[1] - b0.center[1]))
    return Pose(angles=angles, head_tilt=a0.head_tilt + (b.head_tilt - b0.head_tilt), center=center,
                rot=a0.rot + (b.rot - b0.rot), scale=a0.scale * (b.scale / b0.scale))


def render_pair(rng: np.random.Generator, frames: int, size: int) -> dict[str, np.ndarray]:
    """One pair: ``source`` (S, S, 3), ``driving``, ``relative``, ``standard`` (T, S, S, 3), uint8 RGB."""
    fig_b = Figure(rng, size)
    bg_b = background(rng, size, fig_b.bg_hue)
    fig_a = Figure(rng, size, like=fig_b)
    bg_a = background(rng, size, fig_a.bg_hue)
    t_b, t_a = rng.uniform(0, 200), rng.uniform(0, 200)

    def draw(fig: Figure, bg: np.ndarray, pose: Pose) -> np.ndarray:
        canvas = Canvas(bg, labels=False)
        fig.draw_pose(canvas, pose)
        return canvas.image

    a0, b0 = fig_a.pose(t_a), fig_b.pose(t_b)
    ratio = fig_a.size_at(a0) / fig_b.size_at(b0)
    out = {"source": draw(fig_a, bg_a, a0)}
    for key in ("driving", *GT_MODES):
        out[key] = np.empty((frames, size, size, 3), np.uint8)
    for i in range(frames):
        b = fig_b.pose(t_b + i)
        out["driving"][i] = draw(fig_b, bg_b, b)
        out["relative"][i] = draw(fig_a, bg_a, relative_pose(a0, b0, b, ratio))
        out["standard"][i] = draw(fig_a, bg_a, b)
    return out


def _write_png(path: Path, rgb: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:
        raise InputError(f"OpenCV could not encode {path} as PNG")
    path.write_bytes(buf.tobytes())


def write_pairs(folder: Path, pairs: int, frames: int, size: int, seed: int) -> dict[str, Any]:
    """Write ``pairs`` pairs into ``folder`` (created; the caller makes it atomic); returns the meta."""
    folder.mkdir()
    for j in range(pairs):
        pair = render_pair(np.random.default_rng([seed, PAIRS_STREAM, j]), frames, size)
        d = folder / f"pair_{j:05d}"
        d.mkdir()
        _write_png(d / "source.png", pair["source"])
        for key in ("driving", *GT_MODES):
            (d / key).mkdir()
            for i, frame in enumerate(pair[key]):
                _write_png(d / key / f"{i:05d}.png", frame)
    meta = {"format": FORMAT, "version": VERSION, "generator": "jamsdk.train.pairs", "seed": seed,
            "pairs": pairs, "frames": frames, "size": size, "modes": list(GT_MODES),
            "mode_ground_truth": dict(MODE_GT)}
    (folder / PAIRS_JSON).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return meta


# ---------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True)
class PairSet:
    """A pairs folder that passed the checks: its path and ``pairs.json``."""

    root: Path
    meta: dict[str, Any]

    @property
    def size(self) -> int:
        return int(self.meta["size"])

    def names(self) -> list[str]:
        return [f"pair_{j:05d}" for j in range(int(self.meta["pairs"]))]

    def load(self, name: str) -> dict[str, np.ndarray]:
        """``source`` (S, S, 3) and ``driving``/``relative``/``standard`` (T, S, S, 3), uint8 RGB."""
        d = self.root / name
        out = {"source": _read_png(d / "source.png")}
        for key in ("driving", *GT_MODES):
            files = sorted((d / key).glob("*.png"))
            if len(files) != int(self.meta["frames"]):
                raise InputError(f"{d / key}: expected {self.meta['frames']} PNG frames (pairs.json), "
                                 f"found {len(files)}; the pairs folder is incomplete — rewrite it with jamsdk synth")
            out[key] = np.stack([_read_png(f) for f in files])
        return out


def _read_png(path: Path) -> np.ndarray:
    from jamsdk.pictures import read_image  # its header check and pixel limit, like every reader

    if not path.is_file():
        raise InputError(f"{path}: missing or not a readable image")
    return read_image(path)


def open_pairs(path: str | os.PathLike[str]) -> PairSet:
    """Open a pairs folder: ``DATA`` (written by ``jamsdk synth --pairs N``) or ``DATA/pairs``.

    Raises:
        InputError: no ``pairs.json`` there, another format, or another pairs version.
    """
    root = Path(path)
    if not root.is_dir():
        raise InputError(f"--animation {root}: not a folder; expected a data set written by "
                         "'jamsdk synth --pairs N' (or its pairs/ folder)")
    if not (root / PAIRS_JSON).is_file() and (root / PAIRS_DIR / PAIRS_JSON).is_file():
        root = root / PAIRS_DIR
    meta_path = root / PAIRS_JSON
    if not meta_path.is_file():
        raise InputError(f"--animation {path}: no animation pairs there (expected {PAIRS_DIR}/{PAIRS_JSON}, written "
                         "by 'jamsdk synth --pairs N'); a data set of clips only has no ground truth to score against")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{meta_path}: not readable JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InputError(f"{meta_path}: expected format {FORMAT!r}, got {meta.get('format') if isinstance(meta, dict) else meta!r}")
    if meta.get("version") != VERSION:
        raise InputError(f"{meta_path}: pairs version {meta.get('version')!r}, but this jamsdk reads version {VERSION}; "
                         "scores are only comparable within a version — rewrite the pairs with this jamsdk's synth")
    for key in ("pairs", "frames", "size"):
        if not isinstance(meta.get(key), int) or meta[key] < 1:
            raise InputError(f"{meta_path}: {key!r} must be a whole number ≥ 1, got {meta.get(key)!r}")
    return PairSet(root, meta)
