"""Reading and writing images and videos with numpy and OpenCV only (no torch).

Every reader returns RGB ``uint8`` frames of shape ``(H, W, 3)``; gray, 16-bit and RGBA inputs are
converted by :func:`to_rgb`. A video can be given as:

- a video file (``.mp4 .mov .avi .mkv .webm .m4v``) or an animated ``.gif`` (decoded by OpenCV's
  FFmpeg backend; reading H.264 works, writing it does not with the opencv-python wheels);
- a folder of frames (``.png .jpg .jpeg .bmp .webp .tif .tiff``) in natural order
  (``2.png`` before ``10.png``); hidden files are ignored;
- one image: a still picture (one frame), or, with ``frame_shape=(H, W)``, a horizontal strip of
  frames as in the MRAA/FOMM data sets;
- (:func:`iter_frames` only) a camera index such as ``0``.

Resize policy, shared by the data sets and the runtime:

- :func:`center_crop_resize` crops the largest centred square, then resizes it to ``size × size``
  (aspect ratio kept, borders cut). This is what the data sets and the runtime use for frames that
  are not square; for square frames it is a plain resize.
- :func:`resize_square` stretches to ``size × size`` without cropping (aspect ratio not kept).
- Both use ``INTER_AREA`` when shrinking (averages pixels: no aliasing) and ``INTER_LINEAR`` when
  enlarging.

Pixel limit: every reader checks the size a picture or video declares before decoding it
(:mod:`jamsdk.image_header`; ``max_pixels`` per call, else the process-wide limit) and refuses a
larger one with an :class:`~jamsdk.errors.InputError`.

Writers (:func:`write_video`) go through :func:`jamsdk._atomic.atomic_path`, so a failed or
interrupted write leaves no partial file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import cv2
import numpy as np

from jamsdk._atomic import atomic_path
from jamsdk.errors import InputError
from jamsdk.image_header import OPENCV_ENV, check_image_bytes, check_pixels

VIDEO_EXTS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".gif")
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
WRITE_EXTS = (".mp4", ".avi", ".gif")

__all__ = [
    "IMAGE_EXTS",
    "VIDEO_EXTS",
    "WRITE_EXTS",
    "VideoInfo",
    "center_crop_resize",
    "decode_bytes",
    "frame_files",
    "iter_frames",
    "natural_key",
    "probe",
    "read_frames",
    "read_image",
    "resize_square",
    "split_strip",
    "to_rgb",
    "write_video",
]


# ---------------------------------------------------------------------------------------------
# Pixel conversion and resizing


def _describe(arr: np.ndarray) -> str:
    return f"{tuple(arr.shape)} {arr.dtype}"


def _to_uint8(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        return ((img.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if img.dtype == np.bool_:
        return img.astype(np.uint8) * 255
    if np.issubdtype(img.dtype, np.floating):
        if not np.isfinite(img).all():
            raise InputError(f"expected finite pixel values, got NaN or infinity in a {_describe(img)} image")
        # Float images are taken to be in [0, 1] (the model's range); values outside are clipped.
        return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    raise InputError(f"expected an image of uint8, uint16 or float in [0, 1], got {_describe(img)}")


def to_rgb(img: np.ndarray, background: int = 255) -> np.ndarray:
    """Convert a gray, gray+alpha, RGB or RGBA image (channel order RGB) to ``(H, W, 3)`` uint8 RGB.

    Alpha is composited onto a flat ``background`` gray level (white by default: transparent pixels
    of GIFs and PNGs carry arbitrary colours, and cartoon data such as MGif sits on white).
    uint16 is scaled to 8 bit, floats are taken to be in [0, 1].

    Raises:
        InputError: the array is not an image.
    """
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 2:
        return np.repeat(_to_uint8(img)[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] not in (2, 3, 4) or img.shape[0] == 0 or img.shape[1] == 0:
        raise InputError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image, got {_describe(img)}")
    img = _to_uint8(img)
    if img.shape[2] == 3:
        return img
    color = img[:, :, :1].repeat(3, axis=2) if img.shape[2] == 2 else img[:, :, :3]
    alpha = img[:, :, -1:]
    if np.all(alpha == 255):
        return np.ascontiguousarray(color)
    a = alpha.astype(np.float32) / 255.0
    out = color.astype(np.float32) * a + float(background) * (1.0 - a)
    return (out + 0.5).astype(np.uint8)


def _from_cv2(img: np.ndarray) -> np.ndarray:
    """OpenCV's BGR / BGRA / gray order → RGB uint8."""
    if img.ndim == 3 and img.shape[2] == 3:
        img = img[:, :, ::-1]
    elif img.ndim == 3 and img.shape[2] == 4:
        img = img[:, :, [2, 1, 0, 3]]
    return np.ascontiguousarray(to_rgb(img))


def _interpolation(src_hw: Sequence[int], dst_hw: Sequence[int]) -> int:
    shrinking = dst_hw[0] * dst_hw[1] < src_hw[0] * src_hw[1]
    return cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR


def _check_size(size: int | Sequence[int]) -> tuple[int, int]:
    hw = (size, size) if isinstance(size, (int, np.integer)) else tuple(int(s) for s in size)
    if len(hw) != 2 or min(hw) < 1:
        raise InputError(f"expected a size > 0 (an int or (height, width)), got {size!r}")
    return int(hw[0]), int(hw[1])


def resize_square(img: np.ndarray, size: int | Sequence[int]) -> np.ndarray:
    """Resize ``img`` to ``size × size`` (or ``(height, width)``) without cropping (may stretch)."""
    h, w = _check_size(size)
    if img.shape[:2] == (h, w):
        return img
    return cv2.resize(img, (w, h), interpolation=_interpolation(img.shape[:2], (h, w)))


def center_crop_resize(img: np.ndarray, size: int) -> np.ndarray:
    """Crop the largest centred square of ``img`` and resize it to ``size × size``."""
    h, w = img.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return resize_square(img[top:top + side, left:left + side], size)


# ---------------------------------------------------------------------------------------------
# Reading


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


def _existing(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file or folder")
    return p


def read_image(path: str | os.PathLike[str], max_pixels: int | None = None) -> np.ndarray:
    """Read one image file as ``(H, W, 3)`` uint8 RGB (gray, 16-bit and RGBA are converted).

    The size the file declares is checked against ``max_pixels`` (default: the process-wide limit of
    :mod:`jamsdk.image_header`) before anything is decoded.

    Raises:
        InputError: the file is missing, not a PNG/JPEG/BMP/WebP/TIFF/GIF picture, over the pixel
            limit, or cannot be decoded.
    """
    p = _existing(path)
    if p.is_dir():
        raise InputError(f"{p}: expected an image file, got a folder")
    try:
        with open(p, "rb") as fh:  # bytes + imdecode: non-ASCII paths work everywhere
            data = fh.read()
    except OSError as exc:
        raise InputError(f"cannot read {p}: {exc.strerror or exc}") from None
    if not data:
        raise InputError(f"{p}: cannot decode as an image (empty file)")
    check_image_bytes(data, str(p), max_pixels)
    return _from_cv2(decode_bytes(data, str(p), cv2.IMREAD_UNCHANGED))


def decode_bytes(data: bytes, what: str, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """``cv2.imdecode`` with one-line errors; call it only after :func:`~jamsdk.image_header.check_image_bytes`."""
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error as exc:
        if "CV_IO_MAX_IMAGE_PIXELS" in str(exc):
            raise InputError(f"{what}: over OpenCV's own pixel limit ({OPENCV_ENV}, 2**30 unless set before the "
                             "first picture is read; --max-pixels sets it when started from the command line)"
                             ) from None
        raise InputError(f"{what}: OpenCV cannot decode it ({str(exc).strip().splitlines()[-1]})") from None
    if img is None:
        raise InputError(f"{what}: cannot decode as an image (corrupt or unsupported format)")
    return img


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
    cap = cv2.VideoCapture(source)
    what = f"camera {source}" if isinstance(source, int) else str(source)
    if not cap.isOpened():
        cap.release()
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


def _iter_capture(cap: cv2.VideoCapture, where: str, max_frames: int | None) -> Iterator[np.ndarray]:
    count = 0
    try:
        while max_frames is None or count < max_frames:
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            count += 1
            yield _from_cv2(frame)
    finally:
        cap.release()
    if count == 0:
        raise InputError(f"{where}: no frame could be decoded (corrupt or empty video)")


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

    Raises:
        InputError: the source is missing, cannot be opened, declares frames over the pixel limit,
            or has no decodable frame.
    """
    if max_frames is not None and max_frames < 1:
        raise InputError(f"expected max_frames ≥ 1 or None, got {max_frames!r}")
    if _is_camera(source):
        yield from _iter_capture(_open_capture(int(source)), f"camera {source}", max_frames)
        return
    path = _existing(source)
    kind = _kind(path)
    if kind == "video":
        yield from _iter_capture(_open_capture(str(path), max_pixels), str(path), max_frames)
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
) -> np.ndarray:
    """Read a whole video as ``(T, H, W, 3)`` uint8 RGB.

    Args:
        path: a video file, an animated GIF, a folder of frames, or an image (one frame, or a
            horizontal strip of frames with ``frame_shape``).
        frame_shape: ``(H, W)`` (or ``(H, W, 3)``) of one frame. For an image it is the strip's frame
            size; other inputs are resized to it (MRAA's ``frame_shape``), without cropping.
        max_frames: read at most this many frames.
        max_pixels: pixel limit per picture or frame (default: the process-wide limit).

    Raises:
        InputError: the path is missing, unsupported, corrupt, over the pixel limit or holds no
            frame, or frames of a folder differ in size.
    """
    shape = _strip_shape(frame_shape)
    frames = list(iter_frames(path, shape, max_frames, max_pixels))
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
            raise InputError(f"camera {source}: no frame could be read")
        return VideoInfo("camera", frame.shape[1], frame.shape[0], None, fps)
    path = _existing(source)
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


# ---------------------------------------------------------------------------------------------
# Writing


def _check_frame(frame: np.ndarray, index: int, first: tuple[int, ...] | None) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise InputError(f"write_video: expected (H, W, 3) RGB frames, frame {index} is {_describe(frame)}")
    frame = np.ascontiguousarray(_to_uint8(frame))
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
        # ≈2 vs ≈16 gray levels on smooth gradients), so it is preferred when installed.
        imageio.mimsave(tmp, frames, format="GIF", duration=duration_ms, loop=0)
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
                raise InputError(f"{path}: OpenCV cannot open a video writer for {suffix}")
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
    return count
