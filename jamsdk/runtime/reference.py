"""Reference search: which driving frame's region layout best matches the source picture's.

The relative mode moves the source by the driving motion *since the reference frame*, so the best
reference is a driving frame posed like the source (FOMM's ``--find_best_frame`` idea; FOMM uses a
face-landmark library, jamsdk uses its own regions, so it works for any object the model knows).

The measure, per candidate frame (smaller is better):

1. Normalise each region layout for position and size: subtract the mean of the K region centres
   (``shift``) and divide by ``√area(convex hull of the centres)`` — the same hull the relative
   mode's movement scale uses — so a driver who stands further left or is filmed smaller is not
   penalised. Covariances are divided by the hull area (they scale with the square of size).
2. Distance = mean over regions of ``‖μ̂_src − μ̂_cand‖² + ‖Σ̂_src − Σ̂_cand‖²_F``.

Covariances stand in for ``affine`` here: ``affine = U·√S`` is the PCA square root of ``covar``,
and the sign of each eigenvector column may flip from one frame to the next, which would make two
identical ellipses look far apart; ``covar = A·Aᵀ`` carries the same shape without the sign.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np

from jamsdk.errors import InputError
from jamsdk.geometry import hull_area


def normalise(params: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``(shift (K, 2), covar (K, 2, 2))`` centred and scaled by the centres' hull (float64)."""
    shift = np.asarray(params["shift"], np.float64).reshape(-1, 2)
    covar = np.asarray(params["covar"], np.float64).reshape(-1, 2, 2)
    area = hull_area(shift)
    # A degenerate layout (all centres on a line) has no area: fall back to the spread.
    scale2 = area if area > 1e-12 else max(float(((shift - shift.mean(0)) ** 2).sum(-1).mean()), 1e-12)
    return (shift - shift.mean(0)) / np.sqrt(scale2), covar / scale2


def layout_distance(source: Mapping[str, np.ndarray], candidate: Mapping[str, np.ndarray]) -> float:
    """The module's distance between two region layouts (0 for layouts equal up to shift and scale)."""
    s_mu, s_cov = normalise(source)
    c_mu, c_cov = normalise(candidate)
    if s_mu.shape != c_mu.shape:
        raise InputError(f"region params: source has {len(s_mu)} regions, candidate has {len(c_mu)}")
    return float(((s_mu - c_mu) ** 2).sum(-1).mean() + ((s_cov - c_cov) ** 2).sum((-2, -1)).mean())


def best_reference(source: Mapping[str, np.ndarray], candidates: Iterable[Mapping[str, np.ndarray]]) -> int:
    """Index of the candidate whose layout is closest to the source's (the first one on ties).

    Raises:
        InputError: no candidates.
    """
    best, best_d = -1, np.inf
    for i, cand in enumerate(candidates):
        d = layout_distance(source, cand)
        if d < best_d:
            best, best_d = i, d
    if best < 0:
        raise InputError("find_reference: expected at least one candidate frame, got none")
    return best


__all__ = ["best_reference", "layout_distance", "normalise"]
