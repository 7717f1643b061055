"""Frames/s of :class:`jamsdk.runtime.batch.StreamBatch` for B = 1, 2, 4, 8 streams per call (ONNX Runtime).

By default the bundled demo checkpoint is exported with ``--batch-sizes 2,4,8`` (FP32) into a
temporary folder; ``--model DIR`` takes a folder that already has batched graphs. Each B runs B
streams (distinct synthetic pictures and driving frames), one ``StreamBatch.run`` per step. Rounds
are interleaved (every B once per round, order reversed every other round) so a slow phase of a
shared machine hits every B alike; the report gives the median frames/s, the spread (min–max over
rounds) and the ratio to B = 1 taken within each round.

    python benchmarks/batch.py                                   # demo model, ~2 min on 2 cores
    python benchmarks/batch.py --threads 2 --rounds 7 --markdown batch.md --json batch.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _cost import machine_info  # benchmarks/ is sys.path[0]
from _report import write_reports
from jamsdk.errors import JamError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", metavar="DIR", help="model folder with batched graphs (default: export the demo)")
    p.add_argument("--checkpoint", metavar="CKPT", help="checkpoint to export (default: the bundled demo.pt)")
    p.add_argument("--sizes", default="1,2,4,8", help="streams per call to compare (default 1,2,4,8)")
    p.add_argument("--threads", type=int, default=2, metavar="N", help="ONNX Runtime intra-op threads (default 2)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    p.add_argument("--steps", type=int, default=6, help="StreamBatch.run calls per B per round (default 6)")
    p.add_argument("--json", metavar="OUT", help="write every sample as JSON")
    p.add_argument("--markdown", metavar="OUT", help="write the report as markdown")
    return p.parse_args(argv)


def export_demo(checkpoint: str | None, sizes: list[int], workdir: Path) -> Path:
    from jamsdk.export.pipeline import export_checkpoint

    ckpt = checkpoint or str(Path(__import__("jamsdk").__file__).parent / "assets" / "demo.pt")
    out = workdir / "model"
    t0 = time.perf_counter()
    export_checkpoint(ckpt, out, precision="fp32", batch_sizes=tuple(b for b in sizes if b > 1),
                      log=lambda _line: None)
    print(f"exported {ckpt} with batch sizes {sizes} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return out


def run(args: argparse.Namespace) -> dict:
    from jamsdk.runtime.batch import StreamBatch

    sizes = sorted({int(s) for s in args.sizes.split(",") if s})
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(args.model) if args.model else export_demo(args.checkpoint, sizes, Path(tmp))
        rng = np.random.default_rng(0)
        batches, inputs = {}, {}
        try:
            for b in sizes:
                sb = StreamBatch(model, backend="onnxruntime", threads=args.threads, max_batch=b)
                if sb.max_batch != b:
                    raise JamError(f"{model} has no graphs for batch {b} (has {list(sb.batch_sizes)})")
                side = sb.image_size
                ids = [sb.add_stream(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)) for _ in range(b)]
                frames = [{sid: rng.integers(0, 256, (side, side, 3), dtype=np.uint8) for sid in ids}
                          for _ in range(args.steps)]
                sb.run(frames[0])  # warm-up (and the relative reference)
                batches[b], inputs[b] = sb, frames
            samples: dict[int, list[float]] = {b: [] for b in sizes}
            ratios: dict[int, list[float]] = {b: [] for b in sizes}
            for r in range(args.rounds):
                order = sizes if r % 2 == 0 else sizes[::-1]
                this = {}
                for b in order:
                    t0 = time.perf_counter()
                    for step in inputs[b]:
                        batches[b].run(step)
                    this[b] = b * len(inputs[b]) / (time.perf_counter() - t0)
                    samples[b].append(this[b])
                for b in sizes:
                    ratios[b].append(this[b] / this[sizes[0]])
            image_size = batches[sizes[0]].image_size
        finally:
            for sb in batches.values():
                sb.close()
    rows = [{"B": b, "fps_median": statistics.median(samples[b]), "fps_min": min(samples[b]),
             "fps_max": max(samples[b]), "ratio_median": statistics.median(ratios[b]),
             "ratio_min": min(ratios[b]), "ratio_max": max(ratios[b])} for b in sizes]
    return {"model": str(args.model or "demo (exported with batch sizes)"), "image_size": image_size,
            "threads": args.threads, "rounds": args.rounds, "steps": args.steps, "machine": machine_info(),
            "rows": rows, "samples": {str(b): samples[b] for b in sizes}}


def report(result: dict) -> str:
    m = result["machine"]
    lines = [f"StreamBatch on ONNX Runtime CPU, {result['image_size']}px, {result['threads']} intra-op threads, "
             f"{m['cpu']} ({m['logical_cpus']} logical CPUs); {result['rounds']} interleaved rounds × "
             f"{result['steps']} calls", "",
             "| B (streams per call) | frames/s, median (min–max) | × B=1, median (min–max) |", "|---|---|---|"]
    for row in result["rows"]:
        lines.append(f"| {row['B']} | {row['fps_median']:.1f} ({row['fps_min']:.1f}–{row['fps_max']:.1f}) | "
                     f"{row['ratio_median']:.2f} ({row['ratio_min']:.2f}–{row['ratio_max']:.2f}) |")
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
