"""The model shipped inside jamsdk: where it is, what it is, and how ``--model`` names resolve to it.

The bundled model (``jam-demo-128``) is a small JAM trained on synthetic articulated cartoon
figures only. It shows the pipeline end to end; it does not animate real faces or bodies well.
Whenever it runs, the user is told so once per process: the :class:`~jamsdk.runtime.animator.Animator`
issues a :class:`DemoModelWarning` (a ``UserWarning``; silence it with
``warnings.simplefilter("ignore", jamsdk.bundled.DemoModelWarning)``) and the ``jamsdk`` command
prints it as one ``note:`` line on stderr.

The model is recognised by what it is, not where it lies: a folder is the demo model when it is the
bundled folder, or when its manifest records that it was exported from the bundled checkpoint
(``export.checkpoint_sha256``, which ``jamsdk export`` writes), so a copy or a re-export of
``demo.pt`` anywhere carries the note too.

Importing this module is free: no torch, no file access, no output.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import warnings
from pathlib import Path

from jamsdk.errors import InputError

ASSETS = Path(__file__).resolve().parent / "assets"
DEMO_MODEL_DIR = ASSETS / "demo_model"
"""The bundled exported model folder (``manifest.json`` + FP32 ONNX graphs)."""
DEMO_CHECKPOINT = ASSETS / "demo.pt"
"""The bundled model's jamsdk checkpoint (FP16-stored weights) it was exported from."""
DEMO_NAME = "jam-demo-128"
DEMO_SPEC = "demo"
"""The word ``--model`` (and :func:`resolve_model`) accepts for the bundled model."""

DEMO_NOTICE = (
    f"demo model {DEMO_NAME}: cartoon figures only, not real faces or bodies "
    "(real models: jamsdk convert-mraa or train, then export)"
)
"""One short line: what the bundled model is and how to get a real one (the docs' models page says more)."""

DEMO_PAGE_NOTE = (
    f"{DEMO_NAME} is jamsdk's bundled demo model: a small JAM trained on synthetic cartoon figures only. "
    "It will not animate real faces or bodies well; use a real model for real footage."
)
"""The caveat shown where people look at the bundled model's output (the live page)."""


class DemoModelWarning(UserWarning):
    """Issued once per process when the bundled demo model runs (message: :data:`DEMO_NOTICE`)."""


_notice_given = False


def resolve_model(spec: str | os.PathLike[str] | None) -> Path:
    """The model folder ``spec`` names: ``None`` or ``"demo"`` → :data:`DEMO_MODEL_DIR`, else the path.

    Raises:
        InputError: the folder does not exist (the message names it).
    """
    if spec is None or (isinstance(spec, str) and spec == DEMO_SPEC):
        path = DEMO_MODEL_DIR
        if not (path / "manifest.json").is_file():
            raise InputError(f"the bundled demo model is missing ({path} has no manifest.json); this jamsdk "
                             "was installed without it: pass --model DIR with an exported model folder")
        return path
    path = Path(os.fspath(spec))
    if not path.is_dir():
        what = "is a file, not a folder" if path.exists() else "does not exist"
        raise InputError(f"model folder {path} {what}: expected a folder written by jamsdk export "
                         f"(or the word '{DEMO_SPEC}' for the bundled model)")
    return path


def is_bundled_folder(path: str | os.PathLike[str] | None) -> bool:
    """Whether ``path`` is the bundled model's own folder, part of the installed package (``None`` and
    ``"demo"`` count): nothing may be written into it."""
    if path is None or (isinstance(path, str) and path == DEMO_SPEC):
        return True
    try:
        return Path(os.fspath(path)).resolve() == DEMO_MODEL_DIR
    except (OSError, RuntimeError):
        return False


@functools.lru_cache(maxsize=1)
def _demo_checkpoint_hashes() -> frozenset[str]:
    """SHA-256 of the bundled checkpoint: of the file itself, and as the bundled folder records it."""
    hashes = set()
    digest = hashlib.sha256()
    try:
        with open(DEMO_CHECKPOINT, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        hashes.add(digest.hexdigest())
    except OSError:
        pass
    recorded = _exported_from(DEMO_MODEL_DIR)
    if recorded:
        hashes.add(recorded)
    return frozenset(hashes)


def _exported_from(folder: Path) -> str | None:
    """The SHA-256 of the checkpoint a model folder was exported from, as its manifest records it."""
    try:
        data = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        value = data["export"]["checkpoint_sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return value if isinstance(value, str) and len(value) == 64 else None


def is_demo(path: str | os.PathLike[str] | None) -> bool:
    """Whether ``path`` holds the bundled demo model: its own folder, or any folder exported from the
    bundled checkpoint (a copy, a re-export elsewhere). ``None`` and ``"demo"`` count."""
    if is_bundled_folder(path):
        return True
    try:
        recorded = _exported_from(Path(os.fspath(path)))
    except TypeError:
        return False
    return recorded is not None and recorded in _demo_checkpoint_hashes()


def build_command(model_dir: str | os.PathLike[str] | None) -> str:
    """A ``jamsdk build`` command that works for ``model_dir`` (the bundled folder builds into a copy)."""
    if is_bundled_folder(model_dir):
        return "jamsdk build --model demo --out demo-engines (then run it with --model demo-engines)"
    return f"jamsdk build --model {model_dir}"


def warn_if_demo(path: str | os.PathLike[str] | None, stacklevel: int = 3) -> bool:
    """Issue the :class:`DemoModelWarning` when ``path`` is the bundled model, once per process.

    Returns:
        Whether ``path`` is the bundled model.
    """
    global _notice_given
    if not is_demo(path):
        return False
    if not _notice_given:
        _notice_given = True
        warnings.warn(DEMO_NOTICE, DemoModelWarning, stacklevel=stacklevel)
    return True


__all__ = ["DEMO_CHECKPOINT", "DEMO_MODEL_DIR", "DEMO_NAME", "DEMO_NOTICE", "DEMO_PAGE_NOTE", "DEMO_SPEC",
           "DemoModelWarning", "build_command", "is_bundled_folder", "is_demo", "resolve_model", "warn_if_demo"]
