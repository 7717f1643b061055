"""`jamsdk serve` on Ray Serve: concurrent WebSocket streams on 127.0.0.1, each equal to an Animator."""

import json
import socket
import threading
import time
import urllib.request

import numpy as np
import pytest

from jamsdk import Animator
from jamsdk.errors import EngineError, InputError

pytest.importorskip("ray")
pytest.importorskip("fastapi")
pytest.importorskip("websockets")

STREAMS = 3
MAX_STREAMS = 4
IDLE_S = 8.0
RNG = np.random.default_rng(11)
PICTURES = [RNG.integers(0, 256, (64, 70, 3), dtype=np.uint8) for _ in range(STREAMS)]
FRAMES = [[RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(4)] for _ in range(STREAMS)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def service(tiny_batched, ray_local):
    """The app on 127.0.0.1 with one replica; a long batch wait so lock-stepped frames share calls."""
    from ray import serve

    from jamsdk.serve import app
    from jamsdk.serve.protocol import Limits

    port = free_port()
    limits = Limits(max_streams=MAX_STREAMS, max_message_bytes=1 << 20, idle_timeout_s=IDLE_S)
    app.run(app.build_app(str(tiny_batched), limits=limits, backend="onnxruntime", threads=1,
                          cpus_per_replica=0.5, batch_wait_s=0.2), host="127.0.0.1", port=port)
    yield f"127.0.0.1:{port}"
    serve.delete("jamsdk")


def health(address):
    with urllib.request.urlopen(f"http://{address}/health", timeout=10) as r:
        return json.loads(r.read())


def test_concurrent_streams_equal_animator_and_bad_frame_is_local(service, tiny_batched):
    from jamsdk.serve.client import StreamClient

    before = health(service)
    assert (before["backend"], before["precision"]) == ("onnxruntime", "fp32")  # what the replica runs
    results, errors = {}, {}
    barrier = threading.Barrier(STREAMS, timeout=60)

    def client(i):
        try:
            with StreamClient(f"ws://{service}/stream", source=PICTURES[i], timeout=60) as stream:
                assert stream.image_size == 64
                out = []
                for t, frame in enumerate(FRAMES[i]):
                    barrier.wait()
                    if i == 1 and t == 2:
                        with pytest.raises(InputError, match="frame 3: cannot decode as a picture"):
                            stream.animate(b"not an image")
                    out.append(stream.animate(frame))
                results[i] = out
        except BaseException as exc:  # reported below, with its thread's index
            errors[i] = exc

    threads = [threading.Thread(target=client, args=(i,)) for i in range(STREAMS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    for i in range(STREAMS):
        with Animator(tiny_batched, backend="onnxruntime", threads=1) as anim:
            anim.set_source(PICTURES[i])
            want = [anim.run(f) for f in FRAMES[i]]
        for got, ref in zip(results[i], want, strict=True):
            assert got.shape == ref.shape == (64, 64, 3)
            assert np.abs(got.astype(int) - ref.astype(int)).max() <= 2
    deadline = time.monotonic() + 20
    after = health(service)
    while after["streams"] and time.monotonic() < deadline:  # closing is asynchronous on the server
        time.sleep(0.2)
        after = health(service)
    frames = after["frames"] - before["frames"]
    batches = after["batches"] - before["batches"]
    assert frames == STREAMS * 4
    assert batches < frames  # concurrent streams shared stage calls
    assert after["streams"] == 0  # closed streams were forgotten


def test_limits_answer_with_clear_errors(service):
    from jamsdk.serve.client import StreamClient

    url = f"ws://{service}/stream"
    with pytest.raises(EngineError, match="source picture: cannot decode as a picture"):
        StreamClient(url, source=b"\x00\x01")
    with pytest.raises(EngineError, match="source picture: .* over the limit of 1048576 bytes"):
        StreamClient(url, source=b"\x00" * ((1 << 20) + 1))
    held = [StreamClient(url, source=PICTURES[0], timeout=60) for _ in range(MAX_STREAMS)]
    try:
        with pytest.raises(EngineError, match="server busy: this replica already holds 4 streams"):
            StreamClient(url, source=PICTURES[0], timeout=60)
        assert held[0].animate(FRAMES[0][0]).shape == (64, 64, 3)  # the held streams still work
    finally:
        for c in held:
            c.close()
    idle = StreamClient(url, source=PICTURES[0], timeout=60)
    time.sleep(IDLE_S + 2)
    with pytest.raises(EngineError, match="idle timeout"):
        idle.animate(FRAMES[0][0])
