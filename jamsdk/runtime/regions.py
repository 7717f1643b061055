"""Region-parameter math on the host, in numpy (no torch): the relative mode's transfer.

Numpy twins of :func:`jamsdk.model.linalg2x2.inverse` and :func:`~jamsdk.model.linalg2x2.matmul`
(same closed forms, same determinant guard) so the runtime computes exactly what
:meth:`jamsdk.model.jam.JamModel.transfer_params` computes, in FP32, without importing torch.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from jamsdk.errors import InputError
from jamsdk.geometry import movement_scale

Params = dict[str, np.ndarray]
PARAM_NAMES = ("shift", "covar", "affine")


def inverse(m: np.ndarray, eps: float = 1e-30) -> np.ndarray:
    """Inverse of 2×2 matrices ``(..., 2, 2)`` by the adjugate; ``|det|`` kept ≥ ``eps`` (sign kept).

    The guard matches the torch version: a singular input gives large finite values, not inf/NaN.
    """
    m = np.asarray(m)
    a, b, c, d = m[..., 0, 0], m[..., 0, 1], m[..., 1, 0], m[..., 1, 1]
    det = a * d - b * c
    det = np.where(det >= 0, np.maximum(det, m.dtype.type(eps)), np.minimum(det, m.dtype.type(-eps)))
    inv_det = (1.0 / det).astype(m.dtype, copy=False)
    out = np.empty_like(m)
    out[..., 0, 0] = d * inv_det
    out[..., 0, 1] = -b * inv_det
    out[..., 1, 0] = -c * inv_det
    out[..., 1, 1] = a * inv_det
    return out


def matmul(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Products of 2×2 matrices ``(..., 2, 2)``, written out like the torch twin (same rounding)."""
    x00, x01, x10, x11 = x[..., 0, 0], x[..., 0, 1], x[..., 1, 0], x[..., 1, 1]
    y00, y01, y10, y11 = y[..., 0, 0], y[..., 0, 1], y[..., 1, 0], y[..., 1, 1]
    row0 = np.stack([x00 * y00 + x01 * y10, x00 * y01 + x01 * y11], axis=-1)
    row1 = np.stack([x10 * y00 + x11 * y10, x10 * y01 + x11 * y11], axis=-1)
    return np.stack([row0, row1], axis=-2)


def relative_scale(source: Mapping[str, np.ndarray], driving_initial: Mapping[str, np.ndarray]) -> np.float32:
    """MRAA's movement scale √area(hull(source shifts)) / √area(hull(initial driving shifts)).

    Computed once per (source, driving reference) pair, in float64 like the reference, and
    returned as float32 (the dtype the torch model multiplies with).
    """
    return np.float32(movement_scale(np.asarray(source["shift"][0], np.float64),
                                     np.asarray(driving_initial["shift"][0], np.float64)))


def relative_params(source: Mapping[str, np.ndarray], driving: Mapping[str, np.ndarray],
                    driving_initial: Mapping[str, np.ndarray], scale: float | np.floating) -> Params:
    """Relative-mode region params (MRAA ``animate.py`` semantics).

    ``shift = μ_s + (μ_d,t − μ_d,0)·scale``; ``affine = A_d,t · A_d,0⁻¹ · A_s``; ``covar`` is kept
    from driving frame t, exactly as :meth:`JamModel.transfer_params` does.
    """
    for name, params in (("source", source), ("driving", driving), ("driving_initial", driving_initial)):
        missing = [k for k in PARAM_NAMES if k not in params]
        if missing:
            raise InputError(f"{name} region params: missing {missing} (expected {list(PARAM_NAMES)})")
    dtype = np.asarray(driving["shift"]).dtype
    s = dtype.type(scale)
    shift = source["shift"] + (driving["shift"] - driving_initial["shift"]) * s
    affine = matmul(matmul(driving["affine"], inverse(driving_initial["affine"])), source["affine"])
    return {"shift": shift.astype(dtype, copy=False), "covar": driving["covar"],
            "affine": affine.astype(dtype, copy=False)}
