"""Ray plumbing shared by ``jamsdk batch`` and ``jamsdk serve``: the import, the cluster, the model."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from typing import Any

from jamsdk._lazy import require
from jamsdk.errors import InputError

EXTRA = "ray"


def require_ray(module: str = "ray") -> ModuleType:
    """Import ``ray`` (or ``ray.data``, ``ray.serve``, ``fastapi`` …) or say: pip install "jamsdk[ray]"."""
    return require(module, extra=EXTRA)


def resolve_model(model: str | os.PathLike[str] | None) -> Path:
    """``None`` or ``"demo"`` → the bundled demo model (its notice issued once), else the folder."""
    from jamsdk.bundled import resolve_model as resolve, warn_if_demo

    path = resolve(model)
    if not (path / "manifest.json").is_file():
        raise InputError(f"--model {model}: expected an exported model folder (with manifest.json) or 'demo'")
    warn_if_demo(path)
    return path.resolve()


def init_ray(address: str | None, num_cpus: int | None = None) -> Any:
    """Connect to the Ray at ``address`` (or ``RAY_ADDRESS``), or start a local Ray (reused when already running).

    Returns the ``ray`` module. A cluster is checked first and every failure is one
    :class:`~jamsdk.errors.ClusterError` line (:func:`jamsdk.scale.connect.connect`).
    """
    from jamsdk.scale.connect import connect

    return connect(address, num_cpus=num_cpus).ray
