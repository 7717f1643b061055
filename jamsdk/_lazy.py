"""Lazy imports of heavy optional packages.

``import jamsdk`` must stay light (no torch, onnx, onnxruntime, openvino or tensorrt) so that the runtime
installs on a Jetson without training dependencies; modules that need a heavy package call
:func:`require` at the point of use.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import os
from pathlib import Path
from types import ModuleType
from typing import Any, Iterable
from urllib.parse import unquote, urlparse

from jamsdk.backend_registry import ROWS
from jamsdk.errors import MissingDependencyError

# Which extra provides which import (top-level name), for the error message; as pyproject.toml says.
# The backends' extras come from their rows (jamsdk.backend_registry).
_EXTRA_OF = {
    "torch": "train",
    "yaml": "train",
    "tqdm": "train",
    "onnx": "export",
    "onnxsim": "export",
    "onnxscript": "export",
    **{package: row.extra for row in ROWS for package in row.packages},
    "imageio": "video",
    "pyvirtualcam": "vcam",
    "ray": "ray",
    "fastapi": "ray",
    "starlette": "ray",
    "uvicorn": "ray",
    "websockets": "ray",
}
# What each extra brings (its own and the extras it includes), so a command can name its own.
_PACKAGES_OF = {
    "train": {"torch", "yaml", "tqdm", "imageio"},
    "export": {"torch", "yaml", "tqdm", "imageio", "onnx", "onnxsim", "onnxscript", "onnxruntime"},
    **{row.extra: set(row.packages) for row in ROWS},
    "video": {"imageio"},
    "vcam": {"pyvirtualcam"},
    "ray": {"onnxruntime", "ray", "fastapi", "starlette", "uvicorn", "websockets"},
}


@functools.lru_cache(maxsize=1)
def editable_checkout() -> Path | None:
    """The clone this jamsdk runs from, when it is one (``pip install -e``, or on ``sys.path``), else None."""
    from importlib import metadata

    return checkout_of(Path(__file__).resolve().parent.parent, metadata.distributions(name="jamsdk"))


def checkout_of(root: Path, distributions: Iterable[Any]) -> Path | None:
    """``root`` (the folder holding the ``jamsdk`` package) when it is a clone, else None.

    Read from the distributions' ``direct_url.json`` (PEP 610: pip records ``dir_info.editable`` and
    the folder's URL for ``-e`` installs, ``archive_info`` for a wheel file, nothing for an index).
    Every ``jamsdk`` distribution on ``sys.path`` is asked, since an ``egg-info`` folder in the clone
    (setuptools writes one there) may come first. A clone run without an install (``PYTHONPATH``)
    counts too: its ``pyproject.toml`` sits beside the package, which no wheel installs.
    """
    for dist in distributions:
        try:
            info = json.loads(dist.read_text("direct_url.json") or "{}")
        except ValueError:
            continue
        if isinstance(info, dict) and isinstance(info.get("dir_info"), dict) and info["dir_info"].get("editable"):
            url = urlparse(str(info.get("url", "")))
            if url.scheme == "file" and Path(unquote(url.path)).resolve() == root.resolve():
                return root
    return root if (root / "pyproject.toml").is_file() else None


def install_command(extra: str, flags: str = "") -> str:
    """The pip command that adds ``extra`` to this install: ``pip install "jamsdk[X]"`` for a wheel or
    an index, ``pip install -e ".[X]"`` in an editable clone (its path when run from elsewhere);
    ``flags`` (such as ``--force-reinstall``) go before the requirement."""
    pip = f"pip install {flags} " if flags else "pip install "
    clone = editable_checkout()
    if clone is None:
        return f'{pip}"jamsdk[{extra}]"'
    try:
        where = "." if Path.cwd().resolve() == clone.resolve() else os.fspath(clone)
    except OSError:  # the working folder was removed
        where = os.fspath(clone)
    return f'{pip}-e "{where}[{extra}]"'


def missing_extra(exc: ImportError, command_extra: str | None = None) -> tuple[str, str] | None:
    """``(package, extra)`` when ``exc`` is an optional package that is not installed, else None.

    ``command_extra`` (the extra a command needs as a whole) is named when it brings the package,
    so ``jamsdk export`` without torch says ``jamsdk[export]``, not ``jamsdk[train]``.
    """
    name = getattr(exc, "name", None)
    if not isinstance(exc, ModuleNotFoundError) or not name:
        return None
    top = name.split(".")[0]
    if top not in _EXTRA_OF:
        return None  # a module jamsdk itself or a core dependency needs: a bug or a broken install
    if command_extra and top in _PACKAGES_OF.get(command_extra, ()):
        return top, command_extra
    return top, _EXTRA_OF[top]


def not_installed(module: str) -> str:
    """"" when ``module`` can be imported here (found, not imported), else one line naming the extra
    that brings it — what a backend's ``usable`` says."""
    if importlib.util.find_spec(module) is not None:
        return ""
    extra = _EXTRA_OF.get(module.split(".")[0], "")
    return f"{module} is not installed ({install_command(extra)})" if extra else f"{module} is not installed"


def require(module: str, extra: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        extra = _EXTRA_OF.get(top, "") if extra is None else extra
        command = install_command(extra) if extra else f"pip install {top}"
        raise MissingDependencyError(
            f"{module} is required for this feature but could not be imported ({exc}); "
            f"install it with: {command}"
        ) from exc
