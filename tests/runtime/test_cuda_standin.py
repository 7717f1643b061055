"""The stand-ins themselves: each imitated contract of CUDA and TensorRT holds (cuda_standin.py cites the sources)."""

import enum

import numpy as np
import pytest
from cuda_standin import ALIGN, DataType, ExecutionContextAllocationStrategy, FakeCuda, fake_tensorrt

from jamsdk.errors import EngineError


@pytest.fixture()
def cu():
    return FakeCuda()


def _capture_fails(cu, stream, what):
    with pytest.raises(EngineError, match="cudaStreamEndCapture failed: cudaErrorStreamCaptureInvalidated \\(901\\)"):
        cu.end_capture(stream)
    assert cu.capture is None and cu.last_error() == "" and what in cu.last_invalidation  # nothing sticky


def test_illegal_calls_invalidate_a_capture(cu):
    s = cu.stream_create()
    pinned, pageable = cu.pinned_empty((16,), np.uint8), np.zeros(16, np.uint8)
    dst = cu.malloc(16)
    cu.begin_capture(s)
    with pytest.raises(EngineError, match="cudaStreamSynchronize failed: cudaErrorStreamCaptureUnsupported"):
        cu.synchronize(s)
    _capture_fails(cu, s, "synchronize")
    cu.begin_capture(s)
    with pytest.raises(EngineError, match="cudaErrorStreamCaptureUnsupported"):
        cu.h2d(dst, pageable, s)
    _capture_fails(cu, s, "pageable")
    for call in (lambda: cu.malloc(16), lambda: cu.free(dst)):
        cu.begin_capture(s)
        with pytest.raises(EngineError, match="cudaErrorStreamCaptureUnsupported"):
            call()
        _capture_fails(cu, s, "during capture")
    other = cu.stream_create()
    cu.begin_capture(s)
    cu.h2d(dst, pinned, other)  # unjoined work on another stream
    _capture_fails(cu, s, f"stream {other}")
    cu.synchronize(other)
    cu.counts.clear()
    cu.begin_capture(s)
    cu.h2d(dst, pinned, s)  # legal: a copy from pinned memory on the capturing stream
    graph = cu.end_capture(s)
    assert graph in cu.graphs and cu.counts["h2d_bytes"] == 0  # captured, not run
    cu.launch_graph(graph, s)
    cu.synchronize(s)
    assert cu.counts["h2d_bytes"] == 16 and cu.launches == 1


def test_end_capture_on_another_stream_fails_and_the_capture_goes_on(cu):
    s, other = cu.stream_create(), cu.stream_create()
    cu.begin_capture(s)
    with pytest.raises(EngineError, match="cudaErrorStreamCaptureUnmatched"):
        cu.end_capture(other)
    assert cu.capture is not None and cu.capture["stream"] == s
    assert cu.end_capture(s, instantiate=False) is None and cu.capture is None


def test_pointers_are_aligned_and_device_bytes_counted(cu):
    ptrs = [cu.malloc(n) for n in (1, 300, 5000)]
    assert all(p % ALIGN == 0 for p in ptrs) and cu.device_bytes == 256 + 512 + 5120
    token = cu.reserve(1000)
    assert cu.device_bytes == 256 + 512 + 5120 + 1024 and cu.peak_bytes == cu.device_bytes
    cu.release(token)
    for p in ptrs:
        cu.free(p)
    assert cu.device_bytes == 0 and cu.peak_bytes == 256 + 512 + 5120 + 1024
    with pytest.raises(EngineError, match="illegal address"):
        cu.block(ptrs[0], 1)  # freed memory is not addressable


def test_tensorrt_enums_are_pybind11_like(cu):
    trt = fake_tensorrt(cu)
    assert not isinstance(trt.float32, enum.Enum) and trt.float32 == DataType.FLOAT
    assert trt.float32 is not DataType.FLOAT and DataType(0) is not DataType(0)
    assert trt.float32 != 0 and hash(trt.float32) == 0 and int(trt.float32) == 0  # strict ==, hash by value
    assert {trt.float32: "f"}.get(DataType(0)) == "f" and str(DataType(7)) == "DataType.BF16"
    assert ExecutionContextAllocationStrategy.USER_MANAGED.value == 2


def test_runtime_factory_raises_type_error(cu):
    trt = fake_tensorrt(cu)
    with pytest.raises(TypeError):
        trt.Runtime(object())  # not an ILogger
    trt.Runtime.fail = True
    with pytest.raises(TypeError, match="factory function returned nullptr"):
        trt.Runtime(trt.Logger())
