"""The Ray that `jamsdk batch` and `jamsdk serve` start on this machine (no --ray): every port on
loopback, every control port refusing a client without the run's token, and no token written to
~/.ray (it was 0644 there, readable by every local user, and reused by every later Ray).

Each test runs the real command in a child process and, while it runs, lists the listening TCP
sockets of its process tree (/proc) and knocks on each without a token (jamsdk.scale._sockets)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")
pytest.importorskip("grpc")
if not sys.platform.startswith("linux"):
    pytest.skip("reads /proc", allow_module_level=True)

from jamsdk.scale._sockets import knock, listeners  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "jamsdk" / "assets"


def _env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}  # not this session's Ray's token
    env.update(HOME=str(home), PYTHONUNBUFFERED="1")
    return env


def _watch(proc: subprocess.Popen, until, timeout: float = 400.0) -> dict:
    """Poll the process tree's listeners until ``until()`` or the process ends; knock on each one once."""
    seen: dict = {}
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline and not until(seen):
        for lst in listeners(proc.pid):
            if (lst.host, lst.port) not in seen or seen[(lst.host, lst.port)][1] == "no answer":
                seen[(lst.host, lst.port)] = (lst, knock(lst.port, lst.reachable_at, timeout=10))
        time.sleep(0.3)
    return seen


def _check(seen: dict, beyond_allowed: tuple[str, ...] = ()) -> None:
    names = sorted({lst.name for lst, _ in seen.values()})
    assert any(n == "gcs_server" for n in names) and any(n == "raylet" for n in names), names
    beyond = [(lst.name, lst.host, lst.port) for lst, _ in seen.values()
              if not lst.loopback and lst.name not in beyond_allowed]
    assert beyond == [], f"listening beyond loopback: {beyond}"
    for lst, answer in seen.values():
        if not lst.loopback:  # what Ray binds to every interface whatever the node address: the token guards it
            assert answer == "refused: UNAUTHENTICATED", (lst, answer)
    for lst, answer in seen.values():
        # Control ports refuse; only Prometheus' read-only counters answer (on loopback).
        assert answer.startswith("refused") or answer in ("open: Prometheus metrics", "gone"), (lst, answer)
    gcs = [answer for lst, answer in seen.values() if lst.name == "gcs_server"]
    assert gcs and all(a == "refused: UNAUTHENTICATED" for a in gcs), gcs


def test_a_local_batch_run_listens_on_loopback_only_and_refuses_tokenless_drivers(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    jobs = tmp_path / "jobs.csv"
    rows = "".join(f"{ASSETS / 'example_source.png'},{ASSETS / 'example_driving.mp4'},out{i}.mp4\n" for i in range(3))
    jobs.write_text("source,driving,out\n" + rows)
    proc = subprocess.Popen([sys.executable, "-m", "jamsdk", "batch", "--jobs", str(jobs), "--out-dir",
                             str(tmp_path / "outs"), "--no-progress"], cwd=ROOT, env=_env(home),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        seen = _watch(proc, until=lambda s: False)
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-3000:]
    _check(seen)
    assert not (home / ".ray").exists()  # the run's token was never written to ~/.ray


def test_a_local_serve_listens_on_loopback_only_and_refuses_tokenless_drivers(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "jamsdk", "serve", "--port", str(port), "--threads", "1"],
                            cwd=ROOT, env=_env(home), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        serving = []

        def ready(seen: dict) -> bool:
            if not serving and any(lst.port == port for lst, _ in seen.values()):
                serving.append(time.monotonic())
            return bool(serving) and time.monotonic() - serving[0] > 5  # the replica's own ports too

        seen = _watch(proc, until=ready)
        assert serving, "jamsdk serve never listened on its port"
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    ours = [lst for lst, _ in seen.values() if lst.port == port]
    assert ours and all(lst.host == "127.0.0.1" for lst in ours)  # Serve's HTTP proxy: --host's default
    # The service port speaks jamsdk's own access rules. A Serve replica's inter-deployment gRPC
    # server binds [::]:0 whatever the node address (hard-coded: ray/serve/_private/replica.py,
    # `add_port_to_grpc_server(self._server, "[::]:0")`); it must refuse without the token.
    _check({k: v for k, v in seen.items() if k[1] != port}, beyond_allowed=("ray::ServeRepli",))
    assert any(lst.name == "ray::ServeRepli" for lst, _ in seen.values())
    assert not (home / ".ray").exists(), out[-2000:]


def test_the_local_start_leaves_the_environment_as_it_was(monkeypatch):
    """The run's token and Ray's single-machine switch are set for that Ray only: after it, a `--ray`
    in the same process joins a cluster with the user's own settings."""
    import ray

    from jamsdk.scale import connect

    if ray.is_initialized():
        pytest.skip("a Ray of this test session is running")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", "/somewhere/token")
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    ours = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", connect.LOOPBACK_ENV)
    before = {k: os.environ.get(k) for k in ours}  # (Ray sets variables of its own, e.g. PYTHONBREAKPOINT)
    conn = connect.start_local(ray, num_cpus=1)
    try:
        assert os.environ["RAY_AUTH_MODE"] == "token" and len(os.environ["RAY_AUTH_TOKEN"]) == 64
        assert "RAY_AUTH_TOKEN_PATH" not in os.environ and connect.LOOPBACK_ENV not in os.environ
        assert [n.ip for n in conn.nodes] == ["127.0.0.1"]
    finally:
        connect.disconnect(conn)
    assert {k: os.environ.get(k) for k in ours} == before
