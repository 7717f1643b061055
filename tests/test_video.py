"""jamsdk.pixels, jamsdk.pictures, jamsdk.video and jamsdk.video_write: readers, writers, colour
conversion and the resize policy."""

from __future__ import annotations

import struct

import cv2
import numpy as np
import pytest

from jamsdk.errors import InputError
from jamsdk.pictures import read_image
from jamsdk.pixels import center_crop_resize, resize_square, to_rgb
from jamsdk.video import iter_frames, probe, read_frames
from jamsdk.video_write import write_video


def smooth_clip(t: int = 12, h: int = 48, w: int = 64) -> np.ndarray:
    """Frames with smooth gradients and a moving square (codec friendly, every frame distinct)."""
    yy, xx = np.mgrid[0:h, 0:w]
    frames = []
    for i in range(t):
        img = np.stack([xx * 255 // w, yy * 255 // h, np.full_like(xx, 40 + 10 * i)], -1).astype(np.uint8)
        img[8:24, 4 + 3 * i:20 + 3 * i] = (250, 30, 30)
        frames.append(img)
    return np.stack(frames)


def write_png(path, rgb_or_gray: np.ndarray) -> None:
    img = rgb_or_gray
    if img.ndim == 3 and img.shape[2] == 3:
        img = img[:, :, ::-1]
    elif img.ndim == 3 and img.shape[2] == 4:
        img = img[:, :, [2, 1, 0, 3]]
    assert cv2.imwrite(str(path), img)


def test_gif_without_imageio_falls_back_to_opencv(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "imageio", None)  # `import imageio` now raises ImportError
    monkeypatch.setitem(sys.modules, "imageio.v2", None)
    clip = smooth_clip()
    path = tmp_path / "clip.gif"
    assert write_video(path, iter(clip), fps=10) == len(clip)
    back = read_frames(path)
    assert back.shape == clip.shape
    # OpenCV's GIF palette is coarser than imageio's (≈16 grey levels mean error on this clip).
    assert np.abs(back.astype(np.float32) - clip).mean(axis=(1, 2, 3)).max() < 30


@pytest.mark.parametrize("ext,tol", [(".mp4", 6.0), (".gif", 6.0), (".avi", 6.0)])
def test_write_read_round_trip(tmp_path, ext, tol):
    clip = smooth_clip()
    path = tmp_path / f"clip{ext}"
    assert write_video(path, iter(clip), fps=10) == len(clip)
    back = read_frames(path)
    assert back.shape == clip.shape and back.dtype == np.uint8
    err = np.abs(back.astype(np.float32) - clip).mean(axis=(1, 2, 3))
    assert err.max() < tol, err
    # The moving square must be where it was written, frame by frame (a codec keeping one frame
    # for all would fail here).
    for i in (0, len(clip) - 1):
        assert back[i, 16, 12 + 3 * i, 0] > 200 and back[i, 16, 12 + 3 * i, 1] < 80
    info = probe(path)
    assert (info.width, info.height, info.frames) == (64, 48, 12) and info.fps == pytest.approx(10.0)


def test_write_video_fps_and_float_frames(tmp_path):
    clip = smooth_clip(t=5).astype(np.float32) / 255.0
    path = tmp_path / "f.mp4"
    write_video(path, clip, fps=25)
    info = probe(path)
    assert info.fps == pytest.approx(25.0) and info.frames == 5


def test_mp4_odd_size_is_padded(tmp_path):
    clip = smooth_clip(t=3, h=33, w=47)
    write_video(tmp_path / "odd.mp4", clip, fps=10)
    back = read_frames(tmp_path / "odd.mp4")
    assert back.shape == (3, 34, 48, 3)
    assert np.abs(back[:, :33, :47].astype(np.float32) - clip).mean() < 6


def test_write_video_is_atomic(tmp_path):
    target = tmp_path / "out.mp4"

    def frames_then_crash():
        clip = smooth_clip(t=4)
        yield clip[0]
        yield clip[1]
        raise RuntimeError("renderer died")

    with pytest.raises(RuntimeError, match="renderer died"):
        write_video(target, frames_then_crash(), fps=10)
    assert list(tmp_path.iterdir()) == []  # neither the target nor a temporary file

    # An existing file survives a failed rewrite untouched.
    write_video(target, smooth_clip(t=3), fps=10)
    before = target.read_bytes()
    mixed = [smooth_clip(t=1)[0], smooth_clip(t=1, h=32)[0]]
    with pytest.raises(InputError, match="frame 1"):
        write_video(target, mixed, fps=10)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_write_video_rejects_bad_input(tmp_path):
    with pytest.raises(InputError, match="no frames"):
        write_video(tmp_path / "a.mp4", [], fps=10)
    with pytest.raises(InputError, match="cannot write '.mkv'"):
        write_video(tmp_path / "a.mkv", smooth_clip(t=1), fps=10)
    with pytest.raises(InputError, match="fps"):
        write_video(tmp_path / "a.gif", smooth_clip(t=1), fps=0)
    with pytest.raises(InputError, match=r"\(H, W, 3\)"):
        write_video(tmp_path / "a.gif", [np.zeros((8, 8), np.uint8)], fps=10)
    assert list(tmp_path.iterdir()) == []


def test_folder_natural_order_and_formats(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    for i in (1, 2, 10):
        write_png(folder / f"f{i}.png", np.full((8, 8, 3), i * 10, np.uint8))
    (folder / ".hidden.png").write_bytes(b"junk")  # hidden files are ignored
    frames = read_frames(folder)
    assert [int(f[0, 0, 0]) for f in frames] == [10, 20, 100]
    assert [int(f[0, 0, 0]) for f in iter_frames(folder, max_frames=2)] == [10, 20]
    assert probe(folder).frames == 3


def test_gray_rgba_and_16bit_become_rgb(tmp_path):
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    write_png(tmp_path / "g.png", gray)
    rgb = read_image(tmp_path / "g.png")
    assert rgb.shape == (8, 8, 3) and np.array_equal(rgb[..., 0], gray) and np.array_equal(rgb[..., 2], gray)

    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200  # red everywhere
    rgba[:2, :, 3] = 255  # top half opaque, bottom half transparent
    write_png(tmp_path / "a.png", rgba)
    out = read_image(tmp_path / "a.png")
    assert out.shape == (4, 4, 3)
    assert tuple(out[0, 0]) == (200, 0, 0)  # opaque keeps its colour
    assert tuple(out[3, 3]) == (255, 255, 255)  # transparent composites onto white

    deep = (np.arange(16, dtype=np.uint16).reshape(4, 4) * 4096)
    assert cv2.imwrite(str(tmp_path / "d.png"), deep)
    assert read_image(tmp_path / "d.png")[3, 3, 0] == round(15 * 4096 / 257)

    assert to_rgb(np.ones((2, 2, 1), np.float32)).tolist() == [[[255] * 3] * 2] * 2
    with pytest.raises(InputError, match=r"\(H, W\)"):
        to_rgb(np.zeros((2, 2, 5), np.uint8))


def test_strip_with_frame_shape(tmp_path):
    strip = np.concatenate([np.full((6, 5, 3), 30 * i, np.uint8) for i in range(4)], axis=1)
    write_png(tmp_path / "s.png", strip)
    frames = read_frames(tmp_path / "s.png", frame_shape=(6, 5))
    assert frames.shape == (4, 6, 5, 3) and [int(f[0, 0, 0]) for f in frames] == [0, 30, 60, 90]
    # FOMM writes frame_shape as (H, W, 3); accepted as well.
    assert read_frames(tmp_path / "s.png", frame_shape=(6, 5, 3)).shape == (4, 6, 5, 3)
    with pytest.raises(InputError, match="horizontal strip"):
        read_frames(tmp_path / "s.png", frame_shape=(6, 7))
    # Without frame_shape an image is a one-frame video.
    assert read_frames(tmp_path / "s.png").shape == (1, 6, 20, 3)


def test_read_errors_are_typed(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_frames(tmp_path / "missing.mp4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty frame folder"):
        read_frames(tmp_path / "empty")
    (tmp_path / "bad.mp4").write_bytes(b"not a video" * 50)
    with pytest.raises(InputError, match="bad.mp4"):
        read_frames(tmp_path / "bad.mp4")
    good = tmp_path / "good.mp4"
    write_video(good, smooth_clip(t=4), fps=10)
    (tmp_path / "cut.mp4").write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    with pytest.raises(InputError, match="cut.mp4"):
        read_frames(tmp_path / "cut.mp4")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="unsupported file type"):
        read_frames(tmp_path / "notes.txt")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(InputError, match="cannot decode"):
        read_image(tmp_path / "broken.png")
    with pytest.raises(InputError, match="max_frames"):
        list(iter_frames(good, max_frames=0))


def test_iter_frames_streams(tmp_path):
    path = tmp_path / "c.mp4"
    write_video(path, smooth_clip(t=8), fps=10)
    it = iter_frames(path)
    first = next(it)
    assert first.shape == (48, 64, 3) and first.dtype == np.uint8
    assert len(list(it)) == 7
    assert len(list(iter_frames(path, max_frames=3))) == 3


def test_resize_policy():
    # Wide frame: red left quarter, green middle half, blue right quarter.
    img = np.zeros((40, 80, 3), np.uint8)
    img[:, :20] = (255, 0, 0)
    img[:, 20:60] = (0, 255, 0)
    img[:, 60:] = (0, 0, 255)
    crop = center_crop_resize(img, 20)
    assert crop.shape == (20, 20, 3)
    assert np.all(crop[..., 1] == 255) and crop[..., 0].max() == 0  # only the centre square survives
    stretched = resize_square(img, 20)
    assert stretched.shape == (20, 20, 3)
    assert stretched[10, 1, 0] == 255 and stretched[10, 18, 2] == 255  # the sides are kept
    assert resize_square(img, (10, 30)).shape == (10, 30, 3)
    with pytest.raises(InputError, match="size"):
        resize_square(img, 0)


def test_video_io_is_torch_free():
    import subprocess
    import sys

    code = ("import sys, jamsdk.pixels, jamsdk.pictures, jamsdk.video, jamsdk.video_write, jamsdk.train.datasets, jamsdk.train.augment, jamsdk.train.synth; "
            "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime', 'tensorrt') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _lying_mjpeg(tmp_path, frames: int = 6, lying_from: int = 2):
    """An MJPEG AVI whose frames from ``lying_from`` on declare 8000×8000 in their JPEG header (the
    probe's I21): FFmpeg decodes the first ones and stops at the first liar."""
    good = tmp_path / "good.avi"
    write_video(good, smooth_clip(t=frames), fps=10)
    data = bytearray(good.read_bytes())
    sofs = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xC0]
    assert len(sofs) == frames
    for at in sofs[lying_from:]:
        data[at + 5:at + 9] = struct.pack(">HH", 8000, 8000)  # height, width of the SOF0 segment
    bad = tmp_path / "lying.avi"
    bad.write_bytes(bytes(data))
    return good, bad


def test_a_video_that_stops_decoding_early_is_an_error_unless_allowed(tmp_path):
    """The probe's I21 and the 44-of-133 case: the output ended early with exit 0 and no word."""
    from jamsdk.video import ShortVideoWarning

    good, bad = _lying_mjpeg(tmp_path)
    assert len(list(iter_frames(good))) == 6
    got = []
    with pytest.raises(InputError, match=r"lying.avi: the video ended early: 2 of the 6 frames its container "
                                         r"declares could be read .*allow-short-video"):
        for f in iter_frames(bad):
            got.append(f)
    assert len(got) == 2  # the error comes after the frames that could be read
    with pytest.warns(ShortVideoWarning, match="2 of the 6 frames"):
        assert len(list(iter_frames(bad, allow_short=True))) == 2
    with pytest.warns(ShortVideoWarning):
        assert len(read_frames(bad, allow_short=True)) == 2
    assert len(list(iter_frames(bad, max_frames=2))) == 2  # asked for no more than it holds: no error
    with pytest.raises(InputError, match="ended early: 2 of the 6"):
        list(iter_frames(bad, max_frames=4))


def test_up_to_one_frame_or_2_percent_short_is_within_a_containers_estimate():
    from jamsdk.video import short_by

    assert short_by(6, 5) == 0 and short_by(6, 4) == 2  # one frame is an estimate's error, two are not
    assert short_by(133, 44) == 89 and short_by(133, 131) == 0 and short_by(133, 130) == 3
    assert short_by(None, 3) == 0 and short_by(0, 3) == 0 and short_by(40, 41) == 0


def test_animate_with_a_short_driving_video_exits_2_or_writes_what_was_read(tmp_path, capsys):
    from jamsdk.cli import main

    _, bad = _lying_mjpeg(tmp_path)
    picture = tmp_path / "pic.png"
    write_png(picture, smooth_clip(t=1)[0])
    out = tmp_path / "out.mp4"
    args = ["animate", "--source", str(picture), "--driving", str(bad), "--out", str(out), "--no-progress"]
    assert main(args) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if "error" in ln]
    assert len(err) == 1 and "the video ended early: 2 of the 6 frames" in err[0], err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
    assert main(args + ["--allow-short-video"]) == 0
    assert "note: " in capsys.readouterr().err and len(read_frames(out)) == 2
