"""Host-side relative-mode math (numpy) against torch's closed forms and a plain numpy reference."""

import numpy as np
import pytest

from jamsdk.errors import InputError
from jamsdk.runtime import regions

torch = pytest.importorskip("torch")


def random_params(rng, k=5):
    a = rng.normal(size=(1, k, 2, 2)).astype(np.float32) * 0.3 + np.eye(2, dtype=np.float32)
    cov = (a @ a.transpose(0, 1, 3, 2) * 0.01).astype(np.float32)
    return {"shift": rng.uniform(-0.8, 0.8, (1, k, 2)).astype(np.float32), "covar": cov, "affine": a}


def test_inverse_and_matmul_match_torch_closed_forms():
    from jamsdk.model import linalg2x2

    rng = np.random.default_rng(0)
    m = rng.normal(size=(64, 2, 2)).astype(np.float32)
    m[0] = 0.0  # singular: both guard |det| the same way
    n = rng.normal(size=(64, 2, 2)).astype(np.float32)
    np.testing.assert_array_equal(regions.inverse(m), linalg2x2.inverse(torch.from_numpy(m)).numpy())
    np.testing.assert_array_equal(regions.matmul(m, n),
                                  linalg2x2.matmul(torch.from_numpy(m), torch.from_numpy(n)).numpy())
    well = m[1:][np.abs(np.linalg.det(m[1:])) > 0.1]
    np.testing.assert_allclose(regions.inverse(well), np.linalg.inv(well), rtol=1e-5, atol=1e-5)
    assert np.isfinite(regions.inverse(m[:1])).all()


def test_relative_params_match_numpy_reference():
    rng = np.random.default_rng(1)
    src, drv, init = random_params(rng), random_params(rng), random_params(rng)
    scale = regions.relative_scale(src, init)
    # reference straight from the formulas, float64 with numpy's own inverse
    ref_scale = np.sqrt(_area(src["shift"][0])) / np.sqrt(_area(init["shift"][0]))
    assert scale == pytest.approx(ref_scale, rel=1e-6)
    out = regions.relative_params(src, drv, init, scale)
    s64 = {k: v.astype(np.float64) for k, v in src.items()}
    d64 = {k: v.astype(np.float64) for k, v in drv.items()}
    i64 = {k: v.astype(np.float64) for k, v in init.items()}
    np.testing.assert_allclose(out["shift"], s64["shift"] + (d64["shift"] - i64["shift"]) * ref_scale,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["affine"], d64["affine"] @ np.linalg.inv(i64["affine"]) @ s64["affine"],
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(out["covar"], drv["covar"])  # kept from driving frame t
    assert all(v.dtype == np.float32 for v in out.values())


def test_relative_params_match_jam_model_transfer_params():
    from jamsdk.config import load_model_config
    from jamsdk.model.jam import JamModel

    rng = np.random.default_rng(2)
    src, drv, init = random_params(rng, 4), random_params(rng, 4), random_params(rng, 4)
    model = JamModel(load_model_config("tiny-mraa"))
    t = lambda p: {k: torch.from_numpy(v) for k, v in p.items()}  # noqa: E731
    ref = model.transfer_params(t(src), t(drv), t(init), "relative")
    out = regions.relative_params(src, drv, init, regions.relative_scale(src, init))
    for key in regions.PARAM_NAMES:
        np.testing.assert_allclose(out[key], ref[key].numpy(), rtol=0, atol=1e-6)


def test_reference_frame_itself_maps_to_the_source():
    rng = np.random.default_rng(3)
    src, init = random_params(rng), random_params(rng)
    out = regions.relative_params(src, init, init, regions.relative_scale(src, init))
    np.testing.assert_allclose(out["shift"], src["shift"], atol=1e-6)
    np.testing.assert_allclose(out["affine"], src["affine"], atol=1e-5)


def test_degenerate_driving_hull_gives_unit_scale_and_missing_keys_raise():
    rng = np.random.default_rng(4)
    src, init = random_params(rng), random_params(rng)
    init["shift"][:] = 0.25  # all regions on one point
    assert regions.relative_scale(src, init) == 1.0
    with pytest.raises(InputError, match="missing"):
        regions.relative_params(src, {"shift": src["shift"]}, init, 1.0)


def _area(points):
    """Convex-hull area from OpenCV (an implementation independent of jamsdk.geometry)."""
    import cv2

    hull = cv2.convexHull(points.astype(np.float32))
    return float(cv2.contourArea(hull))


def test_latency_stats_window_and_counts():
    from jamsdk.runtime.stats import LatencyStats

    stats = LatencyStats(window=4)
    for ms in (100, 1, 2, 3, 4, 5):
        stats.add("x", ms / 1e3)
    s = stats.summary()["x"]
    assert s["count"] == 6  # over the whole life
    assert s["mean_ms"] == pytest.approx(3.5)  # over the last 4 samples only (2, 3, 4, 5)
    assert s["p50_ms"] == pytest.approx(3.5) and s["p90_ms"] == pytest.approx(4.7)
