"""Views: heatmap-grid → pixel geometry, region ellipses, side-by-side, and animate's options."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from jamsdk.errors import InputError
from jamsdk.runtime.views import RegionGeometry, compose, draw_regions, region_colors


def test_geometry_of_the_heatmap_grid():
    # 128² model, scale 1/4, pad 0: 32² hourglass, 26² heatmap whose cells 0 and 25 sit on
    # hourglass cells 3 and 28, i.e. picture pixels 12 and 112.
    g = RegionGeometry.for_model(128, 0.25, 0)
    c, _ = g.to_pixels(np.array([[-1.0, 1.0]]), np.zeros((1, 2, 2)), 128)
    np.testing.assert_allclose(c, [[12.0, 112.0]])
    # vox-style pad 3 at 256²: the heatmap is the 64² hourglass grid, pixels 0 … 252.
    g = RegionGeometry.for_model(256, 0.25, 3)
    c, cov = g.to_pixels(np.array([[-1.0, 1.0]]), np.eye(2)[None] * 0.01, 512)
    np.testing.assert_allclose(c, [[0.5, 504.5]])  # pixel centres scale about the pixel grid
    np.testing.assert_allclose(cov[0], np.eye(2) * 0.01 * 252.0**2)


def _spread_regions(k: int) -> dict[str, np.ndarray]:
    ang = np.linspace(0, 2 * np.pi, k, endpoint=False)
    shift = np.stack([0.6 * np.cos(ang), 0.6 * np.sin(ang)], -1)[None]
    covar = np.tile(np.diag([0.012, 0.004]), (1, k, 1, 1))
    return {"shift": shift.astype(np.float32), "covar": covar.astype(np.float32)}


@pytest.mark.parametrize("k", [5, 10])
def test_each_region_is_one_ellipse_in_its_own_colour(k):
    g = RegionGeometry.for_model(128, 0.25, 0)
    params = _spread_regions(k)
    panel = np.zeros((256, 256, 3), np.uint8)
    out = draw_regions(panel, params, g)
    centres, covs = g.to_pixels(params["shift"], params["covar"], 256)
    colors = region_colors(k)
    assert len(set(colors)) == k
    for (cx, cy), cov, col in zip(centres, covs, colors):
        # on black, an anti-aliased pixel is the colour times its coverage: match the direction
        v = out.astype(float)
        cos = (v @ np.array(col, float)) / (np.linalg.norm(v, axis=-1) * np.linalg.norm(col) + 1e-9)
        ys, xs = np.nonzero((v.max(-1) > 40) & (cos > 0.995))
        # its pixels outline the 1-σ ellipse: ±√Σxx horizontally, ±√Σyy vertically about the centre
        ax, ay = np.sqrt(cov[0, 0]), np.sqrt(cov[1, 1])
        assert abs(xs.min() - (cx - ax)) <= 2 and abs(xs.max() - (cx + ax)) <= 2, col
        assert abs(ys.min() - (cy - ay)) <= 2 and abs(ys.max() - (cy + ay)) <= 2, col
        perimeter = np.pi * (3 * (ax + ay) - np.sqrt((3 * ax + ay) * (ax + 3 * ay)))  # Ramanujan
        assert len(xs) > 0.6 * perimeter, col
    # nothing else was drawn: every lit pixel is near one of the K ellipses
    lit = out.max(-1) > 0
    near = np.zeros_like(lit)
    for (cx, cy), cov in zip(centres, covs):
        yy, xx = np.mgrid[:256, :256]
        r = ((xx - cx) ** 2 / cov[0, 0] + (yy - cy) ** 2 / cov[1, 1])
        near |= r < 1.6
    assert not (lit & ~near).any()
    assert np.array_equal(panel, np.zeros_like(panel))  # the input is not drawn on


def test_compose_layouts():
    rng = np.random.default_rng(0)
    result = rng.integers(0, 255, (64, 64, 3), np.uint8)
    source = rng.integers(0, 255, (100, 80, 3), np.uint8)
    driving = rng.integers(0, 255, (48, 64, 3), np.uint8)
    assert compose(result) is result
    sbs = compose(result, layout="side-by-side", source=source, driving=driving)
    assert sbs.shape == (64, 192, 3)
    np.testing.assert_array_equal(sbs[:, 128:], result)
    with pytest.raises(InputError, match="layout: expected one of"):
        compose(result, layout="grid")
    with pytest.raises(InputError, match="source picture and the driving frame"):
        compose(result, layout="side-by-side")


def _read(path):
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            return frames
        frames.append(f[:, :, ::-1])


def test_animate_side_by_side_with_regions(demo_model, demo_assets, tmp_path):
    from jamsdk.runtime.render import render_video

    src, drv = demo_assets / "example_source.png", str(demo_assets / "example_driving.mp4")
    plain = render_video(demo_model, src, drv, tmp_path / "plain.avi", backend="onnxruntime", max_frames=3,
                         show_progress=False, layout="side-by-side", threads=1)
    drawn = render_video(demo_model, src, drv, tmp_path / "regions.avi", backend="onnxruntime", max_frames=3,
                         show_progress=False, layout="side-by-side", show_regions=True, threads=1)
    a, b = _read(plain.out), _read(drawn.out)
    assert len(a) == len(b) == 3
    for f in a + b:
        assert f.shape == (128, 384, 3)
    # ellipses on the driving and result panels (JPEG-coded: compare with a tolerance)
    for panel in (slice(128, 256), slice(256, 384)):
        changed = np.abs(a[1][:, panel].astype(int) - b[1][:, panel].astype(int)).max(-1) > 60
        assert changed.sum() > 150, changed.sum()
    np.testing.assert_allclose(a[1][:, :128].astype(int), b[1][:, :128].astype(int), atol=8)  # source untouched


def test_animate_cli_options(demo_model, demo_assets, tmp_path):
    out = tmp_path / "best.avi"
    cmd = [sys.executable, "-m", "jamsdk", "animate", "--model", str(demo_model),
           "--source", str(demo_assets / "example_source.png"),
           "--driving", str(demo_assets / "example_driving.mp4"), "--out", str(out), "--backend", "onnxruntime",
           "--max-frames", "4", "--best-frame", "--smoothing", "2", "--layout", "side-by-side", "--show-regions",
           "--no-progress", "--threads", "1"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert _read(out)[0].shape == (128, 384, 3)
    bad = subprocess.run(cmd[:9] + ["0", "--out", str(tmp_path / "x.avi"), "--best-frame"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "--best-frame" in bad.stderr.strip().splitlines()[-1]


def test_views_with_fit_pad(demo_model, demo_assets, demo_source, tmp_path):
    from jamsdk.runtime.render import render_video
    from jamsdk.video import read_frames

    wide = tmp_path / "wide.png"
    cv2.imwrite(str(wide), np.pad(demo_source, ((0, 0), (64, 64), (0, 0)), mode="edge")[:, :, ::-1])  # 384×256
    drv = str(demo_assets / "example_driving.mp4")
    kw = dict(backend="onnxruntime", max_frames=2, show_progress=False, fit="pad", threads=1, show_regions=True)
    res = render_video(demo_model, wide, drv, tmp_path / "r.avi", **kw)
    assert res.size == (128, 85)  # the 128² square cut back to the source's 3:2 (regions drawn before)
    sbs = render_video(demo_model, wide, drv, tmp_path / "s.avi", layout="side-by-side", **kw)
    assert sbs.size == (384, 128) and read_frames(tmp_path / "s.avi").shape == (2, 128, 384, 3)
