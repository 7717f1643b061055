"""jamsdk._atomic: outputs appear whole, with ordinary permissions, in folders created on demand."""

from __future__ import annotations

import os
import stat

import pytest

from jamsdk._atomic import atomic_path, write_bytes


@pytest.fixture()
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_outputs_get_the_permissions_open_would_give(tmp_path, umask_022):
    write_bytes(tmp_path / "a.bin", b"x")
    assert _mode(tmp_path / "a.bin") == 0o644  # not mkstemp's 0600: other users may read results
    os.umask(0o077)
    with atomic_path(tmp_path / "b.mp4") as tmp:
        tmp.write_bytes(b"y")
    assert _mode(tmp_path / "b.mp4") == 0o600


def test_replaces_whole_or_not_at_all(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash while writing")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
    write_bytes(target, b"new")
    assert target.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_missing_folders_are_created(tmp_path):
    """Decided: an output path in a folder that does not exist creates the folders (like mkdir -p)."""
    write_bytes(tmp_path / "new" / "deeper" / "out.bin", b"z")
    assert (tmp_path / "new" / "deeper" / "out.bin").read_bytes() == b"z"


def test_unwritable_place_is_an_input_error(tmp_path):
    from jamsdk.errors import InputError

    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(InputError, match="cannot write to"):
        write_bytes(tmp_path / "file" / "out.bin", b"z")


def test_no_process_wide_umask_0_moment(tmp_path, umask_022, monkeypatch):
    """The umask is per process: while _atomic and _folders set it to 0 to read it back, another
    thread's new files were created world-writable. Now the kernel applies the umask itself."""
    from jamsdk import _folders

    calls = []
    real = os.umask
    monkeypatch.setattr(os, "umask", lambda mask: calls.append(mask) or real(mask))
    write_bytes(tmp_path / "a.bin", b"x")
    staging = _folders.stage(tmp_path / "model", lambda _p: None)
    assert calls == []
    assert _mode(tmp_path / "a.bin") == 0o644 and _mode(staging) == 0o755  # what open() and mkdir() give
    assert staging.name.startswith(f".model.tmp-{os.getpid()}-") and (staging / _folders.MARKER).is_file()


def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    """The probe's D1/D2: ENOSPC from a writer is an InputError saying "no space left" (and where)."""
    import errno

    from jamsdk.errors import InputError

    target = tmp_path / "out" / "video.gif"
    with pytest.raises(InputError, match=rf"video.gif: no space left on the device holding {tmp_path / 'out'} "
                                         r"\(No space left on device\).*; nothing was written"):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert os.listdir(tmp_path / "out") == []
    with pytest.raises(OSError, match="Permission denied"):  # other errors are not renamed
        with atomic_path(target):
            raise OSError(errno.EACCES, "Permission denied")


def _tmpfs(path) -> bool:
    """Mount a 300 KB tmpfs at ``path`` (root only); False where that is not allowed."""
    import subprocess

    path.mkdir()
    return subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_writers_on_a_really_full_disk_say_so(tmp_path):
    """A real full file system (a small tmpfs; needs root): OpenCV's AVI writer dropped every frame
    with a log line only and the cut file was reported written (exit 0); the GIF writer raised ENOSPC
    twice (once from imageio's finalizer). Now: one InputError naming the device, and no file."""
    import subprocess

    import numpy as np

    from jamsdk.errors import InputError
    from jamsdk.video_write import write_video

    full = tmp_path / "full"
    if not _tmpfs(full):
        pytest.skip("mounting a tmpfs needs root")
    try:
        frames = [np.random.default_rng(i).integers(0, 256, (128, 128, 3), dtype=np.uint8) for i in range(40)]
        (full / "filler").write_bytes(b"\0" * 150_000)
        for ext in (".avi", ".mp4", ".gif"):
            with pytest.raises(InputError, match=rf"out{ext}: no space left on the device holding {full}"):
                write_video(full / f"out{ext}", frames, fps=10)
            assert os.listdir(full) == ["filler"]
        (full / "filler").unlink()
        assert write_video(full / "ok.mp4", frames[:4], fps=10) == 4  # with room again it writes
    finally:
        subprocess.run(["umount", str(full)], check=False)
