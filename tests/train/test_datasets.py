"""jamsdk.train.datasets and jamsdk.train.augment."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from jamsdk.config import from_dict
from jamsdk.errors import ConfigError, InputError
from jamsdk.train.augment import AugmentParams, apply_augment, augment_preset, sample_params
from jamsdk.train.datasets import AugmentConfig, DatasetSummary, DataWarning, FramesDataset
from jamsdk.train.figures import render_clip
from jamsdk.train.synth import write_dataset
from jamsdk.video_write import write_video

S = 32  # model size in these tests


def clip(seed: int, frames: int = 5, size: int = 40) -> np.ndarray:
    return render_clip(np.random.default_rng([123, seed]), frames, size)


def write_folder(path: Path, video: np.ndarray, ext: str = ".png") -> None:
    path.mkdir(parents=True)
    for i, f in enumerate(video):
        assert cv2.imwrite(str(path / f"{i}{ext}"), f[:, :, ::-1])


def write_strip(path: Path, video: np.ndarray) -> None:
    assert cv2.imwrite(str(path), np.concatenate(list(video), axis=1)[:, :, ::-1])


def check_train_item(item: dict, size: int = S) -> None:
    assert set(item) == {"source", "driving", "name"}
    for key in ("source", "driving"):
        x = item[key]
        assert x.shape == (3, size, size) and x.dtype == np.float32
        assert 0.0 <= x.min() and x.max() <= 1.0


@pytest.mark.parametrize("fmt", ["folder", "gif", "mp4", "strip", "jpg-folder"])
def test_each_format_loads(tmp_path, fmt):
    for split, seeds in (("train", (0, 1)), ("test", (2,))):
        root = tmp_path / split
        root.mkdir(parents=True)
        for s in seeds:
            v = clip(s)
            if fmt == "folder":
                write_folder(root / f"v{s}", v)
            elif fmt == "jpg-folder":
                write_folder(root / f"v{s}", v, ".jpg")
            elif fmt == "strip":
                write_strip(root / f"v{s}.png", v)
            else:
                write_video(root / f"v{s}.{fmt}", v, fps=10)
    shape = (40, 40) if fmt == "strip" else None
    train = FramesDataset(tmp_path, "train", image_size=S, frame_shape=shape, augment=AugmentConfig())
    assert len(train) == 2 and train.names == ["v0", "v1"] and train.summary.skipped == []
    check_train_item(train[0])
    test = FramesDataset(tmp_path, "test", image_size=S, frame_shape=shape)
    item = test[0]
    assert set(item) == {"video", "name"} and item["name"] == "v2"
    assert item["video"].shape == (5, 3, S, S) and item["video"].dtype == np.float32
    # The frames are the clip's frames (resized), in order.
    ref = np.stack([cv2.resize(f, (S, S), interpolation=cv2.INTER_AREA) for f in clip(2)]) / 255.0
    tol = {"folder": 1e-6, "strip": 1e-6, "jpg-folder": 0.05, "gif": 0.05, "mp4": 0.06}[fmt]
    assert np.abs(item["video"].transpose(0, 2, 3, 1) - ref).mean() < tol


def test_pair_is_two_sorted_frames_of_one_video(tmp_path):
    video = clip(4, frames=8, size=S)
    write_folder(tmp_path / "train" / "only", video)
    ds = FramesDataset(tmp_path, "train", image_size=S, repeats=40)
    frames = video.astype(np.float32) / 255.0
    seen = set()
    for i in range(len(ds)):
        item = ds[i]
        src = item["source"].transpose(1, 2, 0)
        drv = item["driving"].transpose(1, 2, 0)
        a = [k for k in range(8) if np.array_equal(frames[k], src)]
        b = [k for k in range(8) if np.array_equal(frames[k], drv)]
        assert len(a) == 1 and len(b) == 1 and a[0] <= b[0]
        seen.add((a[0], b[0]))
    assert len(seen) > 10  # different pairs across indices, including distinct frames


def test_gray_and_rgba_inputs(tmp_path):
    gray = (clip(5).mean(axis=-1)).astype(np.uint8)
    folder = tmp_path / "train" / "gray"
    folder.mkdir(parents=True)
    for i, f in enumerate(gray):
        assert cv2.imwrite(str(folder / f"{i}.png"), f)
    rgba = np.concatenate([clip(6), np.full((5, 40, 40, 1), 255, np.uint8)], axis=-1)
    rgba[:, :10, :, 3] = 0  # transparent top rows become white
    strip = np.concatenate(list(rgba), axis=1)[:, :, [2, 1, 0, 3]]
    assert cv2.imwrite(str(tmp_path / "train" / "rgba.png"), strip)
    ds = FramesDataset(tmp_path, "train", image_size=40, frame_shape=(40, 40, 3))
    assert ds.summary.kinds == {"folder": 1, "strip": 1}
    g = ds[ds.names.index("gray")]["source"]
    assert np.array_equal(g[0], g[1]) and np.array_equal(g[1], g[2])
    r = ds[ds.names.index("rgba")]["source"]
    assert np.all(r[:, :10] == 1.0) and not np.all(r[:, 20:] == 1.0)


def test_non_square_frames_are_center_cropped(tmp_path):
    wide = np.zeros((3, 20, 60, 3), np.uint8)
    wide[:, :, :20] = 255  # left third white: cropped away
    write_folder(tmp_path / "train" / "wide", wide)
    ds = FramesDataset(tmp_path, "train", image_size=16)
    assert ds[0]["source"].max() == 0.0


def test_id_sampling(tmp_path):
    for name, s in (("alice#0", 0), ("alice#1", 1), ("alice#2", 2), ("bob#0", 3)):
        write_folder(tmp_path / "train" / name, clip(s, frames=2, size=S))
        write_folder(tmp_path / "test" / name, clip(s, frames=2, size=S))
    ds = FramesDataset(tmp_path, "train", image_size=S, id_sampling=True, repeats=3)
    assert ds.summary.ids == 2 and ds.summary.items == 4
    assert len(ds) == 6  # ids × repeats
    names = {}
    for epoch in range(5):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            names.setdefault(i % 2, set()).add(ds[i]["name"])
    assert names == {0: {"alice#0", "alice#1", "alice#2"}, 1: {"bob#0"}}
    # Without id sampling, and in the test split, every clip is an item.
    assert len(FramesDataset(tmp_path, "train", image_size=S)) == 4
    assert len(FramesDataset(tmp_path, "test", image_size=S, id_sampling=True)) == 4


def test_bad_items_are_skipped_and_reported(tmp_path):
    train = tmp_path / "train"
    write_folder(train / "good", clip(0))
    write_video(train / "good2.mp4", clip(1), fps=10)
    (train / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"junk" * 100)
    (train / "empty").mkdir()
    (train / "notes.txt").write_text("not a video")
    write_strip(train / "strip.png", clip(2))  # no frame_shape given
    with pytest.warns(DataWarning) as record:
        ds = FramesDataset(tmp_path, "train", image_size=S)
    messages = " | ".join(str(w.message) for w in record)
    for name in ("corrupt.mp4", "empty", "notes.txt", "strip.png"):
        assert name in messages
    assert ds.names == ["good", "good2"] and len(ds) == 2
    skipped = dict(ds.summary.skipped)
    assert set(skipped) == {"corrupt.mp4", "empty", "notes.txt", "strip.png"}
    assert "frame_shape" in skipped["strip.png"] and "empty frame folder" in skipped["empty"]
    assert isinstance(ds.summary, DatasetSummary) and "skipped 4" in str(ds.summary)
    check_train_item(ds[1])


def test_no_readable_item_is_an_error(tmp_path):
    (tmp_path / "train" / "empty").mkdir(parents=True)
    (tmp_path / "train" / "bad.gif").write_bytes(b"GIF89a broken")
    with pytest.warns(DataWarning), pytest.raises(InputError, match="no readable item.*bad.gif"):
        FramesDataset(tmp_path, "train")
    with pytest.raises(InputError, match="test: missing; expected the MRAA/FOMM layout"):
        FramesDataset(tmp_path, "test")
    (tmp_path / "test").mkdir()
    with pytest.raises(InputError, match="no items"):
        FramesDataset(tmp_path, "test")
    with pytest.raises(InputError, match="no such folder"):
        FramesDataset(tmp_path / "nope")
    with pytest.raises(InputError, match="split"):
        FramesDataset(tmp_path, "val")


def test_late_read_failure(tmp_path):
    write_folder(tmp_path / "train" / "a", clip(0))
    write_folder(tmp_path / "train" / "b", clip(1))
    write_folder(tmp_path / "test" / "a", clip(0))
    train = FramesDataset(tmp_path, "train", image_size=S)
    test = FramesDataset(tmp_path, "test", image_size=S)
    for i in range(5):  # corrupt every frame after the data set was built
        (tmp_path / "train" / "a" / f"{i}.png").write_bytes(b"broken")
        (tmp_path / "test" / "a" / f"{i}.png").write_bytes(b"broken")
    with pytest.warns(DataWarning, match="cannot read a"):
        assert train[0]["name"] == "b"
    with pytest.raises(InputError, match="cannot decode"):
        test[0]


def test_reproducible_randomness(tmp_path):
    write_dataset(tmp_path, clips=4, frames=6, size=S, seed=0, test_fraction=0.25)
    kw = dict(image_size=S, augment=AugmentConfig(brightness=0.2), repeats=2, seed=5)
    a, b = FramesDataset(tmp_path, "train", **kw), FramesDataset(tmp_path, "train", **kw)
    # Same (seed, epoch, index) → same item, in any call order.
    first = [a[i]["driving"] for i in range(len(a))]
    second = [b[i]["driving"] for i in reversed(range(len(b)))][::-1]
    assert all(np.array_equal(x, y) for x, y in zip(first, second))
    # A repeat of the same video is a different draw; so is another epoch or seed.
    assert not np.array_equal(a[0]["driving"], a[3]["driving"]) and a[0]["name"] == a[3]["name"]
    a.set_epoch(1)
    assert not np.array_equal(a[0]["driving"], first[0])
    a.set_epoch(0)
    assert np.array_equal(a[0]["driving"], first[0])
    c = FramesDataset(tmp_path, "train", **(kw | {"seed": 6}))
    assert not np.array_equal(c[0]["driving"], first[0])
    with pytest.raises(IndexError):
        a[len(a)]


def test_dataloader_workers_match_single_process(tmp_path):
    torch = pytest.importorskip("torch")
    write_dataset(tmp_path, clips=5, frames=4, size=S, seed=1, test_fraction=0.2)
    ds = FramesDataset(tmp_path, "train", image_size=S, augment=AugmentConfig(), repeats=2)
    ds.set_epoch(3)

    def run(workers):
        loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=workers, shuffle=False)
        return [(b["source"], b["driving"], b["name"]) for b in loader]

    single, multi = run(0), run(2)
    assert len(single) == 3 and single[0][0].shape == (3, 3, S, S) and single[0][0].dtype == torch.float32
    for (s0, d0, n0), (s1, d1, n1) in zip(single, multi):
        assert torch.equal(s0, s1) and torch.equal(d0, d1) and n0 == n1


def test_augment_shapes_ranges_and_consistency():
    rng = np.random.default_rng(0)
    cfg = AugmentConfig(scale=(0.7, 1.4), brightness=0.5, contrast=0.5, saturation=0.5, hue=0.5)
    frame = clip(7, frames=1, size=S)[0]
    same = np.stack([frame, frame])
    for _ in range(20):
        p = sample_params(cfg, rng, S)
        out = apply_augment(same, p)
        assert out.shape == (2, S, S, 3) and out.dtype == np.float32
        assert out.min() >= 0.0 and out.max() <= 1.0
        assert np.array_equal(out[0], out[1])  # one draw for every frame of the item
    # Flips are exact.
    pair = clip(8, frames=2, size=S)
    flipped = apply_augment(pair, AugmentParams(flip_horizontal=True))
    assert np.array_equal(flipped, pair[:, :, ::-1].astype(np.float32) / 255.0)
    reversed_ = apply_augment(pair, AugmentParams(flip_time=True))
    assert np.array_equal(reversed_, pair[::-1].astype(np.float32) / 255.0)
    # Zooming in by 2 at offset 0 shows the top-left quarter, enlarged.
    zoom = apply_augment(pair, AugmentParams(scale=2.0))
    ref = cv2.resize(pair[0, : S // 2, : S // 2], (S, S), interpolation=cv2.INTER_LINEAR) / 255.0
    assert np.abs(zoom[0] - ref).mean() < 0.03
    # A hue turn of 1/3 maps pure red to pure green.
    red = np.zeros((1, 4, 4, 3), np.uint8)
    red[..., 0] = 255
    green = apply_augment(red, AugmentParams(hue=1 / 3))
    assert np.allclose(green[0, 0, 0], [0, 1, 0], atol=1e-3)
    with pytest.raises(InputError, match=r"\(T, S, S, 3\) uint8"):
        apply_augment(np.zeros((2, S, S, 3), np.float32), AugmentParams())


def test_augment_config_loading():
    cfg = from_dict(AugmentConfig, {"flip_time": False, "scale": [1.0, 1.2], "hue": 0.1}, "train.augment")
    assert cfg == AugmentConfig(flip_time=False, scale=(1.0, 1.2), hue=0.1)
    assert AugmentConfig() == augment_preset("mgif") and augment_preset("none") is None
    assert augment_preset("vox").brightness == 0.1
    with pytest.raises(ConfigError, match="train.augment: scale"):
        from_dict(AugmentConfig, {"scale": [1.2, 0.9]}, "train.augment")
    with pytest.raises(ConfigError, match="hue"):
        AugmentConfig(hue=0.7)
    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(AugmentConfig, {"rotate": 10}, "train.augment")
    with pytest.raises(ConfigError, match="preset"):
        augment_preset("taichi")


def load_script(name: str):
    """Import one of the user scripts in train/ (they are not part of the package)."""
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "train" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_script_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prepare_mgif_checks_and_converts(tmp_path, capsys):
    prep = load_script("prepare_mgif")
    write_dataset(tmp_path / "mgif", clips=4, frames=3, size=40, seed=2, fmt="gif")
    (tmp_path / "mgif" / "train" / "bad.gif").write_bytes(b"GIF89a")
    assert prep.main(["--data", str(tmp_path / "mgif"), "--out", str(tmp_path / "frames"), "--size", str(S)]) == 0
    out = capsys.readouterr().out
    assert "skipped bad.gif" in out and "wrote 4 items" in out
    ds = FramesDataset(tmp_path / "frames", "train", image_size=S)
    assert ds.summary.kinds == {"folder": 3} and ds[0]["source"].shape == (3, S, S)
    assert prep.main(["--data", str(tmp_path / "nowhere")]) == 1


def test_prepare_celebdf_names_split_and_crop(tmp_path, capsys):
    prep = load_script("prepare_celebdf")
    for i, name in enumerate(["Celeb-real/id0_0000", "Celeb-real/id0_0001", "Celeb-real/id1_0000",
                              "Celeb-real/id2_0003", "YouTube-real/00007"]):
        (tmp_path / "cdf" / name).parent.mkdir(parents=True, exist_ok=True)
        wide = np.concatenate([clip(i, frames=4, size=40), np.zeros((4, 40, 20, 3), np.uint8)], axis=2)
        write_video(tmp_path / "cdf" / f"{name}.mp4", wide, fps=10)
    (tmp_path / "cdf" / "Celeb-real" / "id3_0000.mp4").write_bytes(b"junk")
    out = tmp_path / "out"
    assert prep.main(["--data", str(tmp_path / "cdf"), "--out", str(out), "--size", str(S), "--stride", "2",
                      "--test-fraction", "0.3"]) == 0
    log = capsys.readouterr().out
    assert "skipped id3#0000" in log and "5 clips written, 1 unreadable" in log
    train = {p.name for p in (out / "train").iterdir()}
    test = {p.name for p in (out / "test").iterdir()}
    assert train | test == {"id0#0000", "id0#0001", "id1#0000", "id2#0003", "yt00007#0"}
    assert {n.split("#")[0] for n in train}.isdisjoint({n.split("#")[0] for n in test})
    assert len(test) >= 1
    frames = sorted((out / "train" / sorted(train)[0]).iterdir())
    assert len(frames) == 2 and cv2.imread(str(frames[0])).shape == (S, S, 3)
    ds = FramesDataset(out, "train", image_size=S, id_sampling=True)
    assert ds.summary.ids == len({n.split("#")[0] for n in train})
    assert prep.main(["--data", str(tmp_path / "cdf"), "--out", str(out), "--crop", "0.5,0.5,0.9,0.9"]) == 2
