"""Rows/s of ``jamsdk batch`` on a real two-node Ray cluster on loopback: 1 actor (one node) vs 2 (one per node).

Starts a :class:`~jamsdk.scale.loopback.LoopbackCluster` (a ``ray start`` head and a second
``ray start`` node, 1 CPU each, token authentication on, every address on loopback), writes a job
of ``--rows`` rows (the bundled example picture and two variants of it, ``--frames``-frame cuts of
the bundled driving clip, the bundled demo model), and runs the real command
``jamsdk batch --ray ADDRESS --json`` with ``--actors 1`` and ``--actors 2`` in alternating order
(``--repeats`` rounds, fresh output folders, one untimed warm-up run first). Then
``jamsdk serve --replicas 2`` is started, one stream per replica animates a few frames, and the
service is stopped.

Reported: rows/s = rows done / the job's seconds (the JSON report's ``seconds``: from the first
actor starting to the last output written) and the 2-vs-1 ratio taken within each round; the
start-up costs: each node's ``ray start`` until the GCS lists it, the command's connect (process
start to its "connected" line: Python and Ray imports, the pre-flight checks, one probe task per
node), the whole command's wall time, and ``serve``'s start (process start to "serving") and stop.
The load average is recorded before and after every run: the 2-core machine this was written on is
shared, so read ratios within a round and compare load averages.

    python benchmarks/cluster.py                      # ~4 min on 2 busy cores
    python benchmarks/cluster.py --rows 12 --repeats 3 --json cluster.json --markdown cluster.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from _load import cpu_model_and_flags  # benchmarks/ is sys.path[0]
from _report import run_and_report

CLUSTER_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=8, help="rows in the job (default 8)")
    p.add_argument("--frames", type=int, default=12, help="driving frames per row (default 12)")
    p.add_argument("--repeats", type=int, default=2, help="rounds of (1 actor, 2 actors) (default 2)")
    p.add_argument("--json", metavar="OUT")
    p.add_argument("--markdown", metavar="OUT")
    args = p.parse_args(argv)
    for name in ("rows", "frames", "repeats"):
        if getattr(args, name) < 1:
            p.error(f"--{name}: expected a whole number ≥ 1, got {getattr(args, name)}")
    return args


def machine() -> dict[str, object]:
    cpu, flags = cpu_model_and_flags()
    import ray

    return {"cpu": cpu, "logical_cpus": os.cpu_count(), "simd_flags": [f for f in CLUSTER_FLAGS if f in flags],
            "python": platform.python_version(), "ray": ray.__version__, "platform": platform.platform()}


def make_job(work: Path, rows: int, frames: int) -> Path:
    import cv2

    from jamsdk.commands.demo import ASSETS
    from jamsdk.pictures import read_image
    from jamsdk.video import iter_frames
    from jamsdk.video_write import write_video

    picture = read_image(ASSETS / "example_source.png")
    for i, pic in enumerate([picture, picture[:, ::-1].copy(), np.ascontiguousarray(np.rot90(picture))]):
        cv2.imwrite(str(work / f"pic{i}.png"), pic[:, :, ::-1])
    clip = list(iter_frames(ASSETS / "example_driving.mp4"))
    for j in range(2):
        write_video(work / f"clip{j}.mp4", clip[j * 10: j * 10 + frames], fps=10)
    lines = [json.dumps({"source": f"pic{i % 3}.png", "driving": f"clip{i % 2}.mp4", "out": f"row{i}.mp4"})
             for i in range(rows)]
    (work / "jobs.jsonl").write_text("\n".join(lines) + "\n")
    return work / "jobs.jsonl"


def timed_command(args: list[str], env: dict, cwd: Path, marks: tuple[str, ...]) -> tuple[subprocess.Popen, dict, list]:
    """Start ``python -m jamsdk ARGS``; a thread records when each line starting with one of ``marks`` arrives."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "jamsdk", *args], env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    seen: dict[str, float] = {}
    lines: list[str] = []

    def read() -> None:
        for line in proc.stdout:
            lines.append(line.rstrip())
            for mark in marks:
                if line.startswith(mark) and mark not in seen:
                    seen[mark] = time.perf_counter() - t0

    threading.Thread(target=read, daemon=True).start()
    seen["_t0"] = t0
    return proc, seen, lines


def batch_run(cluster, jobs: Path, out: Path, actors: int) -> dict:
    load_before = os.getloadavg()[0]
    proc, seen, lines = timed_command(["batch", "--jobs", str(jobs), "--out-dir", str(out), "--actors", str(actors),
                                       "--threads", "1", "--backend", "onnxruntime", "--ray", cluster.address,
                                       "--json", str(out / "report.json")], cluster.client_env(), jobs.parent,
                                      ("connected to",))
    rc = proc.wait(timeout=1800)
    wall = time.perf_counter() - seen["_t0"]
    if rc != 0:
        raise SystemExit(f"jamsdk batch --actors {actors} exited {rc}:\n" + "\n".join(lines[-20:]))
    report = json.loads((out / "report.json").read_text())
    return {"actors": actors, "rows": report["done"], "frames": report["frames"], "job_s": report["seconds"],
            "rows_per_s": report["done"] / report["seconds"], "frames_per_s": report["frames_per_s"],
            "nodes_used": len(report["nodes"]), "wall_s": wall, "connect_s": seen.get("connected to"),
            "load1_before": load_before, "load1_after": os.getloadavg()[0]}


def serve_run(cluster, work: Path) -> dict:
    from jamsdk.commands.demo import ASSETS
    from jamsdk.pictures import read_image
    from jamsdk.scale.loopback import free_port
    from jamsdk.serve.client import StreamClient
    from jamsdk.video import iter_frames

    port = free_port()
    proc, seen, lines = timed_command(["serve", "--ray", cluster.address, "--replicas", "2", "--port", str(port),
                                       "--threads", "1", "--backend", "onnxruntime"], cluster.client_env(), work,
                                      ("serving",))
    try:
        while "serving" not in seen:
            if proc.poll() is not None:
                raise SystemExit("jamsdk serve exited early:\n" + "\n".join(lines[-20:]))
            time.sleep(0.1)
        picture = read_image(ASSETS / "example_source.png")
        frames = list(iter_frames(ASSETS / "example_driving.mp4", max_frames=5))
        streams = [StreamClient(f"ws://127.0.0.1:{port}/stream", source=picture, timeout=120) for _ in range(2)]
        t0 = time.perf_counter()
        for frame in frames:
            for s in streams:
                s.animate(frame)
        stream_s = time.perf_counter() - t0
        nodes = len({s.node for s in streams})
        for s in streams:
            s.close()
        t1 = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=120)
        return {"start_s": seen["serving"], "stop_s": time.perf_counter() - t1, "exit": rc, "stream_nodes": nodes,
                "frames_per_s_two_streams": 2 * len(frames) / stream_s}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def run(args: argparse.Namespace) -> dict:
    from jamsdk.scale.loopback import LoopbackCluster

    result: dict = {"rows_in_job": args.rows, "frames_per_row": args.frames, "machine": machine(), "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        jobs = make_job(work, args.rows, args.frames)
        load = os.getloadavg()[0]
        with LoopbackCluster(nodes=2, cpus_per_node=1) as cluster:
            result["start"] = {"head_s": cluster.startup_s[0], "node_s": cluster.startup_s[1], "load1_before": load}
            print(f"cluster up: head {cluster.startup_s[0]:.1f} s, node {cluster.startup_s[1]:.1f} s", file=sys.stderr)
            batch_run(cluster, jobs, work / "warmup", 2)  # untimed: first imports, worker start, model cache
            for r in range(args.repeats):
                for actors in ((1, 2) if r % 2 == 0 else (2, 1)):
                    run_ = batch_run(cluster, jobs, work / f"out{r}-{actors}", actors)
                    run_["round"] = r
                    result["runs"].append(run_)
                    print(f"round {r}, {actors} actor(s): {run_['rows_per_s']:.3f} rows/s on {run_['nodes_used']} "
                          f"node(s), load {run_['load1_before']:.1f}", file=sys.stderr)
            result["serve"] = serve_run(cluster, work)
    ratios = []
    for r in range(args.repeats):
        by = {x["actors"]: x for x in result["runs"] if x["round"] == r}
        ratios.append(by[2]["rows_per_s"] / by[1]["rows_per_s"])
    result["ratios"] = ratios
    return result


def report(result: dict) -> str:
    m, runs = result["machine"], result["runs"]
    lines = [f"jamsdk batch on a two-node loopback Ray cluster (1 CPU per node, Ray {m['ray']}): "
             f"{result['rows_in_job']} rows × {result['frames_per_row']} frames, demo model (128px), 1 ONNX Runtime "
             f"thread per actor; {m['cpu']} ({m['logical_cpus']} logical CPUs; flags: {' '.join(m['simd_flags'])})", "",
             "| actors (nodes used) | rows/s, median (min–max) | job s | command wall s | connect s "
             "| load average (1 min) |",
             "|---|---|---|---|---|---|"]
    for actors in (1, 2):
        rs = [r for r in runs if r["actors"] == actors]
        rps = [r["rows_per_s"] for r in rs]
        loads = [r["load1_before"] for r in rs] + [r["load1_after"] for r in rs]
        lines.append(f"| {actors} ({'/'.join(str(r['nodes_used']) for r in rs)}) | {statistics.median(rps):.3f} "
                     f"({min(rps):.3f}–{max(rps):.3f}) | {statistics.median(r['job_s'] for r in rs):.1f} | "
                     f"{statistics.median(r['wall_s'] for r in rs):.1f} | "
                     f"{statistics.median(r['connect_s'] for r in rs):.1f} | {min(loads):.1f}–{max(loads):.1f} |")
    ratios = result["ratios"]
    s, sv = result["start"], result["serve"]
    lines += ["", f"2 actors (2 nodes) ÷ 1 actor, within each round: {', '.join(f'{x:.2f}' for x in ratios)} "
                  f"(median {statistics.median(ratios):.2f})",
              f"start-up: head {s['head_s']:.1f} s, second node {s['node_s']:.1f} s (load {s['load1_before']:.1f}); "
              f"jamsdk serve --replicas 2 to 'serving' {sv['start_s']:.1f} s, stop {sv['stop_s']:.1f} s; "
              f"two streams on {sv['stream_nodes']} node(s): {sv['frames_per_s_two_streams']:.1f} frames/s together"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return 0 if run_and_report(lambda: run(args), report, args.json, args.markdown) is not None else 2


if __name__ == "__main__":
    raise SystemExit(main())
