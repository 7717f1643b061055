"""Where ``jamsdk live`` sends frames besides the browser: a recording and a virtual camera.

Both take frames of one fixed size (a video file and a camera device cannot change size), so
they get the view chosen on the command line; the page's toggles change the preview only.
"""

from __future__ import annotations

import os
import queue
import threading
from pathlib import Path

import numpy as np

from jamsdk._lazy import require
from jamsdk.errors import InputError, JamError
from jamsdk.video_write import WRITE_EXTS, write_video

VCAM_HELP = ("on Linux load v4l2loopback (sudo modprobe v4l2loopback devices=1 exclusive_caps=1); on Windows "
             "or macOS install OBS Studio and start its virtual camera once")


def check_record_path(out: str | os.PathLike[str]) -> Path:
    path = Path(out)
    if path.suffix.lower() not in WRITE_EXTS:
        raise InputError(f"--out {path}: expected a {', '.join(WRITE_EXTS)} file")
    return path


class Recorder:
    """Writes frames to ``out`` on a background thread; the file appears complete at :meth:`close`.

    Uses :func:`jamsdk.video_write.write_video` (temporary file + atomic rename), so a crash leaves no
    partial file and an existing ``out`` stays untouched until the new one is complete. A ``.gif``
    is held in memory until the end (its encoder needs every frame).
    """

    def __init__(self, out: str | os.PathLike[str], fps: float):
        self.out = check_record_path(out)
        self.fps = float(fps)
        self.frames = 0
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=64)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._write, name="jamsdk-live-recorder", daemon=True)
        self._thread.start()

    def _write(self) -> None:
        try:
            self.frames = write_video(self.out, self._frames(), fps=self.fps)
        except BaseException as exc:  # reported by close() on the caller's thread
            self._error = exc
        finally:
            self._drain()  # a producer blocked on a full queue gets going again

    def _drain(self) -> None:
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass

    def _frames(self):
        while (frame := self._queue.get()) is not None:  # not iter(get, None): arrays do not compare
            yield frame

    def _put(self, item: np.ndarray | None) -> None:
        while self._thread.is_alive():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def write(self, frame: np.ndarray) -> None:
        if self._error is None:
            self._put(frame)

    def close(self) -> int:
        """Finish the file; the number of frames written (0: nothing was recorded, no file)."""
        self._put(None)
        self._thread.join()
        if isinstance(self._error, InputError) and "no frames to write" in str(self._error):
            return 0
        if self._error is not None:
            err, self._error = self._error, None
            raise err
        return self.frames


class VirtualCamera:
    """Frames to a virtual camera device through ``pyvirtualcam`` (extra ``jamsdk[vcam]``).

    Raises:
        MissingDependencyError: pyvirtualcam is not installed.
        JamError: no virtual camera device exists (or it refuses the size).
    """

    def __init__(self, width: int, height: int, fps: float):
        pyvirtualcam = require("pyvirtualcam", "vcam")
        try:
            self._cam = pyvirtualcam.Camera(width=int(width), height=int(height), fps=float(fps),
                                            fmt=pyvirtualcam.PixelFormat.RGB)
        except (RuntimeError, OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise JamError(f"--vcam: no virtual camera device could be opened ({first}); {VCAM_HELP}") from None
        self.device = getattr(self._cam, "device", "?")
        self.frames = 0

    def send(self, frame: np.ndarray) -> None:
        self._cam.send(np.ascontiguousarray(frame))
        self.frames += 1

    def close(self) -> None:
        cam, self._cam = getattr(self, "_cam", None), None
        if cam is not None:
            cam.close()


__all__ = ["Recorder", "VirtualCamera", "check_record_path"]
