"""Frames in and out of the model: checks, crop/resize policy, layout and range conversion.

Input policy (the one :mod:`jamsdk.pixels` sets for data sets and runtime alike): the largest
centred square of the frame is cut out and resized to the model's ``S × S`` (``INTER_AREA`` when
shrinking, ``INTER_LINEAR`` when enlarging). Frames are ``(H, W, 3)`` RGB (BGR with ``bgr=True``),
``uint8`` in [0, 255] or float in [0, 1]; NaN or infinite values are rejected, and so are float
values outside [0, 1] by more than :data:`FLOAT_TOLERANCE` (a float frame in 0..255, the usual
``frame.astype(np.float32)`` slip, would otherwise be clipped to white); values within the tolerance
are clipped.

Output: ``(S, S, 3)`` uint8 at the model's resolution by default; ``output_size="crop"`` resizes it
back to the side of the centred square the input was cut to (``min(H, W)``), and an int ``N`` to
``N × N``. The output is square in every case: the model animates the square crop only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jamsdk.errors import InputError
from jamsdk.pixels import center_crop_resize, resize_square

OUTPUT_SIZES = ("model", "crop")
FLOAT_TOLERANCE = 0.01
"""How far outside [0, 1] a float frame may stray (resampling overshoot) before it is an error."""


def check_float_range(x: np.ndarray, what: str = "frame") -> None:
    """InputError when a float array leaves [0, 1] by more than :data:`FLOAT_TOLERANCE`."""
    lo, hi = float(np.min(x)), float(np.max(x))
    if lo < -FLOAT_TOLERANCE or hi > 1.0 + FLOAT_TOLERANCE:
        hint = (" (it looks like 0..255 pixel values)" if hi > 1.5 and lo >= -FLOAT_TOLERANCE else "")
        raise InputError(f"{what}: float values must lie in [0, 1], got values from {lo:g} to {hi:g} in a "
                         f"{tuple(x.shape)} {x.dtype} array{hint}; divide by 255, or pass the uint8 frame")


def check_model_tensor(x: Any, size: int, what: str) -> None:
    """InputError unless ``x`` is a ``(1, 3, size, size)`` float32 array, finite, in [0, 1]."""
    shape = (1, 3, size, size)
    if not isinstance(x, np.ndarray) or x.dtype != np.float32 or x.shape != shape:
        got = f"{tuple(x.shape)} {x.dtype}" if isinstance(x, np.ndarray) else type(x).__name__
        raise InputError(f"{what}: expected a {shape} float32 array in [0, 1], got {got}")
    if not np.isfinite(x).all():
        raise InputError(f"{what}: NaN or infinite values")
    check_float_range(x, what)


def check_frame(frame: Any, what: str = "frame") -> np.ndarray:
    """The frame as an ``(H, W, 3)`` uint8 or float array; InputError naming expected vs got."""
    if not isinstance(frame, np.ndarray):
        raise InputError(f"{what}: expected an (H, W, 3) uint8 numpy array, got {type(frame).__name__}")
    ok_dtype = frame.dtype == np.uint8 or np.issubdtype(frame.dtype, np.floating)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] < 1 or frame.shape[1] < 1 or not ok_dtype:
        raise InputError(f"{what}: expected an (H, W, 3) uint8 (or float in [0, 1]) frame, "
                         f"got {tuple(frame.shape)} {frame.dtype}")
    if frame.dtype != np.uint8:
        if not np.isfinite(frame).all():
            bad = int(np.size(frame) - np.count_nonzero(np.isfinite(frame)))
            raise InputError(f"{what}: {bad} NaN or infinite value(s) in a {tuple(frame.shape)} {frame.dtype} frame")
        check_float_range(frame, what)
    return frame


def to_model_input(frame: Any, size: int, bgr: bool = False, what: str = "frame") -> np.ndarray:
    """``(H, W, 3)`` frame → ``(1, 3, size, size)`` float32 RGB in [0, 1] (centre crop, resize)."""
    frame = check_frame(frame, what)
    if frame.dtype == np.uint8:
        img = center_crop_resize(frame, size).astype(np.float32) * np.float32(1.0 / 255.0)
    else:
        # Float frames keep their precision through the resize (cv2 resizes float32 natively).
        img = center_crop_resize(np.clip(frame, 0.0, 1.0).astype(np.float32, copy=False), size)
    if bgr:
        img = img[:, :, ::-1]
    return np.ascontiguousarray(img.transpose(2, 0, 1)[None])


def crop_note(shape: tuple[int, ...], what: str = "the frames",
              hint: str = "pad to a square beforehand to keep everything") -> str | None:
    """One line saying what the centre crop cuts from a non-square ``(H, W, ...)`` input; None if square."""
    h, w = int(shape[0]), int(shape[1])
    if h == w:
        return None
    cut = abs(w - h)
    sides = "left and right" if w > h else "top and bottom"
    each = f"{cut // 2} and {cut - cut // 2} px" if cut % 2 else f"{cut // 2} px each"
    side = min(h, w)
    return (f"{what}: {w}×{h} (W×H), only the centred {side}×{side} square is animated ({each} cut from the "
            f"{sides}); {hint}")


def pad_to_square(frame: Any, what: str = "frame") -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """``frame`` centred on a square of its longer side, filled with its border's median colour.

    Returns:
        ``(padded, (top, left, height, width))``: where the original lies in the padded square.
    """
    frame = check_frame(frame, what)
    h, w = frame.shape[:2]
    if h == w:
        return frame, (0, 0, h, w)
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    # A plain fill like the backgrounds the models see; the median ignores a figure touching the edge.
    border = np.concatenate([frame[0], frame[-1], frame[:, 0], frame[:, -1]])
    out = np.empty((side, side, 3), frame.dtype)
    out[:] = np.median(border, axis=0).astype(frame.dtype)
    out[top:top + h, left:left + w] = frame
    return out, (top, left, h, w)


def unpad(image: np.ndarray, box: tuple[int, int, int, int], padded_side: int) -> np.ndarray:
    """The part of a square result of a :func:`pad_to_square` input that shows the original area."""
    scale = image.shape[0] / padded_side
    top, left, h, w = box
    t, l = int(round(top * scale)), int(round(left * scale))
    hh, ww = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
    return np.ascontiguousarray(image[t:t + hh, l:l + ww])


def output_side(output_size: str | int, model_size: int, frame_shape: tuple[int, ...]) -> int:
    """The side of the square output frame for ``output_size`` (see the module docstring)."""
    if output_size == "model":
        return model_size
    if output_size == "crop":
        return int(min(frame_shape[0], frame_shape[1]))
    return int(output_size)


def check_output_size(output_size: Any) -> str | int:
    if output_size in OUTPUT_SIZES:
        return output_size
    if isinstance(output_size, (int, np.integer)) and not isinstance(output_size, bool) and output_size > 0:
        return int(output_size)
    raise InputError(f"output_size: expected 'model', 'crop' or a positive int, got {output_size!r}")


def to_image(prediction: np.ndarray, side: int, bgr: bool = False) -> np.ndarray:
    """``(1, 3, S, S)`` float prediction → ``(side, side, 3)`` uint8 (RGB, or BGR with ``bgr``)."""
    img = prediction[0].transpose(1, 2, 0)
    if bgr:
        img = img[:, :, ::-1]
    img = (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if img.shape[0] != side:
        img = resize_square(np.ascontiguousarray(img), side)
    return np.ascontiguousarray(img)


__all__ = ["FLOAT_TOLERANCE", "OUTPUT_SIZES", "check_float_range", "check_frame", "check_model_tensor", "check_output_size", "crop_note", "pad_to_square", "unpad", "output_side", "to_image", "to_model_input"]
