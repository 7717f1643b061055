"""The driving input of ``jamsdk live``: a camera, or a video file / GIF / frame folder played in a loop."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from jamsdk.errors import InputError
from jamsdk.video import VIDEO_EXTS, iter_frames, probe


def is_camera(driving: str | int) -> bool:
    """A camera index (``0``, ``"1"``) unless a file or folder of that name exists."""
    if isinstance(driving, int) and not isinstance(driving, bool):
        return True
    return isinstance(driving, str) and driving.isdigit() and not Path(driving).exists()


class DrivingSource:
    """Frames one at a time, RGB uint8; files start again at the end, cameras run until closed.

    Args:
        driving: a camera index, or a video file, animated GIF or frame folder.

    Raises:
        InputError: a camera that does not open or gives no frame; a file that is missing, not a
            video (a still picture is refused: it cannot drive motion) or has no decodable frame.
    """

    def __init__(self, driving: str | int | os.PathLike[str]):
        self.camera = is_camera(driving) if not isinstance(driving, os.PathLike) else False
        self._cap: cv2.VideoCapture | None = None
        self._frames: Iterator[np.ndarray] | None = None
        if self.camera:
            index = int(driving)
            self.name = f"camera {index}"
            cap, ok, frame = _open_camera(index)
            if not ok or frame is None:
                cap.release()
                raise InputError(f"--driving {index}: camera {index} does not open or gives no frame "
                                 "(expected a connected camera index, a video file or a GIF)")
            # Keep the newest frame only: a slow model should not show what happened seconds ago.
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
            self._cap, self._first = cap, frame[:, :, ::-1]
            fps = cap.get(cv2.CAP_PROP_FPS)
            self.fps = float(fps) if fps and 0 < fps < 1000 else None
        else:
            self.path = Path(driving)
            info = probe(self.path)  # InputError for missing, unsupported or corrupt files
            if info.kind == "image":
                raise InputError(f"--driving {self.path}: expected a video ({', '.join(VIDEO_EXTS)}), a frame "
                                 f"folder or a camera index, got a still picture")
            self.name = str(self.path)
            self.fps = info.fps
            self._first = None

    def read(self) -> np.ndarray:
        """The next frame (``(H, W, 3)`` uint8 RGB)."""
        if self._first is not None:
            frame, self._first = self._first, None
            return np.ascontiguousarray(frame)
        if self.camera:
            assert self._cap is not None  # set in __init__ for cameras
            ok, frame = self._cap.read()
            if not ok or frame is None:
                raise InputError(f"{self.name}: stopped giving frames (unplugged?)")
            return np.ascontiguousarray(frame[:, :, ::-1])
        for _ in range(2):
            if self._frames is None:
                self._frames = iter_frames(self.path)
            frame = next(self._frames, None)
            if frame is not None:
                return frame
            self._frames = None  # end of the file: loop
        raise InputError(f"{self.path}: no frame could be decoded")

    def close(self) -> None:
        """Release the camera (or the open file). Safe to call twice."""
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        if self._frames is not None:
            self._frames.close()  # type: ignore[attr-defined]  # generators release their capture
            self._frames = None


def _open_camera(index: int) -> tuple[cv2.VideoCapture, bool, np.ndarray | None]:
    # OpenCV prints several WARN lines per backend it tries for a missing camera; the user gets
    # one clear line from us instead.
    log = getattr(getattr(cv2, "utils", None), "logging", None)
    old = log.getLogLevel() if log else None
    if log:
        log.setLogLevel(log.LOG_LEVEL_SILENT)
    try:
        cap = cv2.VideoCapture(index)
        ok, frame = cap.read() if cap.isOpened() else (False, None)
    finally:
        if log:
            log.setLogLevel(old)
    return cap, ok, frame


class Pacer:
    """Sleeps so that calls to :meth:`wait` happen at most ``fps`` times a second (None: no cap)."""

    def __init__(self, fps: float | None):
        self.period = 1.0 / fps if fps else 0.0
        self._next = time.perf_counter()

    def wait(self, stop=None) -> None:
        if not self.period:
            return
        now = time.perf_counter()
        delay = self._next - now
        if delay > 0:
            if stop is not None:
                stop.wait(delay)
            else:
                time.sleep(delay)
        # Late frames do not build up a debt of frames to rush through.
        self._next = max(self._next, now) + self.period


__all__ = ["DrivingSource", "Pacer", "is_camera"]
