"""jamsdk.runtime.frames: frame checks, the float range rule, rounding out, and the crop note."""

from __future__ import annotations

import numpy as np
import pytest

from jamsdk.errors import InputError
from jamsdk.runtime.frames import FLOAT_TOLERANCE, check_frame, crop_note, to_image, to_model_input


@pytest.mark.parametrize("shape", [(0, 64, 3), (64, 0, 3), (0, 0, 3)])
def test_empty_frames_are_input_errors(shape):
    with pytest.raises(InputError, match=rf"got \({shape[0]}, {shape[1]}, 3\) uint8"):
        check_frame(np.zeros(shape, np.uint8))
    with pytest.raises(InputError):
        to_model_input(np.zeros(shape, np.uint8), 32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_float_frames_in_0_255_are_refused(dtype):
    u8 = (np.arange(48 * 48 * 3) % 256).astype(np.uint8).reshape(48, 48, 3)
    with pytest.raises(InputError, match=r"driving frame: float values must lie in \[0, 1\], got values from 0 to "
                                         r"255 .*0\.\.255 pixel values\); divide by 255, or pass the uint8 frame"):
        to_model_input(u8.astype(dtype), 32, what="driving frame")
    ok = to_model_input(u8.astype(dtype) / dtype(255), 32)  # the fix the message gives
    assert np.abs(ok - to_model_input(u8, 32)).max() < 2e-3


@pytest.mark.parametrize("low, high, ok", [
    (0.0, 1.0, True), (-FLOAT_TOLERANCE, 1 + FLOAT_TOLERANCE, True),  # resampling overshoot is clipped
    (-0.05, 1.0, False), (0.0, 1.05, False), (-1.0, 1.0, False),
])
def test_float_tolerance(low, high, ok):
    frame = np.full((8, 8, 3), 0.5, np.float32)
    frame[0, 0, 0], frame[1, 1, 1] = low, high
    if ok:
        x = to_model_input(frame, 8)
        assert x.min() >= 0.0 and x.max() <= 1.0
    else:
        with pytest.raises(InputError, match="float values must lie in"):
            check_frame(frame)


@pytest.mark.parametrize("offset", [-0.4, 0.0, 0.4])
def test_to_image_rounds_to_the_nearest_level(offset):
    # every level ± 0.4 of a step: rounding gives the level back, truncation loses the ones below it
    levels = np.arange(256, dtype=np.float32).reshape(16, 16)
    pred = np.clip(levels + np.float32(offset), 0, 255) / np.float32(255.0)
    out = to_image(np.broadcast_to(pred, (1, 3, 16, 16)).copy(), 16)
    assert out.dtype == np.uint8 and out.shape == (16, 16, 3)
    assert np.array_equal(out[:, :, 1], levels.astype(np.uint8))


def test_to_image_clips():
    assert np.array_equal(to_image(np.full((1, 3, 2, 2), 1.5, np.float32), 2), np.full((2, 2, 3), 255, np.uint8))
    assert np.array_equal(to_image(np.full((1, 3, 2, 2), -0.5, np.float32), 2), np.zeros((2, 2, 3), np.uint8))


def test_crop_note_says_what_is_cut():
    assert crop_note((64, 64, 3)) is None
    note = crop_note((480, 640, 3), "the driving frames")
    assert note == ("the driving frames: 640×480 (W×H), only the centred 480×480 square is animated (80 px each cut "
                    "from the left and right); pad to a square beforehand to keep everything")
    assert "1 and 2 px cut from the top and bottom" in crop_note((103, 100, 3))


def test_pad_to_square_and_back():
    from jamsdk.runtime.frames import pad_to_square, unpad

    frame = np.full((40, 100, 3), 7, np.uint8)
    frame[:, :10] = 200  # a figure touching the left edge does not set the fill colour
    padded, box = pad_to_square(frame)
    assert padded.shape == (100, 100, 3) and box == (30, 0, 40, 100)
    assert np.array_equal(padded[30:70], frame) and (padded[:30] == 7).all() and (padded[70:] == 7).all()
    assert np.array_equal(unpad(padded, box, 100), frame)
    small = unpad(padded[::2, ::2], box, 100)  # a result at half the padded side
    assert small.shape == (20, 50, 3)
    square = np.zeros((8, 8, 3), np.float32)
    assert pad_to_square(square)[0] is square
