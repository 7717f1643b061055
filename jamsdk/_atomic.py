"""Atomic file output: write to a temporary file beside the target, fsync, then rename.

A crash or kill at any moment leaves either the old file or the complete new one, never a torn
file; readers never see a half-written checkpoint, ONNX graph, engine or video.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from pathlib import Path
from typing import Iterator

from jamsdk.errors import InputError

#: the errors of a device that cannot take more bytes: full, over quota, file too large
DISK_FULL = frozenset(e for e in (errno.ENOSPC, getattr(errno, "EDQUOT", None), errno.EFBIG) if e is not None)


def disk_full(exc: BaseException, folder: str | os.PathLike[str] | None = None) -> str | None:
    """The one line for an OSError of a full device (:data:`DISK_FULL`) while writing in ``folder``; None for others."""
    if not isinstance(exc, OSError) or exc.errno not in DISK_FULL:
        return None
    place = folder if folder is not None else exc.filename
    where = f" holding {place}" if place else ""
    return f"no space left on the device{where} ({exc.strerror or exc}): free some space or write elsewhere"


def free_bytes(folder: str | os.PathLike[str]) -> int | None:
    """Bytes an unprivileged user may still write on ``folder``'s device (None when unknown)."""
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):
        return None
    return st.f_bavail * st.f_frsize


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # not supported on every platform/filesystem; the rename is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in ``target``'s folder; on success it replaces ``target`` atomically.

    On an exception the temporary file is removed and ``target`` is untouched. ``suffix`` (default:
    the target's) matters for writers that pick a format by file extension (OpenCV, imageio).
    """
    target = Path(target)
    folder = target.parent if str(target.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # The temporary name starts with "." and keeps the extension (writers choose formats by it).
        tmp_path = new_name(folder, f".{target.name}.tmp-", suffix if suffix is not None else target.suffix,
                            lambda p: os.close(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)))
    except OSError as exc:
        raise InputError(disk_full(exc, folder) or f"cannot write to {folder}: {exc.strerror or exc}") from None
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
        _fsync_dir(folder)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        full = disk_full(exc, folder)
        if full is not None:
            raise InputError(f"{target}: {full}; nothing was written") from None
        raise


_NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"


def new_name(folder: Path, prefix: str, suffix: str, create) -> Path:  # noqa: ANN001 - create(path) makes it
    """``folder/<prefix><8 random characters><suffix>``, created by ``create(path)`` (which must fail if it exists).

    The names are those of :func:`tempfile.mkstemp` (others clean up by them). The file or folder is
    created with the mode ``create`` asks for, less the umask, by the kernel: no ``umask(0)`` moment
    (the umask is process-wide: another thread's files were created world-writable meanwhile).
    """
    for _ in range(100):
        path = folder / f"{prefix}{''.join(secrets.choice(_NAME_CHARS) for _ in range(8))}{suffix}"
        try:
            create(path)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(folder))


def write_bytes(target: str | os.PathLike[str], data: bytes) -> None:
    """Atomically replace ``target`` with ``data``."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
