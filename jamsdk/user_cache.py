"""This user's cache folder for what jamsdk can rebuild at will (compiled models, tactic timings).

One root for every cache, so that one variable moves them all (a read-only home, a shared machine,
a test run): ``$JAMSDK_CACHE_DIR``, else ``$XDG_CACHE_HOME/jamsdk``, else ``~/.cache/jamsdk``.
Below it each user of the cache keeps its own folder (``openvino/``, ``tensorrt/``). Shipped model
folders on Ray nodes are not here: they are a per-node copy of data, not a rebuildable cache
(:func:`jamsdk.scale.bundle.cache_root`).
"""

from __future__ import annotations

import os
from pathlib import Path

#: the variable that moves every jamsdk cache
CACHE_ENV = "JAMSDK_CACHE_DIR"


def cache_root() -> Path:
    """``$JAMSDK_CACHE_DIR``, else ``$XDG_CACHE_HOME/jamsdk``, else ``~/.cache/jamsdk``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "jamsdk"


__all__ = ["CACHE_ENV", "cache_root"]
