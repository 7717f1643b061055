"""Pixels: any image array to RGB uint8, and the crop/resize policy every part of jamsdk shares.

:func:`to_rgb` turns gray, gray+alpha, 16-bit, float and RGBA arrays into ``(H, W, 3)`` uint8 RGB;
every reader (:mod:`jamsdk.pictures`, :mod:`jamsdk.video`) returns its frames through it.

Resize policy, shared by the data sets and the runtime (so train and inference frames match):

- :func:`center_crop_resize` crops the largest centred square, then resizes it to ``size × size``
  (aspect ratio kept, borders cut). This is what the data sets and the runtime use for frames that
  are not square; for square frames it is a plain resize.
- :func:`resize_square` stretches to ``size × size`` without cropping (aspect ratio not kept).
- Both use ``INTER_AREA`` when shrinking (averages pixels: no aliasing) and ``INTER_LINEAR`` when
  enlarging.

numpy and OpenCV only (no torch); reads and writes no files.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from jamsdk.errors import InputError

__all__ = ["center_crop_resize", "from_cv2", "resize_square", "to_rgb", "to_uint8"]


def _describe(arr: np.ndarray) -> str:
    return f"{tuple(arr.shape)} {arr.dtype}"


def to_uint8(img: np.ndarray) -> np.ndarray:
    """``img`` as uint8: 16-bit scaled to 8 bit, bool to 0/255, floats taken to be in [0, 1] (clipped)."""
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        # round(x / 257), in one pass without a 32-bit copy (equal to (x + 128) // 257 for every x:
        # 257 is odd, so no x / 257 ends in exactly .5)
        return cv2.convertScaleAbs(img, alpha=1.0 / 257.0)
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
        return np.repeat(to_uint8(img)[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] not in (2, 3, 4) or img.shape[0] == 0 or img.shape[1] == 0:
        raise InputError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image, got {_describe(img)}")
    img = to_uint8(img)
    if img.shape[2] == 3:
        return img
    color = img[:, :, :1].repeat(3, axis=2) if img.shape[2] == 2 else img[:, :, :3]
    alpha = img[:, :, -1:]
    if np.all(alpha == 255):
        return np.ascontiguousarray(color)
    out = np.empty(color.shape, np.uint8)
    # round(color·a/255 + background·(1 − a/255)) in 16-bit integers (255·255 fits), a band of rows
    # at a time: the working copies stay a few MB, whatever the picture's size.
    rows = max(1, (1 << 20) // max(1, img.shape[1]))
    for top in range(0, img.shape[0], rows):
        a = alpha[top:top + rows].astype(np.uint16)
        mix = color[top:top + rows].astype(np.uint16) * a
        mix += (255 - a) * np.uint16(background)
        mix += 127
        mix //= 255
        out[top:top + rows] = mix
    return out


def from_cv2(img: np.ndarray) -> np.ndarray:
    """OpenCV's BGR / BGRA / gray order → RGB uint8 (8-bit first: the reordered copy is then the small one)."""
    img = to_uint8(img)
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
