"""The TensorRT path against the real APIs' contracts, on the stand-ins that keep them.

Each test here failed on the code before the fix it covers, with the stand-ins of cuda_standin.py.
"""

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from cuda_standin import (
    ALIGN, DataType, ExecutionContextAllocationStrategy, FakeCuda, fake_tensorrt, install, make_engine_dir,
)
from rt_samples import driving_frames, source_image
from test_tensorrt_plumbing import fake_builder, fake_gpu  # noqa: F401  (fixtures)

import jamsdk
from jamsdk.errors import EngineError
from jamsdk.runtime.backends import tensorrt as trt_backend

FRAMES = driving_frames(4)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def engine_dir(tiny_jam, tmp_path):
    return make_engine_dir(tiny_jam[1], tmp_path / "model")


# DataType is a pybind11 enum; getters return fresh, equal, non-identical objects ------------------

def test_dtypes_are_mapped_by_equality_not_identity(fake_gpu, engine_dir):
    import tensorrt as trt

    fresh = DataType(0)
    assert fresh == trt.float32 and fresh is not trt.float32
    assert trt_backend.numpy_dtype(trt, fresh) == np.float32
    assert trt_backend.numpy_dtype(trt, DataType(5)) == np.uint8
    for value, want in ((1, np.float16), (2, np.int8), (3, np.int32), (8, np.int64), (4, np.bool_)):
        assert trt_backend.numpy_dtype(trt, DataType(value)) == want, value  # each TensorRT type to its own
    assert trt_backend.numpy_dtype(trt, DataType(7)) is None  # bf16: no numpy type (refused on open)
    assert trt_backend.numpy_dtype(trt, 0) is None  # an int is not a DataType (pybind11's strict ==)
    with jamsdk.Animator(engine_dir, backend="tensorrt") as anim:  # every engine's tensors checked on open
        assert anim.backend == "tensorrt"


# trt.Runtime is a pybind11 factory: TypeError on failure, never None ------------------------------

def test_runtime_factory_failure_is_an_engine_error_with_advice(monkeypatch, engine_dir):
    cuda = FakeCuda()
    trt = fake_tensorrt(cuda)
    trt.Runtime.fail = True
    install(monkeypatch, cuda, trt)
    with pytest.raises(EngineError, match="TensorRT cannot start here.*error: 35.*jamsdk doctor"):
        jamsdk.Animator(engine_dir, backend="tensorrt")
    assert cuda.mem == {} and cuda.device_bytes == 0


# contexts take no activation memory of their own; one scratch per stream --------------------------

def _stream_and_measure(model_dir, **kw):
    with jamsdk.Animator(model_dir, backend="tensorrt", **kw) as anim:
        cuda = jamsdk.runtime._cuda.cuda()
        anim.set_source(source_image())
        outs = [anim.run(f) for f in FRAMES]
        pipe = anim._pipe
        contexts = [types.SimpleNamespace(user_memory=b.context.user_memory, memory=b.context.memory)
                    for b in pipe.bound.values()]  # not the contexts: they keep their engines alive
        figures = {"device_bytes": cuda.device_bytes, "slots": sum(cuda.sizes[p] for p in pipe.device.values()),
                   "scratch": pipe.scratch[1], "engines": sum(cuda.reserved.values()),
                   "max_activation": max(b.activation_bytes for b in anim._backends.values()),
                   "sum_activation": sum(b.backend.activation_bytes for b in pipe.bound.values())}
    return outs, contexts, figures


def test_contexts_share_one_scratch_buffer(fake_gpu, engine_dir, tiny_jam):
    outs, contexts, f = _stream_and_measure(engine_dir, cuda_graph=True)
    assert contexts and all(c.user_memory for c in contexts)  # USER_MANAGED: no memory of their own
    assert {c.memory for c in contexts} == {(contexts[0].memory[0], f["scratch"])}  # one buffer for all
    assert f["scratch"] == f["max_activation"] < f["sum_activation"]
    # engines + slot buffers + one scratch: nothing else was allocated on the device
    assert f["device_bytes"] == f["engines"] + f["slots"] + -(-f["scratch"] // ALIGN) * ALIGN
    with jamsdk.Animator(tiny_jam[1], backend="onnxruntime", threads=1) as ref:
        ref.set_source(source_image())
        np.testing.assert_array_equal(np.stack(outs), np.stack([ref.run(f) for f in FRAMES]))
    assert fake_gpu.device_bytes == 0 and fake_gpu.mem == {}


def test_user_managed_context_needs_its_memory_before_the_first_enqueue(fake_gpu, engine_dir):
    from jamsdk.manifest import load_manifest
    from jamsdk.runtime.backends.tensorrt import TensorRTBackend

    import tensorrt as trt

    with TensorRTBackend.from_manifest(load_manifest(engine_dir), "avd", {}) as backend:
        context = backend._engine.create_execution_context(ExecutionContextAllocationStrategy.USER_MANAGED)
        for spec in backend.stage.inputs + backend.stage.outputs:
            assert context.set_tensor_address(spec.name, fake_gpu.malloc(64))
        assert context.execute_async_v3(fake_gpu.stream_create()) is False  # logged, not raised
        assert "USER_MANAGED" in trt_backend.trt_logger(trt).errors[-1]
        with pytest.raises(TypeError):
            backend._engine.create_execution_context(2)  # an int is not the enum (pybind11 refuses it)


# the mutation that passed every test before: capture a segment whose contexts did not all run plainly

def test_a_new_context_in_a_seen_segment_is_not_captured_before_its_first_plain_run(fake_gpu, engine_dir,
                                                                                        tiny_jam):
    """A float frame, then uint8 frames: the uint8 plan adds ``preprocess`` to contexts that already ran.

    Capturing that segment at once would capture ``preprocess``'s first enqueue (TensorRT's lazy
    set-up), which invalidates the capture: the test suite turns the CaptureWarning into an error.
    """
    outs = []
    for folder, backend, kw in ((engine_dir, "tensorrt", {"cuda_graph": True}), (tiny_jam[1], "onnxruntime", {})):
        with jamsdk.Animator(folder, backend=backend, threads=1, **kw) as anim:
            anim.set_source(source_image())
            outs.append(np.stack([anim.run(FRAMES[0].astype(np.float32) / 255)] + [anim.run(f) for f in FRAMES]))
    np.testing.assert_array_equal(outs[0], outs[1])
    assert fake_gpu.counts["invalidated_captures"] == 0 and fake_gpu.launches >= 2


# fake device pointers are 256-byte aligned like cudaMalloc's --------------------------------------

def test_device_pointers_are_aligned(fake_gpu):
    ptrs = [fake_gpu.malloc(n) for n in (1, 3, 255, 257, 1000)]
    assert all(p % ALIGN == 0 for p in ptrs)


# the wheel metadata is scanned once per process ---------------------------------------------------

def test_tensorrt_cuda_major_is_cached(monkeypatch):
    import importlib.metadata

    calls = []
    dist = types.SimpleNamespace(metadata={"Name": "tensorrt_cu12_libs"})
    monkeypatch.setattr(importlib.metadata, "distributions", lambda: calls.append(1) or [dist])
    real = trt_backend.tensorrt_cuda_major
    if hasattr(real, "cache_clear"):
        real.cache_clear()
    try:
        assert real() == 12 and real() == 12
    finally:
        if hasattr(real, "cache_clear"):
            real.cache_clear()
    assert calls == [1]


# an INT8 build of a folder exported with --batch-sizes --------------------------------------------

def test_int8_build_with_batched_graphs(fake_builder, tiny_batched, tmp_path):
    import shutil

    from jamsdk.manifest import load_manifest
    from jamsdk.model_files import sha256_file
    from jamsdk.runtime.onnx2engine import build_engines

    folder = tmp_path / "model"
    shutil.copytree(tiny_batched, folder)
    data = json.loads((folder / "manifest.json").read_text())
    for name, entry in data["stages"].items():  # an INT8 export: generator quantized, the others FP32
        file = f"{name}.int8.onnx" if name == "generator" else f"{name}.onnx"
        if name == "generator":
            shutil.copy(folder / f"{name}.onnx", folder / file)
        entry["files"]["int8"] = {"file": file, "sha256": sha256_file(folder / file)}
    data["precisions"] = [*data["precisions"], "int8"]
    (folder / "manifest.json").write_text(json.dumps(data))
    lines = []
    build_engines(folder, precision="int8", timing_cache=tmp_path / "t.cache", log=lines.append)
    man = load_manifest(folder)
    per_frame = [n for n, e in man.stages.items() if e.per == "frame"]
    assert man.engines.precision == "int8"
    assert {n: sorted(man.engines.batched[n]) for n in per_frame} == {n: [2, 4] for n in per_frame}
    built = [c[0] for c in fake_builder.builds]
    assert "generator.int8.onnx" in built and "generator.b4.onnx" in built  # batched: from the FP32 graphs
    assert json.loads((folder / "manifest.json").read_text())["engines"]["batched_precision"] == "fp32"
    assert any("batched engines (b2, b4): fp32" in line for line in lines)


def test_int8_build_uses_the_batched_int8_graphs(fake_builder, tiny_batched_int8, tmp_path):
    """An INT8 export with batched Q/DQ graphs: every batch size's engine is INT8, built from them."""
    import shutil

    from jamsdk.manifest import load_manifest
    from jamsdk.runtime.onnx2engine import build_engines

    folder = tmp_path / "model"
    shutil.copytree(tiny_batched_int8, folder)
    lines = []
    build_engines(folder, precision="int8", timing_cache=tmp_path / "t.cache", log=lines.append)
    man = load_manifest(folder)
    built = [c[0] for c in fake_builder.builds]
    for b in (2, 4):
        assert man.stage_file("generator", "int8", b).name in built  # the batched Q/DQ graph
        assert f"generator.b{b}.onnx" not in built
    assert json.loads((folder / "manifest.json").read_text())["engines"]["batched_precision"] == "int8"
    assert man.engines.batched_b1 == {}  # one precision already: no extra batch-1 engines
    assert not any("batched export has no INT8" in line for line in lines)


# the GPU self-check (benchmarks/gpu_check_pipeline.py): device strings, TF32 off, graph launches ---

@pytest.fixture()
def gpu_check_pipeline():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import gpu_check_pipeline

    return gpu_check_pipeline


def test_gpu_run_passes_a_device_string_writes_plumbing_first_and_turns_tf32_off(gpu_check_pipeline, monkeypatch):
    torch = pytest.importorskip("torch")
    from jamsdk.runtime import _cuda

    seen, written = {}, []
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "NVIDIA H100 80GB HBM3")
    monkeypatch.setattr(_cuda, "cuda", lambda: object())
    monkeypatch.setattr(gpu_check_pipeline, "plumbing_check", lambda cu: {"ok": True})

    def run_check(cu, wrap, launch, device, frames, patch, emit=None):
        torch.device(device)  # what model.to(device) parses: a label with the GPU name raises here
        seen.update(device=device, written_before=list(written), tf32=torch.backends.cudnn.allow_tf32)
        return {"ok": True, "modes": {}}

    monkeypatch.setattr(gpu_check_pipeline, "run_check", run_check)
    before = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    try:
        report = gpu_check_pipeline.gpu(2, written.append)
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before
    assert seen["device"] == "cuda" and report["gpu_name"] == "NVIDIA H100 80GB HBM3"
    assert seen["written_before"] and seen["written_before"][0]["plumbing"] == {"ok": True}
    assert seen["tf32"] is False and report["tf32"] is False


def test_captured_preprocess_makes_no_host_tensor(gpu_check_pipeline, monkeypatch):
    torch = pytest.importorskip("torch")
    pre = gpu_check_pipeline.helper_modules(8)["preprocess"]

    def no_host_tensor(*a, **k):  # torch.tensor(x, device=cuda) = a pageable copy and a sync
        raise AssertionError("torch.tensor inside captured work")

    monkeypatch.setattr(torch, "tensor", no_host_tensor)
    out = pre(torch.full((1, 8, 8, 3), 255, dtype=torch.uint8), torch.arange(3, dtype=torch.int32))
    assert out.shape == (1, 3, 8, 8) and float(out.max()) == 1.0


def test_a_graph_mode_without_one_launch_per_frame_fails(gpu_check_pipeline):
    ok = {"max_abs_diff_model_space": 0.0, "max_abs_diff_uint8": 0, "syncs_per_frame": 1.0,
          "graph_launches_per_frame": 1.0, "capture_failures": [], "h2d_bytes_per_frame": 10.0,
          "d2h_bytes_per_frame": 10.0}
    assert gpu_check_pipeline.judge("relative+graph", ok, 64) == []
    assert gpu_check_pipeline.judge("relative+graph", {**ok, "graph_launches_per_frame": 0.0}, 64) == \
        ["0.0 graph launches per frame (must be 1)"]
    assert gpu_check_pipeline.judge("relative", ok, 64) == ["1.0 graph launches per frame (must be 0)"]
    assert gpu_check_pipeline.judge("avd+graph", {**ok, "capture_failures": ["x"]}, 64) == ["capture failed: x"]
