"""Input files that never end or are far too big (jamsdk.input_files): /dev/zero, FIFOs, sockets,
huge files, named as pictures, videos, manifests, job files and batch rows. Each is refused in one
line before it is read, and the neighbour one step away (a regular file at the cap) still reads.

The hostile reads run in a child process with a 2 GB address-space limit: if a reader ever reads
/dev/zero whole again, that child dies of MemoryError instead of the machine's OOM killer picking a
process (the probe's batch driver grew to 22.8 GB)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from jamsdk.errors import InputError
from jamsdk.input_files import CAPS, cap, check_input, read_input

ROOT = Path(__file__).resolve().parents[1]
LIMIT_AS = 2 << 30


def run_limited(code: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """``python -c code`` with at most 2 GB of address space (a runaway read fails there, not here)."""
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (LIMIT_AS, LIMIT_AS))

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                          preexec_fn=limit, cwd=ROOT)


def jamsdk_limited(args: list[str], timeout: float = 120.0) -> subprocess.CompletedProcess:
    return run_limited(f"import sys; from jamsdk.cli import main; sys.exit(main({args!r}))", timeout)


@pytest.fixture()
def fifo(tmp_path):
    """A FIFO nobody writes to: opening it for reading blocks forever (unless opened without waiting)."""
    def make(name: str) -> Path:
        path = tmp_path / name
        os.mkfifo(path)
        return path
    return make


@pytest.fixture()
def picture(tmp_path) -> Path:
    path = tmp_path / "pic.png"
    cv2.imwrite(str(path), np.full((40, 48, 3), 90, np.uint8))
    return path


def test_devices_fifos_sockets_and_folders_are_not_read(fifo, tmp_path):
    with pytest.raises(InputError, match=r"/dev/zero: expected a regular file, got a character device"):
        read_input("/dev/zero", "picture")
    start = time.monotonic()
    with pytest.raises(InputError, match=r"expected a regular file, got a FIFO"):
        read_input(fifo("pipe.png"), "picture")  # no writer: a plain open() would wait forever
    assert time.monotonic() - start < 5
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(tmp_path / "sock.png"))
        with pytest.raises(InputError, match="got a socket"):
            check_input(tmp_path / "sock.png", "picture")
    with pytest.raises(InputError, match="got a folder"):
        read_input(tmp_path, "jobs")


def test_size_caps_are_checked_before_reading_at_the_cap_and_one_past_it(tmp_path):
    at, past = tmp_path / "at", tmp_path / "past"
    at.write_bytes(b"t" * CAPS["token"])
    past.write_bytes(b"t" * (CAPS["token"] + 1))
    assert len(read_input(at, "token")) == CAPS["token"]
    with pytest.raises(InputError, match=r"4 KiB is over the limit of 4 KiB for a token file \(refused before"):
        read_input(past, "token")
    # A sparse 2 GiB + 1 video is refused from its size alone (nothing of it is read).
    huge = tmp_path / "huge.mp4"
    with open(huge, "wb") as fh:
        fh.truncate(CAPS["video"] + 1)
    with pytest.raises(InputError, match="over the limit of 2 GiB for a video"):
        check_input(huge, "video")


def test_the_picture_cap_follows_the_pixel_limit(monkeypatch):
    monkeypatch.setenv("JAMSDK_MAX_PIXELS", "1000")
    assert cap("picture") == 8 * 1000 + (1 << 20)
    assert cap("picture", max_pixels=2000) == 8 * 2000 + (1 << 20)


def test_a_head_check_refuses_before_the_rest_is_read(tmp_path):
    path = tmp_path / "big.txt"
    path.write_bytes(b"x" * (200 * 1024))
    seen = []

    def head(first):
        seen.append(len(first))
        raise InputError("not a picture")

    with pytest.raises(InputError, match="not a picture"):
        read_input(path, "jobs", head=head)
    assert seen == [64 * 1024]
    assert len(read_input(path, "jobs", head=lambda first: seen.append(len(first)))) == 200 * 1024


def test_symlinks_are_refused_where_asked(tmp_path):
    real = tmp_path / "real.json"
    real.write_text("{}")
    (tmp_path / "link.json").symlink_to(real)
    assert bytes(read_input(tmp_path / "link.json", "manifest")) == b"{}"
    with pytest.raises(InputError, match="is a symbolic link"):
        read_input(tmp_path / "link.json", "manifest", follow_symlinks=False)


def test_animate_source_dev_zero_and_a_fifo_are_one_line_exit_2(tmp_path, fifo):
    """The probe's I24: `animate --source /dev/zero` was a MemoryError traceback (an OOM kill
    without a ulimit). Its neighbours: a FIFO named like a picture, and a FIFO as the driving video."""
    driving = ROOT / "jamsdk" / "assets" / "example_driving.mp4"
    out = tmp_path / "out.mp4"
    for source, drive, want in (("/dev/zero", str(driving), "got a character device"),
                                (str(fifo("src.png")), str(driving), "got a FIFO"),
                                (str(ROOT / "jamsdk/assets/example_source.png"), str(fifo("drv.mp4")), "got a FIFO")):
        res = jamsdk_limited(["animate", "--source", source, "--driving", drive, "--out", str(out),
                              "--max-frames", "2", "--no-progress"])
        lines = [ln for ln in res.stderr.splitlines() if ln.strip() and not ln.startswith("jamsdk animate: note")]
        assert res.returncode == 2, res.stderr[-2000:]
        assert len(lines) == 1 and want in lines[0], res.stderr[-2000:]
        assert "Traceback" not in res.stderr and "MemoryError" not in res.stderr
    assert not out.exists() and sorted(os.listdir(tmp_path)) == ["drv.mp4", "src.png"]


def test_batch_rows_naming_dev_zero_or_a_fifo_fail_alone(tmp_path, fifo, picture):
    """The probe's B11: the batch driver read a row's /dev/zero driving whole (22.8 GB, then the OOM
    killer). The driver's reader refuses it, and its neighbours: /dev/zero under a video name, a FIFO."""
    (tmp_path / "zero.mp4").symlink_to("/dev/zero")
    pipe = fifo("pipe.mp4")
    code = f"""
from jamsdk.errors import InputError
from jamsdk.scale.offline import _Inputs
for path in ("/dev/zero", {str(tmp_path / 'zero.mp4')!r}, {str(pipe)!r}):
    try:
        _Inputs.driving(path)
    except InputError as exc:
        print("refused:", exc)
for path in ("/dev/zero", {str(pipe.with_name('pipe.png'))!r}):
    try:
        _Inputs().picture(path)
    except InputError as exc:
        print("refused:", exc)
print("good:", len(_Inputs().picture({str(picture)!r})[0]) > 0)
"""
    (pipe.with_name("pipe.png")).symlink_to(pipe)
    res = run_limited(code)
    assert res.returncode == 0, res.stderr[-2000:]
    lines = res.stdout.splitlines()
    assert lines[0] == ("refused: driving /dev/zero: expected a video, a picture or a frame folder (.mp4, .mov, .avi, "
                        ".mkv, .webm, .m4v, .gif, .png, .jpg, .jpeg, .bmp, .webp, .tif, .tiff), got 'a file without "
                        "extension'")
    assert "zero.mp4: expected a regular file, got a character device" in lines[1]
    assert "pipe.mp4: expected a regular file, got a FIFO" in lines[2]
    assert lines[3].startswith("refused: source /dev/zero: expected a picture")
    assert "pipe.png: expected a regular file, got a FIFO" in lines[4]
    assert lines[5] == "good: True"


def test_a_frame_folder_counts_against_the_video_cap_together(tmp_path, monkeypatch, picture):
    from jamsdk.scale import offline

    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(4):
        (frames / f"{i}.png").write_bytes(picture.read_bytes())
    size = picture.stat().st_size
    monkeypatch.setitem(CAPS, "video", 4 * size)
    assert len(offline._Inputs.driving(str(frames))) == 4  # exactly at the cap
    (frames / "4.png").write_bytes(picture.read_bytes())
    with pytest.raises(InputError, match="its frames together are over the limit"):
        offline._Inputs.driving(str(frames))


def test_a_non_picture_is_named_by_kind_never_echoed(tmp_path):
    """The probe's B5: a row naming /etc/passwd printed its first bytes ("root:x:0" in hex)."""
    from jamsdk.pictures import read_image

    secret = tmp_path / "passwd.png"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    with pytest.raises(InputError) as err:
        read_image(secret)
    text = str(err.value)
    assert "bytes of text" in text and "root" not in text.replace(str(tmp_path), "")
    assert "72 6f 6f 74" not in text
    zipped = tmp_path / "model.png"
    zipped.write_bytes(b"PK\x03\x04" + bytes(range(200)))
    with pytest.raises(InputError, match="bytes of a ZIP archive"):
        read_image(zipped)
    other = tmp_path / "blob.png"
    other.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(InputError, match=r"1024 bytes of another format\)?$"):
        read_image(other)


def test_a_checkpoint_over_its_cap_is_refused_before_torch_reads_it(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from jamsdk.errors import CheckpointError
    from jamsdk.model.checkpoint import load_plain

    ckpt = tmp_path / "big.pt"
    with open(ckpt, "wb") as fh:
        fh.truncate(CAPS["checkpoint"] + 1)  # sparse: 4 GiB + 1 byte, nothing of it on disk
    with pytest.raises(CheckpointError, match="over the limit of 4 GiB for a checkpoint"):
        load_plain(ckpt, "--checkpoint")
    monkeypatch.setitem(CAPS, "checkpoint", CAPS["checkpoint"] + 1)  # at the cap: torch reads it (and refuses)
    with pytest.raises(CheckpointError) as err:
        load_plain(ckpt, "--checkpoint")
    assert "over the limit" not in str(err.value)
