"""Throughput of ``jamsdk batch`` for one job with 1 vs 2 actors, on a local Ray.

The job: ``--rows`` rows (default 20) animating the bundled example picture and 2 other pictures
(so the per-actor picture cache is exercised) with ``--frames``-frame cuts of the bundled driving
video, through the demo model exported with ``--batch-sizes`` (so each actor batches frames of a
clip). Runs alternate 1, 2, 2, 1, … actors (``--repeats`` each), each into a fresh output folder,
in one Ray instance after one untimed warm-up run (Ray's start-up is not timed; each run's actor
start-up and model loading is).
Frames/s = frames written / wall time of the run.

    python benchmarks/batch_job.py                      # ~3 min on 2 busy cores
    python benchmarks/batch_job.py --repeats 3 --markdown job.md --json job.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _cost import machine_info  # benchmarks/ is sys.path[0]
from _report import write_reports


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=20, help="rows in the job (default 20)")
    p.add_argument("--frames", type=int, default=12, help="driving frames per row (default 12)")
    p.add_argument("--actors", default="1,2", help="actor counts to compare (default 1,2)")
    p.add_argument("--repeats", type=int, default=2, help="runs per actor count (default 2)")
    p.add_argument("--batch-size", type=int, default=4, help="frames per stage call in an actor (default 4)")
    p.add_argument("--json", metavar="OUT")
    p.add_argument("--markdown", metavar="OUT")
    return p.parse_args(argv)


def make_job(work: Path, rows: int, frames: int, batch: int) -> tuple[Path, Path]:
    import cv2

    from jamsdk.commands.demo import ASSETS
    from jamsdk.export.pipeline import export_checkpoint
    from jamsdk.pictures import read_image
    from jamsdk.video import iter_frames
    from jamsdk.video_write import write_video

    model = work / "model"
    export_checkpoint(ASSETS / "demo.pt", model, precision="fp32", batch_sizes=(batch,), log=lambda _l: None)
    picture = read_image(ASSETS / "example_source.png")
    pictures = [picture, picture[:, ::-1].copy(), np.ascontiguousarray(np.rot90(picture))]
    for i, pic in enumerate(pictures):
        cv2.imwrite(str(work / f"pic{i}.png"), pic[:, :, ::-1])
    clip = list(iter_frames(ASSETS / "example_driving.mp4"))
    for j in range(2):  # two cuts of the driving video
        write_video(work / f"clip{j}.mp4", clip[j * 10: j * 10 + frames], fps=10)
    lines = [json.dumps({"source": f"pic{i % 3}.png", "driving": f"clip{i % 2}.mp4", "out": f"row{i}.mp4"})
             for i in range(rows)]
    (work / "jobs.jsonl").write_text("\n".join(lines) + "\n")
    return model, work / "jobs.jsonl"


def run(args: argparse.Namespace) -> dict:
    from jamsdk.scale.connect import connect
    from jamsdk.scale.offline import run_job

    counts = [int(a) for a in args.actors.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model, jobs = make_job(work, args.rows, args.frames, args.batch_size)
        ray = connect(None, num_cpus=max(counts)).ray
        # Untimed warm-up: the first actors of a fresh Ray pay for cold imports and worker start-up.
        run_job(jobs, work / "warmup", model, actors=max(counts), threads=1, backend="onnxruntime")
        runs = []
        order = []
        for r in range(args.repeats):
            order += counts if r % 2 == 0 else counts[::-1]
        for k, actors in enumerate(order):
            t0 = time.perf_counter()
            summary = run_job(jobs, work / f"out{k}", model, actors=actors, threads=1, backend="onnxruntime")
            wall = time.perf_counter() - t0
            if summary.failed:
                raise SystemExit(f"run {k}: {summary.failed} rows failed: {summary.results}")
            busy: dict[int, float] = {}  # seconds each actor spent animating rows (reading, model, writing)
            for r in summary.results:
                busy[r["pid"]] = busy.get(r["pid"], 0.0) + r["seconds"]
            runs.append({"actors": actors, "frames": summary.frames, "seconds": wall,
                         "frames_per_s": summary.frames / wall, "busy_s": sorted(busy.values())})
            print(f"{actors} actor(s): {summary.frames} frames in {wall:.1f} s; rows busy "
                  f"{', '.join(f'{b:.1f}' for b in sorted(busy.values()))} s per actor", file=sys.stderr)
        ray.shutdown()
    rows = []
    for a in counts:
        fps = [r["frames_per_s"] for r in runs if r["actors"] == a]
        busy = [max(r["busy_s"]) for r in runs if r["actors"] == a]
        walls = [r["seconds"] for r in runs if r["actors"] == a]
        rows.append({"actors": a, "fps_median": statistics.median(fps), "fps_min": min(fps), "fps_max": max(fps),
                     "wall_s_median": statistics.median(walls), "busiest_actor_s_median": statistics.median(busy)})
    base = rows[0]["fps_median"]
    for row in rows:
        row["ratio"] = row["fps_median"] / base
    return {"rows_in_job": args.rows, "frames_per_row": args.frames, "batch_size": args.batch_size,
            "machine": machine_info(), "runs": runs, "table": rows}


def report(result: dict) -> str:
    m = result["machine"]
    lines = [f"jamsdk batch on a local Ray: {result['rows_in_job']} rows × {result['frames_per_row']} frames, demo model "
             f"(128px, clip frames batched {result['batch_size']} per call), 1 ONNX Runtime thread and 1 CPU per actor; "
             f"{m['cpu']} ({m['logical_cpus']} logical CPUs)", "",
             "| actors | frames/s, median (min–max) | × 1 actor | wall s | busiest actor's row time s |",
             "|---|---|---|---|---|"]
    for row in result["table"]:
        lines.append(f"| {row['actors']} | {row['fps_median']:.1f} ({row['fps_min']:.1f}–{row['fps_max']:.1f}) | "
                     f"{row['ratio']:.2f} | {row['wall_s_median']:.1f} | {row['busiest_actor_s_median']:.1f} |")
    lines += ["", "wall − busiest actor's row time = actor start-up, model loading and Ray scheduling."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    text = report(result)
    print(text)
    write_reports(result, text, args.json, args.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
