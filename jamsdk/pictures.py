"""Reading pictures: one image file (or bytes) as ``(H, W, 3)`` uint8 RGB.

PNG, JPEG, BMP, WebP, TIFF and (the first frame of) GIF, decoded by OpenCV; gray, 16-bit and RGBA
pictures are converted by :func:`jamsdk.pixels.to_rgb`.

Limits: a picture file is a regular file within its size cap (:mod:`jamsdk.input_files`), and the
size and depth it declares are checked before decoding it (:mod:`jamsdk.image_header`; ``max_pixels``
per call, else the process-wide limit); a larger one is refused with an :class:`~jamsdk.errors.InputError`.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from jamsdk.errors import InputError
from jamsdk.image_header import OPENCV_ENV, check_image_bytes, check_image_start
from jamsdk.input_files import read_input
from jamsdk.pixels import from_cv2

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")

__all__ = ["IMAGE_EXTS", "decode_bytes", "must_exist", "read_image"]


def must_exist(path: str | os.PathLike[str]) -> Path:
    """``path`` as a Path when something exists there, else an InputError naming it."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file or folder")
    return p


def read_image(path: str | os.PathLike[str], max_pixels: int | None = None) -> np.ndarray:
    """Read one image file as ``(H, W, 3)`` uint8 RGB (gray, 16-bit and RGBA are converted).

    The file must be a regular file within the picture size cap (:mod:`jamsdk.input_files`); its
    first bytes must be a picture format, and the size and depth its header declares are checked
    against ``max_pixels`` (default: the process-wide limit of :mod:`jamsdk.image_header`), before
    the rest is read and before anything is decoded.

    Raises:
        InputError: the file is missing, not a regular file or over its size cap, not a
            PNG/JPEG/BMP/WebP/TIFF/GIF picture, over the pixel limit, or cannot be decoded.
    """
    p = must_exist(path)
    if p.is_dir():
        raise InputError(f"{p}: expected an image file, got a folder")
    data = read_input(p, "picture", what="picture", max_pixels=max_pixels,
                      head=lambda start: check_image_start(start, str(p), max_pixels))
    check_image_bytes(data, str(p), max_pixels)
    return from_cv2(decode_bytes(data, str(p), cv2.IMREAD_UNCHANGED))


def decode_bytes(data: bytes | bytearray, what: str, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
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
