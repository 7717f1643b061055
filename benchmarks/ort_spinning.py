"""ONNX Runtime's spinning thread pools and jamsdk's one-session-per-stage pipeline, side by side.

    python benchmarks/ort_spinning.py                          # jam-256 (trained-like) + the demo model, 2 threads
    python benchmarks/ort_spinning.py --models demo --rounds 4 --json spin.json

Every stage of a model folder is its own ONNX Runtime session with its own intra-op thread pool.
By default ONNX Runtime lets a pool's idle threads spin-wait for more work for a while; in a chain
of sessions the pool that just finished spins while the next stage runs, on the same cores. jamsdk
turns spinning off (``session.intra_op.allow_spinning = 0``,
:func:`jamsdk.runtime.backends.onnxruntime.session_options`). This script streams the same folder
through two :class:`jamsdk.Animator` instances that differ only in that setting (``on``: ONNX
Runtime's default, patched in while its sessions are created), standard mode, model-space frames,
interleaved rounds with the order reversed every other round, and reports the median ms per frame
and per stage and the ratio off/on.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

from _cost import machine_info  # benchmarks/ is sys.path[0]
from _report import require_at_least, run_and_report

STAGES = ("region_predictor", "dense_motion", "generator")
SETTINGS = ("off", "on")


def model_folder(name: str, workdir: Path) -> Path:
    """``demo``: the bundled folder; ``jam-256``: trained-like weights exported FP32 to ``workdir``."""
    if name == "demo":
        from jamsdk.bundled import resolve_model

        return resolve_model("demo")
    from int8 import checkpoint_for

    from jamsdk.export.pipeline import export_checkpoint

    out = workdir / name
    export_checkpoint(checkpoint_for(name, workdir), out, precision="fp32", avd="off", log=lambda _m: None)
    return out


def open_animator(folder: Path, spinning: bool, threads: int):
    import jamsdk
    from jamsdk.runtime.backends import onnxruntime as ort_backend

    real = ort_backend.session_options
    with mock.patch.object(ort_backend, "session_options", lambda o, _s=False: real(o, spinning)):
        anim = jamsdk.Animator(folder, backend="onnxruntime", mode="standard", threads=threads,
                               stats_window=100_000).__enter__()
    return anim


def measure(name: str, folder: Path, args) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    anims = {s: open_animator(folder, s == "on", args.threads) for s in SETTINGS}
    try:
        size = anims["off"].image_size
        source = rng.random((1, 3, size, size), dtype=np.float32)
        frames = [np.clip(source + 0.05 * rng.standard_normal(source.shape, dtype=np.float32), 0, 1)
                  for _ in range(4)]
        for anim in anims.values():
            anim.set_source_tensor(source)
            for f in frames:
                anim.run_tensor(f)
        samples: dict[str, list[float]] = {s: [] for s in SETTINGS}
        k = 0
        for r in range(args.rounds):
            for s in SETTINGS if r % 2 == 0 else SETTINGS[::-1]:
                anims[s].run_tensor(frames[k % 4])  # untimed: the other setting's pools go quiet
                for _ in range(args.frames):
                    k += 1
                    t0 = time.perf_counter()
                    anims[s].run_tensor(frames[k % 4])
                    samples[s].append((time.perf_counter() - t0) * 1e3)
        stages = {s: {st: anims[s].stats()[st]["p50_ms"] for st in STAGES} for s in SETTINGS}
    finally:
        for anim in anims.values():
            anim.close()
    frame = {s: float(np.median(v)) for s, v in samples.items()}
    return {"model": name, "image_size": size, "frame_ms": frame, "stage_ms": stages,
            "off_over_on_frame": frame["off"] / frame["on"],
            "off_over_on_stage": {st: stages["off"][st] / stages["on"][st] for st in STAGES}}


def run(args) -> dict[str, Any]:
    import onnxruntime

    with tempfile.TemporaryDirectory(prefix="jamsdk-spin-") as tmp:
        results = {name: measure(name, model_folder(name, Path(tmp)), args) for name in args.models}
    machine = machine_info()
    machine["onnxruntime"] = onnxruntime.__version__
    return {"machine": machine, "settings": {"threads": args.threads, "rounds": args.rounds, "frames": args.frames},
            "models": results}


def render(result: dict[str, Any]) -> str:
    m, st = result["machine"], result["settings"]
    lines = ["# ONNX Runtime intra-op spinning: off (jamsdk) vs on (ONNX Runtime's default)", "",
             f"- machine: {m['cpu']}, {m['logical_cpus']} logical CPUs; onnxruntime {m['onnxruntime']}; "
             f"{st['threads']} intra-op threads per session; {st['rounds']} interleaved rounds × {st['frames']} "
             "timed frames; median ms", "",
             "| model | spinning | per frame | region_predictor | dense_motion | generator |",
             "|---|---|---:|---:|---:|---:|"]
    for r in result["models"].values():
        for s in SETTINGS:
            cells = " | ".join(f"{r['stage_ms'][s][x]:.1f}" for x in STAGES)
            lines.append(f"| {r['model']} ({r['image_size']}px) | {s} | {r['frame_ms'][s]:.1f} | {cells} |")
        lines.append(f"| | **off / on** | **{r['off_over_on_frame']:.3f}** | "
                     + " | ".join(f"{r['off_over_on_stage'][x]:.3f}" for x in STAGES) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", choices=("jam-256", "demo"), default=["jam-256", "demo"])
    p.add_argument("--threads", type=int, default=2, help="intra-op threads per session (default: 2)")
    p.add_argument("--rounds", type=int, default=6, help="interleaved rounds (default: 6)")
    p.add_argument("--frames", type=int, default=4, help="timed frames per setting per round (default: 4)")
    p.add_argument("--json", metavar="OUT", help="also write the result as JSON")
    p.add_argument("--markdown", metavar="OUT", help="also write the markdown report here")
    args = p.parse_args(argv)
    require_at_least(p, args, 1, "threads", "rounds", "frames")
    return 0 if run_and_report(lambda: run(args), render, args.json, args.markdown) is not None else 2


if __name__ == "__main__":
    sys.exit(main())
