"""Ray plumbing shared by ``jamsdk batch`` and ``jamsdk serve``: the import and the model folder.

Connecting to a Ray (local or a cluster, checked first) is :func:`jamsdk.scale.connect.connect`, which
imports Ray through :func:`require_ray`; this module imports nothing of ``scale`` in return.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

from jamsdk._lazy import require
from jamsdk.errors import InputError

EXTRA = "ray"


def require_ray(module: str = "ray") -> ModuleType:
    """Import ``ray`` (or ``ray.serve``, ``fastapi`` …) or say: pip install "jamsdk[ray]"."""
    return require(module, extra=EXTRA)


def resolve_model(model: str | os.PathLike[str] | None) -> Path:
    """``None`` or ``"demo"`` → the bundled demo model (its notice issued once), else the folder."""
    from jamsdk.bundled import resolve_model as resolve, warn_if_demo

    path = resolve(model)
    if not (path / "manifest.json").is_file():
        raise InputError(f"--model {model}: expected an exported model folder (with manifest.json) or 'demo'")
    warn_if_demo(path)
    return path.resolve()
