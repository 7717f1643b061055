"""Replacing an output folder without ever deleting what jamsdk did not write.

A command that writes a whole folder (``export --out``, ``synth --out --overwrite``) builds it in a
staging folder beside the target and swaps it in at the end. Three rules:

* The target is replaced only when it is empty, or when ``owned`` proves jamsdk wrote it (for a
  model folder: its ``manifest.json`` parses as jamsdk's format and lists every file in the folder).
  Otherwise the command stops with one line and touches nothing.
* Staging folders are named ``.<name>.tmp-<pid>-<random>`` and hold a marker file with the host
  name; the previous target is moved to ``.<name>.old-<pid>`` during the swap.
* A crash (``kill -9``) can leave those behind. The next run for the same target removes staging
  folders whose process is gone (same host, marker present) and finishes an interrupted swap: an
  ``.old-<pid>`` folder that ``owned`` accepts is deleted when the target exists, and put back when
  it does not. Nothing else is touched, whatever its name.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
from pathlib import Path
from typing import Callable

from jamsdk._atomic import disk_full, new_name
from jamsdk.errors import InputError

MARKER = ".jamsdk-staging"
#: ``owned(folder)`` → None when jamsdk provably wrote ``folder``, else why not (one phrase)
Owned = Callable[[Path], "str | None"]


def check_replaceable(out: Path, owned: Owned, what: str = "output folder") -> None:
    """InputError (touching nothing) unless ``out`` is missing, an empty folder, or ``owned`` accepts it."""
    if out.is_symlink():
        raise InputError(f"{what} {out} is a symbolic link; give the folder it points to, or a new folder")
    if not out.exists():
        return
    if not out.is_dir():
        raise InputError(f"{what} {out} exists and is a file")
    try:
        empty = not any(out.iterdir())
    except OSError as exc:
        raise InputError(f"{what} {out}: cannot list it ({exc.strerror or exc})") from None
    if empty:
        return
    why = owned(out)
    if why is not None:
        raise InputError(f"{what} {out} is not empty and {why}; nothing was changed: choose a new or empty folder")


def stage(out: Path, owned: Owned) -> Path:
    """A new staging folder beside ``out`` (after cleaning what crashed runs left for ``out``)."""
    parent = out.parent if str(out.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        clean_stale(out, owned)
        # An ordinary folder (0777 less the umask, applied by the kernel), not mkdtemp's private one.
        tmp = new_name(parent, f".{out.name}.tmp-{os.getpid()}-", "", lambda p: os.mkdir(p, 0o777))
        (tmp / MARKER).write_text(socket.gethostname() + "\n", encoding="utf-8")
    except OSError as exc:
        raise InputError(disk_full(exc, parent) or f"cannot write the output folder in {parent}: "
                                                    f"{exc.strerror or exc}") from None
    return tmp


def replace(tmp: Path, out: Path) -> None:
    """Swap the finished staging folder ``tmp`` in as ``out`` (the old ``out`` is deleted after)."""
    with contextlib.suppress(FileNotFoundError):
        (tmp / MARKER).unlink()
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        if out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # an empty folder: nothing to keep
            old = None
        else:
            os.replace(out, old)
    try:
        os.replace(tmp, out)
    except OSError:
        if old is not None:
            os.replace(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def discard(tmp: Path) -> None:
    """Remove a staging folder after a failure (only one :func:`stage` made)."""
    if tmp.name.startswith(".") and ".tmp-" in tmp.name:
        shutil.rmtree(tmp, ignore_errors=True)


def clean_stale(out: Path, owned: Owned) -> list[Path]:
    """Remove ``out``'s staging folders left by dead processes; finish an interrupted swap.

    Returns what was removed or restored.
    """
    parent = out.parent if str(out.parent) else Path(".")
    name = re.escape(out.name)
    staging = re.compile(rf"\.{name}\.tmp-(\d+)-[a-z0-9_]{{8}}")
    previous = re.compile(rf"\.{name}\.old-(\d+)")
    host = socket.gethostname()
    done = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return done
    for entry in entries:
        m = staging.fullmatch(entry.name)
        if m and entry.is_dir(follow_symlinks=False) and not _alive(int(m[1])):
            try:
                mark = (Path(entry.path) / MARKER).read_text(encoding="utf-8").strip()
            except OSError:
                continue  # no marker: not provably ours
            if mark == host:
                shutil.rmtree(entry.path, ignore_errors=True)
                done.append(Path(entry.path))
            continue
        m = previous.fullmatch(entry.name)
        if m and entry.is_dir(follow_symlinks=False) and not _alive(int(m[1])) and owned(Path(entry.path)) is None:
            if out.exists() or out.is_symlink():
                shutil.rmtree(entry.path, ignore_errors=True)
            else:  # killed between the two renames: the previous folder comes back
                os.replace(entry.path, out)
            done.append(Path(entry.path))
    return done


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # someone else's process (or a number we cannot check): leave it
    return True


__all__ = ["MARKER", "check_replaceable", "clean_stale", "discard", "replace", "stage"]
