"""Shared pytest set-up: ``@pytest.mark.gpu`` tests skip cleanly where TensorRT cannot run.

The GPU is probed with cuda-python first (never by touching TensorRT: without a GPU, deserialising
an engine segfaults instead of raising), then tensorrt must import.
"""

from __future__ import annotations

import functools
import importlib

import pytest


@functools.lru_cache(maxsize=1)
def _gpu_skip_reason() -> str:
    from jamsdk.runtime import _cuda

    if _cuda.gpu_info() is None:
        return f"no usable NVIDIA GPU ({_cuda.gpu_problem()})"
    try:
        importlib.import_module("tensorrt")
    except Exception as exc:  # ImportError, or a broken install's OSError
        return f"tensorrt does not import ({exc})"
    return ""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if not gpu_items:
        return
    reason = _gpu_skip_reason()
    if reason:
        marker = pytest.mark.skip(reason=f"gpu test: {reason}")
        for item in gpu_items:
            item.add_marker(marker)
