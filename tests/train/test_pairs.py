"""jamsdk.train.pairs and ``jamsdk synth --pairs``: ground-truth animation pairs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from jamsdk.cli import main
from jamsdk.errors import InputError
from jamsdk.train.pairs import PAIRS_STREAM, VERSION, open_pairs, relative_pose, render_pair
from jamsdk.train.figures import Figure
from jamsdk.train.synth import write_dataset


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("j", range(3))
def test_relative_truth_starts_at_the_source_and_follows_the_driver(j):
    pair = render_pair(np.random.default_rng([5, PAIRS_STREAM, j]), 10, 64)
    assert pair["source"].shape == (64, 64, 3)
    for key in ("driving", "relative", "standard"):
        assert pair[key].shape == (10, 64, 64, 3) and pair[key].dtype == np.uint8
    # Relative mode: no change of B yet → exactly A's picture.
    assert np.array_equal(pair["relative"][0], pair["source"])
    src = pair["source"].astype(np.float32)
    moved = np.abs(pair["relative"].astype(np.float32) - src).mean(axis=(1, 2, 3))
    assert moved[1:].max() > 0.5  # A moves (mean over all pixels, 0–255 scale)
    # When the driver does not change between two frames, neither does the truth; when it does, the truth does.
    d_drv = np.abs(np.diff(pair["driving"].astype(np.float32), axis=0)).mean(axis=(1, 2, 3))
    d_rel = np.abs(np.diff(pair["relative"].astype(np.float32), axis=0)).mean(axis=(1, 2, 3))
    assert np.all((d_drv > 0) == (d_rel > 0))
    # Standard mode: A in B's absolute pose, not A's own.
    assert not np.array_equal(pair["standard"][0], pair["source"])
    # A's background stays A's: the corners (no figure there) match the source in every truth frame.
    for key in ("relative", "standard"):
        assert np.array_equal(pair[key][:, :2, :2], np.broadcast_to(pair["source"][:2, :2], (10, 2, 2, 3)))


def test_pair_figures_correspond():
    rng = np.random.default_rng(3)
    for _ in range(8):
        b = Figure(rng, 64)
        a = Figure(rng, 64, like=b)
        assert a.arms == b.arms and a.mirror == b.mirror
        assert len(a.pose(0.0).angles) == len(b.pose(0.0).angles)


def test_relative_pose_of_an_unchanged_driver_is_the_source_pose():
    rng = np.random.default_rng(0)
    b = Figure(rng, 64)
    a = Figure(rng, 64, like=b)
    a0, b0, b5 = a.pose(3.0), b.pose(10.0), b.pose(15.0)
    assert relative_pose(a0, b0, b0, 1.7) == a0
    moved = relative_pose(a0, b0, b5, 2.0)
    assert moved.rot - a0.rot == pytest.approx(b5.rot - b0.rot)
    assert moved.scale / a0.scale == pytest.approx(b5.scale / b0.scale)
    assert moved.center[0] - a0.center[0] == pytest.approx(2.0 * (b5.center[0] - b0.center[0]))
    assert moved.angles[0][1] - a0.angles[0][1] == pytest.approx(b5.angles[0][1] - b0.angles[0][1])


def test_write_dataset_pairs_deterministic_and_clips_unchanged(tmp_path):
    write_dataset(tmp_path / "a", clips=3, frames=4, size=32, seed=2, pairs=2)
    write_dataset(tmp_path / "b", clips=3, frames=4, size=32, seed=2, pairs=2)
    write_dataset(tmp_path / "c", clips=3, frames=4, size=32, seed=2)
    write_dataset(tmp_path / "d", clips=3, frames=4, size=32, seed=3, pairs=2)
    a = tree_bytes(tmp_path / "a")
    assert a == tree_bytes(tmp_path / "b")  # same seed → same bytes
    c = tree_bytes(tmp_path / "c")
    assert {k: v for k, v in a.items() if not k.startswith("pairs") and k != "synth.json"} == \
        {k: v for k, v in c.items() if k != "synth.json"}  # pairs leave the training clips alone
    d = tree_bytes(tmp_path / "d")
    assert a["pairs/pair_00000/source.png"] != d["pairs/pair_00000/source.png"]
    meta = json.loads(a["pairs/pairs.json"])
    assert meta["version"] == VERSION and meta["pairs"] == 2 and meta["frames"] == 4 and meta["size"] == 32
    assert json.loads(a["synth.json"])["pairs_version"] == VERSION
    ps = open_pairs(tmp_path / "a")  # the data set folder or its pairs/ folder
    assert ps.root == open_pairs(tmp_path / "a" / "pairs").root
    loaded = ps.load("pair_00001")
    want = render_pair(np.random.default_rng([2, PAIRS_STREAM, 1]), 4, 32)
    for key, value in want.items():
        assert np.array_equal(loaded[key], value), key  # PNG is lossless


def test_label_maps_and_background_match_the_pictures():
    """The metric's truth: labels mark the figure, the background is the picture without it."""
    import cv2

    pair = render_pair(np.random.default_rng([5, PAIRS_STREAM, 0]), 4, 64)
    assert np.array_equal(pair["relative_labels"][0], pair["source_labels"])  # frame 0 is the source
    for pic, lab in [(pair["source"], pair["source_labels"]), (pair["standard"][3], pair["standard_labels"][3])]:
        far = cv2.dilate((lab > 0).astype(np.uint8), np.ones((3, 3), np.uint8)) == 0
        assert np.array_equal(pic[far], pair["background"][far])  # away from the figure: the background
        differs = np.abs(pic.astype(int) - pair["background"]).sum(-1) > 0
        assert differs[lab > 0].mean() > 0.95 and lab.max() >= 4  # body, head, tail and limbs


def test_open_pairs_errors(tmp_path):
    write_dataset(tmp_path / "clips", clips=2, frames=2, size=32, seed=0)
    with pytest.raises(InputError, match="no animation pairs"):
        open_pairs(tmp_path / "clips")
    with pytest.raises(InputError, match="not a folder"):
        open_pairs(tmp_path / "missing")
    write_dataset(tmp_path / "old", clips=1, frames=2, size=32, seed=0, pairs=1)
    meta_path = tmp_path / "old" / "pairs" / "pairs.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "version": VERSION + 1}))
    with pytest.raises(InputError, match=f"pairs version {VERSION + 1}"):
        open_pairs(tmp_path / "old")
    meta_path.write_text(json.dumps({**meta, "version": VERSION - 1}))  # older pairs have no label maps
    with pytest.raises(InputError, match=f"pairs version {VERSION - 1}, but this jamsdk reads version {VERSION}"):
        open_pairs(tmp_path / "old")
    meta_path.write_text(json.dumps({**meta, "format": "something-else"}))
    with pytest.raises(InputError, match="expected format"):
        open_pairs(tmp_path / "old")
    meta_path.write_text(json.dumps(meta))
    (tmp_path / "old" / "pairs" / "pair_00000" / "relative" / "00001.png").unlink()
    with pytest.raises(InputError, match="expected 2 PNG frames"):
        open_pairs(tmp_path / "old").load("pair_00000")
    write_dataset(tmp_path / "nolabel", clips=1, frames=2, size=32, seed=0, pairs=1)
    (tmp_path / "nolabel" / "pairs" / "pair_00000" / "labels" / "standard" / "00000.png").unlink()
    with pytest.raises(InputError, match=r"labels/standard: expected 2 PNG frames"):
        open_pairs(tmp_path / "nolabel").load("pair_00000")
    with pytest.raises(InputError, match="pairs"):
        write_dataset(tmp_path / "neg", clips=1, frames=2, size=32, seed=0, pairs=-1)


def test_cli_synth_pairs(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "d"), "--clips", "2", "--frames", "3", "--size", "32", "--pairs", "1",
                 "--quiet"]) == 0
    assert "1 animation pairs" in capsys.readouterr().out
    assert (tmp_path / "d" / "pairs" / "pair_00000" / "standard" / "00002.png").is_file()
