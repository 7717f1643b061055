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
