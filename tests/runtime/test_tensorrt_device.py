"""The device-resident TensorRT path on the CUDA/TensorRT stand-ins (tests/runtime/cuda_standin.py).

What crosses between host and device per streamed frame (benchmarks/transfer_budget.py's budget: one
uint8 frame up, one uint8 result down, one sync), that results equal ONNX Runtime's in every mode
and channel order, the device-result API, the host path of folders without helper graphs, and
CUDA-graph capture rules.
"""

import sys
from pathlib import Path

import numpy as np
import pytest
from cuda_standin import install, make_engine_dir
from rt_samples import driving_frames, source_image

import jamsdk
from jamsdk.errors import InputError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import transfer_budget  # noqa: E402

FRAMES = driving_frames(5)
DEMO = Path(jamsdk.__file__).parent / "assets" / "demo_model"


def _budget_ok(r, cuda_graph):
    s = r["image_size"]
    assert r["h2d_bytes_per_frame"] <= s * s * 3 + 4096, r
    assert r["d2h_bytes_per_frame"] <= s * s * 3 + 4096, r
    assert r["syncs_per_frame"] == 1, r
    assert r["graph_launches_per_frame"] == (1 if cuda_graph else 0), r


@pytest.mark.parametrize("mode", ["relative", "standard", "avd"])
@pytest.mark.parametrize("cuda_graph", [False, True])
def test_transfer_budget_tiny(tiny_jam, monkeypatch, mode, cuda_graph):
    r = transfer_budget.measure(tiny_jam[1], mode, cuda_graph, frames=4, patch=monkeypatch)
    _budget_ok(r, cuda_graph)
    assert r["h2d_bytes_per_frame"] == 64 * 64 * 3  # exactly the uint8 crop: nothing else goes up
    assert r["before"]["h2d_bytes_per_frame"] > 20 * r["h2d_bytes_per_frame"]


def test_transfer_budget_mraa(tiny_mraa, monkeypatch):
    _budget_ok(transfer_budget.measure(tiny_mraa[1], "relative", True, frames=3, patch=monkeypatch), True)


@pytest.mark.parametrize("mode", ["relative", "standard", "avd"])
def test_transfer_budget_demo_model(monkeypatch, mode):
    r = transfer_budget.measure(DEMO, mode, True, frames=3, patch=monkeypatch)
    _budget_ok(r, True)
    assert r["image_size"] == 128


def test_folder_without_helper_graphs_takes_the_host_path(tiny_jam, monkeypatch):
    r = transfer_budget.measure(tiny_jam[1], "relative", True, frames=3, host_path=True, patch=monkeypatch)
    s = r["image_size"]
    assert r["h2d_bytes_per_frame"] > s * s * 3 * 4 and r["syncs_per_frame"] == 2  # float frame + region params


@pytest.fixture()
def fake_gpu(monkeypatch):
    return install(monkeypatch)


def _stream(model_dir, backend, frames=FRAMES, **kw):
    with jamsdk.Animator(model_dir, backend=backend, threads=1, **kw) as anim:
        anim.set_source(source_image())
        return np.stack([anim.run(f) for f in frames])


@pytest.mark.parametrize("mode,bgr,cuda_graph", [("relative", False, True), ("relative", True, False),
                                                 ("standard", False, False), ("avd", True, True)])
def test_uint8_frames_match_onnxruntime(fake_gpu, tiny_jam, tmp_path, mode, bgr, cuda_graph):
    engines = make_engine_dir(tiny_jam[1], tmp_path / "model")
    got = _stream(engines, "tensorrt", mode=mode, bgr=bgr, cuda_graph=cuda_graph)
    want = _stream(tiny_jam[1], "onnxruntime", mode=mode, bgr=bgr)
    np.testing.assert_array_equal(got, want)
    assert fake_gpu.mem == {} and fake_gpu.pinned == [] and fake_gpu.streams == set()


def test_host_path_matches_onnxruntime_and_output_size(fake_gpu, tiny_jam, tmp_path):
    engines = make_engine_dir(tiny_jam[1], tmp_path / "model", helpers=False)
    got = _stream(engines, "tensorrt", output_size=80, cuda_graph=True)
    want = _stream(tiny_jam[1], "onnxruntime", output_size=80)
    np.testing.assert_array_equal(got, want)


def test_float_frames_and_reset_and_new_source(fake_gpu, tiny_jam, tmp_path):
    engines = make_engine_dir(tiny_jam[1], tmp_path / "model")
    outs = []
    for folder, backend in ((engines, "tensorrt"), (tiny_jam[1], "onnxruntime")):
        with jamsdk.Animator(folder, backend=backend, threads=1, output_size="crop") as anim:
            anim.set_source(source_image())
            a = [anim.run(FRAMES[0].astype(np.float32) / 255), anim.run(FRAMES[1])]
            anim.set_source(source_image(seed=5))  # the reference is kept, its scale recomputed
            a.append(anim.run(FRAMES[2]))
            anim.reset()  # the next frame is the new reference
            a += [anim.run(FRAMES[3]), anim.run(FRAMES[4])]
            outs.append(np.stack(a))
    np.testing.assert_array_equal(outs[0], outs[1])


def test_run_device(fake_gpu, tiny_jam, tmp_path):
    engines = make_engine_dir(tiny_jam[1], tmp_path / "model")
    with jamsdk.Animator(engines, backend="tensorrt", threads=1) as anim:
        anim.set_source(source_image())
        want = anim.run(FRAMES[0])
        anim.reset()
        anim.run_device(FRAMES[1])  # the new reference: only its region params come back
        anim.reset()
        fake_gpu.counts.clear()
        r = anim.run_device(FRAMES[0])
        assert 0 < fake_gpu.counts["d2h_bytes"] < 1024
        fake_gpu.counts.clear()
        anim.run_device(FRAMES[1])
        assert fake_gpu.counts["d2h_bytes"] == 0 and fake_gpu.counts["syncs"] == 1  # nothing came back
        r = anim.run_device(FRAMES[0])
        cai = r.__cuda_array_interface__
        assert cai["shape"] == (64, 64, 3) and cai["typestr"] == "|u1" and cai["version"] == 3
        assert cai["data"][0] in fake_gpu.mem
        host = r.to_host()
        assert host.shape == (64, 64, 3) and host.dtype == np.uint8
        np.testing.assert_array_equal(host, want)
    with jamsdk.Animator(tiny_jam[1], backend="onnxruntime", threads=1) as anim:
        anim.set_source(source_image())
        with pytest.raises(InputError, match="run_device needs the TensorRT backend"):
            anim.run_device(FRAMES[0])


def test_stage_tensors_bound_by_name_with_enum_types(fake_gpu, tiny_jam, tmp_path):
    # the stand-in lists outputs first and reversed, shapes as Dims, dtypes as pybind11 enums
    import enum

    import tensorrt

    engines = make_engine_dir(tiny_jam[1], tmp_path / "model")
    with jamsdk.Animator(engines, backend="tensorrt") as anim:
        engine = anim._backends["dense_motion"]._engine
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        assert names[0] == "occlusion_map" and not isinstance(engine.get_tensor_shape(names[0]), tuple)
        dtype = engine.get_tensor_dtype(names[0])
        assert dtype == tensorrt.float32 and dtype is not tensorrt.float32 and not isinstance(dtype, enum.Enum)
        assert dtype is not engine.get_tensor_dtype(names[0])  # a fresh object per call


def test_stats_and_run_device_without_helpers(fake_gpu, tiny_jam, tmp_path):
    engines = make_engine_dir(tiny_jam[1], tmp_path / "model")
    with jamsdk.Animator(engines, backend="tensorrt") as anim:
        anim.set_source(source_image())
        for f in FRAMES[:3]:
            anim.run(f)
        stats = anim.stats()
        for key in ("frame", "preprocess", "pipeline", "postprocess"):
            assert stats[key]["count"] == 3  # the device chain is timed as a whole, once per frame
        assert "dense_motion" not in stats and stats["source"]["count"] == 1
    old = make_engine_dir(tiny_jam[1], tmp_path / "old", helpers=False)
    with jamsdk.Animator(old, backend="tensorrt") as anim:
        anim.set_source(source_image())
        with pytest.raises(InputError, match="helper graphs"):
            anim.run_device(FRAMES[0])


def test_consecutive_host_steps_share_one_round_trip(fake_gpu, tiny_jam, tmp_path):
    from jamsdk.manifest import load_manifest
    from jamsdk.runtime.backends.tensorrt import TensorRTBackend
    from jamsdk.runtime.plan import Plan, Step, slot_specs

    engines = make_engine_dir(tiny_jam[1], tmp_path / "model")
    backend = TensorRTBackend.from_manifest(load_manifest(engines), "region_predictor", {})
    seen = {}

    def shift_up(slots):  # like smoothing: rewrites the region params in place
        return {"s": slots["s"] + np.float32(1)}

    def record(slots):  # like a region read-out: reads, writes nothing
        seen.update(slots)
        return {}

    rp = Step("region_predictor", {"image": "img"}, {"shift": "s", "covar": "c", "affine": "a"})
    plan = Plan("t", (rp, Step("up", {"s": "s", "a": "a"}, {"s": "s"}, host=shift_up),
                      Step("rec", {"s": "s", "a": "a"}, {}, host=record)), ("img",), ("s",))
    image = np.random.default_rng(0).uniform(size=(1, 3, 64, 64)).astype(np.float32)
    with backend:
        want = backend.run({"image": image})
        pipe = TensorRTBackend.open_pipeline({"region_predictor": backend}, slot_specs([plan], {
            "region_predictor": backend.stage}), {})
        try:
            fake_gpu.counts.clear()
            got = pipe.run(plan, {"img": image})
            syncs = fake_gpu.counts["syncs"]
        finally:
            pipe.close()
    np.testing.assert_array_equal(got["s"], want["shift"] + 1)
    np.testing.assert_array_equal(seen["s"], want["shift"] + 1)  # the second step saw the first's output
    np.testing.assert_array_equal(seen["a"], want["affine"])
    assert syncs == 2  # one round trip for both host steps, one at the end


def test_copy_steps_gather_rows_alike_on_host_and_device(fake_gpu, tiny_jam, tmp_path):
    from jamsdk.manifest import load_manifest
    from jamsdk.runtime.backends.tensorrt import TensorRTBackend
    from jamsdk.runtime.plan import HostPipeline, Plan, Step, copy_step, slot_specs
    from jamsdk.stages import TensorSpec

    engines = make_engine_dir(tiny_jam[1], tmp_path / "model")
    backend = TensorRTBackend.from_manifest(load_manifest(engines), "region_predictor", {})
    rp = Step("region_predictor", {"image": "img"}, {"shift": "s", "covar": "c", "affine": "a"})
    shift = {s.name: s for s in backend.stage.outputs}["shift"]  # (1, K, 2) float32
    k = shift.shape[1]
    n = k * 2 * 4  # one row of region shifts
    plan = Plan("t", (rp, copy_step("s", "pair", 0, n, n), copy_step("s", "pair", 0, 0, n)), ("img",), ("pair",))
    extra = {"pair": TensorSpec("pair", (2, k, 2), "float32")}
    image = np.random.default_rng(1).uniform(size=(1, 3, 64, 64)).astype(np.float32)
    with backend:
        host = HostPipeline({"region_predictor": backend})
        host.write("pair", np.zeros((2, k, 2), np.float32))
        want = host.run(plan, {"img": image})["pair"]
        pipe = TensorRTBackend.open_pipeline({"region_predictor": backend}, slot_specs(
            [plan], {"region_predictor": backend.stage}, extra), {"cuda_graph": True})
        try:
            got = [pipe.run(plan, {"img": image})["pair"] for _ in range(3)]  # plain, captured, replayed
        finally:
            pipe.close()
    np.testing.assert_array_equal(want[0], want[1])
    for g in got:
        np.testing.assert_array_equal(g, want)
    assert fake_gpu.launches == 2 and fake_gpu.counts["d2d_bytes"] > 0


# -- one pipeline per Animator / StreamBatch: no private stream, scratch or slots on the side ------------

def test_reference_search_runs_in_the_animators_own_pipeline(fake_gpu, tiny_jam, tmp_path):
    engines = make_engine_dir(tiny_jam[1], tmp_path / "model")
    clip = list(FRAMES) + [f.astype(np.float32) / 255 for f in FRAMES[:2]]  # uint8 (device pixels) and float candidates

    def session(folder, backend):
        with jamsdk.Animator(folder, backend=backend, threads=1) as anim:
            anim.set_source(source_image())
            anim.run(FRAMES[0])
            held = (fake_gpu.device_bytes, fake_gpu.streams, len(fake_gpu.mem))
            best = anim.find_reference(clip)
            anim.set_reference(clip[best])
            outs = np.stack([anim.run(f) for f in FRAMES])
            if backend == "tensorrt":  # nothing was allocated for the search, and no backend opened its own pipeline
                assert (fake_gpu.device_bytes, fake_gpu.streams, len(fake_gpu.mem)) == held
                assert all(b._solo is None for b in anim._backends.values())
        return best, outs

    (best, got), (want_best, want) = session(engines, "tensorrt"), session(tiny_jam[1], "onnxruntime")
    assert best == want_best
    np.testing.assert_array_equal(got, want)


def test_stream_batch_without_helper_engines_runs_every_stage_in_one_pipeline(fake_gpu, tiny_batched, tmp_path):
    from cuda_standin import ALIGN

    from jamsdk.runtime.batch import StreamBatch

    folder = make_engine_dir(tiny_batched, tmp_path / "model", helpers=False, batched=True)
    pictures = [source_image(), source_image()[::-1].copy(), source_image()[:, ::-1].copy()]

    def session(model, backend):
        with StreamBatch(model, backend=backend, threads=1) as sb:
            ids = [sb.add_stream(p) for p in pictures]
            outs = [sb.run({sid: f for sid in ids}) for f in FRAMES[:3]]
            if backend == "tensorrt":
                pipe, cu = sb._stage_pipe, fake_gpu
                assert sb._device is None and len(cu.streams) == 1 and sb.batch_sizes == (1, 2, 4)
                activation = [be.activation_bytes for be in sb._backends.values()]
                assert pipe.scratch[1] == max(activation) < sum(activation)  # the largest, not the sum
                slots = sum(cu.sizes[p] for p in pipe.device.values())
                assert cu.device_bytes == sum(cu.reserved.values()) + slots + -(-pipe.scratch[1] // ALIGN) * ALIGN
                assert all(be._solo is None for be in sb._backends.values())
        return outs

    got, want = session(folder, "tensorrt"), session(tiny_batched, "onnxruntime")
    for g, w in zip(got, want, strict=True):
        for sid in w:
            assert np.abs(g[sid].astype(int) - w[sid].astype(int)).max() <= 1
    assert fake_gpu.mem == {} and fake_gpu.streams == set()
