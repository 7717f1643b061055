"""Temporal smoothing of driving region parameters: a One-Euro filter per region (numpy, stateful).

Region predictors jitter: on a still driver the ``shift``/``affine`` of each region wobble by a
fraction of a pixel from frame to frame, and the animated picture shimmers. The One-Euro filter
(Casiez, Roussel, Vogel, CHI 2012) is an exponential low-pass whose cut-off rises with the speed
of the signal: strong smoothing while a region is still, little lag while it moves.

Choices made here:

- **Time is counted in frames**, not seconds: the same clip gives the same output at any frame
  rate and on any machine (tests and ``benchmarks/smoothing.py`` are reproducible). ``strength``
  is the filter's time constant in frames when a region is still (``α = 1 / (1 + strength)``);
  0 turns the filter off.
- **One weight per region**: a region moves as a unit, so its speed is the norm of the low-passed
  (signed) change of its ``[shift (2), affine (4)]`` vector — noise averages out there, motion
  does not — and the same weight ``α`` blends its ``shift``, ``affine`` and ``covar``. Blending with one convex weight keeps ``covar`` symmetric positive definite and
  consistent with ``affine``'s scale (``covar = A·Aᵀ`` for PCA regions).
- **Written as** ``y += α·(x − y)``: an unchanged input gives an unchanged output bit for bit, so
  a perfectly still clip is animated exactly as without smoothing.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from jamsdk.errors import InputError

Params = dict[str, np.ndarray]
SMOOTHED = ("shift", "affine", "covar")

# Cut-off rise per unit of speed (normalised units per frame). On the demo model's example clip a
# moving region changes by ≈0.01 per frame and a still one seen through pixel noise (σ = 4/255)
# by ≈0.0005 (benchmarks/smoothing.py): β = 30 opens the filter to α ≈ 0.7 for the first and
# leaves the second near the still α.
DEFAULT_BETA = 30.0
DERIVATIVE_CUTOFF = 1.0 / (2.0 * math.pi)  # cycles per frame: a 1-frame time constant for the speed


def _alpha(cutoff: np.ndarray | float) -> np.ndarray:
    """Exponential-smoothing weight for a cut-off frequency in cycles per frame (dt = 1 frame)."""
    tau = 1.0 / (2.0 * np.pi * np.asarray(cutoff, np.float64))
    return 1.0 / (1.0 + tau)


def check_strength(strength: object) -> float:
    """``strength`` as a float ≥ 0, or InputError saying what came."""
    try:
        value = float(strength)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"smoothing: expected a number ≥ 0 (0 = off), got {strength!r}") from None
    if isinstance(strength, bool) or not math.isfinite(value) or value < 0:
        raise InputError(f"smoothing: expected a number ≥ 0 (0 = off), got {strength!r}")
    return value


class RegionSmoother:
    """One-Euro filter over a stream of region params ``{"shift": (1, K, 2), "covar": (1, K, 2, 2),
    "affine": (1, K, 2, 2)}``.

    Args:
        strength: time constant in frames while still (0: pass-through, the input objects are
            returned unchanged).
        beta: how fast the cut-off rises with a region's speed (higher: less lag when moving).

    Call it once per driving frame; :meth:`reset` forgets the past (a new source or reference).
    """

    def __init__(self, strength: float, beta: float = DEFAULT_BETA):
        self.strength = check_strength(strength)
        self.beta = float(beta)
        # A still signal's cut-off: τ = strength frames → f = 1 / (2π·strength).
        self._min_cutoff = 1.0 / (2.0 * math.pi * self.strength) if self.strength > 0 else math.inf
        self._d_alpha = float(_alpha(DERIVATIVE_CUTOFF))
        self._y: Params | None = None
        self._velocity: np.ndarray | None = None

    @property
    def enabled(self) -> bool:
        return self.strength > 0

    def reset(self) -> None:
        """Forget the filter state: the next frame passes through unfiltered."""
        self._y = None
        self._velocity = None

    def __call__(self, params: Mapping[str, np.ndarray]) -> Params:
        """The filtered params for this frame (new arrays; the input is not modified)."""
        if not self.enabled:
            return dict(params)
        missing = [k for k in SMOOTHED if k not in params]
        if missing:
            raise InputError(f"region params: missing {missing} (expected {list(SMOOTHED)})")
        if self._y is None:
            self._y = {k: np.array(params[k], copy=True) for k in SMOOTHED}
            self._velocity = None
            return {**params, **{k: v.copy() for k, v in self._y.items()}}
        y = self._y
        x = {k: np.asarray(params[k]) for k in SMOOTHED}
        batch = x["shift"].shape[:-1]  # (1, K)
        # The One-Euro derivative: change against the filtered state, low-passed *signed* so
        # that noise averages out before the norm is taken.
        delta = np.concatenate([(x["shift"] - y["shift"]).reshape(*batch, -1),
                                (x["affine"] - y["affine"]).reshape(*batch, -1)], axis=-1).astype(np.float64)
        v = self._velocity = delta if self._velocity is None else self._velocity + self._d_alpha * (delta - self._velocity)
        speed = np.sqrt((v ** 2).sum(-1))
        a = _alpha(self._min_cutoff + self.beta * speed)  # (1, K)
        for k in SMOOTHED:
            w = a.reshape(*batch, *([1] * (x[k].ndim - len(batch)))).astype(x[k].dtype)
            # y += α·(x − y): exact when x == y (a still input stays bit-identical).
            y[k] = y[k] + w * (x[k] - y[k])
        return {**params, **{k: v.copy() for k, v in y.items()}}


__all__ = ["DEFAULT_BETA", "RegionSmoother", "check_strength"]
