"""GPU check (d): real TensorRT engines of the demo model, where ``import tensorrt`` works.

``benchmarks/gpu_check.sh`` calls this. It exports the bundled demo checkpoint with FP16 graphs, INT8
Q/DQ graphs (calibrated on the bundled example clip) and batch-4 graphs (or takes ``--model DIR``,
such a folder exported already), builds TensorRT engines from it twice with ``jamsdk build``'s own
code (``--precision fp16`` and ``--precision int8``), and for each engine folder measures:

* ``Animator`` (relative mode): parity with ONNX Runtime FP32 on the CPU (max |Δ| and PSNR of the
  uint8 frames; max |Δ| and PSNR of the model-space prediction), per-stage GPU time (CUDA events,
  no CUDA graph) and end-to-end wall time per frame (plain and with CUDA graphs), bytes moved and
  syncs per frame, device memory (``cudaMemGetInfo`` before and after opening), the shared scratch
  and each engine's activation memory (``device_memory_size_v2``, what TensorRT reports);
* ``StreamBatch`` with 4 streams (one chunk of 4): parity per stream with ONNX Runtime FP32's
  StreamBatch, chunk wall time, bytes moved and syncs per chunk, the one precision it runs
  (``engines.batched_precision``), its scratch.

PASS needs, per engine folder: uint8 PSNR ≥ 35 dB (FP16) or ≥ 28 dB (INT8) for the Animator and
every stream, exactly one sync per frame and per chunk, at most ``S·S·3 + 4096`` bytes each way per
frame (``B·(S·S·3 + 4096)`` per chunk), and no failed CUDA-graph capture. Writes
``gpu_check_engines.json`` into ``--out`` after each step (``status: running``), then with the verdict.

Where ``import tensorrt`` fails it prints ``TensorRT not installed: engine part skipped``, writes
``{"status": "skipped", ...}`` and exits 0; likewise (with the reason) without a usable GPU, with a
TensorRT older than jamsdk runs on, or without the export extra when no ``--model`` is given.
``--cpu-standin`` runs the same steps on the test suite's CUDA and TensorRT stand-ins (each "engine"
is the ONNX graph it was built from, run by ONNX Runtime; no GPU timing): the logic, not the numbers.

    python benchmarks/gpu_check_engines.py [--out DIR] [--frames N] [--model DIR] [--cpu-standin]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "runtime"))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

SKIP_LINE = "TensorRT not installed: engine part skipped"
PSNR_MIN = {"fp16": 35.0, "int8": 28.0}  # dB, uint8 frames against ONNX Runtime FP32
BATCH = 4


def psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(peak * peak / mse)


def skip_reason(model: str | None) -> tuple[str, str]:
    """``(line to print, reason)`` when the part cannot run here; ``("", "")`` when it can."""
    try:
        import tensorrt as trt
    except Exception as exc:  # ImportError, or a broken install's OSError
        return SKIP_LINE, f"import tensorrt failed: {str(exc).splitlines()[0][:200]}"
    from jamsdk.runtime import _cuda
    from jamsdk.runtime.trt_support import support_problem

    if _cuda.gpu_info() is None:
        why = f"no usable NVIDIA GPU ({_cuda.gpu_problem()})"
        return f"{why}: engine part skipped", why
    problem = support_problem(getattr(trt, "__version__", ""))
    if problem:
        return f"{problem}: engine part skipped", problem
    if model is None:
        for name in ("torch", "onnx", "onnxsim", "onnxruntime"):
            try:
                __import__(name)
            except Exception:
                why = f'exporting the demo model needs {name} (pip install "jamsdk[export]", or pass --model DIR)'
                return f"{why}: engine part skipped", why
    return "", ""


# -- the steps ----------------------------------------------------------------------------------------

def export_demo(out: Path, log: Callable[[str], None]) -> Path:
    """The demo checkpoint with FP32, FP16 and INT8 graphs and batch-4 graphs (no AVD: relative mode only)."""
    from jamsdk.bundled import ASSETS, DEMO_CHECKPOINT
    from jamsdk.export.pipeline import export_checkpoint

    export_checkpoint(DEMO_CHECKPOINT, out, precision="all", batch_sizes=(BATCH,), avd="off",
                      calibration=ASSETS / "example_driving.mp4", cpu_speed_gate=False, log=log)
    return out


def build(model: Path, out: Path, precision: str, cache: Path, log: Callable[[str], None]) -> dict[str, Any]:
    from jamsdk.manifest import load_manifest
    from jamsdk.runtime.onnx2engine import build_engines

    t0 = time.perf_counter()
    build_engines(model, out, precision=precision, timing_cache=cache, log=log)
    manifest = load_manifest(out)
    engines = manifest.engines
    count = len(engines.stages) + len(engines.batched_b1) + sum(len(v) for v in engines.batched.values()) + \
        len(manifest.data["engines"].get("helpers") or {})
    return {"seconds": round(time.perf_counter() - t0, 1), "engines": count, "precision": engines.precision,
            "batched_precision": engines.batched_precision, "tensorrt": engines.tensorrt_version}


def _inputs(size: int, frames: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    from jamsdk.bundled import ASSETS
    from jamsdk.pictures import read_image
    from jamsdk.video import read_frames

    source = read_image(ASSETS / "example_source.png")
    clip = list(read_frames(ASSETS / "example_driving.mp4", max_frames=frames))
    pictures = [source, source[:, ::-1].copy(), source[::-1].copy(), np.ascontiguousarray(source.transpose(1, 0, 2))]
    return pictures, clip


def _memory(cuda: Any) -> int | None:
    """Device bytes in use: the stand-in counts them; on a GPU, total minus free (device-wide)."""
    if hasattr(cuda, "device_bytes"):
        return int(cuda.device_bytes)
    from jamsdk.runtime.backends.tensorrt import device_memory

    info = device_memory()
    return None if info is None else int(info[1] - info[0])


def measure_animator(folder: Path, ref: Path, pictures: list[np.ndarray], clip: list[np.ndarray],
                     counting: Any) -> dict[str, Any]:
    import jamsdk
    from jamsdk.runtime.backends.trt_pipeline import CaptureWarning

    out: dict[str, Any] = {}
    before = _memory(counting.inner)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CaptureWarning)
        with jamsdk.Animator(folder, backend="tensorrt", verify_hashes=False) as anim:
            timing = [b.enable_gpu_timing() for b in anim._backends.values()]
            anim.set_source(pictures[0])
            after = _memory(counting.inner)
            got, walls, stages, counts = [], [], [], []
            for f in clip:
                counting.counts.clear()
                t0 = time.perf_counter()
                got.append(anim.run(f))
                walls.append((time.perf_counter() - t0) * 1e3)
                counts.append(dict(counting.counts))
                stages.append({n: dict(b.last_gpu_ms) for n, b in anim._backends.items() if b.last_gpu_ms})
            tensors = [anim.run_tensor(_tensor(f, anim.image_size)) for f in clip[:2]]
            out.update(scratch_bytes=int(anim._pipe.scratch[1]),
                       activation_bytes={n: int(b.activation_bytes) for n, b in anim._backends.items()})
        with jamsdk.Animator(folder, backend="tensorrt", cuda_graph=True, verify_hashes=False) as anim:
            anim.set_source(pictures[0])
            graph_walls = []
            for f in clip:
                t0 = time.perf_counter()
                anim.run(f)
                graph_walls.append((time.perf_counter() - t0) * 1e3)
    with jamsdk.Animator(ref, backend="onnxruntime") as anim:
        anim.set_source(pictures[0])
        want = [anim.run(f) for f in clip]
        want_t = [anim.run_tensor(_tensor(f, anim.image_size)) for f in clip[:2]]
    steady = counts[1:] or counts
    per_stage = {}
    for name in stages[-1] if stages else {}:
        per_stage[name] = {k: float(np.median([s[name][k] for s in stages[1:] or stages if name in s]))
                           for k in ("h2d_ms", "compute_ms", "d2h_ms")}
    out.update(
        max_abs_diff_uint8=max(int(np.abs(a.astype(int) - b.astype(int)).max()) for a, b in zip(got, want)),
        psnr_db_uint8=min(psnr(a, b, 255.0) for a, b in zip(got, want)),
        max_abs_diff_model_space=max(float(np.abs(a - b).max()) for a, b in zip(tensors, want_t)),
        psnr_db_model_space=min(psnr(a, b, 1.0) for a, b in zip(tensors, want_t)),
        frame_wall_ms_p50=float(np.median(walls[1:] or walls)),
        frame_wall_ms_p50_cuda_graph=float(np.median(graph_walls[2:] or graph_walls)),
        stage_gpu_ms_p50=per_stage or None, gpu_timing=None if not any(timing) else next(t for t in timing if t),
        h2d_bytes_per_frame=float(np.mean([c.get("h2d_bytes", 0) for c in steady])),
        d2h_bytes_per_frame=float(np.mean([c.get("d2h_bytes", 0) for c in steady])),
        syncs_per_frame=float(np.mean([c.get("syncs", 0) for c in steady])),
        device_bytes_opened=None if before is None or after is None else after - before,
        capture_failures=[str(w.message) for w in caught if issubclass(w.category, CaptureWarning)])
    return out


def _tensor(frame: np.ndarray, size: int) -> np.ndarray:
    from jamsdk.runtime.frames import to_model_input

    return to_model_input(frame, size, False, "frame")


def measure_stream_batch(folder: Path, ref: Path, pictures: list[np.ndarray], clip: list[np.ndarray],
                         counting: Any) -> dict[str, Any]:
    from jamsdk.runtime.backends.trt_pipeline import CaptureWarning
    from jamsdk.runtime.batch import StreamBatch

    def session(model: Path, backend: str, **kw: Any) -> tuple[list[dict], dict[str, Any]]:
        with StreamBatch(model, backend=backend, max_batch=BATCH, **kw) as sb:
            ids = [sb.add_stream(p) for p in pictures[:BATCH]]
            outs, counts = [], []
            for f in clip:
                counting.counts.clear()
                outs.append(sb.run({sid: f for sid in ids}))
                counts.append(dict(counting.counts))
            facts = {"precision": sb.precision, "batch_sizes": list(sb.batch_sizes),
                     "chunk_ms_p50": (sb.stats().get(f"chunk@b{BATCH}") or {}).get("p50_ms"),
                     "scratch_bytes": int(sb._device.pipe.scratch[1]) if sb._device is not None else None,
                     "counts": counts}
        return outs, facts

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CaptureWarning)
        got, facts = session(folder, "tensorrt", cuda_graph=True, verify_hashes=False)
    want, _ = session(ref, "onnxruntime")
    counts = facts.pop("counts")
    steady = counts[1:] or counts
    diffs = [int(np.abs(g[s].astype(int) - w[s].astype(int)).max()) for g, w in zip(got, want) for s in w]
    return {**facts, "streams": BATCH, "max_abs_diff_uint8": max(diffs),
            "psnr_db_uint8": min(psnr(g[s], w[s], 255.0) for g, w in zip(got, want) for s in w),
            "h2d_bytes_per_chunk": float(np.mean([c.get("h2d_bytes", 0) for c in steady])),
            "d2h_bytes_per_chunk": float(np.mean([c.get("d2h_bytes", 0) for c in steady])),
            "syncs_per_chunk": float(np.mean([c.get("syncs", 0) for c in steady])),
            "capture_failures": [str(w.message) for w in caught if issubclass(w.category, CaptureWarning)]}


def judge(precision: str, r: dict[str, Any], size: int) -> list[str]:
    """Why an engine folder fails (empty: it passes)."""
    bad, floor = [], PSNR_MIN[precision]
    anim, sb = r.get("animator") or {}, r.get("stream_batch") or {}
    for what, m, per in (("Animator", anim, 1), ("StreamBatch", sb, BATCH)):
        if not m:
            bad.append(f"{what}: not measured")
            continue
        if not m["psnr_db_uint8"] >= floor:
            bad.append(f"{what}: PSNR {m['psnr_db_uint8']:.1f} dB < {floor} dB against ONNX Runtime FP32")
        unit = "frame" if per == 1 else "chunk"
        if m[f"syncs_per_{unit}"] != 1:
            bad.append(f"{what}: {m[f'syncs_per_{unit}']} syncs per {unit} (must be 1)")
        for key in (f"h2d_bytes_per_{unit}", f"d2h_bytes_per_{unit}"):
            if m[key] > per * (size * size * 3 + 4096):
                bad.append(f"{what}: {key} {m[key]:.0f} > {per}·(S·S·3 + 4096)")
        if m["capture_failures"]:
            bad.append(f"{what}: capture failed: " + "; ".join(m["capture_failures"]))
    if sb and sb.get("precision") != r["build"]["batched_precision"]:
        bad.append(f"StreamBatch runs {sb.get('precision')}, the batched engines are {r['build']['batched_precision']}")
    return bad


def run(frames: int, model: str | None, emit: Callable[[dict[str, Any]], None],
        counting: Any, log: Callable[[str], None]) -> dict[str, Any]:
    """Export (unless ``model``), build FP16 and INT8, measure each; ``emit`` gets the report after each step."""
    from jamsdk.manifest import load_manifest

    report: dict[str, Any] = {"model": model or "demo (exported here)", "frames": frames, "folders": {}}
    with tempfile.TemporaryDirectory(prefix="jamsdk-gpu-check-") as tmp:
        t0 = time.perf_counter()
        exported = Path(model) if model else export_demo(Path(tmp) / "exported", log)
        report["export_seconds"] = None if model else round(time.perf_counter() - t0, 1)
        size = load_manifest(exported).image_size
        report["image_size"] = size
        pictures, clip = _inputs(size, frames)
        emit(report)
        for precision in ("fp16", "int8"):
            entry: dict[str, Any] = {}
            report["folders"][precision] = entry
            folder = Path(tmp) / f"engines-{precision}"
            entry["build"] = build(exported, folder, precision, Path(tmp) / "timing.cache", log)
            emit(report)
            entry["animator"] = measure_animator(folder, exported, pictures, clip, counting)
            emit(report)
            entry["stream_batch"] = measure_stream_batch(folder, exported, pictures, clip, counting)
            entry["problems"] = judge(precision, entry, size)
            entry["ok"] = not entry["problems"]
            emit(report)
    report["ok"] = all(e["ok"] for e in report["folders"].values())
    return report


def _standin(patch: Any) -> Any:
    """The test suite's CUDA and TensorRT stand-ins in place, with their builder."""
    import cuda_standin

    cuda = cuda_standin.install(patch)
    cuda_standin.fake_builder(sys.modules["tensorrt"])
    return cuda


def main(argv: list[str] | None = None, patch: Any = None) -> int:
    """The command line; ``patch`` (a pytest ``monkeypatch``) undoes the stand-ins' and counters' patches."""
    p = argparse.ArgumentParser(description="Build and check real TensorRT engines of the demo model (FP16, INT8).")
    p.add_argument("--out", default=".", help="folder for gpu_check_engines.json (default: current folder)")
    p.add_argument("--frames", type=int, default=8, help="driving frames per measurement (default 8)")
    p.add_argument("--model", help="an exported folder with fp16 and int8 graphs and batch-4 graphs (default: "
                                   "export the demo checkpoint)")
    p.add_argument("--cpu-standin", action="store_true", help="run on the CUDA/TensorRT stand-ins (no GPU)")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from gpu_check_pipeline import CountingCuda, _Patch

    from jamsdk._atomic import write_bytes
    from jamsdk.runtime import _cuda

    def write(report: dict[str, Any]) -> None:
        write_bytes(out / "gpu_check_engines.json", (json.dumps(report, indent=1, default=str) + "\n").encode())

    kind = "cpu stand-in" if args.cpu_standin else "gpu"
    patch = patch or _Patch()
    if args.cpu_standin:
        inner = _standin(patch)
    else:
        line, why = skip_reason(args.model)
        if line:
            print(line)
            write({"status": "skipped", "reason": why})
            return 0
        inner = _cuda.cuda()
    counting = CountingCuda(inner)
    patch.setattr(_cuda, "cuda", lambda: counting)

    def emit(r: dict[str, Any]) -> None:
        write({"status": "running", "kind": kind, **r})

    def log(line: str) -> None:
        print(line, flush=True)

    import tensorrt

    report = {"status": "ran", "kind": kind, "tensorrt": tensorrt.__version__,
              "gpu_name": getattr(_cuda.gpu_info(), "name", None),
              **run(max(2, args.frames), args.model, emit, counting, log)}
    report["verdict"] = "PASS" if report["ok"] else "FAIL"
    write(report)
    for precision, e in report["folders"].items():
        a, s = e["animator"], e["stream_batch"]
        print(f"  {precision}: built {e['build']['engines']} engines in {e['build']['seconds']} s; Animator PSNR "
              f"{a['psnr_db_uint8']:.1f} dB (max|Δ| {a['max_abs_diff_uint8']}), {a['frame_wall_ms_p50']:.2f} ms/frame "
              f"({a['frame_wall_ms_p50_cuda_graph']:.2f} with graphs), H2D {a['h2d_bytes_per_frame']:.0f} B, D2H "
              f"{a['d2h_bytes_per_frame']:.0f} B, scratch {a['scratch_bytes']} B; StreamBatch ×{BATCH} "
              f"({s['precision']}) PSNR {s['psnr_db_uint8']:.1f} dB  "
              f"{'ok' if e['ok'] else 'FAIL: ' + '; '.join(e['problems'])}")
    print(f"gpu_check_engines: {report['verdict']}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
