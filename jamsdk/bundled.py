"""The model shipped inside jamsdk: where it is, what it is, and how ``--model`` names resolve to it.

The bundled model (``jam-demo-128``) is a small JAM trained on synthetic articulated cartoon
figures only. It shows the pipeline end to end; it does not animate real faces or bodies well.
Whenever it runs, the user is told so once per process: the :class:`~jamsdk.runtime.animator.Animator`
issues a :class:`DemoModelWarning` (a ``UserWarning``; silence it with
``warnings.simplefilter("ignore", jamsdk.bundled.DemoModelWarning)``) and the ``jamsdk`` command
prints it as one ``note:`` line on stderr.

Importing this module is free: no torch, no file access, no output.
"""

from __future__ import annotations

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
    f"using the bundled demo model {DEMO_NAME}: a small JAM trained on synthetic articulated cartoon figures "
    "only, it will not animate real faces or bodies well; for a real model run jamsdk convert-mraa on an "
    "MRAA checkpoint (or jamsdk train on your data), then jamsdk export, and pass --model DIR"
)
"""One line: what the bundled model is and how to get a real one."""


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


def is_demo(path: str | os.PathLike[str] | None) -> bool:
    """Whether ``path`` is the bundled demo model folder (``None`` and ``"demo"`` count)."""
    if path is None or (isinstance(path, str) and path == DEMO_SPEC):
        return True
    try:
        return Path(os.fspath(path)).resolve() == DEMO_MODEL_DIR
    except (OSError, RuntimeError):
        return False


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


__all__ = ["DEMO_CHECKPOINT", "DEMO_MODEL_DIR", "DEMO_NAME", "DEMO_NOTICE", "DEMO_SPEC", "DemoModelWarning",
           "is_demo", "resolve_model", "warn_if_demo"]
