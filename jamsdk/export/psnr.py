"""PSNR, the one quality figure the export's checks and INT8 gates judge by, and how manifests record it.

Both the FP16 check (:mod:`jamsdk.export.verify`) and the INT8 gates (:mod:`jamsdk.export.int8`
for ONNX Runtime, :mod:`jamsdk.export.int8_openvino` for OpenVINO) compare a chain's frames with
the FP32 chain's; they share this definition so their numbers mean the same thing.
"""

from __future__ import annotations

import math

import numpy as np


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two images in [0, 1] (inf when equal)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(1.0 / mse)


def db_json(value: float) -> float | str:
    """A dB figure as the manifest and reports write it: two decimals, or ``"inf"`` (JSON has no infinity)."""
    return round(value, 2) if math.isfinite(value) else "inf"
