"""Host-side geometry in numpy (no torch): convex hulls and relative-mode movement scale.

The runtime computes the relative mode's movement scale once per (source, driving reference)
pair on the host, so this module must not import torch.
"""

from __future__ import annotations

import numpy as np


def convex_hull(points: np.ndarray) -> np.ndarray:
    """Vertices of the convex hull of (N, 2) points in counter-clockwise order (monotone chain)."""
    pts = np.unique(np.asarray(points, dtype=np.float64).reshape(-1, 2), axis=0)
    if len(pts) <= 2:
        return pts

    def cross(o: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
        return float((a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]))

    lower: list[np.ndarray] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list[np.ndarray] = []
    for p in pts[::-1]:
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return np.array(lower[:-1] + upper[:-1])


def hull_area(points: np.ndarray) -> float:
    """Area of the convex hull of (N, 2) points (0 for fewer than 3 non-collinear points)."""
    hull = convex_hull(points)
    if len(hull) < 3:
        return 0.0
    x, y = hull[:, 0], hull[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def movement_scale(source_shift: np.ndarray, driving_shift: np.ndarray, eps: float = 1e-12) -> float:
    """MRAA's relative-mode scale √area(hull(source)) / √area(hull(driving reference)).

    A degenerate driving hull (all regions on a line) gives 1.0 instead of a division by zero.
    """
    a_src = hull_area(source_shift)
    a_drv = hull_area(driving_shift)
    if a_drv <= eps:
        return 1.0
    return float(np.sqrt(a_src) / np.sqrt(a_drv))
