"""The stand-ins themselves: each imitated contract of CUDA and TensorRT holds (cuda_standin.py cites the sources)."""

import enum

import numpy as np
import pytest
from cuda_standin import ALIGN, DataType, ExecutionContextAllocationStrategy, FakeCuda, fake_tensorrt, install

from jamsdk.errors import EngineError
from jamsdk.runtime import _cuda


@pytest.fixture()
def cu():
    return FakeCuda()


@pytest.fixture()
def fake_gpu(monkeypatch):
    return install(monkeypatch)


def _capture_fails(cu, stream, what):
    with pytest.raises(EngineError, match="cudaStreamEndCapture failed: cudaErrorStreamCaptureInvalidated \\(901\\)"):
        cu.end_capture(stream)
    assert not cu.captures and cu.last_error() == "" and what in cu.last_invalidation  # nothing sticky


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
    assert cu.capturing(s) is not None and cu.capturing(other) is None
    assert cu.end_capture(s, instantiate=False) is None and not cu.captures


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


# rule 7: freed memory returns to the allocator; work touches memory when it runs ----------------------

def test_freed_ranges_are_handed_out_again(cu):
    a = cu.malloc(1000)
    cu.free(a)
    assert cu.malloc(900) == a and cu.reused == 1  # the same range, as cudaMalloc may return it
    assert cu.malloc(900) != a  # a live range is never handed out twice
    with pytest.raises(EngineError, match="cudaFree failed: cudaErrorInvalidValue"):
        cu.free(a + 0x100000)  # never allocated


def test_a_copy_queued_before_a_free_fails_when_it_runs(cu):
    s = cu.stream_create()
    src, dst = cu.malloc(64), cu.malloc(64)
    cu.d2d(dst, src, 64, s)
    cu.free(dst)
    other = cu.malloc(64)  # the freed range belongs to a new allocation now
    assert other == dst
    with pytest.raises(EngineError, match="use after free: a D2D copy's destination"):
        cu.synchronize(s)  # the copy would write into the new owner: the stand-in fails instead
    assert bytes(cu.block(other, 64)) == bytes(64)
    cu.d2d(other, src, 64, s)  # the neighbour: freed and reallocated *before* queuing is fine
    cu.synchronize(s)


def test_a_graph_replayed_after_its_memory_was_freed_fails(cu):
    s = cu.stream_create()
    a, b = cu.malloc(32), cu.malloc(32)
    cu.begin_capture(s)
    cu.d2d(b, a, 32, s)
    graph = cu.end_capture(s)
    cu.launch_graph(graph, s)
    cu.synchronize(s)  # fine while both buffers live
    cu.free(b)
    cu.malloc(32)
    cu.launch_graph(graph, s)
    with pytest.raises(EngineError, match="use after free"):
        cu.synchronize(s)


def test_dropping_slots_waits_for_their_queued_copies(cu, monkeypatch):
    """The bug rule 7 exists for: freeing a slot while a queued copy still targets it.

    ``drop_slots`` synchronises first; without that sync the upload below would run after the free,
    into whatever owns the range by then.
    """
    from jamsdk.runtime.backends.trt_pipeline import DevicePipeline
    from jamsdk.stages import TensorSpec

    monkeypatch.setattr(_cuda, "cuda", lambda: cu)
    pipe = DevicePipeline({}, {"keep": TensorSpec("keep", (4,), "float32")})
    pipe.add_slots({"gone": TensorSpec("gone", (16,), "float32")})
    pipe._upload("gone", np.ones(16, np.float32))  # queued, not run
    pipe.drop_slots(["gone"])
    pipe.add_slots({"new": TensorSpec("new", (16,), "float32")})  # may reuse the freed range
    pipe.cu.synchronize(pipe.stream)
    np.testing.assert_array_equal(pipe.read("new"), np.zeros(16, np.float32))
    pipe.close()
    assert cu.mem == {}


# rule 8: one activation memory, one stream at a time --------------------------------------------------

def _scratch_contexts(cu, api="10.3"):
    """Two contexts of one engine bound to the same activation memory (as a pipeline's contexts are)."""
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["h"]), helper.make_node("Neg", ["h"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    trt = fake_tensorrt(cu, api=api)
    engine = trt.Runtime(trt.Logger()).deserialize_cuda_engine(model.SerializeToString())
    scratch = cu.malloc(engine.device_memory_size)
    contexts = []
    for _ in range(2):
        ctx = engine.create_execution_context_without_device_memory()
        if api == "10.3":
            ctx.set_device_memory(scratch, engine.device_memory_size_v2)
        else:
            ctx.device_memory = scratch
        for name in ("x", "y"):
            assert ctx.set_tensor_address(name, cu.malloc(256))
        contexts.append(ctx)
    return engine, contexts


@pytest.mark.parametrize("api", ["10.3", "8.6"])
def test_two_streams_may_not_share_one_activation_memory_at_once(cu, api):
    engine, (one, two) = _scratch_contexts(cu, api)
    assert engine.device_memory_size > 0
    s1, s2 = cu.stream_create(), cu.stream_create()
    assert one.execute_async_v3(s1)
    assert two.execute_async_v3(s1)  # the neighbour: the same stream runs them one after the other
    with pytest.raises(EngineError, match="in use by an engine queued on stream .*undefined behaviour"):
        two.execute_async_v3(s2)
    cu.synchronize(s1)
    assert two.execute_async_v3(s2)  # after a sync the memory is free again
    cu.synchronize(s2)


def test_a_pipeline_keeps_its_contexts_on_its_one_stream(fake_gpu, tiny_jam, tmp_path):
    """The bug rule 8 exists for: an engine of a pipeline enqueued on a second stream while the first is busy."""
    import jamsdk
    from cuda_standin import make_engine_dir
    from rt_samples import source_image

    folder = make_engine_dir(tiny_jam[1], tmp_path / "model")
    with jamsdk.Animator(folder, backend="tensorrt") as anim:
        anim.set_source(source_image())
        pipe = anim._pipe
        step = anim._source_plan().steps[0]
        pipe._enqueue((step,))  # queued on the pipeline's stream, not run yet
        side = fake_gpu.stream_create()
        with pytest.raises(EngineError, match="undefined behaviour"):
            pipe._bind(step).execute(side)
        fake_gpu.synchronize(pipe.stream)
        fake_gpu.stream_destroy(side)


# rule 9: captures are per stream; a capture ends on the thread that began it ---------------------------

def test_end_capture_from_another_thread_fails(cu):
    import threading

    s = cu.stream_create()
    cu.begin_capture(s)
    errors = []
    t = threading.Thread(target=lambda: errors.append(pytest.raises(EngineError, cu.end_capture, s)))
    t.start()
    t.join()
    assert "cudaErrorStreamCaptureWrongThread (908)" in str(errors[0].value)
    assert cu.capturing(s) is not None  # the capture goes on; its own thread ends it
    assert cu.end_capture(s, instantiate=False) is None


def test_two_threads_capture_two_streams_at_once(cu):
    import threading

    barrier = threading.Barrier(2, timeout=10)
    graphs = {}

    def capture(name):
        s = cu.stream_create()
        a, b = cu.malloc(16), cu.malloc(16)
        cu.begin_capture(s)
        barrier.wait()  # both captures are open now
        cu.d2d(b, a, 16, s)
        barrier.wait()
        graphs[name] = cu.end_capture(s)

    threads = [threading.Thread(target=capture, args=(n,)) for n in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(graphs) == {"a", "b"} and all(g in cu.graphs for g in graphs.values())  # ThreadLocal: independent


# the API surface of older TensorRT (trt_standin's api switch) ------------------------------------------

def test_older_tensorrt_lacks_the_v2_calls(cu):
    new, ten, old = (fake_tensorrt(cu, api=a) for a in ("10.3", "10.0", "8.6"))
    assert [t.__version__[:4] for t in (new, ten, old)] == ["10.3", "10.0", "8.6."]
    assert hasattr(ten, "ExecutionContextAllocationStrategy") and not hasattr(old, "ExecutionContextAllocationStrategy")
    assert not hasattr(old, "bfloat16") and not hasattr(old, "int64") and hasattr(new, "bfloat16")
    for api, v2 in (("10.3", True), ("10.0", False), ("8.6", False)):
        engine, (ctx, _) = _scratch_contexts(cu, api)
        assert hasattr(ctx, "set_device_memory") is v2 and hasattr(engine, "device_memory_size_v2") is v2
        assert engine.device_memory_size > 0 and hasattr(type(ctx), "device_memory")  # the one-argument setter
    with pytest.raises(TypeError):
        engine.create_execution_context(ExecutionContextAllocationStrategy.USER_MANAGED)  # 8.6: no argument


def test_two_animators_capture_in_two_threads_at_once(fake_gpu, tiny_jam, tmp_path):
    """What rule 9 allows and the old one-capture-per-process stand-in refused: two Animators with CUDA
    graphs, each in its own thread (ThreadLocal mode: each capture ignores the other)."""
    import threading

    import jamsdk
    from cuda_standin import make_engine_dir
    from rt_samples import driving_frames, source_image

    folder = make_engine_dir(tiny_jam[1], tmp_path / "model")
    frames = driving_frames(4)
    anims = [jamsdk.Animator(folder, backend="tensorrt", cuda_graph=True) for _ in range(2)]
    barrier, outs, errors = threading.Barrier(2, timeout=30), {}, []

    def stream(k):
        try:
            anims[k].set_source(source_image())
            barrier.wait()
            outs[k] = np.stack([anims[k].run(f) for f in frames])
        except BaseException as exc:  # reported below: a thread's exception is not the test's
            errors.append(exc)

    threads = [threading.Thread(target=stream, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for anim in anims:
        anim.close()
    assert not errors, errors
    np.testing.assert_array_equal(outs[0], outs[1])
    assert fake_gpu.counts["captures"] >= 2 and fake_gpu.counts["invalidated_captures"] == 0
