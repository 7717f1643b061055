"""Frames/s of ``jamsdk batch`` jobs on a local Ray: backends, precisions and frames per stage call, one run.

The job: ``--rows`` rows (default 2), each animating the bundled example picture (flipped for odd
rows) with a ``--frames``-frame clip (default 80: the bundled 40-frame driving clip played forwards
and back, 8 s at 10 fps), through ``--model`` (default: the demo model exported with ``--batch-sizes
4,8``; for the CPU throughput tables jam-256 from ``jam256_folder.py``). Every contender runs the
whole job as ``jamsdk batch`` does (one actor, ``--threads``, outputs encoded and written): each
``BACKEND:PRECISION`` of ``--variants`` (``auto:auto`` is the command's defaults; the summary names
what they resolved to) at each frames-per-call size of ``--sizes`` (``max_batch``). One untimed
warm-up job per variant first (it fills OpenVINO's compiled-model cache, as a user's first job
would); then ``--repeats`` passes over all contenders, the order reversed every other pass.
Frames/s = frames written / wall time of the job (actor start, model loading, decoding, encoding
and writing included). The CPU, its flags and the load average are printed with the table.

    python benchmarks/batch_job.py                                   # demo model, ONNX Runtime FP32
    python benchmarks/batch_job.py --model DIR --variants onnxruntime:fp32,openvino:fp32,openvino:int8,auto:auto \\
        --sizes 1,4,8 --threads 2 --json job.json --markdown job.md
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


from _cost import machine_info  # benchmarks/ is sys.path[0]
from _report import require_at_least, write_reports


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", metavar="DIR", help="model folder with batched graphs (default: export the demo)")
    p.add_argument("--rows", type=int, default=2, help="rows in the job (default 2)")
    p.add_argument("--frames", type=int, default=80, help="driving frames per row (default 80)")
    p.add_argument("--variants", default="onnxruntime:fp32",
                   help="BACKEND:PRECISION contenders, comma-separated; auto:auto = jamsdk batch's defaults "
                        "(default onnxruntime:fp32)")
    p.add_argument("--sizes", default="4",
                   help="frames per stage call (max_batch), comma-separated; auto (jamsdk batch's default: 1 on "
                        "the CPU backends) and tune (timed in each actor) too (default 4)")
    p.add_argument("--threads", type=int, default=2, help="ONNX Runtime / OpenVINO threads in the actor (default 2)")
    p.add_argument("--repeats", type=int, default=1, help="passes over all contenders (default 1)")
    p.add_argument("--json", metavar="OUT")
    p.add_argument("--markdown", metavar="OUT")
    args = p.parse_args(argv)
    require_at_least(p, args, 1, "rows", "frames", "threads", "repeats")
    args.variants = [tuple(v.split(":", 1)) for v in args.variants.split(",") if v]
    if any(len(v) != 2 for v in args.variants):
        p.error("--variants: expected BACKEND:PRECISION pairs such as openvino:int8")
    given = {s.strip() for s in args.sizes.split(",") if s.strip()}
    try:
        args.sizes = sorted(int(s) for s in given - {"auto", "tune"}) + [w for w in ("auto", "tune") if w in given]
    except ValueError:
        p.error(f"--sizes: expected whole numbers, auto or tune, got {args.sizes!r}")
    return args


def make_job(work: Path, rows: int, frames: int, model: str | None) -> tuple[Path, Path]:
    """The model folder (the demo exported with batch sizes 4 and 8 unless ``model``) and the JOBS file."""
    import cv2

    from jamsdk.commands.demo import ASSETS
    from jamsdk.pictures import read_image
    from jamsdk.video import iter_frames
    from jamsdk.video_write import write_video

    if model:
        folder = Path(model)
    else:
        from jamsdk.export.pipeline import export_checkpoint

        folder = work / "model"
        export_checkpoint(ASSETS / "demo.pt", folder, precision="fp32", batch_sizes=(4, 8), log=lambda _l: None)
    picture = read_image(ASSETS / "example_source.png")
    for i, pic in enumerate((picture, picture[:, ::-1].copy())):
        cv2.imwrite(str(work / f"pic{i}.png"), pic[:, :, ::-1])
    clip = list(iter_frames(ASSETS / "example_driving.mp4"))
    pingpong = clip + clip[-2:0:-1]
    write_video(work / "clip.mp4", [pingpong[t % len(pingpong)] for t in range(frames)], fps=10)
    lines = [json.dumps({"source": f"pic{i % 2}.png", "driving": "clip.mp4", "out": f"row{i}.mp4"}) for i in range(rows)]
    (work / "jobs.jsonl").write_text("\n".join(lines) + "\n")
    return folder, work / "jobs.jsonl"


def run(args: argparse.Namespace) -> dict:
    from jamsdk.scale.connect import connect
    from jamsdk.scale.offline import run_job

    keys = [(v, b) for v in args.variants for b in args.sizes]
    label = {k: f"{k[0][0]}:{k[0][1]} B={k[1]}" for k in keys}
    load = [os.getloadavg()[0]]
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model, jobs = make_job(work, args.rows, args.frames, args.model)
        ray = connect(None, num_cpus=2).ray
        try:
            for n, (backend, precision) in enumerate(args.variants):  # warm-up: cold imports, OpenVINO's cache
                run_job(jobs, work / f"warmup{n}", model, actors=1, threads=args.threads, backend=backend,
                        precision=precision, max_batch=args.sizes[0], cpus_per_actor=2)
            order = []
            for r in range(args.repeats):
                order += keys if r % 2 == 0 else keys[::-1]
            for k, key in enumerate(order):
                (backend, precision), b = key
                t0 = time.perf_counter()
                summary = run_job(jobs, work / f"out{k}", model, actors=1, threads=args.threads, backend=backend,
                                  precision=precision, max_batch=b, cpus_per_actor=2)
                wall = time.perf_counter() - t0
                if summary.failed:
                    raise SystemExit(f"{label[key]}: {summary.failed} rows failed: {summary.results}")
                busy = sum(r["seconds"] for r in summary.results)
                load.append(os.getloadavg()[0])
                runs.append({"key": label[key], "ran_on": summary.runtimes, "frames": summary.frames,
                             "seconds": wall, "frames_per_s": summary.frames / wall, "rows_busy_s": busy})
                print(f"{label[key]} ({', '.join(summary.runtimes)}): {summary.frames} frames in {wall:.1f} s "
                      f"({summary.frames / wall:.2f} frames/s), load {load[-1]:.1f}", file=sys.stderr, flush=True)
        finally:
            ray.shutdown()
    table = []
    # today's default before #32: the first variant at the largest size
    fixed = [b for b in args.sizes if isinstance(b, int)] or args.sizes
    today = label[(args.variants[0], fixed[-1])]
    today_fps = statistics.median(r["frames_per_s"] for r in runs if r["key"] == today)
    for key in keys:
        mine = [r for r in runs if r["key"] == label[key]]
        fps = [r["frames_per_s"] for r in mine]
        table.append({"contender": label[key], "ran_on": mine[0]["ran_on"], "fps_median": statistics.median(fps),
                      "fps_min": min(fps), "fps_max": max(fps), "over_today_default": statistics.median(fps) / today_fps,
                      "wall_s_median": statistics.median(r["seconds"] for r in mine),
                      "rows_busy_s_median": statistics.median(r["rows_busy_s"] for r in mine)})
    machine = machine_info()
    from jamsdk.runtime.sysinfo import cpu_flags

    machine["cpu_flags"] = cpu_flags()
    return {"model": str(args.model or "demo (exported with batch sizes 4, 8)"), "rows_in_job": args.rows,
            "frames_per_row": args.frames, "threads": args.threads, "repeats": args.repeats, "today_default": today,
            "machine": machine, "load_1min": load, "runs": runs, "table": table}


def report(result: dict) -> str:
    m, load = result["machine"], result["load_1min"]
    lines = [f"jamsdk batch on a local Ray, {result['model']}: {result['rows_in_job']} rows × "
             f"{result['frames_per_row']} frames, 1 actor, {result['threads']} threads; {m['cpu']} "
             f"({m['logical_cpus']} logical CPUs, flags {' '.join(m.get('cpu_flags') or []) or '-'}); "
             f"{result['repeats']} pass(es); 1-min load {load[0]:.1f} → {load[-1]:.1f} (max {max(load):.1f})", "",
             f"| contender (B = frames per call) | ran on | frames/s, median (min–max) | × {result['today_default']} "
             "| wall s | rows' busy s |", "|---|---|---|---:|---:|---:|"]
    for row in result["table"]:
        lines.append(f"| {row['contender']} | {', '.join(row['ran_on'])} | {row['fps_median']:.2f} "
                     f"({row['fps_min']:.2f}–{row['fps_max']:.2f}) | {row['over_today_default']:.2f} | "
                     f"{row['wall_s_median']:.1f} | {row['rows_busy_s_median']:.1f} |")
    lines += ["", "wall − rows' busy time = actor start-up, model loading (OpenVINO: from its cache) and Ray scheduling."]
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
