"""The pieces of jamsdk.scale.loopback and jamsdk.scale._reaper that need no Ray: free ports, listening
checks, a driver's environment, session members, and the watcher that stops a dead driver's processes.
The clusters themselves start in tests/scale/test_cluster.py (full suite)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from jamsdk.scale import _reaper
from jamsdk.scale.loopback import LoopbackCluster, _listening, _session_pids, _tail, free_port

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def test_free_port_and_listening():
    port = free_port()
    assert not _listening("127.0.0.1", port)
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        assert _listening("127.0.0.1", port)


def test_a_driver_environment_carries_this_cluster_s_token_only(tmp_path):
    cluster = LoopbackCluster(nodes=2)
    try:
        env = cluster.client_env({"RAY_ADDRESS": "elsewhere:1", "RAY_AUTH_TOKEN": "old", "HOME": "/h",
                                  "PYTHONBREAKPOINT": "ray.util.rpdb.set_trace"})
        assert env == {"HOME": "/h", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": cluster.token}
        assert cluster.client_env({"RAY_AUTH_MODE": "token", "X": "1"}, token=False) == {"X": "1"}
        assert cluster.address.startswith(cluster.host + ":") and cluster.client_address.startswith("ray://")
    finally:
        shutil.rmtree(cluster.root, ignore_errors=True)
    assert _tail(tmp_path / "absent.log") == "(no log)"
    (tmp_path / "node.err").write_text("a\nb\nc\nd\n")
    assert _tail(tmp_path / "node.err") == "b | c | d"


def test_session_members_and_the_watcher_stops_a_dead_driver_s_processes():
    # A stand-in "Ray process" in a session of its own, and the watcher over it.
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        assert child.pid in _session_pids(child.pid)
        targets = [(pid, start) for pid, start in _reaper.descendants(os.getpid()) if pid == child.pid]
        assert len(targets) == 1
        watcher = subprocess.Popen([sys.executable, "-m", "jamsdk.scale._reaper", json.dumps(targets)],
                                   stdin=subprocess.PIPE)
        time.sleep(0.5)
        assert child.poll() is None  # the driver (this test) is alive: nothing is touched
        watcher.stdin.close()        # the driver is gone: end of file on the pipe
        assert watcher.wait(timeout=30) == 0
        assert child.wait(timeout=10) == -15  # SIGTERM
    finally:
        if child.poll() is None:
            child.kill()


def test_the_watcher_never_hits_a_reused_pid():
    # The neighbour: a recorded pid whose start time differs is another process, and is left alone.
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        start = _reaper._start_time(child.pid)
        watcher = subprocess.Popen([sys.executable, "-m", "jamsdk.scale._reaper",
                                    json.dumps([[child.pid, start + 1]])], stdin=subprocess.PIPE)
        watcher.stdin.close()
        assert watcher.wait(timeout=30) == 0 and child.poll() is None
    finally:
        child.kill()
        child.wait()
