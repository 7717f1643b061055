"""Streaming benchmark of an exported model folder: latency per stage, FPS, memory, machine (``jamsdk bench``).

What is measured is the Animator's streaming loop as an application runs it: one source picture
set once (its per-source stages cached), then ``warmup`` untimed and ``frames`` timed driving
frames through :meth:`Animator.run <jamsdk.runtime.animator.Animator.run>` (uint8 frames of
``input_shape`` in, uint8 frames out: crop/resize, every per-frame stage, host copies and the
conversion back included). Frames are synthetic (moving blobs, a pool of 32): content does not
change the work of these fixed-shape graphs.

Per frame it records the end-to-end wall time and, from :meth:`Animator.stats`, each part of it
(``preprocess``, every per-frame stage, ``postprocess``; ``host_other`` is the rest: the relative
mode's host math, feed checks, Python). On TensorRT each stage's copies and engine are also timed
with CUDA events (GPU compute separately from host work; see
:class:`~jamsdk.runtime.backends.tensorrt.GpuTimer`), and device memory is read with
``cudaMemGetInfo`` before loading and every few frames. Host memory: RSS before/after loading and
at the end, and the process's peak RSS (``getrusage``). On a Jetson, ``tegrastats`` runs alongside
the timed frames and the power mode and clock state are recorded (read only).

The result is a JSON-able dict (:func:`write_json`); :mod:`jamsdk.runtime.bench_report` turns it
into the text report and the latency plot. Torch-free: numpy, OpenCV and the chosen backend.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence, TextIO

import cv2
import numpy as np

from jamsdk._atomic import write_bytes
from jamsdk._version import __version__
from jamsdk.errors import InputError
from jamsdk.runtime import jetson, sysinfo, tegrastats
from jamsdk.runtime.progress import progress

FORMAT = "jamsdk.bench"
FORMAT_VERSION = 1
POOL = 32  # synthetic driving frames, cycled
MEMORY_EVERY = 10  # frames between device-memory samples (outside the timed region)
NOT_PER_FRAME = ("frame", "source")  # Animator.stats() keys that are not parts of one frame


# -- inputs --------------------------------------------------------------------------------------

def synthetic_frames(n: int, shape: tuple[int, int], seed: int = 0) -> list[np.ndarray]:
    """``n`` uint8 ``(H, W, 3)`` frames of two blobs moving over a gradient (cheap, deterministic)."""
    h, w = shape
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = rng.uniform(60, 200, size=3).astype(np.float32)
    frames = []
    for t in range(n):
        phase = 2 * np.pi * t / max(n, 1)
        cx, cy = w * (0.5 + 0.2 * np.sin(phase)), h * (0.5 + 0.15 * np.cos(phase))
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (min(h, w) / 8) ** 2))
        cy2 = h * (0.3 + 0.1 * np.sin(2 * phase))
        blob2 = np.exp(-((xx - w * 0.3) ** 2 + (yy - cy2) ** 2) / (2 * (min(h, w) / 12) ** 2))
        img = base * (1 - 0.6 * blob[..., None]) + 80 * blob2[..., None] * np.array([0, 1, 0.5], np.float32)
        img += 30 * (xx / w)[..., None]
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return frames


def synthetic_source(size: int, seed: int = 1) -> np.ndarray:
    """A smooth, colourful ``(size, size, 3)`` uint8 picture."""
    rng = np.random.default_rng(seed)
    small = (rng.random((8, 8, 3)) * 255).astype(np.uint8)
    return cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)


# -- numbers -------------------------------------------------------------------------------------

def summarize(samples_ms: Sequence[float] | np.ndarray) -> dict[str, float]:
    """``count, mean, std, min, p50, p90, p99, max`` of latency samples in ms."""
    a = np.asarray(samples_ms, np.float64)
    if a.size == 0:
        raise ValueError("no samples")
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {"count": int(a.size), "mean": float(a.mean()), "std": float(a.std()), "min": float(a.min()),
            "p50": float(p50), "p90": float(p90), "p99": float(p99), "max": float(a.max())}


def rss_bytes() -> int | None:
    """Current resident set size (Linux ``/proc/self/statm``), None elsewhere."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def peak_rss_bytes() -> int:
    """The process's peak RSS so far (``getrusage``: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


def _mb(n: int | float | None) -> float | None:
    return None if n is None else float(n) / 2**20


# -- the run -------------------------------------------------------------------------------------

def _check_args(frames: int, warmup: int, input_shape: Sequence[int], threads: int | None) -> tuple[int, int]:
    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 1:
        raise InputError(f"frames: expected an integer ≥ 1, got {frames!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, (int, np.integer)) or warmup < 0:
        raise InputError(f"warmup: expected an integer ≥ 0, got {warmup!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, (int, np.integer))
                                or threads < 1):
        raise InputError(f"threads: expected an integer ≥ 1 or None, got {threads!r}")
    shape = tuple(input_shape)
    if len(shape) != 2 or not all(isinstance(v, (int, np.integer)) and v >= 1 for v in shape):
        raise InputError(f"input_shape: expected (height, width) of positive ints, got {input_shape!r}")
    return int(shape[0]), int(shape[1])


def _tensorrt_backends(anim: Any) -> dict[str, Any]:
    # The Animator keeps its per-stage backends private; GPU timing is a benchmark-only switch on them.
    backends = getattr(anim, "_backends", None)
    if not isinstance(backends, Mapping):
        return {}
    return {name: b for name, b in backends.items() if hasattr(b, "enable_gpu_timing")}


def run_bench(model_dir: str | os.PathLike[str], *, backend: str = "auto", frames: int = 200, warmup: int = 20,
              mode: str = "relative", precision: str = "fp32", threads: int | None = None,
              cuda_graph: bool = False, input_shape: Sequence[int] = (480, 640), use_tegrastats: bool = True,
              show_progress: bool = True, stream: TextIO | None = None) -> dict[str, Any]:
    """Benchmark the streaming loop of ``model_dir``; returns the result (see :func:`write_json`).

    Args:
        model_dir: exported model folder (engines too, for TensorRT).
        backend, mode, precision, threads, cuda_graph: passed to the
            :class:`~jamsdk.runtime.animator.Animator`.
        frames: timed driving frames.
        warmup: untimed frames first (allocator pools, lazy initialisation, clocks ramping up).
        input_shape: ``(height, width)`` of the uint8 driving frames (default a 640×480 camera
            frame: its crop/resize is part of the measured time).
        use_tegrastats: run ``tegrastats`` beside the timed frames where it exists (Jetson).
        show_progress: progress bar on ``stream`` (default stderr).

    Raises:
        InputError: bad arguments or a bad model folder.
        EngineError, MissingDependencyError: the backend cannot run here.
    """
    from jamsdk.manifest import load_manifest
    from jamsdk.runtime.animator import Animator
    from jamsdk.runtime.backends import resolve_backend
    from jamsdk.runtime.backends.tensorrt import device_memory

    shape = _check_args(frames, warmup, input_shape, threads)
    started = time.perf_counter()
    kind = resolve_backend(load_manifest(model_dir, verify_hashes=False), backend, precision)  # typed errors first
    machine = sysinfo.machine_info()

    device_before = device_memory() if kind == "tensorrt" else None
    rss_before = rss_bytes()
    t0 = time.perf_counter()
    # stats_window=1: after each frame, Animator.stats() holds exactly that frame's sample per key.
    anim = Animator(model_dir, backend=kind, mode=mode, precision=precision, threads=threads, cuda_graph=cuda_graph,
                    stats_window=1)
    with anim:
        load_s = time.perf_counter() - t0
        rss_loaded = rss_bytes()
        trt = _tensorrt_backends(anim) if anim.backend == "tensorrt" else {}
        timing_off = [why for why in (b.enable_gpu_timing() for b in trt.values()) if why]
        size = anim.image_size
        pool = synthetic_frames(POOL, shape)
        t0 = time.perf_counter()
        anim.set_source(synthetic_source(size))
        source_ms = (time.perf_counter() - t0) * 1e3

        samples: dict[str, list[float]] = {"end_to_end": []}
        gpu: dict[str, list[float]] = {}
        device_used = [] if device_before is not None else None
        if device_used is not None:
            device_used.append(device_before[1] - device_before[0])
        tegra = tegrastats.Tegrastats() if use_tegrastats else None
        bar = progress(warmup + frames, desc=f"bench {anim.backend}", stream=stream) if show_progress \
            else contextlib.nullcontext()
        with bar as bar_:
            for i in range(warmup):
                anim.run(pool[i % POOL])
                if bar_ is not None:
                    bar_.update(1)
            counts = {k: v["count"] for k, v in anim.stats().items()}
            with tegra if tegra is not None else contextlib.nullcontext():
                for i in range(frames):
                    for b in trt.values():
                        b.last_gpu_ms = None
                    frame = pool[(warmup + i) % POOL]
                    t = time.perf_counter()
                    anim.run(frame)
                    samples["end_to_end"].append((time.perf_counter() - t) * 1e3)
                    # Bookkeeping between frames, outside the timed region.
                    _collect_parts(anim.stats(), counts, samples)
                    _collect_gpu(trt, gpu)
                    if device_used is not None and (i % MEMORY_EVERY == 0 or i == frames - 1):
                        mem = device_memory()
                        if mem is not None:
                            device_used.append(mem[1] - mem[0])
                    if bar_ is not None:
                        bar_.update(1)
        used_backend = anim.backend
        manifest = anim.manifest
    rss_end = rss_bytes()

    e2e = np.array(samples["end_to_end"])
    parts = [k for k in samples if k != "end_to_end"]
    ragged = {k: len(samples[k]) for k in parts if len(samples[k]) != frames}
    if ragged:  # every part must run once per frame, or host_other below would be wrong
        raise RuntimeError(f"bench: parts that did not run on every one of {frames} frames: {ragged}")
    parts_sum = np.sum([samples[k] for k in parts], axis=0) if parts else np.zeros_like(e2e)
    samples["host_other"] = list(np.maximum(e2e - parts_sum, 0.0))
    stage_order = ["preprocess"] + [k for k in parts if k not in ("preprocess", "postprocess")] + \
        ["postprocess", "host_other"]
    latency = {"end_to_end": summarize(e2e),
               "parts": {k: summarize(samples[k]) for k in stage_order if k in samples}}
    gpu_result = None
    if gpu:
        compute = np.sum([gpu[f"{s}/compute"] for s in trt if f"{s}/compute" in gpu], axis=0)
        transfers = np.sum([gpu[f"{s}/{c}"] for s in trt for c in ("h2d", "d2h") if f"{s}/{c}" in gpu], axis=0)
        samples["gpu_compute"] = list(compute)
        samples["gpu_transfers"] = list(transfers)
        samples["host_minus_gpu"] = list(np.maximum(e2e - compute - transfers, 0.0))
        for key, values in gpu.items():
            samples[f"gpu/{key}"] = values
        gpu_result = {
            "compute": summarize(compute), "transfers": summarize(transfers),
            "host": summarize(samples["host_minus_gpu"]),
            "stages": {s: {c: summarize(gpu[f"{s}/{c}"]) for c in ("compute", "h2d", "d2h")}
                       for s in trt if f"{s}/compute" in gpu},
            "method": "CUDA events on each stage's stream: compute = engine (execute_async_v3 / graph launch), "
                      "transfers = H2D + D2H copies; host = end-to-end − compute − transfers",
        }
    elif trt:
        gpu_result = {"unavailable": "; ".join(dict.fromkeys(timing_off)) or "no GPU timings were recorded"}

    tegra_result = None
    if tegra is not None and (tegra.available or jetson.is_jetson()):
        tegra_result = tegra.summary() or {"error": tegra.error or "no samples"}

    engines = manifest.engines
    result: dict[str, Any] = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "jamsdk_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "model_dir": str(Path(model_dir).resolve()),
        "model": {"name": manifest.model.name, "image_size": manifest.image_size,
                  "num_regions": manifest.num_regions, "stages": list(manifest.stages)},
        "settings": {"backend_requested": backend, "backend": used_backend, "mode": mode,
                     "precision": engines.precision if used_backend == "tensorrt" and engines else precision,
                     "threads": threads, "cuda_graph": bool(cuda_graph), "frames": frames, "warmup": warmup,
                     "input_shape": [shape[0], shape[1], 3], "input": "synthetic uint8 frames, pool of 32",
                     "output_shape": [size, size, 3]},
        "load_s": load_s,
        "source_ms": source_ms,
        "latency_ms": latency,
        "fps": {"mean": 1e3 / latency["end_to_end"]["mean"], "p50": 1e3 / latency["end_to_end"]["p50"],
                "p99": 1e3 / latency["end_to_end"]["p99"]},
        "gpu_ms": gpu_result,
        "memory": {
            "host_rss_mb": {"before_load": _mb(rss_before), "after_load": _mb(rss_loaded), "end": _mb(rss_end)},
            "host_peak_rss_mb": _mb(peak_rss_bytes()),
            "device": None if device_used is None else {
                "total_mb": _mb(device_before[1]), "used_before_load_mb": _mb(device_used[0]),
                "used_peak_mb": _mb(max(device_used)), "model_mb": _mb(max(device_used) - device_used[0]),
                "method": "cudaMemGetInfo (device-wide: other processes included; on a Jetson, shared "
                          "system memory) before loading and every 10 frames"},
        },
        "machine": machine,
        "jetson_advice": jetson.jetson_advice(machine.get("jetson")),
        "tegrastats": tegra_result,
        "wall_s": time.perf_counter() - started,
        "samples_ms": {k: [round(float(v), 5) for v in vals] for k, vals in samples.items()},
    }
    return result


def _collect_parts(summary: Mapping[str, Mapping[str, float]], counts: dict[str, int],
                   samples: dict[str, list[float]]) -> None:
    """Append the frame's sample of every key whose count advanced (stats_window=1: mean = last sample)."""
    for key, s in summary.items():
        new = s["count"] - counts.get(key, 0)
        counts[key] = s["count"]
        if key in NOT_PER_FRAME or new == 0:
            continue
        if new != 1:  # a stage that ran twice in one frame would be half-counted: never expected
            raise RuntimeError(f"bench: stage {key!r} ran {new} times in one frame")
        samples.setdefault(key, []).append(float(s["mean_ms"]))


def _collect_gpu(trt: Mapping[str, Any], gpu: dict[str, list[float]]) -> None:
    for name, b in trt.items():
        t = getattr(b, "last_gpu_ms", None)
        if t:
            for c in ("compute", "h2d", "d2h"):
                gpu.setdefault(f"{name}/{c}", []).append(float(t[f"{c}_ms"]))


# -- output --------------------------------------------------------------------------------------

def write_json(result: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``result`` as JSON, atomically (a complete file or the previous one)."""
    write_bytes(path, (json.dumps(result, indent=1, allow_nan=False) + "\n").encode())
    return Path(path)


__all__ = ["run_bench", "summarize", "synthetic_frames", "synthetic_source", "write_json"]
