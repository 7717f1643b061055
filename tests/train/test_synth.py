"""jamsdk.train.synth and ``jamsdk synth``: determinism, motion, articulation, layout, atomicity."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from jamsdk.cli import main
from jamsdk.errors import InputError
from jamsdk.train import synth
from jamsdk.train.figures import BODY, FIRST_LIMB, HEAD, TAIL, render_clip
from jamsdk.train.synth import write_dataset
from jamsdk.video import read_frames


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_render_clip_shape_and_determinism():
    a = render_clip(np.random.default_rng(7), 6, 48)
    b = render_clip(np.random.default_rng(7), 6, 48)
    c = render_clip(np.random.default_rng(8), 6, 48)
    assert a.shape == (6, 48, 48, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    with pytest.raises(InputError, match="frames"):
        render_clip(np.random.default_rng(0), 0, 48)
    with pytest.raises(InputError, match="size"):
        render_clip(np.random.default_rng(0), 4, 8)


@pytest.mark.parametrize("seed", range(6))
def test_figures_move(seed):
    video = render_clip(np.random.default_rng([99, seed]), 12, 64).astype(np.float32)
    diffs = np.abs(np.diff(video, axis=0)).mean(axis=(1, 2, 3))
    assert np.all(diffs > 0), diffs  # every frame differs from the previous one
    # ...and over the clip the figure moves visibly, not by a few stray pixels.
    assert np.abs(video[-1] - video[0]).mean() > 1.0


def _centroid(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean(), ys.mean()])


@pytest.mark.parametrize("seed", range(6))
def test_figures_are_articulated(seed):
    """Parts move relative to each other: no single similarity transform explains the motion.

    Under a rigid motion plus uniform scaling, the ratio of two distances between part
    centroids stays constant. Here the ratio |lower limb − body| / |head − body| must change.
    """
    video, labels = render_clip(np.random.default_rng([5, seed]), 24, 96, with_labels=True)
    assert labels.shape == video.shape[:3]
    # The labels cover what is drawn: away from part edges (anti-aliasing, outlines), pixels that
    # no frame labels are static background, while labelled pixels change over the clip.
    figure_any = cv2.dilate((labels > 0).any(axis=0).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    spread = video.max(axis=0).astype(int) - video.min(axis=0)
    assert spread[~figure_any].max() == 0
    assert (spread.max(axis=-1)[(labels > 0).any(axis=0)] > 0).mean() > 0.3
    present = {int(v) for v in np.unique(labels)}
    assert {BODY, HEAD, TAIL, FIRST_LIMB, FIRST_LIMB + 1} <= present
    ratios = []
    for lab in labels:
        body = _centroid(lab == BODY)
        head = _centroid(lab == HEAD)
        limb = _centroid(lab == FIRST_LIMB + 1)  # lower segment of the first (front) limb
        ratios.append(np.linalg.norm(limb - body) / np.linalg.norm(head - body))
    ratios = np.array(ratios)
    assert ratios.max() / ratios.min() > 1.1, ratios


def test_write_dataset_layout_and_bytes(tmp_path):
    s = write_dataset(tmp_path / "a", clips=5, frames=3, size=32, seed=1)
    assert (s.train, s.test) == (4, 1)
    assert sorted(p.name for p in (tmp_path / "a" / "train").iterdir()) == [f"clip_0000{i}" for i in range(4)]
    assert [p.name for p in (tmp_path / "a" / "test").iterdir()] == ["clip_00004"]
    assert len(list((tmp_path / "a" / "train" / "clip_00000").glob("*.png"))) == 3
    assert s.bytes == sum(len(b) for b in tree_bytes(tmp_path / "a").values())

    write_dataset(tmp_path / "b", clips=5, frames=3, size=32, seed=1)
    write_dataset(tmp_path / "c", clips=5, frames=3, size=32, seed=2)
    assert tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")
    a, c = tree_bytes(tmp_path / "a"), tree_bytes(tmp_path / "c")
    assert a.keys() == c.keys()
    assert all(a[k] != c[k] for k in a if k.endswith(".png"))
    # The first clips do not depend on how many clips are written.
    write_dataset(tmp_path / "d", clips=2, frames=3, size=32, seed=1, test_fraction=0.0)
    assert tree_bytes(tmp_path / "d")["train/clip_00001/00002.png"] == a["train/clip_00001/00002.png"]


@pytest.mark.parametrize("fmt", ["gif", "mp4"])
def test_write_dataset_video_formats(tmp_path, fmt):
    write_dataset(tmp_path / "a", clips=2, frames=4, size=32, seed=3, fmt=fmt)
    write_dataset(tmp_path / "b", clips=2, frames=4, size=32, seed=3, fmt=fmt)
    assert tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")
    files = sorted((tmp_path / "a").rglob(f"*.{fmt}"))
    assert [p.relative_to(tmp_path / "a").as_posix() for p in files] == [
        f"test/clip_00001.{fmt}", f"train/clip_00000.{fmt}"]
    back = read_frames(files[1])
    ref = render_clip(np.random.default_rng([3, 0]), 4, 32)
    assert back.shape == ref.shape
    assert np.abs(back.astype(np.float32) - ref).mean() < 10


def test_write_dataset_refuses_and_overwrites(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        write_dataset(other, clips=1, frames=1, size=16, seed=0)
    with pytest.raises(InputError, match="synth.json"):
        write_dataset(other, clips=1, frames=1, size=16, seed=0, overwrite=True)
    assert (other / "keep.txt").read_text() == "mine"

    out = tmp_path / "ds"
    out.mkdir()  # an empty folder is fine
    write_dataset(out, clips=2, frames=2, size=16, seed=0)
    write_dataset(out, clips=3, frames=2, size=16, seed=0, overwrite=True)
    assert len(list((out / "train").iterdir())) + len(list((out / "test").iterdir())) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "other"]  # no temporary leftovers


def test_write_dataset_failure_leaves_nothing(tmp_path, monkeypatch):
    calls = []
    real = synth.render_clip

    def failing(rng, frames, size):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("boom")
        return real(rng, frames, size)

    monkeypatch.setattr(synth, "render_clip", failing)
    with pytest.raises(RuntimeError, match="boom"):
        write_dataset(tmp_path / "ds", clips=5, frames=2, size=16, seed=0)
    assert list(tmp_path.iterdir()) == []


def test_write_dataset_bad_arguments(tmp_path):
    for kwargs, match in [({"clips": 0}, "clips"), ({"seed": -1}, "seed"), ({"fmt": "avi"}, "fmt"),
                          ({"test_fraction": 1.0}, "test_fraction")]:
        args = {"clips": 2, "frames": 2, "size": 16, "seed": 0} | kwargs
        with pytest.raises(InputError, match=match):
            write_dataset(tmp_path / "x", **args)
    assert not (tmp_path / "x").exists()


def test_cli_synth(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "ds"), "--clips", "3", "--frames", "2", "--size", "24",
                 "--seed", "4", "--format", "gif"]) == 0
    assert "2 train + 1 test clips" in capsys.readouterr().out
    assert len(list((tmp_path / "ds" / "train").glob("*.gif"))) == 2
    assert main(["synth", "--out", str(tmp_path / "bad"), "--size", "4"]) == 2
    assert "size" in capsys.readouterr().err
