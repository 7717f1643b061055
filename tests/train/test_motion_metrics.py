"""Motion metrics: each ranks the truth and a known-good output above no motion, and a blurred truth below
the truth; the neighbours where a one-line bug would hide (axes, time direction, lost parts)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from jamsdk.errors import InputError
from jamsdk.train import motion_metrics as mm
from jamsdk.train.pairs import PAIRS_STREAM, render_pair

PAIRS = [render_pair(np.random.default_rng([11, PAIRS_STREAM, j]), 8, 96) for j in range(3)]
KEYS = ("relative", "standard")


def _blur(frames: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    return np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in frames])


def _shift(frames: np.ndarray, dx: float, dy: float) -> np.ndarray:
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return np.stack([cv2.warpAffine(f, m, f.shape[1::-1], borderMode=cv2.BORDER_REPLICATE) for f in frames])


def _truth(p: dict, key: str) -> mm.PartTruth:
    return mm.PartTruth(p[key], p[f"{key}_labels"], p["background"], p["source"], p["source_labels"])


@pytest.mark.parametrize("j", range(len(PAIRS)))
@pytest.mark.parametrize("key", KEYS)
def test_part_error_ranks_truth_good_still_and_blur(j, key):
    p = PAIRS[j]
    truth = _truth(p, key)
    exact = truth.error(p[key])
    still = truth.error(np.broadcast_to(p["source"], p[key].shape))
    late = truth.error(np.concatenate([p[key][:1], p[key][:-1]]))  # one frame behind: good, not perfect
    blurred = truth.error(_blur(p[key]))
    assert exact["px"] < 0.3 and exact["lost"] == 0  # the classifier's own error on the truth
    assert still["px"] > 1.0 and still["frac"] == pytest.approx(still["px"] / truth.groups.figure_size)
    assert exact["px"] < late["px"] < still["px"]
    assert exact["px"] < blurred["px"]  # blur never scores better than the truth


@pytest.mark.parametrize("dx, dy", [(3, 0), (0, 3), (-2, 2)])
def test_part_error_is_the_displacement_in_pixels_on_either_axis(dx, dy):
    """The truth moved by (dx, dy) scores about |(dx, dy)|: catches a swapped axis or a lost scale."""
    p = PAIRS[0]
    truth = _truth(p, "standard")
    moved = truth.error(_shift(p["standard"], dx, dy))
    assert moved["px"] == pytest.approx(np.hypot(dx, dy), abs=0.6)
    assert moved["lost"] == 0


def test_a_lost_figure_scores_like_no_motion_not_better():
    p = PAIRS[1]
    truth = _truth(p, "relative")
    blank = truth.error(np.broadcast_to(p["background"], p["relative"].shape))
    still = truth.error(np.broadcast_to(p["source"], p["relative"].shape))
    assert blank["lost"] == 1.0
    assert blank["px"] == pytest.approx(still["px"], rel=0.1)


def test_colour_groups_merge_equal_fills_and_keep_distinct_ones():
    src = np.zeros((20, 20, 3), np.uint8)
    labels = np.zeros((20, 20), np.uint8)
    for part, (y, colour) in enumerate([(0, (200, 40, 40)), (5, (203, 42, 40)), (10, (40, 40, 200))], start=1):
        src[y:y + 4] = colour
        labels[y:y + 4] = part
    g = mm.colour_groups(src, labels)
    assert g.labels == ((1, 2), (3,))
    with pytest.raises(InputError, match="no labelled figure"):
        mm.colour_groups(src, np.zeros_like(labels))
    with pytest.raises(InputError, match="source_labels: expected"):
        mm.colour_groups(src, labels[:10])


@pytest.mark.parametrize("key", KEYS)
def test_flow_error_ranks_truth_still_blur_and_reversed(key):
    clip = PAIRS[2][key]
    exact = mm.flow_error(clip, clip)
    still = mm.flow_error(np.broadcast_to(clip[:1], clip.shape), clip)
    blurred = mm.flow_error(_blur(clip, 1.5), clip)
    backwards = mm.flow_error(clip[::-1].copy(), clip)
    assert exact["epe"] == 0.0
    assert still["epe"] == pytest.approx(still["truth_flow"], rel=1e-6) and still["truth_flow"] > 0.1
    assert 0 < blurred["epe"] < still["epe"]
    # Played backwards, every flow points the wrong way: worse than no motion (a sign or order bug in
    # one of the two flows would make it look good).
    assert backwards["epe"] > still["epe"]


def test_flow_error_inputs():
    clip = PAIRS[0]["relative"]
    with pytest.raises(InputError, match="at least 2 frames"):
        mm.flow_error(clip[:1], clip[:1])
    with pytest.raises(InputError, match="like the truth"):
        mm.flow_error(clip[:3], clip)
    with pytest.raises(InputError, match=r"\(T, S, S, 3\)"):
        mm.flow_error(clip[..., 0], clip)
    truth = _truth(PAIRS[0], "relative")
    with pytest.raises(InputError, match="frames like the truth"):
        truth.error(clip[:2])


def test_frame_errors_are_the_per_frame_parts_of_the_error():
    """Per-frame errors (the relative diagnostics' curves) average to the error, start at 0 for the still
    picture in relative mode (frame 0 is the source) and say which frame a shift was made in."""
    p = PAIRS[2]
    truth = _truth(p, "relative")
    still = np.broadcast_to(p["source"], p["relative"].shape)
    per_frame, lost = truth.frame_errors(still)
    assert per_frame.shape == (8,) and lost.shape == truth.visible.shape
    assert np.nanmean(per_frame) == pytest.approx(truth.error(still)["px"])
    assert per_frame[0] < 0.3 < per_frame[-1]
    late = p["relative"].copy()
    late[5] = _shift(p["relative"][5:6], 4, 0)[0]
    errs = truth.frame_errors(late)[0]
    assert errs[5] == pytest.approx(4, abs=0.6) and np.all(np.delete(errs, 5) < 0.3)
