"""jamsdk: exportable image animation (JAM / MRAA) with streaming inference.

``import jamsdk`` is light: it imports no torch, onnx, onnxruntime or tensorrt. Heavy packages are
imported by the feature that needs them, with an error naming the extra to install.

Typical use::

    import jamsdk
    with jamsdk.Animator("model_dir") as anim:
        anim.set_source(image)
        out = anim.run(frame)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jamsdk._version import __version__
from jamsdk.errors import (
    CheckpointError,
    ConfigError,
    EngineError,
    InputError,
    JamError,
    MissingDependencyError,
)

__all__ = [
    "Animator",
    "CheckpointError",
    "ConfigError",
    "EngineError",
    "InputError",
    "JamError",
    "MissingDependencyError",
    "__version__",
]

if TYPE_CHECKING:
    from jamsdk.runtime.animator import Animator


def __getattr__(name: str) -> Any:
    # The Animator lives in the runtime; importing it lazily keeps `import jamsdk` instant.
    if name == "Animator":
        from jamsdk.runtime.animator import Animator

        return Animator
    raise AttributeError(f"module 'jamsdk' has no attribute {name!r}")
