"""The Ray that `jamsdk batch` and `jamsdk serve` start on this machine (no --ray): every port on
loopback, every control port refusing a client without the run's token, and no token written to
~/.ray (it was 0644 there, readable by every local user, and reused by every later Ray).

Each test runs the real command in a child process and, while it runs, lists the listening TCP
sockets of its process tree (/proc) and knocks on each without a token (benchmarks/ray_sockets.py,
jamsdk.scale._sockets)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray")
pytest.importorskip("grpc")
if not sys.platform.startswith("linux"):
    pytest.skip("reads /proc", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import ray_sockets  # noqa: E402  (the lister and knocker; benchmarks/ray_sockets.py prints the same as tables)


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
    seen, home, code, out = ray_sockets.batch_run(tmp_path)
    assert code == 0, out[-3000:]
    _check(seen)
    assert not (home / ".ray").exists()  # the run's token was never written to ~/.ray


def test_a_local_serve_listens_on_loopback_only_and_refuses_tokenless_drivers(tmp_path):
    seen, home, port, out = ray_sockets.serve_run(tmp_path)
    ours = [lst for lst, _ in seen.values() if lst.port == port]
    assert ours and all(lst.host == "127.0.0.1" for lst in ours), out[-3000:]  # Serve's HTTP proxy: --host's default
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

    from jamsdk.scale import connect, local_ray

    if ray.is_initialized():
        pytest.skip("a Ray of this test session is running")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", "/somewhere/token")
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    ours = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", local_ray.LOOPBACK_ENV)
    before = {k: os.environ.get(k) for k in ours}  # (Ray sets variables of its own, e.g. PYTHONBREAKPOINT)
    conn = connect.start_local(ray, num_cpus=1)
    try:
        assert os.environ["RAY_AUTH_MODE"] == "token" and len(os.environ["RAY_AUTH_TOKEN"]) == 64
        assert "RAY_AUTH_TOKEN_PATH" not in os.environ and local_ray.LOOPBACK_ENV not in os.environ
        assert [n.ip for n in conn.nodes] == ["127.0.0.1"]
    finally:
        connect.disconnect(conn)
    assert {k: os.environ.get(k) for k in ours} == before
