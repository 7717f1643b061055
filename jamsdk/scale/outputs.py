"""Where ``jamsdk batch`` may write, and what it may clean up.

* :func:`contained`: a row's output path, with every folder on the way resolved (symlinks
  followed), must stay inside ``--out-dir``. Checked when the rows are read and again at write
  time (:func:`write_output`), so a symlink swapped in between is caught.
* :func:`clean_stale_temps`: temporary files that an interrupted run left beside a row's output.
  Only names that :func:`jamsdk._atomic.atomic_path` makes for *that* output
  (``.<name>.tmp-<8 characters><suffix>``), regular files, older than a minute (so a concurrent
  run's file in flight is left alone); nothing else is touched.
* :func:`clean_stale_workdirs`: the per-actor scratch folders (``jamsdk-batch-<pid>-*`` in the
  node's temp folder) of actors that no longer run (killed actors cannot clean up after themselves).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from jamsdk._atomic import write_bytes
from jamsdk.errors import InputError

STALE_AFTER_S = 60.0
WORKDIR_PREFIX = "jamsdk-batch-"
# tempfile.mkstemp's names: 8 characters of "abcdefghijklmnopqrstuvwxyz0123456789_" (CPython's _RandomNameSequence).
_MKSTEMP = "[a-z0-9_]{8}"


def contained(out_root: Path, target: Path) -> Path:
    """``target`` with its folders resolved, if it stays inside ``out_root``; InputError otherwise.

    A symlink as the file itself is followed too: the skip check ("output exists") reads through it.
    """
    root = out_root.resolve()
    real = target.parent.resolve() / target.name
    if real.is_symlink():
        real = real.resolve()
    if root not in real.parents:
        raise InputError(f"out {target}: leads outside --out-dir {out_root} (to {real}, through a symlink); refused")
    return real


def write_output(out_root: Path, target: Path, data: bytes) -> None:
    """Create the output's folders inside ``out_root`` one at a time, each checked, then write atomically.

    ``os.makedirs`` would follow a symlinked folder and create folders outside; this does not.
    """
    root = out_root.resolve()
    rel = Path(os.path.relpath(target, root))
    if rel.is_absolute() or ".." in rel.parts:
        raise InputError(f"out {target}: not inside --out-dir {out_root}; refused")
    root.mkdir(parents=True, exist_ok=True)
    folder = root
    for part in rel.parts[:-1]:
        folder = folder / part
        real = folder.resolve()
        if real != root and root not in real.parents:
            raise InputError(f"out {target}: the folder {folder} leads outside --out-dir {out_root} (to {real}, "
                             "through a symlink); refused")
        if not folder.exists():
            try:
                folder.mkdir()
            except FileExistsError:
                pass
    write_bytes(contained(root, root / rel), data)


def clean_stale_temps(outputs: list[Path], min_age_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove the temporary files an interrupted write of one of ``outputs`` left; returns what was removed."""
    removed: list[Path] = []
    now = time.time()
    by_folder: dict[Path, list[Path]] = {}
    for out in outputs:
        by_folder.setdefault(out.parent, []).append(out)
    for folder, outs in by_folder.items():
        patterns = [re.compile(re.escape(f".{o.name}.tmp-") + _MKSTEMP + re.escape(o.suffix) + r"\Z") for o in outs]
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if not entry.name.startswith(".") or not any(p.match(entry.name) for p in patterns):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
                if entry.is_file(follow_symlinks=False) and now - st.st_mtime >= min_age_s:
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
            except OSError:
                continue
    return removed


def new_workdir() -> Path:
    """A scratch folder for this actor process, named so that a later actor can tell when it is stale."""
    return Path(tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-"))


def clean_stale_workdirs(tmp: str | None = None) -> list[Path]:
    """Remove ``jamsdk-batch-<pid>-*`` folders of this user whose process is gone; returns what was removed."""
    base = Path(tmp or tempfile.gettempdir())
    pattern = re.compile(re.escape(WORKDIR_PREFIX) + r"(\d+)-[a-z0-9_]{8}\Z")
    removed = []
    try:
        entries = list(os.scandir(base))
    except OSError:
        return removed
    for entry in entries:
        m = pattern.match(entry.name)
        if not m or int(m.group(1)) == os.getpid():
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if not entry.is_dir(follow_symlinks=False) or st.st_uid != os.getuid() or _alive(int(m.group(1))):
                continue
            shutil.rmtree(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
