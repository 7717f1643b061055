"""Reading videos: frames as ``(H, W, 3)`` uint8 RGB, one at a time or all at once, with OpenCV only.

A video can be given as:

- a video file (``.mp4 .mov .avi .mkv .webm .m4v``) or an animated ``.gif`` (decoded by OpenCV's
  FFmpeg backend; reading H.264 works, writing it does not with the opencv-python wheels);
- a folder of frames (``.png .jpg .jpeg .bmp .webp .tif .tiff``) in natural order
  (``2.png`` before ``10.png``); hidden files are ignored;
- one image: a still picture (one frame), or, with ``frame_shape=(H, W)``, a horizontal strip of
  frames as in the MRAA/FOMM data sets;
- (:func:`iter_frames` only) a camera index such as ``0``.

Frames are converted by :func:`jamsdk.pixels.to_rgb`; pictures are read by
:func:`jamsdk.pictures.read_image`. Pixel limit: every reader checks the size a video declares
before decoding it (:mod:`jamsdk.image_header`; ``max_pixels`` per call, else the process-wide
limit) and refuses a larger one with an :class:`~jamsdk.errors.InputError`. Writing videos is
:mod:`jamsdk.video_write`.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np

from jamsdk.errors import InputError
from jamsdk.image_header import check_pixels
from jamsdk.input_files import check_input
from jamsdk.pictures import IMAGE_EXTS, must_exist, read_image
from jamsdk.pixels import from_cv2, resize_square

VIDEO_EXTS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".gif")

__all__ = [
    "VIDEO_EXTS",
    "ShortVideoWarning",
    "VideoInfo",
    "frame_files",
    "iter_frames",
    "natural_key",
    "probe",
    "read_frames",
    "short_by",
    "split_strip",
]


def natural_key(name: str) -> tuple:
    """Sort key that orders ``frame2.png`` before ``frame10.png``."""
    return tuple(int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", name))


def frame_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The image files of a frame folder in natural order (hidden files ignored)."""
    folder = Path(folder)
    try:
        names = os.listdir(folder)
    except OSError as exc:
        raise InputError(f"cannot list frame folder {folder}: {exc.strerror or exc}") from None
    files = [n for n in names if not n.startswith(".") and Path(n).suffix.lower() in IMAGE_EXTS]
    return [folder / n for n in sorted(files, key=natural_key)]


def _kind(path: Path) -> str:
    if path.is_dir():
        return "folder"
    suffix = path.suffix.lower()
    if suffix in VIDEO_EXTS:
        return "video"
    if suffix in IMAGE_EXTS:
        return "image"
    raise InputError(
        f"{path}: unsupported file type {suffix or '(none)'!r} "
        f"(expected a video {', '.join(VIDEO_EXTS)}, an image {', '.join(IMAGE_EXTS)} or a folder of frames)"
    )


def _strip_shape(frame_shape: Sequence[int] | None) -> tuple[int, int] | None:
    if frame_shape is None:
        return None
    shape = tuple(int(s) for s in frame_shape)
    # (H, W, 3) as written in FOMM configs is accepted too (MRAA's reader breaks on it).
    if len(shape) == 3 and shape[2] == 3:
        shape = shape[:2]
    if len(shape) != 2 or min(shape) < 1:
        raise InputError(f"expected frame_shape (height, width) or (height, width, 3), got {frame_shape!r}")
    return shape  # type: ignore[return-value]


def split_strip(img: np.ndarray, frame_shape: Sequence[int], where: str = "image") -> np.ndarray:
    """Cut a horizontal strip of frames ``(H, N·W, 3)`` into ``(N, H, W, 3)``."""
    fh, fw = _strip_shape(frame_shape)  # type: ignore[misc]
    h, w = img.shape[:2]
    if h != fh or w % fw != 0:
        raise InputError(
            f"{where}: expected a horizontal strip of {fh}×{fw} frames (height {fh}, width a multiple "
            f"of {fw}), got {h}×{w}"
        )
    return img.reshape(h, w // fw, fw, 3).transpose(1, 0, 2, 3).copy()


def _open_capture(source: str | int, max_pixels: int | None = None) -> cv2.VideoCapture:
    what = f"camera {source}" if isinstance(source, int) else str(source)
    if not isinstance(source, int):
        # A regular file within the video cap before FFmpeg opens it: a FIFO would block it, a device never end.
        check_input(source, "video", what="video")
    cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        cap.release()
        if isinstance(source, int):
            raise InputError(f"{what} does not open: no camera at index {source} here, or another program holds "
                             "it (expected a connected camera index, a video file, a GIF or a frame folder)")
        raise InputError(f"{what}: cannot open (corrupt, empty or unsupported video)")
    if not isinstance(source, int):
        # The size the container declares (read by FFmpeg when it opened the file), before any frame.
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if w > 0 and h > 0:
            try:
                check_pixels(w, h, f"{what} (video frames)", max_pixels)
            except InputError:
                cap.release()
                raise
    return cap


def short_by(declared: int | None, read: int) -> int:
    """How many frames a video that stopped after ``read`` frames lacks, beyond what an estimate explains.

    ``declared`` is the count the container gives (FFmpeg: exact from an MP4 or AVI index, estimated
    from the duration for others). Up to one frame, or 2 %, short is within that estimate's error
    (and an MP4 edit list's trim); more is a video that stopped decoding (corrupt or cut short).
    """
    if not declared or read >= declared:
        return 0
    missing = declared - read
    return missing if missing > max(1, declared // 50) else 0


def _iter_capture(cap: cv2.VideoCapture, where: str, max_frames: int | None,
                  allow_short: bool = False) -> Iterator[np.ndarray]:
    count = 0
    declared = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if not where.startswith("camera ") else 0
    try:
        while max_frames is None or count < max_frames:
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            count += 1
            yield from_cv2(frame)
    finally:
        cap.release()
    if count == 0:
        raise InputError(f"{where}: no frame could be decoded (corrupt or empty video)")
    wanted = declared if max_frames is None else min(declared, max_frames)
    if short_by(wanted, count):
        text = (f"{where}: the video ended early: {count} of the {declared} frames its container declares could be "
                "read (the rest is corrupt or cut short)")
        if not allow_short:
            raise InputError(f"{text}; refused (--allow-short-video, or allow_short=True, keeps the {count} frames)")
        warnings.warn(ShortVideoWarning(f"{text}; kept the {count} frames (--allow-short-video)"), stacklevel=2)


class ShortVideoWarning(UserWarning):
    """A video ended before the frame count its container declares, and ``allow_short`` accepted it."""


def _is_camera(source: object) -> bool:
    # "0" means camera 0 unless a file or folder of that name exists.
    if isinstance(source, (int, np.integer)) and not isinstance(source, bool):
        return True
    return isinstance(source, str) and source.isdigit() and not Path(source).exists()


def iter_frames(
    source: str | os.PathLike[str] | int,
    frame_shape: Sequence[int] | None = None,
    max_frames: int | None = None,
    max_pixels: int | None = None,
    allow_short: bool = False,
) -> Iterator[np.ndarray]:
    """Yield ``(H, W, 3)`` uint8 RGB frames one at a time, without holding the whole video.

    Args:
        source: a video file, an animated GIF, a folder of frames, an image (a strip with
            ``frame_shape``), or a camera index (an int, or a string of digits such as ``"0"``
            when no file of that name exists).
        frame_shape: ``(H, W)`` of one frame; cuts an image into a strip of frames. Other inputs
            are returned at their own size.
        max_frames: stop after this many frames.
        max_pixels: pixel limit per picture or frame (default: the process-wide limit).
        allow_short: a video file that stops decoding before the frame count its container
            declares (:func:`short_by`) ends with a :class:`ShortVideoWarning` instead of an error.

    Raises:
        InputError: the source is missing, not a regular file or over the video size cap, cannot be
            opened, declares frames over the pixel limit, has no decodable frame, or (without
            ``allow_short``) ends early; that error comes after the frames that could be read.
    """
    if max_frames is not None and max_frames < 1:
        raise InputError(f"expected max_frames ≥ 1 or None, got {max_frames!r}")
    if _is_camera(source):
        yield from _iter_capture(_open_capture(int(source)), f"camera {source}", max_frames)
        return
    path = must_exist(source)
    kind = _kind(path)
    if kind == "video":
        yield from _iter_capture(_open_capture(str(path), max_pixels), str(path), max_frames, allow_short)
    elif kind == "folder":
        files = frame_files(path)
        if not files:
            raise InputError(f"{path}: empty frame folder (expected {', '.join(IMAGE_EXTS)} files)")
        for f in files[:max_frames]:
            yield read_image(f, max_pixels)
    else:
        img = read_image(path, max_pixels)
        frames = split_strip(img, frame_shape, str(path)) if frame_shape is not None else img[None]
        yield from frames[:max_frames]


def read_frames(
    path: str | os.PathLike[str],
    frame_shape: Sequence[int] | None = None,
    max_frames: int | None = None,
    max_pixels: int | None = None,
    allow_short: bool = False,
) -> np.ndarray:
    """Read a whole video as ``(T, H, W, 3)`` uint8 RGB.

    Args:
        path: a video file, an animated GIF, a folder of frames, or an image (one frame, or a
            horizontal strip of frames with ``frame_shape``).
        frame_shape: ``(H, W)`` (or ``(H, W, 3)``) of one frame. For an image it is the strip's frame
            size; other inputs are resized to it (MRAA's ``frame_shape``), without cropping.
        max_frames: read at most this many frames.
        max_pixels: pixel limit per picture or frame (default: the process-wide limit).
        allow_short: keep the frames of a video that ends early (see :func:`iter_frames`).

    Raises:
        InputError: the path is missing, unsupported, corrupt, over the pixel limit or holds no
            frame, ends early (without ``allow_short``), or frames of a folder differ in size.
    """
    shape = _strip_shape(frame_shape)
    frames = list(iter_frames(path, shape, max_frames, max_pixels, allow_short))
    first = frames[0].shape
    for i, f in enumerate(frames):
        if f.shape != first:
            raise InputError(f"{path}: frame {i} is {f.shape[1]}×{f.shape[0]}, frame 0 is {first[1]}×{first[0]}")
    video = np.stack(frames)
    if shape is not None and video.shape[1:3] != shape:
        video = np.stack([resize_square(f, shape) for f in video])
    return video


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` learns about a video without decoding all of it."""

    kind: str  # "video", "folder", "image" or "camera"
    width: int
    height: int
    frames: int | None  # None where unknown (cameras; some containers report 0)
    fps: float | None


def probe(source: str | os.PathLike[str] | int, frame_shape: Sequence[int] | None = None,
          max_pixels: int | None = None) -> VideoInfo:
    """Size, frame count (where known) and fps of a video source; decodes at most one frame.

    Raises:
        InputError: the source is missing, unsupported, over the pixel limit or has no decodable frame.
    """
    if _is_camera(source):
        cap = _open_capture(int(source))
        try:
            ok, frame = cap.read()
            fps = cap.get(cv2.CAP_PROP_FPS) or None
        finally:
            cap.release()
        if not ok:
            raise InputError(f"camera {source} opened but gave no frame (another program may hold it)")
        return VideoInfo("camera", frame.shape[1], frame.shape[0], None, fps)
    path = must_exist(source)
    kind = _kind(path)
    if kind == "folder":
        files = frame_files(path)
        if not files:
            raise InputError(f"{path}: empty frame folder (expected {', '.join(IMAGE_EXTS)} files)")
        h, w = read_image(files[0], max_pixels).shape[:2]
        return VideoInfo("folder", w, h, len(files), None)
    if kind == "image":
        img = read_image(path, max_pixels)
        if frame_shape is None:
            return VideoInfo("image", img.shape[1], img.shape[0], 1, None)
        strip = split_strip(img, frame_shape, str(path))
        return VideoInfo("image", strip.shape[2], strip.shape[1], strip.shape[0], None)
    cap = _open_capture(str(path), max_pixels)
    try:
        ok, frame = cap.read()
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = cap.get(cv2.CAP_PROP_FPS)
    finally:
        cap.release()
    if not ok or frame is None:
        raise InputError(f"{path}: no frame could be decoded (corrupt or empty video)")
    return VideoInfo("video", frame.shape[1], frame.shape[0], count if count > 0 else None,
                     fps if fps and fps > 0 else None)
