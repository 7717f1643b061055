"""OpenVINO's compiled-model cache, checked before OpenVINO reads it: this user's, private, unchanged.

OpenVINO loads a blob it finds in its ``CACHE_DIR`` as it is: flipped bytes in a cached blob change
the output silently, and a cache folder another user made (``JAMSDK_CACHE_DIR`` on a shared path,
mode 0777) lets that user plant a blob that runs as this model. The rules here are those of the Ray
node cache (:mod:`jamsdk.scale.bundle`):

* **Owner and mode.** The cache root (:func:`jamsdk.user_cache.cache_root`) may not belong to
  another user (root's is fine) nor be writable by others unless sticky (``/tmp``). Its
  ``openvino/`` folder and the per-graph ``openvino/<graph sha256>/`` folders are created 0700;
  existing ones must be real folders (no symlinks) of this user, and are made 0700 again if they are
  writable by anyone else. Otherwise :class:`~jamsdk.errors.EngineError` says whose folder it is.
* **Content.** After OpenVINO compiles, every file in the per-graph folder is hashed into
  :data:`RECORD` (SHA-256 per file, written atomically). Before OpenVINO reads the folder again,
  every file must be listed there with that hash; a folder that differs in any way (a changed,
  unlisted, missing-record or non-regular entry) is emptied, so OpenVINO compiles again and writes a
  new blob (a bad entry is rebuilt, never used).

The folder is this user's and private, so between the check and OpenVINO's read only this user's
own processes could change it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
from pathlib import Path

from jamsdk.errors import EngineError
from jamsdk.user_cache import CACHE_ENV, cache_root

RECORD = ".jamsdk-blobs.json"
_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH


def folder_for(sha256: str) -> Path | None:
    """The checked, verified cache folder of the graph with hash ``sha256``; None when it cannot be made.

    Raises:
        EngineError: the root or a folder of the cache belongs to another user, or is a symlink or a file.
    """
    root = cache_root()
    path = root / "openvino" / sha256
    try:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.parent.mkdir(exist_ok=True, mode=0o700)
        path.mkdir(exist_ok=True, mode=0o700)
    except OSError:
        return None  # a read-only home: compile every time rather than fail
    _check_root(root)
    for folder in (root / "openvino", path):
        _check_ours(folder)
    if not os.access(path, os.W_OK):
        return None
    verify(path)
    return path


def _refuse(folder: Path, why: str) -> EngineError:
    return EngineError(f"OpenVINO cache {folder} {why}: a blob planted there would run as the model; remove it, or "
                       f"set {CACHE_ENV} to a folder of your own")


def _check_root(root: Path) -> None:
    st = os.stat(root)
    if st.st_uid not in (os.getuid(), 0):
        raise _refuse(root, f"belongs to another user (uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):04o})")
    if st.st_mode & stat.S_IWOTH and not st.st_mode & stat.S_ISVTX:
        raise _refuse(root, f"is writable by every user (mode {stat.S_IMODE(st.st_mode):04o}, not sticky)")


def _check_ours(folder: Path) -> None:
    st = os.lstat(folder)
    if not stat.S_ISDIR(st.st_mode):
        raise _refuse(folder, "is a symbolic link or a file, not a folder")
    if st.st_uid != os.getuid():
        raise _refuse(folder, f"belongs to another user (uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):04o})")
    if st.st_mode & _OTHERS_WRITE:
        os.chmod(folder, 0o700)  # ours, but others could write in it: not any more


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _entries(folder: Path) -> dict[str, os.stat_result]:
    # the record, and a record another process is writing (its temporary name), are not cache entries
    return {e.name: e.stat(follow_symlinks=False) for e in os.scandir(folder) if not e.name.startswith(RECORD)}


def _recorded(folder: Path) -> dict[str, str] | None:
    try:
        data = json.loads((folder / RECORD).read_text(encoding="utf-8"))
        files = data["files"]
        return files if isinstance(files, dict) and all(isinstance(v, str) for v in files.values()) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def verify(folder: Path) -> bool:
    """True when every file in ``folder`` is what :func:`record` hashed; otherwise the folder is emptied."""
    entries = _entries(folder)
    if not entries:
        return True
    files = _recorded(folder)
    good = files is not None and set(files) == set(entries) and all(
        stat.S_ISREG(st.st_mode) and _sha256(folder / name) == files[name] for name, st in entries.items())
    if not good:
        clear(folder)
    return good


def clear(folder: Path) -> None:
    """Remove everything in the cache folder ``folder`` (OpenVINO then compiles and caches again)."""
    for entry in os.scandir(folder):
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def record(folder: Path) -> None:
    """Hash every file OpenVINO left in ``folder`` into :data:`RECORD` (call right after it compiled)."""
    files = {name: _sha256(folder / name) for name, st in _entries(folder).items() if stat.S_ISREG(st.st_mode)}
    tmp = folder / f"{RECORD}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({"files": files}, fh)
    os.replace(tmp, folder / RECORD)


__all__ = ["RECORD", "clear", "folder_for", "record", "verify"]
