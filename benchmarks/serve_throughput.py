"""``jamsdk serve``: aggregate frames/s of N streams per backend and precision, one run, interleaved.

One local Ray; every ``BACKEND:PRECISION[:MAX_BATCH]`` of ``--variants`` is deployed at once as its own Serve
application (one replica each, on ``127.0.0.1`` under its own route prefix), so the contenders
share the machine's state; only the one being measured gets frames. ``auto:auto`` is ``jamsdk
serve``'s defaults (backend and precision auto; the replica's ``/health`` says what they resolved
to). A phase: ``--streams`` clients (:class:`jamsdk.serve.client.StreamClient`, the bundled example
picture flipped per stream, frames of the bundled driving clip as PNG) each sending its next frame
once the previous one is answered, for ``--seconds``; frames/s over all streams and the per-frame
latency. ``--rounds`` rounds of one phase per contender, the order reversed every other round;
reported per round and as the median, with the ratio to the first contender taken within each
round. The CPU, its flags and the load average are printed with the table.

    python benchmarks/serve_throughput.py --model DIR --variants onnxruntime:fp32:all,auto:auto:auto --streams 4 \\
        --seconds 30 --rounds 4 --threads 2 --json serve.json --markdown serve.md
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from _report import require_at_least, run_and_report  # benchmarks/ is sys.path[0]
from serve_load import free_port

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="demo", help="model folder or 'demo' (default)")
    p.add_argument("--variants", default="onnxruntime:fp32:all,auto:auto:auto",
                   help="BACKEND:PRECISION[:MAX_BATCH] contenders, the first is the reference; MAX_BATCH is N, auto "
                        "(jamsdk serve's default: 1 on the CPU backends), tune (timed as the replica starts) or all "
                        "(every exported size: the default before); default onnxruntime:fp32:all,auto:auto:auto")
    p.add_argument("--streams", type=int, default=4, help="streams per phase (default 4)")
    p.add_argument("--seconds", type=float, default=30.0, help="length of a phase (default 30)")
    p.add_argument("--rounds", type=int, default=4, help="rounds of one phase per contender (default 4)")
    p.add_argument("--threads", type=int, default=2, help="ONNX Runtime / OpenVINO threads per replica (default 2)")
    p.add_argument("--json", metavar="OUT")
    p.add_argument("--markdown", metavar="OUT")
    args = p.parse_args(argv)
    require_at_least(p, args, 1, "streams", "rounds", "threads")
    if args.seconds <= 0:
        p.error(f"--seconds: expected > 0, got {args.seconds}")
    variants = [v.split(":") for v in args.variants.split(",") if v]
    if len(variants) < 2 or any(len(v) not in (2, 3) for v in variants):
        p.error("--variants: expected two or more BACKEND:PRECISION[:MAX_BATCH] such as onnxruntime:fp32:all,auto:auto:auto")
    args.variants = [(v[0], v[1], v[2] if len(v) == 3 else "auto") for v in variants]
    for v in args.variants:
        if not (v[2] in ("auto", "tune", "all") or v[2].isdigit() and int(v[2]) >= 1):
            p.error(f"--variants: MAX_BATCH is N, auto, tune or all, got {v[2]!r}")
    return args


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=60) as r:
        return json.loads(r.read())


def phase(url: str, sources: list[bytes], frames: list[bytes], seconds: float) -> dict[str, Any]:
    """``len(sources)`` streams in lock-step for ``seconds``: frames/s over all of them, latency, errors."""
    from jamsdk.serve.client import StreamClient

    clients = [StreamClient(url, source=src, timeout=300) for src in sources]
    latencies: list[list[float]] = [[] for _ in clients]
    errors: list[str] = []
    stop = threading.Event()

    def drive(i: int) -> None:
        k = i * 3
        while not stop.is_set():
            t0 = time.perf_counter()
            try:
                clients[i].animate(frames[k % len(frames)])
            except Exception as exc:  # noqa: BLE001 - counted
                errors.append(f"{type(exc).__name__}: {exc}")
                return
            latencies[i].append(time.perf_counter() - t0)
            k += 1

    for c in clients:  # one answered frame each before the clock starts (relative-mode reference)
        c.animate(frames[0])
    threads = [threading.Thread(target=drive, args=(i,), daemon=True) for i in range(len(clients))]
    load0, t0 = os.getloadavg()[0], time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(600)
    elapsed = time.perf_counter() - t0
    for c in clients:
        c.close()
    lat = sorted(x for per in latencies for x in per)
    return {"frames": len(lat), "seconds": round(elapsed, 2), "frames_per_s": len(lat) / elapsed,
            "p50_ms": 1e3 * lat[len(lat) // 2] if lat else None, "errors": errors[:3], "error_count": len(errors),
            "loadavg_1m": [round(load0, 2), round(os.getloadavg()[0], 2)]}


def run(args: argparse.Namespace) -> dict[str, Any]:
    import ray
    from ray import serve

    from jamsdk.bundled import resolve_model
    from jamsdk.pictures import read_image
    from jamsdk.runtime.sysinfo import cpu_flags, cpu_model
    from jamsdk.serve import app
    from jamsdk.serve.protocol import ROUTE, Limits, encode_png
    from jamsdk.video import read_frames

    model = resolve_model(args.model)
    picture = read_image(ROOT / "jamsdk" / "assets" / "example_source.png")
    sources = [encode_png(picture[:, ::-1].copy() if i % 2 else picture) for i in range(args.streams)]
    frames = [encode_png(f) for f in read_frames(ROOT / "jamsdk" / "assets" / "example_driving.mp4", max_frames=40)]
    names = [f"{b}:{p}:{m}" for b, p, m in args.variants]
    ray.init(num_cpus=len(args.variants), include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    port = free_port()
    address = f"127.0.0.1:{port}"
    try:
        serve.start(proxy_location="HeadOnly", http_options={"host": "127.0.0.1", "port": port})
        for i, (backend, precision, most) in enumerate(args.variants):
            max_batch = None if most == "all" else most if most in ("auto", "tune") else int(most)
            serve.run(app.build_app(str(model), limits=Limits(), backend=backend, precision=precision,
                                    threads=args.threads, max_batch=max_batch), name=f"v{i}", route_prefix=f"/v{i}")
        ran_on = {}
        for i, name in enumerate(names):
            h = get_json(f"http://{address}/v{i}/health")
            ran_on[name] = f"{h['backend']} {h.get('precision', '?')}, batch sizes {h['batch_sizes']}"
            phase(f"ws://{address}/v{i}{ROUTE}", sources[:1], frames, 3.0)  # warm-up
        rounds = []
        order = list(range(len(names)))
        for r in range(args.rounds):
            got = {}
            for i in order if r % 2 == 0 else order[::-1]:
                got[names[i]] = phase(f"ws://{address}/v{i}{ROUTE}", sources, frames, args.seconds)
            ref = got[names[0]]["frames_per_s"]
            rounds.append({"phases": got, "over_first": {n: got[n]["frames_per_s"] / ref for n in names}})
            print(f"round {r + 1}: " + ", ".join(f"{n} {got[n]['frames_per_s']:.2f} f/s" for n in names),
                  file=sys.stderr, flush=True)
    finally:
        serve.shutdown()
        ray.shutdown()
    return {"machine": {"cpu": cpu_model(), "cpu_flags": cpu_flags(), "logical_cpus": os.cpu_count()},
            "model": str(model), "streams": args.streams, "seconds": args.seconds, "threads": args.threads,
            "variants": names, "ran_on": ran_on, "rounds": rounds,
            "median": {n: {"frames_per_s": statistics.median(r["phases"][n]["frames_per_s"] for r in rounds),
                           "over_first": statistics.median(r["over_first"][n] for r in rounds)} for n in names}}


def render(res: dict[str, Any]) -> str:
    m, names = res["machine"], res["variants"]
    loads = [x for r in res["rounds"] for p in r["phases"].values() for x in p["loadavg_1m"]]
    lines = [f"# jamsdk serve: {res['streams']} streams in lock-step, {res['seconds']:g} s per phase, {res['model']}",
             "", f"CPU: {m['cpu']} ({m['logical_cpus']} logical), flags {' '.join(m['cpu_flags']) or '-'}; "
             f"{res['threads']} threads per replica; 1-min load {min(loads):.1f}–{max(loads):.1f}", "",
             "| contender | ran on | " + " | ".join(f"round {i + 1} f/s" for i in range(len(res["rounds"])))
             + f" | median f/s | × {names[0]} (per round, median) | errors |",
             "|---|---|" + "---:|" * len(res["rounds"]) + "---:|---:|---:|"]
    for n in names:
        per = [r["phases"][n] for r in res["rounds"]]
        lines.append(f"| {n} | {res['ran_on'][n]} | " + " | ".join(f"{p['frames_per_s']:.2f}" for p in per)
                     + f" | {res['median'][n]['frames_per_s']:.2f} | {res['median'][n]['over_first']:.2f} | "
                     f"{sum(p['error_count'] for p in per)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return 0 if run_and_report(lambda: run(args), render, args.json, args.markdown) is not None else 2


if __name__ == "__main__":
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    raise SystemExit(main())
