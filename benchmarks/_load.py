"""Helpers of the load benchmarks (serve_load.py, live_load.py): machine facts, RSS, percentiles.

Torch-free (the load benchmarks need only the runtime and Ray extras).
"""

from __future__ import annotations

import os
import platform
import re

SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile")


def cpu_model_and_flags() -> tuple[str, set[str]]:
    """The CPU's model name and its /proc/cpuinfo flags (``platform.processor()`` and none elsewhere)."""
    model, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return model, flags


def cpu_line() -> str:
    """CPU model, logical CPUs and the SIMD flags it has (printed beside every figure)."""
    model, flags = cpu_model_and_flags()
    have = " ".join(f for f in SIMD_FLAGS if f in flags) or "unknown"
    return f"{model}, {os.cpu_count()} logical CPUs; flags: {have}"


def loadavg() -> tuple[float, float, float]:
    try:
        return os.getloadavg()
    except OSError:
        return (float("nan"),) * 3


def rss_bytes(pid: int) -> int | None:
    """Resident memory of process ``pid`` now (Linux ``/proc``), or None."""
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as fh:
            found = re.search(r"^VmRSS:\s+(\d+) kB", fh.read(), re.M)
    except OSError:
        return None
    return int(found.group(1)) * 1024 if found else None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds process ``pid`` has used so far (Linux ``/proc``), or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def niceness(pid: int) -> int | None:
    """The nice value of process ``pid`` (Ray starts its workers at 15: below interactive programs)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[16])
    except (OSError, IndexError, ValueError):
        return None


def listening_pid(port: int) -> int | None:
    """The process that listens on TCP ``port`` (Linux ``/proc``; the Ray Serve proxy for serve_load.py)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="utf-8") as fh:
                for line in fh.readlines()[1:]:
                    parts = line.split()
                    if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(parts[9])
        except OSError:
            continue
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    return int(pid)
        except OSError:
            continue
    return None


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0–100) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = int(pos), min(int(pos) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def black_png(width: int, height: int) -> bytes:
    """A valid all-black ``width × height`` RGB PNG, compressed as far as zlib goes: at 20000×20000 it
    is the probe's "1.2 MB PNG that declares 20000×20000 pixels" (1.2 GB once decoded)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = bytes(1 + 3 * width)  # filter byte 0, then black pixels
    rows_per_block = max(1, (1 << 22) // len(row))
    comp, parts, left = zlib.compressobj(9), [], height
    while left:
        n = min(rows_per_block, left)
        parts.append(comp.compress(row * n))
        left -= n
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")


def gradient_png(width: int, height: int) -> bytes:
    """A valid ``width × height`` PNG of a horizontal red gradient, compressed as far as OpenCV goes: at
    4096×4096 it is 58,812 bytes, the probe's "valid 4096² PNG frames (58 KB each)" (16.8 MP to decode)."""
    import cv2
    import numpy as np

    img = np.zeros((height, width, 3), np.uint8)
    img[:, :, 2] = (np.arange(width) * 255 // width).astype(np.uint8)[None, :]
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise RuntimeError("OpenCV could not encode the PNG")
    return buf.tobytes()
