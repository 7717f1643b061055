"""Lazy imports of heavy optional packages.

``import jamsdk`` must stay light (no torch, onnx, onnxruntime, openvino or tensorrt) so that the runtime
installs on a Jetson without training dependencies; modules that need a heavy package call
:func:`require` at the point of use.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from jamsdk.errors import MissingDependencyError

# Which extra provides which import, for the error message.
_EXTRA_OF = {
    "torch": "train",
    "onnx": "export",
    "onnxsim": "export",
    "onnxscript": "export",
    "onnxruntime": "onnxruntime",
    "tensorrt": "tensorrt",
    "openvino": "openvino",
    "yaml": "",
    "tqdm": "",
}


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
