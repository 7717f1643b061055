"""Ray plumbing shared by ``jamsdk batch`` and ``jamsdk serve``: the import, the cluster, the model."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from jamsdk._lazy import require
from jamsdk.errors import InputError

EXTRA = "ray"
DEMO_NOTICE = "jamsdk: using the bundled demo model (trained on synthetic figures only)"


def require_ray(module: str = "ray") -> ModuleType:
    """Import ``ray`` (or ``ray.data``, ``ray.serve``, ``fastapi`` …) or say: pip install "jamsdk[ray]"."""
    return require(module, extra=EXTRA)


def resolve_model(model: str | os.PathLike[str] | None) -> Path:
    """``None`` or ``"demo"`` → the bundled demo model folder (with a one-line notice); else the folder."""
    if model is None or str(model) == "demo":
        from jamsdk.commands.demo import DEMO_MODEL, check_assets

        check_assets()
        print(DEMO_NOTICE, file=sys.stderr)
        return DEMO_MODEL
    path = Path(model)
    if not (path / "manifest.json").is_file():
        raise InputError(f"--model {model}: expected an exported model folder (with manifest.json) or 'demo'")
    return path.resolve()


def init_ray(address: str | None, num_cpus: int | None = None) -> Any:
    """Connect to the Ray cluster at ``address``, or start a local Ray (reused when already running).

    Returns the ``ray`` module. A local instance runs without the dashboard (less memory, no port).
    """
    ray = require_ray()
    if ray.is_initialized():
        return ray
    if address:
        ray.init(address=address, logging_level="WARNING", log_to_driver=False)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    return ray
