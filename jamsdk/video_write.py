"""Writing videos: RGB frames to ``.mp4``, ``.avi`` or an animated ``.gif``, atomically.

:func:`write_video` goes through :func:`jamsdk._atomic.atomic_path`, so a failed or interrupted
write leaves no partial file. MP4 is MPEG-4 part 2 (``mp4v``) and AVI is MJPG, both through
OpenCV; a GIF goes through imageio when it is installed (better colour quantization), else
through OpenCV's own GIF encoder.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np

from jamsdk._atomic import atomic_path, free_bytes
from jamsdk.errors import InputError
from jamsdk.pixels import to_uint8

WRITE_EXTS = (".mp4", ".avi", ".gif")
_LOW_SPACE = 1 << 20  # below this a failed write is taken to be the full disk

__all__ = ["WRITE_EXTS", "write_video"]


def _describe(arr: np.ndarray) -> str:
    return f"{tuple(arr.shape)} {arr.dtype}"


def _check_frame(frame: np.ndarray, index: int, first: tuple[int, ...] | None) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise InputError(f"write_video: expected (H, W, 3) RGB frames, frame {index} is {_describe(frame)}")
    frame = np.ascontiguousarray(to_uint8(frame))
    if first is not None and frame.shape != first:
        raise InputError(f"write_video: frame {index} is {_describe(frame)}, frame 0 was {first}")
    return frame


def _write_gif(tmp: Path, frames: list[np.ndarray], fps: float) -> None:
    duration_ms = max(10, int(round(1000.0 / fps)))
    try:
        import imageio.v2 as imageio
    except ImportError:
        imageio = None
    if imageio is not None:
        # imageio (through Pillow) quantizes far better than OpenCV's GIF encoder (mean error
        # ≈2 vs ≈16 gray levels on smooth gradients), so it is preferred when installed. Encoded in
        # memory, then written by us: a full disk is then one OSError here, not one inside
        # imageio's writer and again in its finalizer.
        buf = io.BytesIO()
        imageio.mimsave(buf, frames, format="GIF", duration=duration_ms, loop=0)
        tmp.write_bytes(buf.getbuffer())
        return
    anim = cv2.Animation()
    anim.frames = [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in frames]
    anim.durations = [duration_ms] * len(frames)
    anim.loop_count = 0
    if not cv2.imwriteanimation(str(tmp), anim):
        raise InputError(f"OpenCV could not write a GIF to {tmp.parent}")


def write_video(path: str | os.PathLike[str], frames: Iterable[np.ndarray], fps: float = 10.0) -> int:
    """Write RGB frames to ``.mp4`` (MPEG-4 part 2, ``mp4v``), ``.avi`` (MJPG) or ``.gif``.

    The file appears only when every frame was written (atomic rename); on any error no partial
    file is left. Frames are ``(H, W, 3)`` RGB, uint8 or float in [0, 1], all of the same size.
    H.264 cannot be written with the opencv-python wheels (no libx264), hence ``mp4v``; it needs
    even sizes, so an odd height or width is padded by one replicated row or column.

    Returns:
        The number of frames written.

    Raises:
        InputError: unsupported extension, bad fps, no frames, frames of mixed size, or the
            writer cannot be opened.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITE_EXTS:
        raise InputError(f"{path}: cannot write {suffix or 'files without extension'!r} (expected one of {', '.join(WRITE_EXTS)})")
    if not (isinstance(fps, (int, float)) and np.isfinite(fps) and fps > 0):
        raise InputError(f"expected fps > 0, got {fps!r}")
    it = iter(frames)
    count = 0
    with atomic_path(path) as tmp:
        if suffix == ".gif":
            buf: list[np.ndarray] = []
            for i, frame in enumerate(it):
                buf.append(_check_frame(frame, i, buf[0].shape if buf else None))
            if not buf:
                raise InputError(f"{path}: no frames to write")
            _write_gif(tmp, buf, fps)
            count = len(buf)
        else:
            first = next(it, None)
            if first is None:
                raise InputError(f"{path}: no frames to write")
            first = _check_frame(first, 0, None)
            h, w = first.shape[:2]
            pad_h, pad_w = (h % 2, w % 2) if suffix == ".mp4" else (0, 0)
            fourcc = cv2.VideoWriter_fourcc(*("mp4v" if suffix == ".mp4" else "MJPG"))
            writer = cv2.VideoWriter(str(tmp), fourcc, float(fps), (w + pad_w, h + pad_h))
            if not writer.isOpened():
                raise InputError(f"{path}: {_no_room(tmp.parent) or f'OpenCV cannot open a video writer for {suffix}'}")
            try:
                frame, i = first, 0
                while frame is not None:
                    if i:
                        frame = _check_frame(frame, i, first.shape)
                    bgr = frame[:, :, ::-1]
                    if pad_h or pad_w:
                        bgr = cv2.copyMakeBorder(bgr, 0, pad_h, 0, pad_w, cv2.BORDER_REPLICATE)
                    writer.write(np.ascontiguousarray(bgr))
                    i += 1
                    frame = next(it, None)
                count = i
            finally:
                writer.release()
            _check_written(tmp, count, path)
    return count


def _no_room(folder: Path) -> str | None:
    """"no space left ..." when ``folder``'s device is (almost) full: OpenCV says only that it failed."""
    free = free_bytes(folder)
    if free is None or free >= _LOW_SPACE:
        return None
    return f"no space left on the device holding {folder} ({free:,} bytes free): free some space or write elsewhere"


def _check_written(tmp: Path, count: int, path: Path) -> None:
    """The frame count the written container declares must be ``count``: OpenCV's writer drops frames it
    cannot write (a full disk) with a log line only, and would leave a cut file that looks complete."""
    cap = cv2.VideoCapture(str(tmp))
    try:
        written = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    finally:
        cap.release()
    if written != count:
        why = _no_room(tmp.parent) or "OpenCV's writer failed part-way"
        raise InputError(f"{path}: {why}; the video holds {written} of {count} frames, so nothing was written")
