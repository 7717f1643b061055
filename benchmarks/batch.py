"""Frames/s of :class:`jamsdk.runtime.batch.StreamBatch` per backend, precision and streams per call, one run.

By default the bundled demo checkpoint is exported with ``--batch-sizes`` (FP32) into a temporary
folder; ``--model DIR`` takes a folder that already has batched graphs (for the CPU throughput
tables: jam-256 from ``jam256_folder.py``, which has batched INT8 too). Each contender is a
``BACKEND:PRECISION`` of ``--variants`` (``openvino-throughput`` is OpenVINO with
``openvino_hint="throughput"``: the batch-1 graph, the rows of a call as parallel requests) at each
B of ``--sizes``: B streams animating real footage (the bundled example picture, flipped and shifted
per stream, driven by the bundled example clip from a different frame per stream), one
``StreamBatch.run`` per step. Rounds are interleaved (every contender once per round, the order
reversed every other round) so a slow phase of a shared machine hits them all; reported: the
median frames/s (min–max over rounds), the ratio to the first variant at the same B and to the
first variant at the largest B (today's default ``jamsdk batch`` path: ONNX Runtime FP32 at the
largest exported size), both taken within each round, and the PSNR of every contender's frames
against the first variant's at B = 1 (the same inputs). The CPU, its flags and the load average
are printed with the table.

    python benchmarks/batch.py                                   # demo model, ONNX Runtime FP32, ~2 min on 2 cores
    python benchmarks/batch.py --model DIR --sizes 1,4,8 --variants onnxruntime:fp32,openvino:fp32,openvino:int8 \\
        --threads 2 --rounds 5 --markdown batch.md --json batch.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _cost import machine_info  # benchmarks/ is sys.path[0]
from _report import require_at_least, write_reports
from jamsdk.errors import JamError

BACKENDS = ("onnxruntime", "openvino", "openvino-throughput")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", metavar="DIR", help="model folder with batched graphs (default: export the demo)")
    p.add_argument("--checkpoint", metavar="CKPT", help="checkpoint to export (default: the bundled demo.pt)")
    p.add_argument("--sizes", default="1,2,4,8", help="streams per call to compare (default 1,2,4,8)")
    p.add_argument("--variants", default="onnxruntime:fp32",
                   help="BACKEND:PRECISION contenders, comma-separated, the first is the reference "
                        f"(default onnxruntime:fp32; backends {', '.join(BACKENDS)})")
    p.add_argument("--threads", type=int, default=2, metavar="N", help="ONNX Runtime / OpenVINO threads (default 2)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    p.add_argument("--steps", type=int, default=6, help="StreamBatch.run calls per contender per round (default 6)")
    p.add_argument("--json", metavar="OUT", help="write every sample as JSON")
    p.add_argument("--markdown", metavar="OUT", help="write the report as markdown")
    args = p.parse_args(argv)
    require_at_least(p, args, 1, "threads", "rounds", "steps")
    args.sizes = sorted({int(s) for s in args.sizes.split(",") if s})
    args.variants = [tuple(v.split(":", 1)) for v in args.variants.split(",") if v]
    for v in args.variants:
        if len(v) != 2 or v[0] not in BACKENDS or v[1] not in ("fp32", "fp16", "int8"):
            p.error(f"--variants: expected BACKEND:PRECISION with a backend of {BACKENDS}, got {':'.join(v)!r}")
    return args


def export_demo(checkpoint: str | None, sizes: list[int], workdir: Path) -> Path:
    from jamsdk.export.pipeline import export_checkpoint

    ckpt = checkpoint or str(Path(__import__("jamsdk").__file__).parent / "assets" / "demo.pt")
    out = workdir / "model"
    t0 = time.perf_counter()
    export_checkpoint(ckpt, out, precision="fp32", batch_sizes=tuple(b for b in sizes if b > 1),
                      log=lambda _line: None)
    print(f"exported {ckpt} with batch sizes {sizes} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return out


def footage(streams: int, steps: int) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
    """Per stream a picture (the example picture, flipped/shifted) and ``steps`` frames of the example clip."""
    from jamsdk.config import CONFIG_DIR
    from jamsdk.pictures import read_image
    from jamsdk.video import read_frames

    assets = CONFIG_DIR.parent / "assets"
    picture = read_image(assets / "example_source.png")
    clip = read_frames(assets / "example_driving.mp4", max_frames=steps + 3 * streams + 1)
    pictures, frames = [], []
    for i in range(streams):
        pic = np.roll(picture[:, ::-1] if i % 2 else picture, 7 * i, axis=1)
        pictures.append(np.ascontiguousarray(pic))
        frames.append([clip[(3 * i + t) % len(clip)] for t in range(steps + 1)])
    return pictures, frames


def open_contender(model: Path, backend: str, precision: str, b: int, threads: int):
    from jamsdk.runtime.batch import StreamBatch

    hint = "throughput" if backend == "openvino-throughput" else "latency"
    sb = StreamBatch(model, backend=backend.split("-")[0], precision=precision, threads=threads, max_batch=b,
                     openvino_hint=hint)
    if sb.max_batch != b:
        sb.close()
        raise JamError(f"{model} has no {precision} graphs for batch {b} (has {list(sb.batch_sizes)})")
    return sb


def run(args: argparse.Namespace) -> dict:
    from jamsdk.export.psnr import psnr

    sizes, variants = args.sizes, args.variants
    keys = [(v, b) for v in variants for b in sizes]
    label = {k: f"{k[0][0]} {k[0][1]} B={k[1]}" for k in keys}
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(args.model) if args.model else export_demo(args.checkpoint, sizes, Path(tmp))
        pictures, frames = footage(max(sizes), args.steps)
        batches, ids, outputs = {}, {}, {}
        try:
            for key in keys:
                (backend, precision), b = key
                sb = open_contender(model, backend, precision, b, args.threads)
                ids[key] = [sb.add_stream(pictures[i]) for i in range(b)]
                sb.run({sid: frames[i][0] for i, sid in enumerate(ids[key])})  # warm-up and the relative reference
                outputs[key] = [sb.run({sid: frames[i][t + 1] for i, sid in enumerate(ids[key])})
                                for t in range(args.steps)]  # the frames compared (and a second warm-up)
                batches[key] = sb
            image_size = batches[keys[0]].image_size
            samples: dict = {k: [] for k in keys}
            for r in range(args.rounds):
                for key in keys if r % 2 == 0 else keys[::-1]:
                    sb = batches[key]
                    t0 = time.perf_counter()
                    for t in range(args.steps):
                        sb.run({sid: frames[i][t + 1] for i, sid in enumerate(ids[key])})
                    samples[key].append(key[1] * args.steps / (time.perf_counter() - t0))
                load.append(os.getloadavg()[0])
        finally:
            for sb in batches.values():
                sb.close()
    ref_b1 = (variants[0], sizes[0])
    today = (variants[0], sizes[-1])
    rows = []
    for key in keys:
        fps = samples[key]
        same_b = [a / c for a, c in zip(fps, samples[(variants[0], key[1])])]
        vs_today = [a / c for a, c in zip(fps, samples[today])]
        # quality: stream 0's frames against the reference's stream 0 (identical inputs)
        got = np.stack([step[ids[key][0]] for step in outputs[key]]).astype(np.float32) / 255
        ref = np.stack([step[ids[ref_b1][0]] for step in outputs[ref_b1]]).astype(np.float32) / 255
        rows.append({"variant": f"{key[0][0]}:{key[0][1]}", "B": key[1], "label": label[key],
                     "fps_median": statistics.median(fps), "fps_min": min(fps), "fps_max": max(fps),
                     "over_first_variant_same_B": statistics.median(same_b),
                     "over_today_default": statistics.median(vs_today),
                     "psnr_db_vs_reference": psnr(got, ref) if np.any(got != ref) else float("inf")})
    machine = machine_info()
    from jamsdk.runtime.sysinfo import cpu_flags

    machine["cpu_flags"] = cpu_flags()
    return {"model": str(args.model or "demo (exported with batch sizes)"), "image_size": image_size,
            "threads": args.threads, "rounds": args.rounds, "steps": args.steps, "machine": machine,
            "variants": [f"{b}:{p}" for b, p in variants], "sizes": sizes, "today_default": label[today],
            "load_1min": load, "rows": rows, "samples": {label[k]: samples[k] for k in keys}}


def report(result: dict) -> str:
    m = result["machine"]
    load = result["load_1min"]
    lines = [f"StreamBatch frames/s, {result['model']} ({result['image_size']}px), {result['threads']} threads, "
             f"{m['cpu']} ({m['logical_cpus']} logical CPUs, flags {' '.join(m.get('cpu_flags') or []) or '-'}); "
             f"{result['rounds']} interleaved rounds × {result['steps']} calls; 1-min load {load[0]:.1f} → "
             f"{load[-1]:.1f} (max {max(load):.1f})", "",
             f"| variant | B | frames/s, median (min–max) | × {result['variants'][0]} same B | "
             f"× today's default ({result['today_default']}) | PSNR vs {result['variants'][0]} B={result['sizes'][0]} |",
             "|---|---:|---|---:|---:|---:|"]
    for row in result["rows"]:
        db = row["psnr_db_vs_reference"]
        lines.append(f"| {row['variant']} | {row['B']} | {row['fps_median']:.2f} ({row['fps_min']:.2f}–"
                     f"{row['fps_max']:.2f}) | {row['over_first_variant_same_B']:.2f} | {row['over_today_default']:.2f} "
                     f"| {'identical' if db == float('inf') else f'{db:.1f} dB'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = run(args)
    except JamError as exc:
        print(f"batch.py: error: {exc}", file=sys.stderr)
        return 2
    text = report(result)
    print(text)
    write_reports(result, text, args.json, args.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
