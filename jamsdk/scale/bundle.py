"""Shipping a model folder to the nodes of a Ray cluster through the object store, once per node.

The driver reads every file of the exported folder into one :class:`ModelBundle` and puts it in
Ray's object store (:func:`ship`). An actor or replica calls :func:`ModelBundle.folder`
(:func:`materialize`): the first one on a node pulls the files and writes them, atomically, into a
cache folder named by the content's SHA-256 (``$TMPDIR/jamsdk-models-<uid>/<sha>``, or
``$JAMSDK_MODEL_CACHE/<sha>``); later ones on that node — and later jobs with the same model —
find the folder, check its content against the key, and use it without pulling. Nothing needs the
driver's path to exist on the node. The cache keeps the :data:`KEEP` most recently used models;
older ones unused for :data:`EVICT_AFTER_S` are removed (a later job writes its model again).

Engines (``.engine``) travel like any other file; they only load on the GPU and TensorRT they were
built for, as anywhere.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jamsdk.errors import InputError

CACHE_PREFIX = "jamsdk-models-"
KEEP = 3                  # most recently used models kept per node
EVICT_AFTER_S = 600.0     # an older model is removed only when unused this long (no actor is still loading it)
_KEY = re.compile(r"[0-9a-f]{64}\Z")
_STAGING = re.compile(r"\.[0-9a-f]{16}\.tmp-[a-z0-9_]{8}\Z")


@dataclass(frozen=True)
class ModelBundle:
    """What travels to the nodes: the content key, the driver's path (for messages) and the files' bytes.

    ``ref`` is a one-element list holding the ObjectRef of the files (a list, so Ray passes the
    reference to actors as it is instead of pulling the bytes into every actor), or the files
    themselves (``inline``, for Serve over Ray Client: a reference made through Ray Client cannot
    travel inside a deployment's arguments).
    """

    key: str
    source: str
    ref: list

    def folder(self) -> Path:
        """The model folder on this node (written from the object store on first use)."""
        return materialize(self)


def read_folder(folder: str | os.PathLike[str]) -> dict[str, bytes]:
    """Every regular file under ``folder`` by relative POSIX path (symlinks and special files refused)."""
    root = Path(folder)
    files: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames) + [d for d in dirnames if Path(dirpath, d).is_symlink()]:
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            if path.is_symlink() or not path.is_file():
                raise InputError(f"--model {root}: {rel} is not a regular file (a symlink or special file); "
                                 "copy the real file into the model folder to ship it to other nodes")
            files[rel] = path.read_bytes()
    if "manifest.json" not in files:
        raise InputError(f"--model {root}: expected an exported model folder (with manifest.json)")
    return files


def content_key(files: dict[str, bytes]) -> str:
    """SHA-256 over the sorted (path, SHA-256 of bytes) pairs: equal keys, equal folders."""
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(rel.encode("utf-8") + b"\0" + hashlib.sha256(files[rel]).digest())
    return h.hexdigest()


def folder_key(folder: Path) -> str | None:
    """The content key of a folder on disk, or None when it cannot be read as a model folder."""
    try:
        return content_key(read_folder(folder))
    except (OSError, InputError):
        return None


def ship(ray: Any, folder: str | os.PathLike[str], inline: bool = False) -> ModelBundle:
    """Read ``folder`` and put it in the object store of the connected Ray (owned by this driver).

    ``inline``: carry the bytes in the bundle itself instead (they then travel with each use).
    """
    files = read_folder(folder)
    return ModelBundle(content_key(files), str(folder), [files if inline else ray.put(files)])


def cache_root() -> Path:
    """This user's cache of shipped model folders on this node (created 0700, refused if not ours)."""
    root = Path(os.environ.get("JAMSDK_MODEL_CACHE") or Path(tempfile.gettempdir()) / f"{CACHE_PREFIX}{os.getuid()}")
    try:
        root.mkdir(mode=0o700, exist_ok=True)
        st = os.lstat(root)
    except OSError as exc:
        raise InputError(f"cannot create the model cache {root}: {exc.strerror or exc}") from None
    if not os.path.isdir(root) or os.path.islink(root) or st.st_uid != os.getuid():
        raise InputError(f"{root} exists but is not a folder of this user: remove it or set TMPDIR elsewhere")
    return root


def materialize(bundle: ModelBundle) -> Path:
    """The bundle's folder on this node: reused when its content matches the key, else written from the object store."""
    import ray

    root = cache_root()
    target = root / bundle.key
    if target.is_dir() and folder_key(target) == bundle.key:
        _used(target)
        return target
    files = bundle.ref[0] if isinstance(bundle.ref[0], dict) else ray.get(bundle.ref[0])
    staging = Path(tempfile.mkdtemp(prefix=f".{bundle.key[:16]}.tmp-", dir=root))
    try:
        for rel, data in files.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        if target.exists():
            # A folder with this name whose content does not match (another actor is writing it, or it
            # was damaged): use a private copy rather than touch it.
            if folder_key(target) == bundle.key:
                shutil.rmtree(staging, ignore_errors=True)
                return target
            return staging
        try:
            os.rename(staging, target)
        except OSError:  # another actor on this node renamed its copy first
            shutil.rmtree(staging, ignore_errors=True)
            if folder_key(target) != bundle.key:
                raise
        _used(target)
        evict(root)
        return target
    except BaseException:
        if staging.exists() and staging != target:
            shutil.rmtree(staging, ignore_errors=True)
        raise


def _used(folder: Path) -> None:
    try:
        os.utime(folder)  # the folder's mtime says when a job last used it
    except OSError:
        pass


def evict(root: Path, keep: int = KEEP, after_s: float = EVICT_AFTER_S) -> list[Path]:
    """Remove cached models beyond the ``keep`` most recently used that were unused for ``after_s``, and
    staging folders older than that; only names this module makes, only folders of this user."""
    now, entries, removed = time.time(), [], []
    try:
        scan = list(os.scandir(root))
    except OSError:
        return removed
    for entry in scan:
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not entry.is_dir(follow_symlinks=False) or st.st_uid != os.getuid():
            continue
        if _KEY.match(entry.name):
            entries.append((st.st_mtime, Path(entry.path)))
        elif _STAGING.match(entry.name) and now - st.st_mtime > after_s:
            removed.append(Path(entry.path))
    entries.sort(reverse=True)
    removed += [path for mtime, path in entries[keep:] if now - mtime > after_s]
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed
