"""StreamBatch on the TensorRT backend's plumbing (stand-ins for TensorRT and CUDA: cuda_standin.py).

Batched engines are plain static engines, one per size (``<stage>.b<B>.engine``); the fake's
"engines" are the batched ONNX graphs run by ONNX Runtime, so this checks the manifest's
``engines.batched`` section, the backend picking each size's engine, and its static buffers.
"""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from cuda_standin import install, make_engine_dir

from jamsdk.errors import ManifestError
from jamsdk.runtime.batch import StreamBatch

RNG = np.random.default_rng(2)
PICTURES = [RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(3)]
FRAMES = [RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(3)]


@pytest.fixture()
def fake_gpu(monkeypatch):
    return install(monkeypatch)


@pytest.fixture()
def batched_engines(tiny_batched, tmp_path):
    return make_engine_dir(tiny_batched, tmp_path / "model", batched=True)


def run_three(model_dir, backend):
    with StreamBatch(model_dir, backend=backend, threads=1) as sb:
        ids = [sb.add_stream(p) for p in PICTURES]
        sizes = sb.batch_sizes
        return sizes, [sb.run({sid: f for sid in ids}) for f in FRAMES]


def test_batched_engines_match_onnxruntime(fake_gpu, batched_engines, tiny_batched):
    sizes, got = run_three(batched_engines, "tensorrt")
    assert sizes == (1, 2, 4)
    _, want = run_three(tiny_batched, "onnxruntime")
    for g, w in zip(got, want, strict=True):
        for sid in w:
            # the fake's sessions run with ONNX Runtime's default threads: rounding may differ by a level
            assert np.abs(g[sid].astype(int) - w[sid].astype(int)).max() <= 1
    assert fake_gpu.mem == {} and fake_gpu.pinned == []  # every size's buffers freed on close


def test_engines_without_batched_ones_run_one_by_one(fake_gpu, tiny_batched, tmp_path):
    out = make_engine_dir(tiny_batched, tmp_path / "model")  # graphs batched, engines not
    sizes, _ = run_three(out, "tensorrt")
    assert sizes == (1,)
    data = json.loads((out / "manifest.json").read_text())
    data["engines"]["batched"] = {"generator": {"x": {"file": "generator.engine", "sha256": "0" * 64}}}
    (out / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="engines.batched.generator: expected a batch size"):
        StreamBatch(out, backend="tensorrt")


def test_build_engines_builds_every_batched_size_and_keeps_them_on_partial_rebuilds(
        fake_gpu, tiny_batched, tmp_path, monkeypatch):
    """jamsdk build's bookkeeping for batched graphs; the TensorRT build itself is a copy here."""
    import types

    from jamsdk.manifest import load_manifest
    from jamsdk.runtime import onnx2engine as o2e

    built = []

    def fake_build(onnx, engine, *, stage="", precision="fp16", typing="strong", **_kw):
        shutil.copy(onnx, engine)
        built.append(engine.name)
        return o2e.EngineReport(stage, engine, onnx, typing, precision, 0.0, engine.stat().st_size)

    monkeypatch.setattr(o2e, "onnx2engine", fake_build)
    monkeypatch.setattr(sys.modules["tensorrt"], "BuilderFlag", types.SimpleNamespace(), raising=False)
    out = tmp_path / "engines"
    o2e.build_engines(tiny_batched, out, precision="fp32", timing_cache=tmp_path / "cache", log=lambda _l: None)
    man = load_manifest(out)
    per_frame = [n for n, e in man.stages.items() if e.per == "frame"]
    assert {n: sorted(man.engines.batched[n]) for n in per_frame} == {n: [2, 4] for n in per_frame}
    assert "generator.b4.engine" in built and "generator_encoder.b2.engine" not in built
    built.clear()
    o2e.build_engines(out, precision="fp32", stages=["generator"], timing_cache=tmp_path / "cache",
                      log=lambda _l: None)
    assert sorted(built) == ["generator.b2.engine", "generator.b4.engine", "generator.engine"]
    assert sorted(load_manifest(out).engines.batched) == sorted(per_frame)  # the others' sizes kept


# -- a chunk is one plan on the device pipeline --------------------------------------------------------

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import transfer_budget  # noqa: E402


@pytest.mark.parametrize("mode,cuda_graph", [("relative", True), ("standard", False), ("avd", True)])
def test_a_chunk_is_one_plan_within_the_transfer_budget(tiny_batched, monkeypatch, mode, cuda_graph):
    r = transfer_budget.measure_batch(tiny_batched, 4, mode, cuda_graph, chunks=3, patch=monkeypatch)
    s, b = r["image_size"], r["batch"]
    assert r["path"] == "device plan"
    assert r["h2d_bytes_per_chunk"] == b * s * s * 3  # the uint8 crops only: sources stay on the device
    assert r["d2h_bytes_per_chunk"] == b * s * s * 3  # the uint8 results only
    assert r["syncs_per_chunk"] == 1 and r["graph_launches_per_chunk"] == (1 if cuda_graph else 0)
    assert r["before"]["syncs_per_chunk"] >= 3 and r["before"]["h2d_bytes_per_chunk"] > 20 * r["h2d_bytes_per_chunk"]
    assert 3 * s * s * 4 < r["source_h2d_bytes_per_stream"]  # picture, params and features: once per stream
    # on the device, a steady chunk moves only per-frame rows (frames, predictions, region params):
    # each stream's source was gathered into its row of the batched tensors once
    assert r["d2d_bytes_per_chunk"] <= b * (2 * s * s * 3 * 4 + 4096)


def test_streams_come_and_go_on_the_device(fake_gpu, batched_engines, tiny_batched):
    def session(folder, backend):
        outs = []
        with StreamBatch(folder, backend=backend, threads=1, cuda_graph=backend == "tensorrt") as sb:
            ids = [sb.add_stream(p) for p in PICTURES]
            outs.append(sb.run({sid: f for sid, f in zip(ids, FRAMES)}))
            sb.set_source(ids[0], PICTURES[2])  # its reference kept, its scale recomputed
            sb.reset(ids[1])
            sb.remove_stream(ids[2])
            outs.append(sb.run({ids[1]: FRAMES[0], ids[0]: FRAMES[1]}))
            outs.append(sb.run({ids[0]: FRAMES[2], ids[1]: FRAMES[2].astype(np.float32) / 255}))
            # a clip whose first chunk starts and ends on different frames (F0 F1 F2 F2): its reference is
            # the chunk's first row, not its last
            outs.append({"clip": np.stack(list(sb.animate_clip(PICTURES[1], FRAMES + FRAMES[::-1])))})
            if backend == "tensorrt":
                assert sb._device is not None and len(sb._device.prefixes) == 2  # the clip's slots were freed
        return outs

    got, want = session(batched_engines, "tensorrt"), session(tiny_batched, "onnxruntime")
    for g, w in zip(got, want, strict=True):
        for key in w:  # the fake's sessions may round a level apart from ONNX Runtime's
            assert np.abs(g[key].astype(int) - w[key].astype(int)).max() <= 1, key
    assert fake_gpu.mem == {} and fake_gpu.pinned == [] and fake_gpu.device_bytes == 0


def test_contexts_and_graphs_do_not_depend_on_which_stream_sits_where(fake_gpu, batched_engines):
    """100 join/leave cycles of 3 streams, in a new order every cycle: the pipeline's caches stay bounded.

    Bound (batch_device's docstring): a context per stage and batch size, two for the encoder plan,
    one per helper and position; at most three graphs per batch size (steady chunk, and the halves
    around the reference's host step) and one for the encoder plan.
    """
    with StreamBatch(batched_engines, backend="tensorrt", cuda_graph=True, threads=1) as sb:
        pipe, sizes = sb._device.pipe, sb.batch_sizes
        per_frame = {name for (name, b) in sb._backends if b > 1}
        context_bound = len(per_frame) * len(sizes) + 2 + 3 * max(sizes)
        graph_bound = 3 * len(sizes) + 1
        ids = [sb.add_stream(p) for p in PICTURES]
        seen = []
        for cycle in range(100):
            order = ids[cycle % 3:] + ids[:cycle % 3]
            sb.run({sid: FRAMES[(cycle + k) % 3] for k, sid in enumerate(order)})  # chunks of 2 and 1
            sb.remove_stream(order[0])
            ids = order[1:] + [sb.add_stream(PICTURES[cycle % 3])]  # a new stream joins: a new id
            relative = [key for key in pipe.bound if key[0] == "relative"]
            seen.append((len(pipe.bound), len(pipe.graphs), len(relative)))
        contexts, graphs, relative = seen[-1]
        assert relative <= 2  # one per position used (3 streams: positions 0 and 1), never per stream
        assert contexts <= context_bound and graphs <= graph_bound, (seen[-1], context_bound, graph_bound)
        assert seen[9] == seen[-1] and max(seen) == seen[-1]  # nothing grows with the streams seen
        ids.append(sb.add_stream(PICTURES[0]))  # 4 streams, one chunk of 4, in 8 different orders
        held = []
        for k in range(8):
            order = [ids[(k * 3 + j * (1 + 2 * (k % 2))) % 4] for j in range(4)]
            sb.run({sid: FRAMES[j % 3] for j, sid in enumerate(order)})
            held.append(len(pipe.graphs))
        assert held[-1] == held[1] <= graph_bound, held  # no graph per arrangement of the streams


# -- one precision per StreamBatch ------------------------------------------------------------------------

def _shifted(src, dst, output="prediction", delta=0.2):
    """A copy of the graph ``src`` whose ``output`` is moved by ``delta``: an "INT8" graph that visibly differs."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    for node in model.graph.node:
        node.output[:] = [f"{output}_pre" if o == output else o for o in node.output]
    model.graph.initializer.append(numpy_helper.from_array(np.array(delta, np.float32), "jam_delta"))
    model.graph.node.append(helper.make_node("Add", [f"{output}_pre", "jam_delta"], [output]))
    onnx.save(model, str(dst))


@pytest.fixture()
def int8_build(fake_gpu, tiny_batched, tmp_path):
    """tiny_batched with an INT8 export (the generator's Q/DQ graph differs visibly), built ``--precision int8``."""
    from cuda_standin import fake_builder

    from jamsdk.model_files import sha256_file
    from jamsdk.runtime.onnx2engine import build_engines

    folder = tmp_path / "model"
    shutil.copytree(tiny_batched, folder)
    data = json.loads((folder / "manifest.json").read_text())
    for name, entry in data["stages"].items():
        file = f"{name}.int8.onnx" if name == "generator" else f"{name}.onnx"
        if name == "generator":
            _shifted(folder / f"{name}.onnx", folder / file)
        entry["files"]["int8"] = {"file": file, "sha256": sha256_file(folder / file)}
    data["precisions"] = [*data["precisions"], "int8"]
    (folder / "manifest.json").write_text(json.dumps(data))
    fake_builder(sys.modules["tensorrt"])
    build_engines(folder, precision="int8", timing_cache=tmp_path / "t.cache", log=lambda _l: None)
    return folder


def _seven(folder, backend):
    pictures = [PICTURES[i % 3][:, i:] for i in range(7)]
    with StreamBatch(folder, backend=backend, threads=1) as sb:
        ids = [sb.add_stream(p) for p in pictures]
        outs = [sb.run({sid: FRAMES[(k + j) % 3] for k, sid in enumerate(ids)}) for j in range(2)]  # 4 + 2 + 1
        files = {be.path.name for be in sb._backends.values()} if backend == "tensorrt" else set()
        return outs, getattr(sb, "precision", None), sb.batch_sizes, files


def test_int8_engines_batch_in_one_precision(int8_build, tiny_batched):
    from jamsdk.manifest import load_manifest

    got, precision, sizes, files = _seven(int8_build, "tensorrt")
    want, *_ = _seven(tiny_batched, "onnxruntime")  # FP32 at every size
    for g, w in zip(got, want, strict=True):
        for sid in w:  # the stream in the 1-chunk as well as those in the 4- and 2-chunks
            assert np.abs(g[sid].astype(int) - w[sid].astype(int)).max() <= 1, sid
    assert precision == "fp32" and sizes == (1, 2, 4)
    assert all(f.endswith((".b1.engine", ".b2.engine", ".b4.engine")) for f in files), files
    engines = load_manifest(int8_build).engines
    assert engines.precision == "int8" and engines.batched_precision == "fp32"
    assert sorted(engines.batched_b1) == sorted(load_manifest(int8_build).stages)  # every stage, at batch 1


def test_a_folder_without_them_runs_one_by_one_in_its_own_precision(int8_build):
    from jamsdk.runtime.batch import MixedPrecisionWarning

    data = json.loads((int8_build / "manifest.json").read_text())
    del data["engines"]["batched_b1"]  # as built before batch-1 engines of the batched precision existed
    (int8_build / "manifest.json").write_text(json.dumps(data))
    with pytest.warns(MixedPrecisionWarning, match="its batched engines are fp32, its batch-1 engines int8.*"
                                                   "streams run one by one in int8; rebuild with `jamsdk build"):
        got, precision, sizes, files = _seven(int8_build, "tensorrt")
    assert precision == "int8" and sizes == (1,) and not any(".b" in f for f in files)


def test_batch1_engines_in_the_manifest_are_checked(int8_build):
    path = int8_build / "manifest.json"
    good = json.loads(path.read_text())
    for key, value, message in (("batched_b1", {"nope": {"file": "x", "sha256": "0" * 64}}, "engines.batched_b1"),
                                ("batched_b1", ["generator.b1.engine"], "engines.batched_b1"),
                                ("batched_precision", "int4", "engines.batched_precision")):
        data = json.loads(json.dumps(good))
        data["engines"][key] = value
        path.write_text(json.dumps(data))
        with pytest.raises(ManifestError, match=message):
            StreamBatch(int8_build, backend="tensorrt")
    data = json.loads(json.dumps(good))
    data["engines"]["batched_b1"]["generator"]["sha256"] = "0" * 64  # the neighbour: a listed engine, damaged
    path.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="generator.b1.engine"):
        StreamBatch(int8_build, backend="tensorrt")
