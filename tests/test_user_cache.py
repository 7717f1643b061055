"""One cache root for every rebuildable cache: OpenVINO's compiled models and TensorRT's tactic timings."""

from __future__ import annotations

from pathlib import Path

from jamsdk.runtime._cuda import GpuInfo
from jamsdk.runtime.onnx2engine import default_timing_cache
from jamsdk.user_cache import cache_root


def test_cache_root_order(monkeypatch, tmp_path):
    monkeypatch.setenv("JAMSDK_CACHE_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "mine"
    monkeypatch.delenv("JAMSDK_CACHE_DIR")
    assert cache_root() == tmp_path / "xdg" / "jamsdk"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_root() == Path.home() / ".cache" / "jamsdk"


def test_tensorrt_timing_cache_follows_the_cache_root(monkeypatch, tmp_path):
    # The variable that moves OpenVINO's cache (a read-only home, a test run) moves TensorRT's too.
    monkeypatch.setenv("JAMSDK_CACHE_DIR", str(tmp_path / "mine"))
    path = default_timing_cache("10.3.0", GpuInfo("Orin", "8.7"))
    assert path == tmp_path / "mine" / "tensorrt" / "timing-10.3.0-sm87.cache"
