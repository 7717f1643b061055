"""``jamsdk live`` under load: viewers alone, then with hostile requests beside them.

Starts ``jamsdk live`` (bundled demo model and example clip, ONNX Runtime, ``--threads 1``,
``--max-fps``) on 127.0.0.1 and runs rounds of two phases of ``--seconds`` each, in alternating
order:

* **viewers**: ``--viewers`` clients reading ``/stream.mjpg``; the figure is the loop's frame rate
  (``/stats.json`` frame counter over the phase) and the JPEGs each viewer received per second.
* **hostile requests** (attack phases), from a separate process at the live process's CPU
  priority: a flood of ``POST /control/search`` and ``/control/layout`` on keep-alive connections,
  cross-site POSTs (``Origin: http://evil.example``), DNS-rebinding GETs (``Host: rebind.example``),
  100 half-open connections kept open (re-opened when closed), and viewers that connect and vanish.

Reported per round: loop frames/s attack ÷ alone (target ≥ 0.7), answers the hostile requests got
(200/403/503…), the live process's peak RSS, and whether a traceback reached its terminal. The
machine's load average is printed beside the figures.

    python benchmarks/live_load.py                                     # 2 viewers, 2 rounds × 2 × 20 s
    python benchmarks/live_load.py --viewers 3 --seconds 30 --rounds 3 --json live_load.json --markdown live_load.md
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from _load import cpu_line, cpu_seconds, loadavg, niceness, rss_bytes  # benchmarks/ is sys.path[0]
from _report import require_at_least, run_and_report

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--viewers", type=int, default=2, help="stream viewers (default 2)")
    p.add_argument("--seconds", type=float, default=20.0, help="length of each phase (default 20)")
    p.add_argument("--rounds", type=int, default=2, help="rounds of (alone, attack) (default 2)")
    p.add_argument("--max-fps", type=float, default=15.0, help="the live loop's cap (default 15)")
    p.add_argument("--json", metavar="OUT")
    p.add_argument("--markdown", metavar="OUT")
    args = p.parse_args(argv)
    require_at_least(p, args, 1, "viewers", "rounds")
    if args.seconds <= 0 or args.max_fps <= 0:
        p.error("--seconds and --max-fps: expected > 0")
    return args


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stats(port: int) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/stats.json")
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def viewer(port: int, stop: threading.Event, got: list) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/stream.mjpg")
        resp = conn.getresponse()
        while not stop.is_set():
            line = resp.fp.readline()
            if not line:
                return
            if line.startswith(b"Content-Length:"):
                n = int(line.split(b":")[1])
                resp.fp.readline()
                resp.fp.read(n)
                got.append(time.perf_counter())
    except OSError:
        pass
    finally:
        conn.close()


def hostile_process(port: int, nice: int, stop, out) -> None:  # noqa: ANN001
    """Every kind of hostile request at once, in threads; the answers are counted."""
    if nice > os.nice(0):
        os.nice(nice - os.nice(0))
    counts: dict[str, int] = {}
    lock = threading.Lock()

    def count(key: str) -> None:
        with lock:
            counts[key] = counts.get(key, 0) + 1

    def flood(path: str, headers: dict, host: str | None = None) -> None:
        while not stop.is_set():
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                for _ in range(50):
                    if stop.is_set():
                        break
                    conn.putrequest("POST" if path.startswith("/control") else "GET", path, skip_host=True)
                    conn.putheader("Host", host or f"127.0.0.1:{port}")
                    for k, v in headers.items():
                        conn.putheader(k, v)
                    conn.putheader("Content-Length", "0")
                    conn.endheaders()
                    resp = conn.getresponse()
                    resp.read()
                    count(f"{path} {resp.status}")
                    if resp.will_close:
                        break
            except (OSError, http.client.HTTPException) as exc:
                count(f"{path} {type(exc).__name__}")
                time.sleep(0.05)
            finally:
                conn.close()

    def half_open() -> None:
        held: list[socket.socket] = []
        while not stop.is_set():
            while len(held) < 100 and not stop.is_set():
                try:
                    s = socket.create_connection(("127.0.0.1", port), timeout=5)
                    s.sendall(b"GET /stats.json HTTP/1.1\r\nHost: 127.0.0.1")
                    held.append(s)
                    count("half-open opened")
                except OSError:
                    count("half-open refused")
                    break
            time.sleep(0.5)
            alive = []
            for s in held:  # the server closes them after its timeout (or at once past its cap)
                s.setblocking(False)
                try:
                    if s.recv(1) == b"":
                        s.close()
                        continue
                except BlockingIOError:
                    pass
                except OSError:
                    s.close()
                    continue
                alive.append(s)
            held = alive
        for s in held:
            s.close()

    def vanishing_viewers() -> None:
        while not stop.is_set():
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.sendall(f"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
                s.recv(2000)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                s.close()  # a reset mid-stream
                count("vanishing viewer")
            except OSError:
                count("vanishing viewer refused")
            time.sleep(0.05)

    jobs = [lambda: flood("/control/search", {}), lambda: flood("/control/layout", {}),
            lambda: flood("/control/layout", {"Origin": "http://evil.example", "Content-Type": "text/plain"}),
            lambda: flood("/stats.json", {}, host=f"rebind.example:{port}"), half_open, vanishing_viewers]
    threads = [threading.Thread(target=job, daemon=True) for job in jobs]
    for t in threads:
        t.start()
    stop.wait()
    for t in threads:
        t.join(20)
    out.put(counts)


def phase(port: int, live_pid: int, viewers: int, seconds: float, attack: bool) -> dict:
    import multiprocessing

    stop = threading.Event()
    got: list[list[float]] = [[] for _ in range(viewers)]
    threads = [threading.Thread(target=viewer, args=(port, stop, g), daemon=True) for g in got]
    for t in threads:
        t.start()
    bad = None
    if attack:
        ctx = multiprocessing.get_context("spawn")
        hostile_stop, results = ctx.Event(), ctx.Queue()
        bad = ctx.Process(target=hostile_process, args=(port, niceness(live_pid) or 0, hostile_stop, results),
                          daemon=True)
        bad.start()
        time.sleep(2.0)
    time.sleep(1.0)  # viewers connected
    rss, sampling = [], threading.Event()

    def sample() -> None:
        while not sampling.is_set():
            value = rss_bytes(live_pid)
            if value:
                rss.append(value)
            time.sleep(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    load0, cpu0, frames0 = loadavg(), cpu_seconds(live_pid), stats(port)["frames"]
    counts0 = [len(g) for g in got]
    start = time.perf_counter()
    time.sleep(seconds)
    frames1 = stats(port)["frames"]
    elapsed = time.perf_counter() - start
    cpu1, counts1 = cpu_seconds(live_pid), [len(g) for g in got]
    stop.set()
    counts: dict[str, int] = {}
    if bad is not None:
        hostile_stop.set()
        try:
            counts = results.get(timeout=60)
        except Exception:  # noqa: BLE001
            counts = {"lost": 1}
        bad.join(30)
    sampling.set()
    for t in threads:
        t.join(10)
    return {"attack": attack, "seconds": round(elapsed, 2), "loop_fps": round((frames1 - frames0) / elapsed, 2),
            "viewer_fps": [round((c1 - c0) / elapsed, 2) for c0, c1 in zip(counts0, counts1)],
            "live_rss_peak_mb": round(max(rss) / 2**20, 1) if rss else None,
            "live_cpu_cores": round((cpu1 - cpu0) / elapsed, 2) if cpu0 is not None and cpu1 is not None else None,
            "hostile": counts, "loadavg_1m": [round(load0[0], 2), round(loadavg()[0], 2)]}


def run(args: argparse.Namespace) -> dict:
    port = free_port()
    cmd = [sys.executable, "-m", "jamsdk", "live", "--driving", str(ROOT / "jamsdk/assets/example_driving.mp4"),
           "--port", str(port), "--threads", "1", "--max-fps", str(args.max_fps)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        first = proc.stdout.readline()
        if "http://" not in first:
            raise SystemExit(f"jamsdk live did not start: {first} {proc.stderr.read()}")
        deadline = time.monotonic() + 120
        while stats(port)["frames"] < 5 and time.monotonic() < deadline:
            time.sleep(0.5)
        rounds = []
        for r in range(args.rounds):
            order = (False, True) if r % 2 == 0 else (True, False)
            res = {("attack" if a else "alone"): phase(port, proc.pid, args.viewers, args.seconds, a) for a in order}
            res["ratio"] = round(res["attack"]["loop_fps"] / max(res["alone"]["loop_fps"], 1e-9), 3)
            rounds.append(res)
            print(f"round {r + 1}: alone {res['alone']['loop_fps']} fps, attack {res['attack']['loop_fps']} fps, "
                  f"ratio {res['ratio']}", file=sys.stderr, flush=True)
    finally:
        proc.send_signal(2)
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
    import jamsdk

    return {"machine": cpu_line(), "jamsdk": str(Path(jamsdk.__file__).parent), "viewers": args.viewers,
            "seconds": args.seconds, "max_fps": args.max_fps, "rounds": rounds, "exit_code": proc.returncode,
            "tracebacks_on_stderr": err.count("Traceback"), "stderr_lines": len(err.strip().splitlines()),
            "stderr_tail": err.strip().splitlines()[-5:]}


def render(res: dict) -> str:
    lines = [f"# live under load: {res['viewers']} viewers, {res['seconds']:g} s per phase, --max-fps {res['max_fps']:g}",
             "", f"Machine: {res['machine']}; jamsdk from {res['jamsdk']}", "",
             "| round | phase | loop frames/s | JPEGs/s per viewer | live RSS peak MB | live CPU cores | "
             "hostile answers | load avg 1 min (start → end) |", "|---|---|---:|---|---:|---:|---|---|"]
    for i, r in enumerate(res["rounds"], 1):
        for name in ("alone", "attack"):
            p = r[name]
            answers = ", ".join(f"{k}: {v}" for k, v in sorted(p["hostile"].items())) if name == "attack" else ""
            lines.append(f"| {i} | {name} | {p['loop_fps']} | {', '.join(map(str, p['viewer_fps']))} | "
                         f"{p['live_rss_peak_mb']} | {p['live_cpu_cores']} | {answers} | "
                         f"{p['loadavg_1m'][0]} → {p['loadavg_1m'][1]} |")
    ratios = [r["ratio"] for r in res["rounds"]]
    lines += ["", f"Loop frames/s under attack ÷ alone, per round: {', '.join(map(str, ratios))} (target ≥ 0.7: "
              f"{'met' if min(ratios) >= 0.7 else 'NOT met'}); tracebacks on the live process's stderr: "
              f"{res['tracebacks_on_stderr']} ({res['stderr_lines']} stderr lines); exit code {res['exit_code']}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return 0 if run_and_report(lambda: run(args), render, args.json, args.markdown) is not None else 2


if __name__ == "__main__":
    raise SystemExit(main())
