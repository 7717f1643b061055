"""``jamsdk serve`` under load: N good streams alone, then with one hostile client beside them.

One local Ray, one replica on 127.0.0.1 (no token: loopback). Each round runs two phases of
``--seconds`` each, in alternating order (alone, attack; then attack, alone; …) so a slow spell of
the machine hits both:

* **good streams**: ``--streams`` clients (:class:`jamsdk.serve.client.StreamClient`), each sending
  the next frame once the previous one is answered (pre-encoded PNGs of the bundled driving clip);
  frames/s over all of them, latency p50/p99 per frame, errors.
* **hostile client** (attack phases only): one WebSocket that cycles, without waiting for answers,
  through a valid 1.2 MB PNG declaring 20000×20000 pixels (all black: 1.2 GB once decoded), a frame
  with a PNG signature and random bytes, a 5 MB message (over the 4 MiB limit), a junk text message,
  and a burst of 20 valid frames (a flood); it reconnects if the server closes it, and when a
  handshake is refused (the service's penalty for a client over its limits) it tries again after
  ``--retry-pause`` seconds (0: at once, hammering the handshake).
* ``--attacks heavy``: a valid but huge frame instead, the probe's S13: a 4096×4096 PNG of a
  horizontal gradient (58,812 bytes; about half a second of the replica's CPU to decode and shrink),
  with ``--pace lockstep`` sent each time the previous one is answered. ``--hostile-clients N``
  runs N such clients at once (the probe used 2).

The hostile client runs in its own process at the replica's CPU priority (Ray starts its workers at
nice 15): on one shared machine an attacker at a higher priority would take the cores by priority
alone, which is not what is measured here (a real attacker sends from its own machine). It also
connects from its own address, ``--hostile-address`` (default 127.0.0.2: every 127.x.y.z is this
machine), as a client elsewhere would: the service penalises an address that breaks its limits,
and the good streams, which open from 127.0.0.1 at the start of every phase, are not that address. The
replica's resident memory is sampled from ``/proc/<pid>`` every 0.25 s (its pid from
``/health``). Reported per round: good frames/s attack ÷ alone (target ≥ 0.7), the replica's peak
RSS (target < 1 GB), good-stream errors (target 0). The machine's load average is printed beside
the figures. The replica runs the jamsdk installed in this environment (``/health`` tells whether it
has the hardened request path).

    python benchmarks/serve_load.py                                  # 4 streams, 2 rounds × 2 × 20 s
    python benchmarks/serve_load.py --streams 4 --seconds 30 --rounds 3 --json serve_load.json --markdown serve_load.md
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from _load import (  # noqa: E402
    black_png, cpu_line, cpu_seconds, gradient_png, listening_pid, loadavg, niceness, percentile, rss_bytes,
)
from _report import require_at_least, run_and_report

ROOT = Path(__file__).resolve().parents[1]
ATTACKS = ("bomb", "malformed", "oversize", "text", "flood", "heavy")
DEFAULT_ATTACKS = ATTACKS[:5]  # heavy is its own experiment (--attacks heavy)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="demo", help="model folder or 'demo' (default)")
    p.add_argument("--streams", type=int, default=4, help="good streams (default 4)")
    p.add_argument("--seconds", type=float, default=20.0, help="length of each phase (default 20)")
    p.add_argument("--rounds", type=int, default=2, help="rounds of (alone, attack) (default 2)")
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads in the replica (default 1)")
    p.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray (default 2)")
    p.add_argument("--attacks", default=",".join(DEFAULT_ATTACKS),
                   help=f"what the hostile client sends, comma-separated, of {','.join(ATTACKS)} (default "
                        f"{','.join(DEFAULT_ATTACKS)})")
    p.add_argument("--hostile-clients", type=int, default=1, metavar="N",
                   help="hostile clients at once, each in its own process (default 1)")
    p.add_argument("--pace", choices=("flood", "lockstep"), default="flood",
                   help="flood: the hostile client never waits for answers (default); lockstep: it sends the next "
                        "message once the previous one is answered, as the probe's client did")
    p.add_argument("--retry-pause", type=float, default=0.5, metavar="S",
                   help="the hostile client's pause after a refused handshake (default 0.5; 0: none)")
    p.add_argument("--hostile-address", default="127.0.0.2", metavar="IP",
                   help="the loopback address the hostile client connects from (default 127.0.0.2)")
    p.add_argument("--no-proxy-guard", action="store_true",
                   help="leave jamsdk's guard out of Serve's proxy (penalised clients are then refused by the replica)")
    p.add_argument("--json", metavar="OUT")
    p.add_argument("--markdown", metavar="OUT")
    args = p.parse_args(argv)
    require_at_least(p, args, 1, "streams", "rounds", "threads", "cpus", "hostile_clients")
    if args.retry_pause < 0:
        p.error(f"--retry-pause: expected ≥ 0, got {args.retry_pause}")
    if args.seconds <= 0:
        p.error(f"--seconds: expected > 0, got {args.seconds}")
    args.attacks = tuple(a.strip() for a in args.attacks.split(",") if a.strip())
    unknown = [a for a in args.attacks if a not in ATTACKS]
    if unknown or not args.attacks:
        p.error(f"--attacks: expected some of {','.join(ATTACKS)}, got {unknown or 'none'}")
    return args


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def health(address: str) -> dict:
    with urllib.request.urlopen(f"http://{address}/health", timeout=30) as r:
        return json.loads(r.read())


def good_stream(url: str, source: bytes, frames: list[bytes], ready: threading.Barrier, go: threading.Event,
                stop: threading.Event, tally: Tally) -> None:
    from jamsdk.serve.client import StreamClient

    try:
        client = StreamClient(url, source=source, timeout=120)
    except Exception as exc:  # noqa: BLE001 - counted, like any failure of a good stream
        tally.errors.append(f"open: {exc}")
        ready.wait()
        return
    try:
        ready.wait()
        go.wait()
        i = 0
        while not stop.is_set():
            t0 = time.perf_counter()
            try:
                client.animate(frames[i % len(frames)])
                tally.latencies.append(time.perf_counter() - t0)
            except Exception as exc:  # noqa: BLE001
                tally.errors.append(f"{type(exc).__name__}: {exc}")
                if "closed" in str(exc):
                    return
            i += 1
    finally:
        client.close()


def hostile_process(url: str, source: bytes, frame: bytes, bomb: bytes, attacks: tuple, pace: str, nice: int,  # noqa: ANN001
                    stop, out, retry_pause: float = 0.5, address: str = "127.0.0.2", heavy: bytes = b"") -> None:
    """The hostile client in its own process (its CPU and GIL are the attacker's, not the good clients'),
    at the replica's CPU priority: on one shared machine it must not win the cores by priority alone
    (a real attacker sends from its own machine)."""
    if nice > os.nice(0):
        os.nice(nice - os.nice(0))
    counts: dict[str, int] = {}
    hostile(url, source, frame, bomb, attacks, pace, stop, counts, retry_pause, address, heavy)
    out.put(counts)


def hostile(url: str, source: bytes, frame: bytes, bomb: bytes, attacks: tuple, pace: str, stop,  # noqa: ANN001
            counts: dict, retry_pause: float = 0.5, address: str = "127.0.0.2", heavy: bytes = b"") -> None:
    """One client that never waits for answers; a reader thread drains and counts what comes back."""
    import websockets.sync.client as ws_client

    rng = np.random.default_rng(1)
    kinds = {"bomb": [("bomb_20000x20000", bomb)],
             "malformed": [("malformed", b"\x89PNG\r\n\x1a\n" + rng.bytes(50_000))],
             "oversize": [("over_4mib", rng.bytes(5 << 20))], "text": [("junk_text", "x" * 65536)],
             "flood": [("flood_frame", frame)] * (20 if pace == "flood" else 1),
             "heavy": [("heavy_4096x4096", heavy)]}
    cycle = [item for name in attacks for item in kinds[name]]
    while not stop.is_set():
        try:
            # websockets passes source_address on to socket.create_connection
            # (no permessage-deflate: it would spend the attacker's CPU, not the server's)
            ws = ws_client.connect(url, max_size=None, open_timeout=60, compression=None,
                                   source_address=(address, 0)).__enter__()
        except Exception:  # noqa: BLE001 - the service may be busy: try again
            counts["connect_failed"] = counts.get("connect_failed", 0) + 1
            time.sleep(retry_pause)
            continue

        def drain() -> None:
            try:
                while True:
                    reply = ws.recv(timeout=120)
                    kind = "replies_frames" if isinstance(reply, bytes) else "replies_errors"
                    counts[kind] = counts.get(kind, 0) + 1
            except Exception:  # noqa: BLE001 - closed
                pass

        try:
            ws.send(source)
            if pace == "flood":
                reader = threading.Thread(target=drain, daemon=True)
                reader.start()
            else:
                ws.recv(timeout=120)  # ready
            while not stop.is_set():
                for kind, payload in cycle:
                    if stop.is_set():
                        break
                    ws.send(payload)
                    counts[kind] = counts.get(kind, 0) + 1
                    if pace == "lockstep":
                        reply = ws.recv(timeout=300)
                        key = "replies_frames" if isinstance(reply, bytes) else "replies_errors"
                        counts[key] = counts.get(key, 0) + 1
                if pace == "flood":
                    time.sleep(0.01)
        except Exception:  # noqa: BLE001 - the server closed it: reconnect
            counts["reconnects"] = counts.get("reconnects", 0) + 1
        finally:
            try:
                ws.close()
            except Exception:  # noqa: BLE001
                pass


def phase(address: str, n: int, seconds: float, attack: bool, source: bytes, frames: list[bytes], bomb: bytes,
          replica_pid: int, proxy_pid: int | None = None, attacks: tuple = DEFAULT_ATTACKS, pace: str = "flood",
          retry_pause: float = 0.5, hostile_address: str = "127.0.0.2", heavy: bytes = b"",
          hostile_clients: int = 1) -> dict:
    url = f"ws://{address}/stream"
    tallies = [Tally() for _ in range(n)]
    ready, go, stop = threading.Barrier(n + 1), threading.Event(), threading.Event()
    threads = [threading.Thread(target=good_stream, args=(url, source, frames, ready, go, stop, t), daemon=True)
               for t in tallies]
    for t in threads:
        t.start()
    ready.wait()  # every good stream is open before the clock starts
    counts: dict[str, int] = {}
    hostile_stop = threading.Event()
    rss, sampling = [], threading.Event()

    proxy_rss: list[int] = []

    def sample() -> None:
        while not sampling.is_set():
            value = rss_bytes(replica_pid)
            if value:
                rss.append(value)
            value = rss_bytes(proxy_pid) if proxy_pid else None
            if value:
                proxy_rss.append(value)
            time.sleep(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    bad: list = []
    if attack:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        hostile_stop, results = ctx.Event(), ctx.Queue()
        bad = [ctx.Process(target=hostile_process, args=(url, source, frames[0], bomb, attacks, pace,
                                                         niceness(replica_pid) or 0, hostile_stop, results, retry_pause,
                                                         hostile_address, heavy), daemon=True)
               for _ in range(hostile_clients)]
        for proc in bad:
            proc.start()
        time.sleep(2.0)  # the hostile clients are connected and sending before the clock starts
    load_before = loadavg()
    pids = {"replica": replica_pid, "proxy": proxy_pid, "good_clients": os.getpid()}
    pids.update({f"hostile_client{'' if i == 0 else i + 1}": proc.pid for i, proc in enumerate(bad)})
    cpu0 = {k: cpu_seconds(v) if v else None for k, v in pids.items()}
    start = time.perf_counter()
    go.set()
    time.sleep(seconds)
    stop.set()
    elapsed = time.perf_counter() - start
    cpu1 = {k: cpu_seconds(v) if v else None for k, v in pids.items()}
    cpu = {k: round((cpu1[k] - cpu0[k]) / elapsed, 2) for k in pids if cpu0[k] is not None and cpu1[k] is not None}
    hostile_stop.set()
    for t in threads:
        t.join(180)
    for proc in bad:
        try:
            for kind, value in results.get(timeout=60).items():
                counts[kind] = counts.get(kind, 0) + value
        except Exception:  # noqa: BLE001 - it died: no counts
            counts["lost"] = counts.get("lost", 0) + 1
    for proc in bad:
        proc.join(60)
        if proc.is_alive():
            proc.terminate()
    sampling.set()
    sampler.join(5)
    lat = [x for t in tallies for x in t.latencies]
    errors = [e for t in tallies for e in t.errors]
    return {"attack": attack, "seconds": round(elapsed, 2), "frames": len(lat),
            "frames_per_s": round(len(lat) / elapsed, 2),
            "p50_ms": round(percentile(lat, 50) * 1e3, 1), "p99_ms": round(percentile(lat, 99) * 1e3, 1),
            "good_errors": len(errors), "error_examples": errors[:3],
            "replica_rss_peak_mb": round(max(rss) / 2**20, 1) if rss else None,
            "proxy_rss_peak_mb": round(max(proxy_rss) / 2**20, 1) if proxy_rss else None,
            "hostile": counts, "loadavg_1m": [round(load_before[0], 2), round(loadavg()[0], 2)],
            "cpu_cores_used": cpu,
            "frames_per_replica_cpu_s": round(len(lat) / elapsed / cpu["replica"], 2) if cpu.get("replica") else None}


def run(args: argparse.Namespace) -> dict:
    import ray

    from jamsdk.bundled import resolve_model
    from jamsdk.pictures import read_image
    from jamsdk.serve import app
    from jamsdk.serve.protocol import Limits, encode_png
    from jamsdk.video import read_frames

    model = resolve_model(args.model)
    print("building the 20000x20000 PNG ...", file=sys.stderr, flush=True)
    bomb = black_png(20000, 20000)
    heavy = gradient_png(4096, 4096) if "heavy" in args.attacks else b""
    picture = read_image(ROOT / "jamsdk" / "assets" / "example_source.png")
    frames = [encode_png(f) for f in read_frames(ROOT / "jamsdk" / "assets" / "example_driving.mp4", max_frames=24)]
    source = encode_png(picture)
    if args.no_proxy_guard:  # (spelt out: a jamsdk from before the guard can be measured too)
        os.environ.pop("RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH", None)
    else:  # as jamsdk serve starts a local Ray
        from jamsdk.serve import proxy_guard

        os.environ[proxy_guard.ENV] = proxy_guard.IMPORT_PATH
        os.environ[getattr(proxy_guard, "FORWARDED_ENV", "FORWARDED_ALLOW_IPS")] = ""  # no --trusted-proxy
    try:  # the local Ray jamsdk serve starts (loopback, a fresh token)
        from jamsdk.scale.connect import disconnect, start_local
    except ImportError:  # a jamsdk from before that (BEFORE_CHECKOUT of serve_tables.sh)
        ray.init(num_cpus=args.cpus, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
        conn = None
    else:
        conn = start_local(ray, num_cpus=args.cpus)
    port = free_port()
    address = f"127.0.0.1:{port}"
    try:
        app.run(app.build_app(str(model), limits=Limits(), backend="onnxruntime", threads=args.threads),
                host="127.0.0.1", port=port)
        pid = int(health(address)["pid"])
        proxy = listening_pid(port)
        niceness_seen = niceness(pid)
        # warm-up: a few frames through every code path
        phase(address, 1, 3.0, False, source, frames, bomb, pid, proxy)
        rounds = []
        for r in range(args.rounds):
            order = (False, True) if r % 2 == 0 else (True, False)
            results = {("attack" if a else "alone"): phase(address, args.streams, args.seconds, a, source, frames,
                                                           bomb, pid, proxy, args.attacks, args.pace,
                                                           args.retry_pause, args.hostile_address, heavy,
                                                           args.hostile_clients) for a in order}
            results["ratio"] = round(results["attack"]["frames_per_s"] / max(results["alone"]["frames_per_s"], 1e-9), 3)
            eff = [results[k]["frames_per_replica_cpu_s"] for k in ("attack", "alone")]
            results["per_cpu_ratio"] = round(eff[0] / eff[1], 3) if all(eff) else None
            rounds.append(results)
            print(f"round {r + 1}: alone {results['alone']['frames_per_s']} f/s, attack "
                  f"{results['attack']['frames_per_s']} f/s, ratio {results['ratio']}", file=sys.stderr, flush=True)
        info = health(address)
    finally:
        from ray import serve

        serve.shutdown()
        if conn is not None:
            disconnect(conn)
        else:
            ray.shutdown()
    import jamsdk

    return {"machine": cpu_line(), "jamsdk": str(Path(jamsdk.__file__).parent), "model": str(model),
            "attacks": list(args.attacks), "pace": args.pace, "replica_nice": niceness_seen,
            "streams": args.streams, "seconds": args.seconds, "threads": args.threads, "rounds": rounds,
            "retry_pause": args.retry_pause, "hostile_address": args.hostile_address,
            "hostile_clients": args.hostile_clients,
            "replica_health": {k: info.get(k) for k in ("frames", "batches", "dropped", "refused", "policy_closed",
                                                        "penalized", "paced_s", "proxy_guard", "limits")},
            "replica_code": "hardened" if "dropped" in info else "before hardening (no 'dropped' in /health)"}


def render(res: dict) -> str:
    lines = [f"# serve under load: {res['streams']} good streams, {res['seconds']:g} s per phase, "
             f"{res.get('hostile_clients', 1)} hostile client(s) ({res['pace']}, retry pause "
             f"{res.get('retry_pause', 0.5):g} s), guard in Serve's proxy: "
             f"{'on' if res['replica_health'].get('proxy_guard') else 'off'}, hostile client from "
             f"{res.get('hostile_address', '127.0.0.1')}: "
             f"{', '.join(res['attacks'])}",
             "", f"Machine: {res['machine']}; jamsdk from {res['jamsdk']} (replica: {res['replica_code']}); model "
             f"{res['model']}; replica and hostile client at nice {res['replica_nice']}", "",
             "| round | phase | good frames/s | p50 ms | p99 ms | good errors | replica (proxy) RSS peak MB | "
             "hostile messages sent | CPU cores used: replica / proxy / good clients / hostile (each) | "
             "load avg 1 min (start → end) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|---|"]
    for i, r in enumerate(res["rounds"], 1):
        for name in ("alone", "attack"):
            p = r[name]
            sent = sum(v for k, v in p["hostile"].items() if not k.startswith(("replies", "reconnect", "connect")))
            lines.append(f"| {i} | {name} | {p['frames_per_s']} | {p['p50_ms']} | {p['p99_ms']} | {p['good_errors']} | "
                         f"{p['replica_rss_peak_mb']} ({p['proxy_rss_peak_mb']}) | {sent if name == 'attack' else ''} | "
                         f"{' / '.join(str(v) for v in _cores(p['cpu_cores_used']))}"
                         f" | {p['loadavg_1m'][0]} → {p['loadavg_1m'][1]} |")
    ratios = [r["ratio"] for r in res["rounds"]]
    rss = max(p["replica_rss_peak_mb"] or 0 for r in res["rounds"] for p in (r["alone"], r["attack"]))
    errors = sum(r["attack"]["good_errors"] + r["alone"]["good_errors"] for r in res["rounds"])
    per_cpu = [r.get("per_cpu_ratio") for r in res["rounds"]]
    lines += ["", f"Good frames per CPU-second of the replica, attack ÷ alone (what the attack costs the server "
              f"itself), per round: {', '.join(map(str, per_cpu))}."]
    lines += ["", f"Good frames/s under attack ÷ alone, per round: {', '.join(map(str, ratios))} "
              f"(target ≥ 0.7: {'met' if min(ratios) >= 0.7 else 'NOT met'}); replica RSS peak {rss} MB "
              f"(target < 1024: {'met' if rss < 1024 else 'NOT met'}); good-stream errors {errors} "
              f"(target 0: {'met' if errors == 0 else 'NOT met'}).", ""]
    attack = res["rounds"][-1]["attack"]["hostile"]
    lines += [f"Hostile client, last attack phase: {json.dumps(attack, sort_keys=True)}", ""]
    h = res["replica_health"]
    lines += [f"Replica, whole run: messages dropped {h.get('dropped')}, handshakes refused for access "
              f"{h.get('refused')}, streams closed for breaking the message limits {h.get('policy_closed')}, "
              f"handshakes refused by the replica during a penalty {h.get('penalized')} (with the guard on, Serve's "
              "proxy refuses them before they reach the replica); seconds streams waited for their decoding budget "
              f"{h.get('paced_s')} (valid but huge frames).", ""]
    return "\n".join(lines)


def _cores(used: dict) -> list:
    """CPU cores per process, in the table's order: replica, proxy, good clients, then each hostile client."""
    hostile = [used[k] for k in sorted(used) if k.startswith("hostile_client")]
    return [used.get(k, "?") for k in ("replica", "proxy", "good_clients")] + (hostile or ["?"])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return 0 if run_and_report(lambda: run(args), render, args.json, args.markdown) is not None else 2


if __name__ == "__main__":
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    raise SystemExit(main())
