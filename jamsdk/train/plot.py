"""Loss curves from a run's ``log.csv`` drawn with OpenCV (no matplotlib dependency).

Every loss column is drawn against the step on one log₁₀ axis (the terms differ by orders of
magnitude), with a legend; the PNG is written atomically.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import numpy as np

from jamsdk._atomic import write_bytes
from jamsdk.errors import InputError

# Columns of log.csv that are not losses.
NOT_LOSSES = ("step", "epoch", "lr", "sec_per_step")
_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
            (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]  # RGB


def read_log(path: str | os.PathLike[str]) -> dict[str, list[tuple[int, float]]]:
    """Loss name → [(step, value)] from ``log.csv`` (non-positive and non-finite values skipped)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"training log {p} does not exist")
    series: dict[str, list[tuple[int, float]]] = {}
    with open(p, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or "step" not in reader.fieldnames:
            raise InputError(f"{p}: expected a CSV with a 'step' column, got columns {reader.fieldnames}")
        for row in reader:
            try:
                step = int(row["step"])
            except (TypeError, ValueError):
                continue
            for k, v in row.items():
                if k in NOT_LOSSES or k is None or not v:
                    continue
                try:
                    x = float(v)
                except ValueError:
                    continue
                if math.isfinite(x) and x > 0:
                    series.setdefault(k, []).append((step, x))
    return series


def plot_log(log_path: str | os.PathLike[str], png_path: str | os.PathLike[str],
             size: tuple[int, int] = (960, 540)) -> Path:
    """Draw every loss in ``log_path`` against the step into ``png_path``; returns the PNG path."""
    import cv2

    series = read_log(log_path)
    if not series:
        raise InputError(f"{log_path}: no loss values to plot yet")
    w, h = size
    left, right, top, bottom = 80, 200, 30, 50
    img = np.full((h, w, 3), 255, np.uint8)
    steps = [s for pts in series.values() for s, _ in pts]
    vals = [math.log10(v) for pts in series.values() for _, v in pts]
    s0, s1 = min(steps), max(steps)
    if s1 == s0:
        s1 = s0 + 1
    y0, y1 = math.floor(min(vals)), math.ceil(max(vals))
    if y1 == y0:
        y1 = y0 + 1

    def px(step: float, logv: float) -> tuple[int, int]:
        x = left + (step - s0) / (s1 - s0) * (w - left - right)
        y = top + (y1 - logv) / (y1 - y0) * (h - top - bottom)
        return int(round(x)), int(round(y))

    grey, black, font = (220, 220, 220), (0, 0, 0), cv2.FONT_HERSHEY_SIMPLEX
    for e in range(y0, y1 + 1):  # decades
        _, y = px(s0, e)
        cv2.line(img, (left, y), (w - right, y), grey, 1)
        cv2.putText(img, f"1e{e}", (8, y + 5), font, 0.45, black, 1, cv2.LINE_AA)
    for i in range(6):
        step = s0 + (s1 - s0) * i / 5
        x, _ = px(step, y0)
        cv2.line(img, (x, top), (x, h - bottom), grey, 1)
        cv2.putText(img, f"{int(round(step))}", (x - 15, h - bottom + 20), font, 0.45, black, 1, cv2.LINE_AA)
    cv2.rectangle(img, (left, top), (w - right, h - bottom), black, 1)
    cv2.putText(img, "step", ((left + w - right) // 2 - 15, h - 10), font, 0.5, black, 1, cv2.LINE_AA)
    for i, (name, pts) in enumerate(sorted(series.items(), key=lambda kv: kv[0] != "total")):
        r, g, b = _COLOURS[i % len(_COLOURS)]
        colour = (b, g, r)
        poly = np.array([px(s, math.log10(v)) for s, v in pts], np.int32).reshape(-1, 1, 2)
        cv2.polylines(img, [poly], False, colour, 2 if name == "total" else 1, cv2.LINE_AA)
        ly = top + 10 + 22 * i
        cv2.line(img, (w - right + 12, ly), (w - right + 36, ly), colour, 2)
        cv2.putText(img, name, (w - right + 42, ly + 5), font, 0.45, black, 1, cv2.LINE_AA)
    ok, buf = cv2.imencode(".png", img)
    if not ok:  # pragma: no cover - OpenCV always encodes a uint8 BGR image
        raise InputError(f"could not encode {png_path}")
    write_bytes(png_path, buf.tobytes())
    return Path(png_path)
