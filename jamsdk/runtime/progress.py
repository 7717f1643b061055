"""A progress display for long loops: tqdm when installed, else a plain stderr counter.

The runtime core does not require tqdm (a Jetson install may not have it).
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


class _Counter:
    """``label: 120/300 frames 24.1 fps`` rewritten in place about twice a second."""

    def __init__(self, total: int | None, desc: str, unit: str, stream: TextIO):
        self.total, self.desc, self.unit, self.stream = total, desc, unit, stream
        self.n = 0
        self.start = self._last = time.perf_counter()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.perf_counter()
        if now - self._last >= 0.5:
            self._last = now
            self._show(now)

    def _show(self, now: float) -> None:
        rate = self.n / max(now - self.start, 1e-9)
        of = f"/{self.total}" if self.total else ""
        self.stream.write(f"\r{self.desc}: {self.n}{of} {self.unit} {rate:.1f} {self.unit}/s")
        self.stream.flush()

    def close(self) -> None:
        self._show(time.perf_counter())
        self.stream.write("\n")
        self.stream.flush()

    def __enter__(self) -> "_Counter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress(total: int | None = None, desc: str = "", unit: str = "frames", stream: TextIO | None = None,
             use_tqdm: bool = True) -> Any:
    """A context manager with ``update(n)``: tqdm when installed (and ``use_tqdm``), else a counter."""
    stream = stream or sys.stderr
    if use_tqdm:
        try:
            from tqdm import tqdm
        except ImportError:
            pass
        else:
            return tqdm(total=total, desc=desc, unit=unit[:-1] if unit.endswith("s") else unit, file=stream,
                        dynamic_ncols=True)
    return _Counter(total, desc, unit, stream)
