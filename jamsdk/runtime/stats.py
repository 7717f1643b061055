"""Per-stage latency bookkeeping for the Animator (bounded memory for endless streams)."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

import numpy as np


class LatencyStats:
    """Latency samples per key; percentiles over the last ``window`` samples, counts over all.

    A stream can run for days, so each key keeps a fixed ring buffer (allocated once: memory does
    not grow while the window fills, which keeps soak measurements clean).
    """

    def __init__(self, window: int = 10_000):
        if window < 1:
            raise ValueError(f"window must be ≥ 1, got {window}")
        self.window = window
        self._samples: dict[str, np.ndarray] = {}
        self._counts: dict[str, int] = {}

    def add(self, key: str, seconds: float) -> None:
        ring = self._samples.get(key)
        if ring is None:
            ring = self._samples[key] = np.zeros(self.window, np.float64)
            self._counts[key] = 0
        ring[self._counts[key] % self.window] = seconds
        self._counts[key] += 1

    @contextmanager
    def time(self, key: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(key, time.perf_counter() - start)

    def summary(self) -> dict[str, dict[str, float]]:
        """``{key: {"count", "mean_ms", "p50_ms", "p90_ms"}}`` in insertion order."""
        out = {}
        for key, ring in self._samples.items():
            ms = ring[:min(self._counts[key], self.window)] * 1e3
            out[key] = {"count": self._counts[key], "mean_ms": float(ms.mean()),
                        "p50_ms": float(np.percentile(ms, 50)), "p90_ms": float(np.percentile(ms, 90))}
        return out

    def clear(self) -> None:
        self._samples.clear()
        self._counts.clear()


def format_stats(summary: dict[str, dict[str, float]]) -> str:
    """A small fixed-width table of :meth:`LatencyStats.summary`."""
    lines = [f"{'stage':20s} {'count':>7s} {'mean ms':>9s} {'p50 ms':>9s} {'p90 ms':>9s}"]
    for key, s in summary.items():
        lines.append(f"{key:20s} {s['count']:7d} {s['mean_ms']:9.3f} {s['p50_ms']:9.3f} {s['p90_ms']:9.3f}")
    return "\n".join(lines)
