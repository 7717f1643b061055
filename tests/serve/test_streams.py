"""A Serve replica's stream calls (jamsdk.serve.streams): under the replica's lock, off the event loop,
uint8 in and out. No Ray needed: the replica's StreamBatch is a real one (on the CUDA/TensorRT
stand-ins for the transfer figures) or a recorder that notices overlapping calls.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from jamsdk.serve.protocol import Limits, encode_png
from jamsdk.serve.streams import ReplicaStreams

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))

RNG = np.random.default_rng(4)
PICTURES = [RNG.integers(0, 256, (64, 70, 3), dtype=np.uint8) for _ in range(2)]
FRAMES = [RNG.integers(0, 256, (72, 64, 3), dtype=np.uint8) for _ in range(3)]


class Recorder:
    """A StreamBatch stand-in that records each call's thread and whether another call was running.

    ``run`` blocks until :attr:`release` is set, so the test can call the others while a batch runs.
    """

    image_size = 8

    def __init__(self):
        self._streams: dict[int, int] = {}
        self.calls: list[tuple[str, int, bool]] = []
        self.running = 0
        self.in_run, self.release = threading.Event(), threading.Event()
        self.guard = threading.Lock()

    def _call(self, name: str) -> None:
        with self.guard:
            self.calls.append((name, threading.get_ident(), self.running > 0))

    @property
    def streams(self):
        return tuple(self._streams)

    def encode(self, picture):
        self._call("encode")
        return picture

    def add_stream(self, state):
        self._call("add_stream")
        sid = len(self._streams) + 100
        self._streams[sid] = 1
        return sid

    def remove_stream(self, sid):
        self._call("remove_stream")
        del self._streams[sid]

    def reset(self, sid):
        self._call("reset")

    def run(self, frames):
        self._call("run")
        self.running += 1
        try:
            self.in_run.set()
            self.release.wait(10)
        finally:
            self.running -= 1
        return {sid: np.zeros((8, 8, 3), np.uint8) for sid in frames}


def test_stream_calls_wait_for_the_running_batch_off_the_event_loop():
    rec = Recorder()

    async def scenario():
        loop_thread = threading.get_ident()
        streams = ReplicaStreams(rec)
        first = await streams.open(PICTURES[0])
        batch = asyncio.create_task(streams.animate([(first, np.zeros((8, 8, 3), np.uint8))]))
        assert await asyncio.to_thread(rec.in_run.wait, 10)  # the batch runs in a worker thread now
        others = [asyncio.create_task(c) for c in (streams.open(PICTURES[1]), streams.reset(first),
                                                   streams.close(first))]
        ticks = 0
        for _ in range(20):  # the loop stays free while the batch runs: nothing waits on it
            await asyncio.sleep(0.01)
            ticks += 1
        assert [c for c, *_ in rec.calls] == ["encode", "add_stream", "run"]  # the others wait for the lock
        rec.release.set()
        results = await batch
        await asyncio.gather(*others)
        return loop_thread, ticks, results

    loop_thread, ticks, results = asyncio.run(scenario())
    assert ticks == 20 and results[0].shape == (8, 8, 3)
    assert sorted(c for c, *_ in rec.calls) == ["add_stream", "add_stream", "encode", "encode", "remove_stream",
                                                "reset", "run"]
    assert not any(overlapped for _, _, overlapped in rec.calls)  # no call ran beside the batch
    assert all(thread != loop_thread for _, thread, _ in rec.calls)  # none on the event loop


def test_a_closing_stream_is_removed_even_when_its_task_is_cancelled():
    rec = Recorder()
    rec.release.set()

    async def scenario():
        streams = ReplicaStreams(rec)
        sid = await streams.open(PICTURES[0])
        async with streams.lock:  # a batch holds the lock
            closing = asyncio.create_task(streams.close(sid))
            await asyncio.sleep(0.01)
            closing.cancel()  # the connection's task is cancelled while it waits
            with pytest.raises(asyncio.CancelledError):
                await closing
        for _ in range(200):
            if not rec.streams:
                break
            await asyncio.sleep(0.01)
        return rec.streams

    assert asyncio.run(scenario()) == ()  # its slots were freed anyway


# -- on the TensorRT stand-ins: what crosses per frame, and a new stream's writes ----------------------

@pytest.fixture()
def batched_engines(tiny_batched, tmp_path, monkeypatch):
    from cuda_standin import install, make_engine_dir

    cuda = install(monkeypatch)
    return cuda, make_engine_dir(tiny_batched, tmp_path / "model", batched=True)


def test_serve_frames_cross_as_uint8_crops_and_results(batched_engines, tiny_batched):
    from jamsdk.runtime.animator import Animator
    from jamsdk.runtime.batch import StreamBatch

    cuda, folder = batched_engines
    limits = Limits()
    with StreamBatch(folder, backend="tensorrt", threads=1) as sb:
        streams = ReplicaStreams(sb)
        s = sb.image_size

        async def session():
            ids = [await streams.open(p) for p in PICTURES]
            outs, moved = [], []
            for f in FRAMES:
                crops = [streams.prepare(encode_png(f), limits, "frame") for _ in ids]
                cuda.counts.clear()
                outs.append(await streams.animate(list(zip(ids, crops))))
                moved.append((cuda.counts["h2d_bytes"], cuda.counts["d2h_bytes"], cuda.counts["syncs"]))
            for sid in ids:
                await streams.close(sid)
            return outs, moved

        outs, moved = asyncio.run(session())
        assert sb.streams == ()
    n = len(PICTURES)
    assert moved[1:] == [(n * s * s * 3, n * s * s * 3, 1)] * (len(FRAMES) - 1)  # S²·3 each way, one sync
    assert all(r.dtype == np.uint8 and r.shape == (s, s, 3) for batch in outs for r in batch)
    for k, picture in enumerate(PICTURES):  # each stream as an Animator would animate it
        with Animator(tiny_batched, backend="onnxruntime", threads=1) as anim:
            anim.set_source(picture)
            want = [anim.run(f) for f in FRAMES]
        for batch, w in zip(outs, want):
            assert np.abs(batch[k].astype(int) - w.astype(int)).max() <= 1
    assert cuda.mem == {} and cuda.device_bytes == 0


def test_a_new_stream_writes_its_source_to_the_device_with_one_sync(batched_engines):
    from jamsdk.runtime.batch import StreamBatch

    cuda, folder = batched_engines
    with StreamBatch(folder, backend="tensorrt", threads=1) as sb:
        state = sb.encode(PICTURES[0])
        cuda.counts.clear()
        sb.add_stream(state)
        assert cuda.counts["syncs"] == 1 and cuda.counts["h2d_bytes"] > 0
