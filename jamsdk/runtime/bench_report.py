"""What a ``jamsdk bench`` result looks like to a person: the text report and the latency plot.

:func:`format_report` prints the settings, the machine, a latency table per part, FPS, the GPU
split, memory and the Jetson state; :func:`write_plot` draws every part's latency distribution as
box plots on a log axis (a PNG drawn with OpenCV, no matplotlib). Both read only the result dict
:func:`jamsdk.runtime.bench.run_bench` returns (or its JSON), so a saved run can be re-reported.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import cv2
import numpy as np

from jamsdk._atomic import write_bytes
from jamsdk.errors import InputError
from jamsdk.runtime import sysinfo


def format_report(result: Mapping[str, Any]) -> str:
    """The human report: setup, a latency table (ms), FPS, GPU split, memory, Jetson state."""
    st, lat = result["settings"], result["latency_ms"]
    lines = [f"jamsdk bench: {result['model']['name']} {result['model']['image_size']}² on {st['backend']} "
             f"({st['precision']}, mode {st['mode']}, threads {st['threads'] or 'default'}"
             f"{', CUDA graphs' if st['cuda_graph'] else ''}); {st['frames']} frames after {st['warmup']} warm-up, "
             f"input {st['input_shape'][1]}×{st['input_shape'][0]} uint8"]
    lines += ["  " + s for s in sysinfo.describe_machine(result["machine"])]
    lines.append("")
    lines.append(f"{'part (ms)':22s} {'p50':>9s} {'p90':>9s} {'p99':>9s} {'mean':>9s} {'max':>9s}")

    def row(name: str, s: Mapping[str, float]) -> str:
        return f"{name:22s} {s['p50']:9.3f} {s['p90']:9.3f} {s['p99']:9.3f} {s['mean']:9.3f} {s['max']:9.3f}"

    for key, s in lat["parts"].items():
        lines.append(row(key, s))
    lines.append(row("END TO END", lat["end_to_end"]))
    gpu = result.get("gpu_ms")
    if gpu and "compute" in gpu:
        lines.append("")
        for key, s in gpu["stages"].items():
            lines.append(row(f"gpu {key}", s["compute"]))
        lines.append(row("GPU compute / frame", gpu["compute"]))
        lines.append(row("GPU copies / frame", gpu["transfers"]))
        lines.append(row("host (rest) / frame", gpu["host"]))
    elif gpu:
        lines.append(f"GPU timing unavailable: {gpu['unavailable']}")
    fps = result["fps"]
    lines.append("")
    lines.append(f"FPS: {fps['mean']:.1f} (from the mean frame), {fps['p50']:.1f} (from the median), "
                 f"{fps['p99']:.1f} (from p99); set_source {result['source_ms']:.1f} ms; load {result['load_s']:.2f} s")
    mem = result["memory"]
    rss = mem["host_rss_mb"]
    text = f"host memory: peak RSS {mem['host_peak_rss_mb']:.0f} MB"
    if rss["before_load"] is not None:
        text += (f" (RSS {rss['before_load']:.0f} MB before loading, {rss['after_load']:.0f} after, "
                 f"{rss['end']:.0f} at the end)")
    lines.append(text)
    dev = mem["device"]
    if dev:
        lines.append(f"device memory (cudaMemGetInfo): {dev['used_peak_mb']:.0f} of {dev['total_mb']:.0f} MB used at "
                     f"peak, {dev['model_mb']:.0f} MB more than before loading")
    tegra = result.get("tegrastats")
    if tegra:
        if "error" in tegra:
            lines.append(f"tegrastats: {tegra['error']}")
        else:
            parts = [f"{tegra['samples']} samples",
                     f"RAM peak {tegra['ram_used_mb']['max']:.0f}/{tegra['ram_total_mb']} MB"]
            if tegra.get("gpu_load_percent"):
                parts.append(f"GR3D {tegra['gpu_load_percent']['mean']:.0f} % mean")
            for rail, s in (tegra.get("power_mw") or {}).items():
                parts.append(f"{rail} {s['mean']:.0f} mW mean")
            lines.append("tegrastats: " + ", ".join(parts))
    advice = result.get("jetson_advice") or []
    if advice:
        lines.append("")
        lines.append("For repeatable Jetson numbers, pin the clocks first (not done by jamsdk), then rerun:")
        lines += ["  " + a for a in advice]
    return "\n".join(lines)


# -- plot (OpenCV; no matplotlib) ----------------------------------------------------------------

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_INK, _GRID, _SOFT = (30, 30, 30), (225, 225, 225), (110, 110, 110)
_COLOURS = {"total": (60, 60, 60), "cpu": (200, 120, 40), "gpu": (60, 160, 60)}  # BGR


def _log_ticks(lo: float, hi: float) -> list[float]:
    ticks = []
    for exp in range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1):
        for m in (1, 2, 5):
            v = m * 10.0 ** exp
            if lo <= v <= hi:
                ticks.append(v)
    return ticks


def plot_rows(result: Mapping[str, Any]) -> list[tuple[str, np.ndarray, str]]:
    """``(label, samples ms, kind)`` per box of the plot: parts, end to end, and the GPU split."""
    s = result["samples_ms"]
    rows = [(k, np.asarray(s[k]), "cpu") for k in result["latency_ms"]["parts"]]
    rows.append(("end to end", np.asarray(s["end_to_end"]), "total"))
    gpu = result.get("gpu_ms")
    if gpu and "compute" in gpu:
        rows += [(f"gpu {k}", np.asarray(s[f"gpu/{k}/compute"]), "gpu") for k in gpu["stages"]]
        rows += [("GPU compute / frame", np.asarray(s["gpu_compute"]), "gpu"),
                 ("host rest / frame", np.asarray(s["host_minus_gpu"]), "cpu")]
    return rows


def render_plot(result: Mapping[str, Any]) -> np.ndarray:
    """Per-part latency distributions as horizontal box plots on a log axis (BGR image)."""
    rows = plot_rows(result)
    left, right, top, row_h = 230, 250, 110, 40
    w = 1280
    h = top + row_h * len(rows) + 90
    img = np.full((h, w, 3), 255, np.uint8)
    x0, x1 = left, w - right
    floor = 1e-3  # ms; log axis
    lo = max(min(float(np.percentile(v, 1)) for _, v, _ in rows), floor) / 1.5
    hi = max(float(v.max()) for _, v, _ in rows) * 1.5
    hi = max(hi, lo * 10)

    def X(v: float) -> int:
        v = min(max(v, lo), hi)
        return int(round(x0 + (x1 - x0) * (np.log10(v) - np.log10(lo)) / (np.log10(hi) - np.log10(lo))))

    st, m = result["settings"], result["machine"]
    gpu_name = (m.get("gpu") or {}).get("name")
    title = (f"{result['model']['name']} {result['model']['image_size']}px, {st['backend']} {st['precision']}, "
             f"mode {st['mode']}, {st['frames']} frames")
    cv2.putText(img, title, (20, 32), _FONT, 0.7, _INK, 2, cv2.LINE_AA)
    cv2.putText(img, f"{m['cpu']}" + (f" | {gpu_name}" if gpu_name else "") +
                f" | FPS {result['fps']['mean']:.1f} (mean frame)", (20, 60), _FONT, 0.5, _SOFT, 1, cv2.LINE_AA)
    y_axis = top + row_h * len(rows)
    for v in _log_ticks(lo, hi):
        x = X(v)
        cv2.line(img, (x, top - 10), (x, y_axis), _GRID, 1)
        label = f"{v:g}"
        cv2.putText(img, label, (x - 4 * len(label), y_axis + 20), _FONT, 0.42, _SOFT, 1, cv2.LINE_AA)
    cv2.putText(img, "latency per frame, ms (log scale)", (x0 + (x1 - x0) // 2 - 130, y_axis + 45), _FONT, 0.5, _INK,
                1, cv2.LINE_AA)
    cv2.putText(img, "p50", (x1 + 20, top - 16), _FONT, 0.45, _INK, 1, cv2.LINE_AA)
    cv2.putText(img, "p99", (x1 + 100, top - 16), _FONT, 0.45, _INK, 1, cv2.LINE_AA)
    cv2.putText(img, "max", (x1 + 180, top - 16), _FONT, 0.45, _INK, 1, cv2.LINE_AA)
    for i, (label, v, kind) in enumerate(rows):
        yc = top + row_h * i + row_h // 2
        colour = _COLOURS[kind]
        p1, p25, p50, p75, p99 = np.percentile(v, [1, 25, 50, 75, 99])
        cv2.putText(img, label, (12, yc + 5), _FONT, 0.48, _INK, 1, cv2.LINE_AA)
        cv2.line(img, (X(p1), yc), (X(p25), yc), colour, 1, cv2.LINE_AA)
        cv2.line(img, (X(p75), yc), (X(p99), yc), colour, 1, cv2.LINE_AA)
        for edge in (p1, p99):
            cv2.line(img, (X(edge), yc - 7), (X(edge), yc + 7), colour, 1, cv2.LINE_AA)
        light = tuple(int(c + (255 - c) * 0.6) for c in colour)
        cv2.rectangle(img, (X(p25), yc - 12), (max(X(p75), X(p25) + 1), yc + 12), light, -1)
        cv2.rectangle(img, (X(p25), yc - 12), (max(X(p75), X(p25) + 1), yc + 12), colour, 1)
        cv2.line(img, (X(p50), yc - 12), (X(p50), yc + 12), _INK, 2)
        xm = X(float(v.max()))
        cv2.drawMarker(img, (xm, yc), colour, cv2.MARKER_TILTED_CROSS, 9, 1, cv2.LINE_AA)
        for j, val in enumerate((p50, p99, float(v.max()))):
            cv2.putText(img, f"{val:.3g}", (x1 + 20 + 80 * j, yc + 5), _FONT, 0.45, _INK, 1, cv2.LINE_AA)
    legend = "box p25-p75, bar p50, whiskers p1-p99, x max;  blue: host wall time per part,  grey: end to end"
    if any(kind == "gpu" for _, _, kind in rows):
        legend += ",  green: GPU time (CUDA events)"
    cv2.putText(img, legend, (20, h - 14), _FONT, 0.42, _SOFT, 1, cv2.LINE_AA)
    return img


def write_plot(result: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write :func:`render_plot` as a PNG, atomically."""
    ok, buf = cv2.imencode(".png", render_plot(result))
    if not ok:
        raise InputError(f"OpenCV could not encode the plot for {path}")
    write_bytes(path, buf.tobytes())
    return Path(path)


__all__ = ["format_report", "plot_rows", "render_plot", "write_plot"]
