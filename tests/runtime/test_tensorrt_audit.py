"""How the TensorRT path fails and recovers, on the stand-ins where one can show it: pycuda's context
stack, CUDA-graph capture, TensorRT runtime errors, partial frees, timing caches, half-precision I/O
and build options."""

import ctypes
import threading
import types
import warnings

import numpy as np
import pytest
from cuda_standin import DataType, FakeCuda, fake_tensorrt, install, make_engine_dir
from rt_samples import source_image
from test_tensorrt_plumbing import fake_builder, fake_gpu  # noqa: F401  (fixtures)

import jamsdk
from jamsdk.errors import EngineError, InputError
from jamsdk.runtime import _cuda
from jamsdk.runtime.backends.tensorrt import TensorRTBackend, check_cuda_versions, trt_logger
from jamsdk.runtime.backends.trt_pipeline import CaptureWarning
from jamsdk.runtime.onnx2engine import onnx2engine, resolve_typing

IMAGE = np.linspace(0, 1, 3 * 64 * 64, dtype=np.float32).reshape(1, 3, 64, 64)


@pytest.fixture()
def engine_dir(tiny_jam, tmp_path):
    return make_engine_dir(tiny_jam[1], tmp_path / "model")


def _region_backend(engine_dir, **kw):
    from jamsdk.manifest import load_manifest

    return TensorRTBackend.from_manifest(load_manifest(engine_dir), "region_predictor", kw)


# pycuda's per-thread context stack must be empty whenever control leaves jamsdk -------------------

class _FakePycuda:
    """pycuda.driver's shape: a context stack per thread, abort() if one is left non-empty."""

    def __init__(self):
        self.stacks: dict[int, list] = {}
        driver = self

        class Context:
            def push(self):
                driver.stack().append(self)

            @staticmethod
            def pop():
                driver.stack().pop()

            @staticmethod
            def get_device():
                assert driver.stack(), "no current context"
                return types.SimpleNamespace(compute_capability=lambda: (8, 7), name=lambda: "Orin")

            def detach(self):
                driver.detached = True

        class Device:
            def __init__(self, i):
                pass

            @staticmethod
            def count():
                return 1

            def retain_primary_context(self):
                return Context()

        self.Context, self.Device, self.detached = Context, Device, False

    def stack(self):
        return self.stacks.setdefault(threading.get_ident(), [])

    def init(self):
        pass

    def mem_alloc(self, n):
        assert self.stack(), "allocation without a current context"

        class Alloc:
            def __int__(self):
                return 0x5000

            def free(self):
                pass

        return Alloc()

    def pagelocked_empty(self, shape, dtype):
        assert self.stack()
        return np.zeros(shape, dtype)

    def Stream(self):  # noqa: N802
        assert self.stack()
        return types.SimpleNamespace(handle=3, synchronize=lambda: None)

    def memcpy_htod_async(self, dst, src, stream):
        assert self.stack()

    def get_driver_version(self):
        return 12060


def test_pycuda_leaves_every_thread_stack_empty(monkeypatch):
    registered = []
    monkeypatch.setattr(_cuda.atexit, "register", registered.append)
    drv = _FakePycuda()
    cu = _cuda._PyCuda(drv)
    assert cu.device_info().name == "Orin" and drv.stack() == []

    def work():
        cu.malloc(16)
        cu.pinned_empty((2, 3), np.float16)
        s = cu.stream_create()
        cu.h2d(0x5000, np.zeros(4, np.float32), s)
        cu.synchronize(s)

    work()
    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert all(stack == [] for stack in drv.stacks.values())
    assert cu.driver_version() == 12060
    (release,) = registered  # at exit the primary context is released, not left pushed
    release()
    assert drv.detached


# no capture of a context's first enqueue, also after close()/open() -------------------------------

def test_first_run_after_reopen_is_not_captured(fake_gpu, engine_dir):
    backend = _region_backend(engine_dir, cuda_graph=True)
    with backend:
        first = backend.run({"image": IMAGE})
        assert fake_gpu.counts["captures"] == 0
        second = backend.run({"image": IMAGE})
        assert fake_gpu.counts["captures"] == 1 and fake_gpu.launches == 1
    with backend:  # a fresh context: its first run is plain again
        third = backend.run({"image": IMAGE})
        assert fake_gpu.counts["captures"] == 1 and fake_gpu.launches == 1
        backend.run({"image": IMAGE})
        assert fake_gpu.counts["captures"] == 2
    for k in first:
        np.testing.assert_array_equal(first[k], second[k])
        np.testing.assert_array_equal(first[k], third[k])
    assert fake_gpu.mem == {} and fake_gpu.graphs == {}


# refuse to deserialise after TensorRT reported an error; CUDA major vs driver ---------------------

def test_runtime_error_refuses_to_deserialise(monkeypatch, engine_dir):
    cuda = FakeCuda()
    trt = fake_tensorrt(cuda)
    base = trt.Runtime
    deserialised = []

    class Runtime(base):
        def __init__(self, logger):
            super().__init__(logger)
            logger.log(trt.Logger.ERROR, "CUDA initialization failure with error: 35")

        def deserialize_cuda_engine(self, data):
            deserialised.append(1)
            return super().deserialize_cuda_engine(data)

    trt.Runtime = Runtime
    install(monkeypatch, cuda, trt)
    with pytest.raises(EngineError, match="TensorRT cannot start here.*error: 35"):
        jamsdk.Animator(engine_dir, backend="tensorrt")
    assert deserialised == [] and cuda.mem == {}


def test_cuda_versions():
    check_cuda_versions(12060, 12)
    check_cuda_versions(13000, 12)
    check_cuda_versions(None, 13)
    check_cuda_versions(12060, None)
    with pytest.raises(EngineError, match="built for CUDA 13, but the driver supports CUDA 12.6"):
        check_cuda_versions(12060, 13)


# close() frees everything even when one free fails, and keeps the original error ------------------

def test_close_frees_the_rest_when_one_free_fails(fake_gpu, engine_dir):
    anim = jamsdk.Animator(engine_dir, backend="tensorrt")
    anim.set_source(source_image())
    real_free, failed = fake_gpu.free, []

    def free(ptr):
        if not failed:
            failed.append(ptr)
            raise EngineError("CUDA call cudaFree failed: cudaErrorIllegalAddress (700)")
        real_free(ptr)

    fake_gpu.free = free
    backends = list(anim._backends.values())
    with pytest.raises(EngineError, match="freeing TensorRT pipeline resources failed.*700"):
        anim.close()
    assert set(fake_gpu.mem) == set(failed) and fake_gpu.pinned == [] and fake_gpu.streams == set()
    assert backends and all(b._engine is None and b._runtime is None for b in backends)


def test_open_failure_keeps_its_own_error(fake_gpu, engine_dir, monkeypatch):
    monkeypatch.setattr(TensorRTBackend, "_close", lambda self: (_ for _ in ()).throw(RuntimeError("close broke")))
    (engine_dir / "generator.engine").write_bytes(b"junk")
    with pytest.raises(EngineError, match="generator.engine"):
        jamsdk.Animator(engine_dir, backend="tensorrt", verify_hashes=False)


# a timing cache TensorRT cannot read --------------------------------------------------------------

def test_corrupt_timing_cache_starts_a_new_one(fake_builder, tiny_jam, tmp_path):
    cache = tmp_path / "t.cache"
    cache.write_bytes(b"corrupt bytes")
    lines = []
    onnx2engine(tiny_jam[1] / "avd.onnx", tmp_path / "avd.engine", precision="fp32", timing_cache=cache,
                log=lines.append)
    assert any("cannot be read; starting a new one" in line for line in lines)
    assert cache.read_bytes() == b"+"  # the new (empty) cache was saved


# float16/bf16 I/O ---------------------------------------------------------------------------------

def test_pinned_float16_is_allocated_as_bytes():
    blocks = {}

    def malloc_host(n):
        buf = (ctypes.c_uint8 * n)()
        blocks[ctypes.addressof(buf)] = buf
        return 0, ctypes.addressof(buf)

    rt = types.SimpleNamespace(cudaMallocHost=malloc_host)
    cu = _cuda._CudaPython(rt, "fake")
    a = cu.pinned_empty((2, 3), np.float16)  # ctypes has no float16: a typed allocation raised here
    a[...] = 1.5
    assert a.dtype == np.float16 and a.shape == (2, 3) and a.ctypes.data in blocks


def test_bf16_engine_tensor_is_an_engine_error(monkeypatch, engine_dir):
    cuda = FakeCuda()
    install(monkeypatch, cuda, fake_tensorrt(cuda, dtype_override={"shift": DataType.BF16}))
    with pytest.raises(EngineError, match="'shift' is .*BF16 \\(no numpy type\\).*float32 in the manifest"):
        jamsdk.Animator(engine_dir, backend="tensorrt")


def test_fp16_engine_tensor_is_refused_not_read_as_float32(monkeypatch, engine_dir):
    # The neighbour of bf16: float16 has a numpy type, so only a right dtype map refuses it (an engine built
    # with FP16 I/O would otherwise fill the float32 buffers with half the bytes, misread).
    cuda = FakeCuda()
    install(monkeypatch, cuda, fake_tensorrt(cuda, dtype_override={"shift": DataType.HALF}))
    with pytest.raises(EngineError, match="'shift' is \\(1, \\d+, 2\\) float16 in the engine, .* float32 in the "
                                          "manifest; rebuild the engine"):
        jamsdk.Animator(engine_dir, backend="tensorrt")
    assert cuda.mem == {}


# a failed capture is not instantiated; plain runs go on -------------------------------------------

def test_failed_capture_falls_back_to_plain_runs(fake_gpu, engine_dir):
    backend = _region_backend(engine_dir, cuda_graph=True)
    with backend:
        want = backend.run({"image": IMAGE})
        (bound,) = backend._solo.bound.values()
        real = bound.context.execute_async_v3
        side = fake_gpu.stream_create()

        def enqueue_with_side_work(stream):  # work on an unjoined stream while capturing invalidates it
            fake_gpu.enqueue(side, lambda: None)
            return real(stream)

        bound.context.execute_async_v3 = enqueue_with_side_work
        with pytest.warns(CaptureWarning, match="CUDA graph capture of region_predictor failed.*Invalidated \\(901\\)"):
            got = backend.run({"image": IMAGE})
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # warned once, then plain runs without retrying
            again = backend.run({"image": IMAGE})
        fake_gpu.synchronize(side)
        fake_gpu.stream_destroy(side)
        assert fake_gpu.graphs == {} and fake_gpu.launches == 0 and fake_gpu.counts["captures"] == 1
    for k in want:
        np.testing.assert_array_equal(want[k], got[k])
        np.testing.assert_array_equal(want[k], again[k])


def test_enqueue_failure_inside_capture_is_not_instantiated(fake_gpu, engine_dir, monkeypatch):
    backend = _region_backend(engine_dir, cuda_graph=True)
    ended = []
    real_end = fake_gpu.end_capture
    monkeypatch.setattr(fake_gpu, "end_capture", lambda s, instantiate=True: ended.append(instantiate)
                        or real_end(s, instantiate))
    with backend:
        backend.run({"image": IMAGE})
        pipe = backend._solo
        (bound,) = pipe.bound.values()
        bound.context.execute_async_v3 = lambda stream: False
        with pytest.warns(CaptureWarning, match="capture of region_predictor failed"):
            with pytest.raises(EngineError, match="execute_async_v3 failed"):
                backend.run({"image": IMAGE})  # the plain fallback reports the engine's failure
    assert ended == [False] and not fake_gpu.captures


# engine builds: the typing option, strongly typed networks, one TensorRT logger per process -------

def test_onnx2engine_rejects_auto_and_typos(fake_builder, tiny_jam, tmp_path):
    for typing in ("auto", "stong"):
        with pytest.raises(InputError, match="typing: expected 'strong' or 'weak'"):
            onnx2engine(tiny_jam[1] / "avd.onnx", tmp_path / "x.engine", typing=typing)
    assert fake_builder.builds == []


def test_no_strongly_typed_flag_is_an_error(fake_builder, tiny_jam, tmp_path):
    fake_builder.NetworkDefinitionCreationFlag = types.SimpleNamespace()
    with pytest.raises(EngineError, match="no strongly typed networks"):
        onnx2engine(tiny_jam[1] / "avd.onnx", tmp_path / "x.engine", typing="strong")


def test_weak_fp32_on_tensorrt_11_is_recorded_as_strong():
    assert resolve_typing("weak", "fp32", "11.0.0.1", False) == "strong"
    assert resolve_typing("weak", "fp32", "10.3.0.30", True) == "weak"


def test_one_logger_for_the_process(fake_builder, engine_dir, tiny_jam, tmp_path):
    with jamsdk.Animator(engine_dir, backend="tensorrt"):
        pass
    onnx2engine(tiny_jam[1] / "avd.onnx", tmp_path / "avd.engine", precision="fp32")
    loggers = {id(r.logger) for r in fake_builder.runtimes} | {id(x) for x in fake_builder.builder_loggers}
    assert loggers == {id(trt_logger(fake_builder))}
