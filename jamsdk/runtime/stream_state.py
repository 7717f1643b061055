"""What a StreamBatch keeps per source and per stream, shared by its host path and its device path.

:class:`~jamsdk.runtime.batch.StreamBatch` owns the streams; :mod:`jamsdk.runtime.batch_device`
writes their tensors into device slots. Both read and update these records, so the records live
below both rather than in either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

#: region params by name (``shift``, ``affine``, …), each ``(B, K, ...)``
Params = dict[str, np.ndarray]


@dataclass(frozen=True, eq=False)
class SourceState:
    """An encoded source picture: what the per-source stages computed, shared read-only by streams."""

    image: np.ndarray                 # (1, 3, S, S) float32 in [0, 1]
    params: Mapping[str, np.ndarray]  # region params, each (1, K, ...)
    features: Mapping[str, np.ndarray]  # generator_encoder outputs source_feature_i, each (1, C, h, w)


@dataclass(eq=False)
class StreamState:
    """One stream: its source and, in relative mode, its driving reference (set by its first frame)."""

    source: SourceState
    initial: Params | None = None     # relative mode: the first driving frame's region params
    scale: np.float32 | None = None   # relative mode: movement scale for (source, initial)
