"""What a local ``jamsdk batch`` and ``jamsdk serve`` listen on, and what each port answers without a token.

Runs each command on this machine (a local Ray, no ``--ray``), lists the listening TCP sockets of
its process tree while it runs (``/proc``; ``jamsdk.scale._sockets``), and knocks on each without a
token: a gRPC call of one method of each Ray service, else an HTTP GET. Prints one Markdown table
per command: process, address, port, beyond loopback or not, the answer.

    python benchmarks/ray_sockets.py                         # this checkout
    python benchmarks/ray_sockets.py --jamsdk /path/to/old   # the commands run from another checkout

``--jamsdk`` puts that checkout first on the commands' ``PYTHONPATH`` (the lister is this checkout's),
so the ports of an older jamsdk can be compared with today's. A throw-away ``HOME`` is used, and
whether a token file appeared in its ``.ray/`` is reported. Linux only.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "jamsdk" / "assets"


def _env(home: Path, checkout: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(HOME=str(home), PYTHONUNBUFFERED="1")
    if checkout:
        env["PYTHONPATH"] = checkout + os.pathsep + env.get("PYTHONPATH", "")
    return env


def watch(proc: subprocess.Popen, until=None, timeout: float = 600.0) -> dict:  # noqa: ANN001
    """(address, port) → (listener, answer) of ``proc``'s tree, polled until it ends or ``until(seen)``.

    Each socket is knocked on once (again while it gives no answer: a loaded machine, a server still starting).
    """
    from jamsdk.scale._sockets import knock, listeners

    seen: dict = {}
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline and not (until and until(seen)):
        for lst in listeners(proc.pid):
            key = (lst.host, lst.port)
            if key not in seen or seen[key][1] == "no answer":
                seen[key] = (lst, knock(lst.port, lst.reachable_at, timeout=10))
        time.sleep(0.3)
    return seen


def table(title: str, seen: dict, home: Path) -> str:
    rows = sorted(seen.values(), key=lambda item: (item[0].name, item[0].port))
    lines = [f"### {title}", "", "| process | address | port | beyond loopback | answer without the token |",
             "|---|---|---:|---|---|"]
    for lst, answer in rows:
        lines.append(f"| {lst.name} | {lst.host} | {lst.port} | {'**yes**' if not lst.loopback else 'no'} | {answer} |")
    token = home / ".ray" / "auth_token"
    mode = f"{token.stat().st_mode & 0o777:04o}" if token.exists() else None
    lines += ["", f"{sum(not lst.loopback for lst, _ in rows)} of {len(rows)} listening sockets beyond loopback; "
              f"~/.ray/auth_token {'written, mode ' + mode if mode else 'not written'}.", ""]
    return "\n".join(lines)


def batch_run(work: Path, checkout: str | None = None) -> tuple[dict, Path, int, str]:
    """A 3-row ``jamsdk batch`` on a local Ray: (what :func:`watch` saw, its HOME, exit status, output)."""
    home = work / "home-batch"
    home.mkdir()
    jobs = work / "jobs.csv"
    rows = "".join(f"{ASSETS / 'example_source.png'},{ASSETS / 'example_driving.mp4'},out{i}.mp4\n" for i in range(3))
    jobs.write_text("source,driving,out\n" + rows)
    proc = subprocess.Popen([sys.executable, "-m", "jamsdk", "batch", "--jobs", str(jobs), "--out-dir",
                             str(work / "outs"), "--no-progress"], cwd=work, env=_env(home, checkout),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        seen = watch(proc)
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            out = ""
    return seen, home, proc.returncode, out


def serve_run(work: Path, checkout: str | None = None) -> tuple[dict, Path, int, str]:
    """``jamsdk serve`` on a local Ray, watched until its port and its replica's ports have been listening
    for 3 s (at most 10 minutes), then stopped: (what :func:`watch` saw, its HOME, its port, output)."""
    home = work / "home-serve"
    home.mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "jamsdk", "serve", "--port", str(port), "--threads", "1"],
                            cwd=work, env=_env(home, checkout), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    up: list = []

    def enough(seen: dict) -> bool:
        names = {lst.name for lst, _ in seen.values()}
        if not up and any(p == port for _, p in seen) and "ray::ServeRepli" in names:
            up.append(time.monotonic())
        return bool(up) and time.monotonic() - up[0] > 3.0

    try:
        seen = watch(proc, enough)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    return seen, home, port, out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jamsdk", metavar="CHECKOUT", help="run the commands from this checkout (default: this one)")
    p.add_argument("--markdown", metavar="OUT", help="also write the tables to OUT")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="jamsdk-sockets-") as tmp:
        work = Path(tmp)
        seen, home, code, _ = batch_run(work, args.jamsdk)
        batch = table(f"jamsdk batch (3 rows, local Ray; exit {code})", seen, home)
        seen, home, port, _ = serve_run(work, args.jamsdk)
        serve = table(f"jamsdk serve --port {port} (local Ray; its own port is jamsdk's, with its access rules)",
                      seen, home)
        text = "\n".join([f"jamsdk from {args.jamsdk or ROOT}", "", batch, serve])
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
