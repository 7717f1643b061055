"""Training animation pairs: picture A moved by B's motion in relative mode, with the truth (torch-free).

Stage 1 of MRAA is self-supervised: it rebuilds a frame of a clip from another frame of the *same*
clip, and never sees what relative mode is asked to do at run time — move figure A as figure B moves
relative to B's first frame. The renderer can draw that truth (:mod:`jamsdk.train.pairs`: A's pose
plus B's change of every joint angle, rotation and scale, B's displacement times the figures' size
ratio), so a training step may add such pairs, supervised: the model animates A in relative mode
(:meth:`jamsdk.model.jam.JamModel.transfer_params`, movement scale from the convex hulls as at run
time) and its output is compared with the rendered truth (:class:`jamsdk.train.losses.ReconstructionObjective`).

**This departs from MRAA's recipe** (self-supervised reconstruction only): it needs a renderer that
knows the truth, so it is for synthetic data, and a model trained with it has been told what
relative mode should produce for these figures.

Item ``i`` of step ``s`` is rendered from ``np.random.default_rng([seed, ANIMATION_STREAM, s, i])``:
a function of the step, so a resumed run sees the same pairs, and a stream that neither the training
clips (``[seed, i]``) nor the held-out pairs (``[seed, PAIRS_STREAM, j]``) use. Each pair takes B's
frame ``k`` with ``k`` uniform in ``0 … max_offset`` (``k = 0``: the truth is the source picture).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jamsdk.errors import InputError
from jamsdk.train.pairs import draw_figure, pair_scene

ANIMATION_STREAM = 11
KEYS = ("source", "driving_initial", "driving", "truth")


def render_training_pair(rng: np.random.Generator, size: int, max_offset: int) -> dict[str, Any]:
    """One pair: ``source`` (A), ``driving_initial`` (B's first frame), ``driving`` (B, ``offset``
    frames on) and ``truth`` (A moved by B's change, relative mode), each (S, S, 3) uint8 RGB."""
    sc = pair_scene(rng, size)
    k = int(rng.integers(0, max_offset + 1))
    return {
        "source": draw_figure(sc.fig_a, sc.bg_a, sc.fig_a.pose(sc.t_a))[0],
        "driving_initial": draw_figure(sc.fig_b, sc.bg_b, sc.fig_b.pose(sc.t_b))[0],
        "driving": draw_figure(sc.fig_b, sc.bg_b, sc.fig_b.pose(sc.t_b + k))[0],
        "truth": draw_figure(sc.fig_a, sc.bg_a, sc.relative_pose_at(k))[0],
        "offset": k,
    }


class AnimationPairs:
    """Batches of training animation pairs as float32 (N, 3, S, S) arrays in [0, 1], one set per step.

    Args:
        size: picture side in pixels (the model's image size).
        seed: the run's seed.
        max_offset: the largest number of frames between B's first and driving frame.
    """

    def __init__(self, size: int, seed: int, max_offset: int):
        for name, value, low in (("size", size, 16), ("seed", seed, 0), ("max_offset", max_offset, 0)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise InputError(f"animation pairs: expected {name} ≥ {low}, got {value!r}")
        self.size, self.seed, self.max_offset = int(size), int(seed), int(max_offset)

    def batch(self, step: int, n: int, rows: slice = slice(None)) -> dict[str, np.ndarray]:
        """The ``n`` pairs of ``step`` (``rows``: this process's share under DistributedDataParallel)."""
        items = [render_training_pair(np.random.default_rng([self.seed, ANIMATION_STREAM, int(step), i]),
                                      self.size, self.max_offset) for i in range(n)][rows]
        out = {k: np.ascontiguousarray(np.stack([it[k] for it in items]).transpose(0, 3, 1, 2), np.float32) / 255.0
               for k in KEYS}
        out["offset"] = np.array([it["offset"] for it in items], np.int64)
        return out
