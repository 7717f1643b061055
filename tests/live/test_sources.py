"""Driving sources loop, the pacer caps the rate, the recorder writes atomically."""

from __future__ import annotations

import time

import numpy as np
import pytest

from jamsdk.errors import InputError
from jamsdk.live.session import FrameHub
from jamsdk.live.sinks import Recorder
from jamsdk.live.sources import DrivingSource, Pacer
from jamsdk.video import read_frames
from jamsdk.video_write import write_video


def _clip(path, n=3):
    frames = [np.full((32, 48, 3), 40 * i, np.uint8) for i in range(n)]
    write_video(path, frames, fps=12)
    return frames


def test_a_video_file_loops(tmp_path):
    _clip(tmp_path / "c.avi")
    src = DrivingSource(str(tmp_path / "c.avi"))
    assert not src.camera and src.fps == pytest.approx(12)
    means = [round(float(src.read().mean()) / 40) for _ in range(7)]
    src.close()
    assert means == [0, 1, 2, 0, 1, 2, 0]


def test_a_frame_folder_loops_and_a_still_is_refused(tmp_path):
    import cv2

    (tmp_path / "f").mkdir()
    for i in range(2):
        cv2.imwrite(str(tmp_path / "f" / f"{i}.png"), np.full((8, 8, 3), 100 * i, np.uint8))
    src = DrivingSource(str(tmp_path / "f"))
    assert [int(src.read().mean()) for _ in range(4)] == [0, 100, 0, 100]
    with pytest.raises(InputError, match="still picture"):
        DrivingSource(str(tmp_path / "f" / "0.png"))
    with pytest.raises(InputError, match="no such file"):
        DrivingSource(str(tmp_path / "missing.mp4"))


def test_pacer_caps_the_rate():
    pacer = Pacer(50.0)
    start = time.perf_counter()
    for _ in range(10):
        pacer.wait()
    assert time.perf_counter() - start >= 9 / 50 - 0.01
    free = Pacer(None)
    start = time.perf_counter()
    for _ in range(1000):
        free.wait()
    assert time.perf_counter() - start < 0.1


def test_recorder_writes_complete_files_only(tmp_path):
    rec = Recorder(tmp_path / "r.avi", fps=10)
    for i in range(5):
        rec.write(np.full((16, 16, 3), 50 * i, np.uint8))
    assert not (tmp_path / "r.avi").exists()  # appears only when finished
    assert rec.close() == 5
    assert read_frames(tmp_path / "r.avi").shape == (5, 16, 16, 3)
    empty = Recorder(tmp_path / "e.avi", fps=10)
    assert empty.close() == 0 and not (tmp_path / "e.avi").exists()
    with pytest.raises(InputError, match="--out"):
        Recorder(tmp_path / "x.webm", fps=10)


def test_frame_hub_wakes_waiters_and_closes():
    hub = FrameHub()
    assert hub.wait(0, timeout=0.01) == (None, 0)
    hub.publish(b"a")
    hub.publish(b"b")
    assert hub.wait(0) == (b"b", 2)  # a slow viewer skips to the newest frame
    hub.close()
    assert hub.wait(2, timeout=5) == (None, 2)
