"""Reference search: the measure's invariances and finding a known best frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from jamsdk.errors import InputError
from jamsdk.runtime.reference import best_reference, layout_distance


def _layout(rng: np.random.Generator, k: int = 10) -> dict[str, np.ndarray]:
    a = rng.normal(0, 0.1, (1, k, 2, 2)) + np.eye(2) * 0.2
    return {"shift": rng.uniform(-0.7, 0.7, (1, k, 2)).astype(np.float32),
            "covar": np.einsum("bkij,bklj->bkil", a, a).astype(np.float32)}


def _moved(p: dict[str, np.ndarray], offset: float, scale: float) -> dict[str, np.ndarray]:
    return {"shift": p["shift"] * scale + offset, "covar": p["covar"] * scale**2}


def test_distance_ignores_position_and_size_but_not_pose():
    rng = np.random.default_rng(0)
    src = _layout(rng)
    assert layout_distance(src, src) == 0.0
    assert layout_distance(src, _moved(src, 0.2, 0.6)) < 1e-10
    other = _layout(rng)
    assert layout_distance(src, other) > 0.1


def test_best_reference_picks_the_known_frame():
    rng = np.random.default_rng(1)
    src = _layout(rng)
    cands = [_layout(rng) for _ in range(12)]
    near = {k: v.copy() for k, v in _moved(src, -0.1, 0.8).items()}
    near["shift"] = near["shift"] + rng.normal(0, 0.01, near["shift"].shape)  # a slightly different pose
    cands.insert(7, near)
    assert best_reference(src, cands) == 7


def test_no_candidates_and_mismatched_regions():
    rng = np.random.default_rng(2)
    with pytest.raises(InputError, match="at least one candidate"):
        best_reference(_layout(rng), [])
    with pytest.raises(InputError, match="10 regions, candidate has 5"):
        layout_distance(_layout(rng), _layout(rng, 5))


def test_animator_finds_the_frame_posed_like_the_source(demo_model, demo_source, demo_frames):
    from jamsdk.runtime.animator import Animator

    # The source picture itself, moved and shrunk a little on a driving frame's background,
    # hidden among the 40 driving frames of another figure: its regions match the source's best.
    h, w = demo_source.shape[:2]
    m = np.float32([[0.85, 0, 0.1 * w], [0, 0.85, 0.05 * h]])
    posed = cv2.warpAffine(demo_source, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
    frames = list(demo_frames)
    frames.insert(23, posed)
    with Animator(demo_model, backend="onnxruntime", threads=1) as anim:
        anim.set_source(demo_source)
        anim.keep_regions = True
        assert anim.find_reference(iter(frames)) == 23
        before = anim.stats().get("region_predictor", {}).get("count", 0)
        anim.set_reference(posed)
        assert anim.stats().get("region_predictor", {}).get("count", 0) == before  # not a streamed frame
        anim.run(posed)  # the reference itself drives no motion: the source's regions, unmoved
        moved, source = anim.last_regions["transferred"], anim.last_regions["source"]
        np.testing.assert_allclose(moved["shift"], source["shift"], atol=1e-6)
        np.testing.assert_allclose(moved["affine"], source["affine"], atol=1e-4)
        anim.run(frames[0])
        assert np.abs(anim.last_regions["transferred"]["shift"] - source["shift"]).max() > 1e-3
    with Animator(demo_model, backend="onnxruntime", threads=1) as anim:
        with pytest.raises(InputError, match="no source picture"):
            anim.find_reference(frames[:2])


def test_covariance_alone_decides_when_the_centres_agree():
    """Candidates with the source's exact centres that differ only in region shape: the covariance
    term must pick the one whose ellipses match (the centres alone cannot tell them apart)."""
    rng = np.random.default_rng(4)
    src = _layout(rng)
    cands = []
    for k in range(6):
        a = rng.normal(0, 0.1, (1, 10, 2, 2)) + np.eye(2) * 0.2
        cands.append({"shift": src["shift"].copy(), "covar": np.einsum("bkij,bklj->bkil", a, a).astype(np.float32)})
    near = {"shift": src["shift"].copy(), "covar": src["covar"] * 1.02}  # the source's shapes, slightly scaled
    cands.insert(4, near)
    assert best_reference(src, cands) == 4
    assert layout_distance(src, near) < min(layout_distance(src, c) for i, c in enumerate(cands) if i != 4)
    assert layout_distance(src, cands[0]) > 0  # same centres, other shapes: a distance
