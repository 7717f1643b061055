"""Two replicas (`--replicas 2`) on a local Ray: streams spread over both, and one replica stalled (its process
stopped with SIGSTOP) does not stop the other replica's streams; the stalled one's stream resumes after."""

import json
import os
import signal
import threading
import time
import urllib.request

import numpy as np
import pytest

pytest.importorskip("ray")
pytest.importorskip("fastapi")
pytest.importorskip("websockets")

RNG = np.random.default_rng(5)
PICTURE = RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)
FRAMES = [RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(4)]


@pytest.fixture(scope="module")
def two_replicas(tiny_batched, ray_local):
    from ray import serve

    from jamsdk.scale.loopback import free_port
    from jamsdk.serve import app
    from jamsdk.serve.protocol import Limits

    serve.shutdown()  # another module's Serve instance keeps its own port; start this one afresh
    port = free_port()
    app.run(app.build_app(str(tiny_batched), replicas=2, limits=Limits(max_streams=4, idle_timeout_s=60.0),
                          backend="onnxruntime", threads=1, cpus_per_replica=0.5), host="127.0.0.1", port=port)
    yield f"127.0.0.1:{port}"
    app.stop()


def replica_pids(address, want=2, tries=60):
    """Replica id → pid, from /health (each request lands on one replica or the other)."""
    pids = {}
    for _ in range(tries):
        with urllib.request.urlopen(f"http://{address}/health", timeout=10) as r:
            h = json.loads(r.read())
        pids[h["replica"]] = h["pid"]
        if len(pids) == want:
            return pids
    raise AssertionError(f"saw only {pids} after {tries} /health requests")


def test_streams_spread_and_a_stalled_replica_does_not_stop_the_other(two_replicas):
    from jamsdk.serve.client import StreamClient

    pids = replica_pids(two_replicas)
    streams = [StreamClient(f"ws://{two_replicas}/stream", source=PICTURE, timeout=60) for _ in range(4)]
    try:
        by_replica = {}
        for s in streams:
            by_replica.setdefault(s.replica, []).append(s)
        assert sorted(len(v) for v in by_replica.values()) == [2, 2], {k: len(v) for k, v in by_replica.items()}
        for s in streams:
            s.animate(FRAMES[0])  # every stream works (and each replica has loaded its model)
        stalled, running = list(by_replica)
        victim = by_replica[stalled][0]
        answered = {}

        def waiting_stream():
            t0 = time.monotonic()
            answered["frame"] = victim.animate(FRAMES[1])
            answered["after_s"] = time.monotonic() - t0

        os.kill(pids[stalled], signal.SIGSTOP)
        try:
            waiter = threading.Thread(target=waiting_stream)
            waiter.start()
            t0 = time.monotonic()
            for frame in FRAMES:
                for s in by_replica[running]:
                    assert s.animate(frame).shape == (64, 64, 3)
            other_s = time.monotonic() - t0
            assert "frame" not in answered  # the stalled replica really answered nothing meanwhile
            time.sleep(max(0.0, 1.0 - other_s))
        finally:
            os.kill(pids[stalled], signal.SIGCONT)
        waiter.join(60)
        assert answered["frame"].shape == (64, 64, 3)  # its stream resumes where it was
        assert answered["after_s"] >= other_s  # it waited out the stall while the other replica kept going
    finally:
        for s in streams:
            s.close()
