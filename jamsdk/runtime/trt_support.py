"""Which TensorRT versions jamsdk runs on and builds with (no numpy, no tensorrt: ``jamsdk doctor`` reads it too).

TensorRT 8.6 is the floor. Each call the runtime and the builder make was checked against TensorRT's
own ``python/src/infer/pyCore.cpp`` and headers at v8.6.1, v10.0.1, v10.1.0 and v10.3.0; where a
version lacks a call, the code asks for the older one by feature (``hasattr``), not by version number.
"""

from __future__ import annotations

import re
from typing import Any

from jamsdk._lazy import install_command

#: the oldest TensorRT this backend runs on, and where a supported one comes from
OLDEST_TENSORRT = (8, 6)


def supported_from() -> str:
    """Where a supported TensorRT comes from, with the install command for how jamsdk is installed."""
    return f"JetPack 6.1 or later ships TensorRT 10.3; elsewhere {install_command('tensorrt')} (TensorRT 10.3 or newer)"


def version_tuple(version: str) -> tuple[int, ...]:
    """``"10.3.0.30"`` → ``(10, 3, 0, 30)`` (non-numeric parts end the tuple)."""
    out = []
    for part in str(version).split("."):
        digits = re.match(r"\d+", part)
        if digits is None:
            break
        out.append(int(digits.group()))
        if digits.end() != len(part):  # "0b1": a pre-release tag ends the numeric part
            break
    return tuple(out)


def support_problem(version: str) -> str:
    """Why jamsdk cannot use TensorRT ``version`` ("" when it can): one line naming what to install.

    TensorRT 8.6 is the floor: ``execute_async_v3``, ``set_tensor_address``, ``num_io_tensors`` and
    ``create_execution_context_without_device_memory`` with the ``device_memory`` setter are all in
    ``pyCore.cpp`` v8.6.1 (:854, :871, :926, :835, :962); older versions were not checked against
    their sources and are refused rather than guessed at.
    """
    found = version_tuple(version)
    oldest = ".".join(map(str, OLDEST_TENSORRT))
    if not found:
        return f"TensorRT reports no version number ({version!r}); jamsdk runs on {oldest} or newer; {supported_from()}"
    if found[:2] >= OLDEST_TENSORRT:
        return ""
    return f"TensorRT {version} is older than {oldest}, the oldest jamsdk runs on; {supported_from()}"


def has_strong_typing(trt: Any) -> bool:
    """Whether this ``tensorrt`` builds strongly typed networks (``NetworkDefinitionCreationFlag.STRONGLY_TYPED``).

    Absent in 8.6 (NvInfer.h v8.6.1:9933-9937), present from 9.x; an attribute read, no TensorRT object.
    """
    return hasattr(getattr(trt, "NetworkDefinitionCreationFlag", None), "STRONGLY_TYPED")
