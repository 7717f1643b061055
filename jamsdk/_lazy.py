"""Lazy imports of heavy optional packages.

``import jamsdk`` must stay light (no torch, onnx, onnxruntime, openvino or tensorrt) so that the runtime
installs on a Jetson without training dependencies; modules that need a heavy package call
:func:`require` at the point of use.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from jamsdk.errors import MissingDependencyError

# Which extra provides which import (top-level name), for the error message; as pyproject.toml says.
_EXTRA_OF = {
    "torch": "train",
    "yaml": "train",
    "tqdm": "train",
    "onnx": "export",
    "onnxsim": "export",
    "onnxscript": "export",
    "onnxruntime": "onnxruntime",
    "tensorrt": "tensorrt",
    "cuda": "tensorrt",
    "openvino": "openvino",
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
    "onnxruntime": {"onnxruntime"},
    "tensorrt": {"tensorrt", "cuda"},
    "openvino": {"openvino"},
    "video": {"imageio"},
    "vcam": {"pyvirtualcam"},
    "ray": {"onnxruntime", "ray", "fastapi", "starlette", "uvicorn", "websockets"},
}


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
    return f'{module} is not installed (pip install "jamsdk[{extra}]")' if extra else f"{module} is not installed"


def require(module: str, extra: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        extra = _EXTRA_OF.get(top, "") if extra is None else extra
        target = f'"jamsdk[{extra}]"' if extra else "jamsdk"
        raise MissingDependencyError(
            f"{module} is required for this feature but could not be imported ({exc}); "
            f"install it with: pip install {target}"
        ) from exc
