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

With every pair the renderer's own truth is written too, for the motion metric
(:mod:`jamsdk.train.motion_metrics`): ``labels/`` holds the part-label maps (one PNG per frame, values
as :func:`jamsdk.train.figures.render_clip`'s ``with_labels``: 0 background, 1 body, 2 head and neck, 3
tail, 4 + 2·i / 5 + 2·i limb ``i``) of ``source``, ``relative/`` and ``standard/``, and
``background.png`` is A's background without the figure. The pictures are the same bytes as version 1's.

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
# between pair sets of the same version. Version 2 added the label maps and A's background (the
# pictures are byte-identical to version 1's, so L1 scores of both compare).
VERSION = 2
LABELS_DIR = "labels"
BACKGROUND_PNG = "background.png"
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


@dataclass(frozen=True)
class PairScene:
    """The two figures of a pair and where their motions start: A (the source) and B (the driver)."""

    fig_a: Figure
    bg_a: np.ndarray
    fig_b: Figure
    bg_b: np.ndarray
    t_a: float
    t_b: float

    @property
    def ratio(self) -> float:
        """A's on-screen size over B's at their first frames: the relative truth's movement scale."""
        return self.fig_a.size_at(self.fig_a.pose(self.t_a)) / self.fig_b.size_at(self.fig_b.pose(self.t_b))

    def relative_pose_at(self, i: float) -> Pose:
        """The relative truth's pose ``i`` frames into B's clip."""
        return relative_pose(self.fig_a.pose(self.t_a), self.fig_b.pose(self.t_b), self.fig_b.pose(self.t_b + i),
                             self.ratio)


def pair_scene(rng: np.random.Generator, size: int) -> PairScene:
    """Draw a pair's figures, backgrounds and start times from ``rng`` (the held-out pairs and the
    training animation pairs of :mod:`jamsdk.train.animation_pairs` both start here)."""
    fig_b = Figure(rng, size)
    bg_b = background(rng, size, fig_b.bg_hue)
    fig_a = Figure(rng, size, like=fig_b)
    bg_a = background(rng, size, fig_a.bg_hue)
    t_b, t_a = rng.uniform(0, 200), rng.uniform(0, 200)
    return PairScene(fig_a, bg_a, fig_b, bg_b, t_a, t_b)


def draw_figure(fig: Figure, bg: np.ndarray, pose: Pose) -> tuple[np.ndarray, np.ndarray]:
    """``fig`` in ``pose`` over ``bg``: the (S, S, 3) uint8 picture and its (S, S) part labels."""
    canvas = Canvas(bg, labels=True)  # the labels are drawn apart: the picture is the same
    fig.draw_pose(canvas, pose)
    return canvas.image, canvas.labels


def render_pair(rng: np.random.Generator, frames: int, size: int) -> dict[str, np.ndarray]:
    """One pair: ``source`` (S, S, 3), ``driving``, ``relative``, ``standard`` (T, S, S, 3), uint8 RGB,
    with the truth of the motion metric: ``background`` (S, S, 3), A's background, and the part labels
    ``source_labels`` (S, S), ``relative_labels`` and ``standard_labels`` (T, S, S), uint8."""
    sc = pair_scene(rng, size)
    out = {"background": sc.bg_a}
    out["source"], out["source_labels"] = draw_figure(sc.fig_a, sc.bg_a, sc.fig_a.pose(sc.t_a))
    for key in ("driving", *GT_MODES):
        out[key] = np.empty((frames, size, size, 3), np.uint8)
    for key in GT_MODES:
        out[f"{key}_labels"] = np.empty((frames, size, size), np.uint8)
    for i in range(frames):
        b = sc.fig_b.pose(sc.t_b + i)
        out["driving"][i] = draw_figure(sc.fig_b, sc.bg_b, b)[0]
        out["relative"][i], out["relative_labels"][i] = draw_figure(sc.fig_a, sc.bg_a, sc.relative_pose_at(i))
        out["standard"][i], out["standard_labels"][i] = draw_figure(sc.fig_a, sc.bg_a, b)
    return out


def _write_png(path: Path, image: np.ndarray) -> None:
    """An (S, S, 3) RGB picture or an (S, S) label map as PNG."""
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(image[:, :, ::-1] if image.ndim == 3 else image))
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
        _write_png(d / BACKGROUND_PNG, pair["background"])
        for key in ("driving", *GT_MODES):
            (d / key).mkdir()
            for i, frame in enumerate(pair[key]):
                _write_png(d / key / f"{i:05d}.png", frame)
        (d / LABELS_DIR).mkdir()
        _write_png(d / LABELS_DIR / "source.png", pair["source_labels"])
        for key in GT_MODES:
            (d / LABELS_DIR / key).mkdir()
            for i, labels in enumerate(pair[f"{key}_labels"]):
                _write_png(d / LABELS_DIR / key / f"{i:05d}.png", labels)
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
        """A pair as :func:`render_pair` returns it: ``source``, ``background`` (S, S, 3) and
        ``driving``/``relative``/``standard`` (T, S, S, 3) uint8 RGB; ``source_labels`` (S, S) and
        ``relative_labels``/``standard_labels`` (T, S, S) uint8."""
        d = self.root / name
        size = self.size
        out = {"source": _read_png(d / "source.png", size), "background": _read_png(d / BACKGROUND_PNG, size),
               "source_labels": _read_png(d / LABELS_DIR / "source.png", size)[..., 0]}
        for key, folder in [(k, d / k) for k in ("driving", *GT_MODES)] + \
                [(f"{k}_labels", d / LABELS_DIR / k) for k in GT_MODES]:
            files = sorted(folder.glob("*.png"))
            if len(files) != int(self.meta["frames"]):
                raise InputError(f"{folder}: expected {self.meta['frames']} PNG frames (pairs.json), "
                                 f"found {len(files)}; the pairs folder is incomplete — rewrite it with jamsdk synth")
            frames = np.stack([_read_png(f, size) for f in files])
            out[key] = frames[..., 0] if key.endswith("_labels") else frames
        return out


def _read_png(path: Path, size: int) -> np.ndarray:
    from jamsdk.pictures import read_image  # its header check and pixel limit, like every reader

    if not path.is_file():
        raise InputError(f"{path}: missing or not a readable image")
    image = read_image(path)
    if image.shape[:2] != (size, size):
        raise InputError(f"{path}: expected {size}×{size} (pairs.json), got {image.shape[1]}×{image.shape[0]}")
    return image


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
