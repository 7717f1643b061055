"""StreamBatch: B streams per stage call, against B single-stream Animators."""

import json

import numpy as np
import pytest

from jamsdk import Animator
from jamsdk.errors import InputError, ManifestError
from jamsdk.manifest import load_manifest
from jamsdk.runtime.batch import StreamBatch, split_sizes
from jamsdk.runtime.stream_state import SourceState

pytest.importorskip("onnxruntime")

RNG = np.random.default_rng(7)
PICTURES = [RNG.integers(0, 256, (72, 64 + 4 * i, 3), dtype=np.uint8) for i in range(5)]
FRAMES = [[RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(3)] for _ in range(5)]


def animator_frames(model_dir, mode, picture, frames):
    with Animator(model_dir, backend="onnxruntime", mode=mode, threads=1) as anim:
        anim.set_source(picture)
        return [anim.run(f) for f in frames]


def max_diff(a, b):
    return int(np.abs(a.astype(int) - b.astype(int)).max())


def test_split_sizes():
    assert split_sizes(7, (1, 2, 4)) == [4, 2, 1]
    assert split_sizes(9, (1, 4, 8)) == [8, 1]
    assert split_sizes(3, (1,)) == [1, 1, 1]
    assert split_sizes(0, (1, 2)) == []


def test_one_stream_is_exactly_the_animator(tiny_batched):
    want = animator_frames(tiny_batched, "relative", PICTURES[0], FRAMES[0])
    with StreamBatch(tiny_batched, backend="onnxruntime", threads=1) as sb:
        assert sb.batch_sizes == (1, 2, 4)
        sid = sb.add_stream(PICTURES[0])
        got = [sb.run({sid: f})[sid] for f in FRAMES[0]]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)  # bit-identical: the same graphs and host math
    assert max_diff(want[0], want[1]) > 0  # the frames differ, so equality is not trivial


@pytest.mark.parametrize("mode", ["relative", "standard"])
def test_five_streams_match_five_animators(tiny_batched, mode):
    want = [animator_frames(tiny_batched, mode, p, f) for p, f in zip(PICTURES, FRAMES)]
    with StreamBatch(tiny_batched, backend="onnxruntime", mode=mode, threads=1) as sb:
        ids = [sb.add_stream(p) for p in PICTURES]
        steps = [sb.run({sid: FRAMES[i][t] for i, sid in enumerate(ids)}) for t in range(3)]
        calls = sb.stats()
    # five streams run as one call of 4 and one of 1 (largest exported size first)
    assert calls["generator@b4"]["count"] == 3 and calls["generator@b1"]["count"] == 3
    for i, sid in enumerate(ids):
        for t in range(3):
            assert max_diff(steps[t][sid], want[i][t]) <= 2


def test_streams_join_and_leave(tiny_batched):
    """A stream's reference is its own first frame, whenever it joined."""
    late = animator_frames(tiny_batched, "relative", PICTURES[2], FRAMES[2][1:])
    with StreamBatch(tiny_batched, backend="onnxruntime", threads=1) as sb:
        a = sb.add_stream(PICTURES[1])
        sb.run({a: FRAMES[1][0]})
        b = sb.add_stream(sb.encode(PICTURES[2]))
        out = [sb.run({a: FRAMES[1][t], b: FRAMES[2][t]})[b] for t in (1, 2)]
        sb.remove_stream(a)
        assert sb.streams == (b,)
        with pytest.raises(InputError, match="no stream"):
            sb.run({a: FRAMES[1][0]})
    for g, w in zip(out, late, strict=True):
        assert max_diff(g, w) <= 2


def test_shared_source_state_and_clip(tiny_batched):
    want = animator_frames(tiny_batched, "relative", PICTURES[3], FRAMES[3])
    with StreamBatch(tiny_batched, backend="onnxruntime", threads=1) as sb:
        state = sb.encode(PICTURES[3])
        assert isinstance(state, SourceState)
        clip = list(sb.animate_clip(state, FRAMES[3]))   # 3 frames: one call of 2, one of 1
        twins = [sb.add_stream(state), sb.add_stream(state)]
        first = sb.run({sid: FRAMES[3][0] for sid in twins})
    assert len(clip) == 3
    for g, w in zip(clip, want, strict=True):
        assert max_diff(g, w) <= 2
    assert all(max_diff(first[sid], want[0]) <= 2 for sid in twins)


def test_bad_frame_advances_nothing(tiny_batched):
    with StreamBatch(tiny_batched, backend="onnxruntime", threads=1) as sb:
        a, b = sb.add_stream(PICTURES[0]), sb.add_stream(PICTURES[1])
        with pytest.raises(InputError, match=r"stream 1: expected an \(H, W, 3\) uint8"):
            sb.run({a: FRAMES[0][0], b: np.zeros((8, 8), np.uint8)})
        # neither stream took a reference from the failed call
        got = sb.run({a: FRAMES[0][0]})[a]
    assert max_diff(got, animator_frames(tiny_batched, "relative", PICTURES[0], FRAMES[0][:1])[0]) == 0


def test_folder_without_batched_graphs_runs_one_by_one(tiny_jam):
    _, model_dir = tiny_jam
    with StreamBatch(model_dir, backend="onnxruntime", threads=1) as sb:
        assert sb.batch_sizes == (1,) and sb.max_batch == 1
        ids = [sb.add_stream(p) for p in PICTURES[:2]]
        out = sb.run({sid: FRAMES[i][0] for i, sid in enumerate(ids)})
    for i, sid in enumerate(ids):
        assert max_diff(out[sid], animator_frames(model_dir, "relative", PICTURES[i], FRAMES[i][:1])[0]) == 0


def test_arguments_are_checked(tiny_batched):
    with pytest.raises(InputError, match="max_batch"):
        StreamBatch(tiny_batched, backend="onnxruntime", max_batch=0)
    with pytest.raises(InputError, match="mode"):
        StreamBatch(tiny_batched, backend="onnxruntime", mode="sideways")
    with StreamBatch(tiny_batched, backend="onnxruntime", max_batch=3, threads=1) as sb:
        assert sb.batch_sizes == (1, 2)
        # Model-space tensors obey the Animator's rules: float32 in [0, 1] (a 0..255 tensor is an error).
        size = sb.image_size
        sid = sb.add_stream(PICTURES[0])
        with pytest.raises(InputError, match=r"must lie in \[0, 1\].*divide by 255"):
            sb.run_tensors({sid: np.full((1, 3, size, size), 200.0, np.float32)})
        with pytest.raises(InputError, match="must lie in"):
            sb.encode_tensor(np.full((1, 3, size, size), 2.0, np.float32))


def test_manifest_batched_section(tiny_batched, tmp_path):
    import shutil

    man = load_manifest(tiny_batched)
    assert man.batch_sizes == (1, 2, 4)
    assert man.stage_file("generator", "fp32", 4).name == "generator.b4.onnx"
    assert "generator_encoder" not in man.batched  # per-source work is cached, never batched
    with pytest.raises(ManifestError, match="batch 3"):
        man.stage_file("generator", "fp32", 3)
    copy = tmp_path / "model"
    shutil.copytree(tiny_batched, copy)
    data = json.loads((copy / "manifest.json").read_text())
    del data["batched"]["stages"]["dense_motion"]["4"]
    (copy / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ManifestError, match=r"batched\.stages\.dense_motion: expected sizes \[2, 4\]"):
        load_manifest(copy)


# -- max_batch="auto" (one frame per call on the CPU backends) and "tune" (timed as it opens) ----------

def test_auto_max_batch_is_one_frame_per_call_on_the_cpu_backends(tiny_batched):
    with StreamBatch(tiny_batched, backend="onnxruntime", threads=1, max_batch="auto") as sb:
        assert sb.batch_sizes == (1,) and sb.tuning == {}
    with StreamBatch(tiny_batched, backend="onnxruntime", threads=1) as sb:  # None: every exported size
        assert sb.batch_sizes == (1, 2, 4)


class _Clock:
    """A stand-in for time.perf_counter whose calls cost what ``cost[b]`` says per frame at size b."""

    def __init__(self, cost):
        self.now, self.cost = 0.0, cost

    def __call__(self):
        return self.now


@pytest.mark.parametrize("cost, kept", [({1: 1.0, 2: 0.4, 4: 0.7}, (1, 2)),  # 2 is fastest per frame
                                        ({1: 0.5, 2: 0.6, 4: 0.9}, (1,)),    # batching only costs (2 CPU cores)
                                        ({1: 1.0, 2: 0.6, 4: 0.3}, (1, 2, 4))])  # a GPU: the largest wins
def test_tuned_max_batch_keeps_the_sizes_up_to_the_fastest_per_frame(tiny_batched, monkeypatch, cost, kept):
    import time

    clock = _Clock(cost)
    real = StreamBatch.run_tensors
    calls = []

    def timed(self, driving):
        calls.append(len(driving))
        clock.now += cost[len(driving)] * len(driving)
        return real(self, driving)

    monkeypatch.setattr(time, "perf_counter", clock)
    monkeypatch.setattr(StreamBatch, "run_tensors", timed)
    with StreamBatch(tiny_batched, backend="onnxruntime", threads=1, max_batch="tune") as sb:
        assert sb.batch_sizes == kept and sb.max_batch == kept[-1]
        assert sb.tuning == pytest.approx(cost)  # seconds per frame, per size
        assert calls == [1, 2, 4] * 4  # a warm-up round, then 3 rounds, every size in turn
        assert sb.streams == () and "batch" not in sb.stats()  # its timing streams and runs are gone


def test_tuned_max_batch_changes_no_result(tiny_batched):
    want = [animator_frames(tiny_batched, "relative", PICTURES[i], FRAMES[i]) for i in range(3)]
    with StreamBatch(tiny_batched, backend="onnxruntime", threads=1, max_batch="tune") as sb:
        assert set(sb.tuning) == {1, 2, 4} and all(t > 0 for t in sb.tuning.values())
        assert sb.batch_sizes == tuple(b for b in (1, 2, 4) if b <= min(sb.tuning, key=sb.tuning.get))
        ids = [sb.add_stream(PICTURES[i]) for i in range(3)]
        got = [[], [], []]
        for t in range(3):
            out = sb.run({sid: FRAMES[i][t] for i, sid in enumerate(ids)})
            for i, sid in enumerate(ids):
                got[i].append(out[sid])
    for i in range(3):
        assert max(max_diff(a, b) for a, b in zip(got[i], want[i])) <= 1


@pytest.mark.parametrize("bad", ["fast", "Auto", "tune ", 0, True, 2.0])
def test_max_batch_refuses_other_words(tiny_batched, bad):
    with pytest.raises(InputError, match=f"whole number ≥ 1, 'auto' or 'tune', got {bad!r}"):
        StreamBatch(tiny_batched, backend="onnxruntime", max_batch=bad)
