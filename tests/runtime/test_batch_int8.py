"""StreamBatch in INT8 (one precision at every batch size) and the long-running paths' `auto` choices."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from jamsdk import Animator
from jamsdk.errors import ManifestError
from jamsdk.manifest import load_manifest
from jamsdk.runtime.backends import auto_precision, resolve_long_running
from jamsdk.runtime.batch import StreamBatch

pytest.importorskip("onnxruntime")
OPENVINO = importlib.util.find_spec("openvino") is not None

RNG = np.random.default_rng(21)
PICTURES = [RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(5)]
FRAMES = [[RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(2)] for _ in range(5)]


def test_five_int8_streams_match_five_int8_animators(tiny_batched_int8):
    # providers="auto": ONNX Runtime runs the S8S8 graphs (not the CPU gate's choice, which may be FP32
    # for a tiny model), so the quantized graphs run at every size
    want = []
    for p, frames in zip(PICTURES, FRAMES):
        with Animator(tiny_batched_int8, backend="onnxruntime", precision="int8", threads=1, providers="auto") as anim:
            anim.set_source(p)
            want.append([anim.run(f) for f in frames])
    with StreamBatch(tiny_batched_int8, backend="onnxruntime", precision="int8", threads=1, providers="auto") as sb:
        assert sb.batch_sizes == (1, 2, 4) and sb.precision == "int8"
        m = sb.manifest
        for b in (1, 2, 4):  # INT8 at every size
            assert sb._backends[("generator", b)].path == m.stage_file("generator", "int8", b)
        assert sb._backends[("generator", 4)].path.name == "generator.b4.int8.onnx"
        ids = [sb.add_stream(p) for p in PICTURES]
        steps = [sb.run({sid: FRAMES[i][t] for i, sid in enumerate(ids)}) for t in range(2)]
        assert sb.stats()["generator@b4"]["count"] == 2
    for i, sid in enumerate(ids):
        for t in range(2):
            assert np.abs(steps[t][sid].astype(int) - want[i][t].astype(int)).max() <= 2


def test_int8_on_the_cpu_provider_opens_each_sizes_cpu_graphs(tiny_batched_int8):
    with StreamBatch(tiny_batched_int8, backend="onnxruntime", precision="int8", threads=1) as sb:
        for name in ("region_predictor", "dense_motion", "generator"):
            for b in (1, 2, 4):
                assert sb._backends[(name, b)].path == sb.manifest.stage_file(name, "int8", b, prefer="int8_cpu")


def test_int8_on_a_folder_without_int8_graphs_names_the_export(tiny_batched):
    with pytest.raises(ManifestError, match=r"no 'int8' graph.*--precision int8 --calibration"):
        StreamBatch(tiny_batched, backend="onnxruntime", precision="int8", threads=1)


def test_sizes_without_int8_graphs_are_not_used(tiny_batched_int8, edited_copy):
    """An INT8 folder exported before batched INT8: INT8 runs at batch 1 only, never FP32 at the other sizes."""
    def drop(data):
        for per_size in data["batched"]["stages"].values():
            for files in per_size.values():
                for key in ("int8", "int8_cpu", "int8_openvino"):
                    files.pop(key, None)

    old = edited_copy(tiny_batched_int8, drop)
    with StreamBatch(old, backend="onnxruntime", precision="int8", threads=1) as sb:
        assert sb.batch_sizes == (1,)
    with StreamBatch(old, backend="onnxruntime", precision="fp32", threads=1) as sb:
        assert sb.batch_sizes == (1, 2, 4)  # the neighbour: FP32 still has every size


def test_auto_precision_is_int8_only_where_the_export_judged_it(tiny_batched_int8, tiny_batched, edited_copy):
    m = load_manifest(tiny_batched_int8)
    assert auto_precision(m, "onnxruntime") == "int8"
    assert auto_precision(m, "tensorrt") == "fp32"  # engines as built
    assert auto_precision(load_manifest(tiny_batched), "onnxruntime") == "fp32"  # no INT8 graphs

    def below(data):
        data["export"]["int8"]["cpu"]["psnr_db_end_to_end"]["held_out"] = data["export"]["int8"]["min_psnr_db"] - 0.1
        if "openvino" in data["export"]["int8"]:
            data["export"]["int8"]["openvino"]["held_out_ok"] = False

    failed = load_manifest(edited_copy(tiny_batched_int8, below))
    assert auto_precision(failed, "onnxruntime") == auto_precision(failed, "openvino") == "fp32"
    at_gate = load_manifest(edited_copy(tiny_batched_int8, lambda d: d["export"]["int8"]["cpu"][
        "psnr_db_end_to_end"].__setitem__("held_out", d["export"]["int8"]["min_psnr_db"]), "at-gate"))
    assert auto_precision(at_gate, "onnxruntime") == "int8"  # ≥ the gate, as the export's own rule


def test_stream_batch_auto_runs_int8_where_it_passed(tiny_batched_int8, tiny_batched):
    with StreamBatch(tiny_batched_int8, backend="onnxruntime", precision="auto", threads=1) as sb:
        assert sb.precision == "int8" and sb.batch_sizes == (1, 2, 4)
    with StreamBatch(tiny_batched, backend="onnxruntime", precision="auto", threads=1) as sb:
        assert sb.precision == "fp32" and sb.batch_sizes == (1, 2, 4)


def test_long_running_auto_takes_int8_on_openvino_first(tiny_batched_int8, tiny_batched, monkeypatch):
    int8, fp32 = load_manifest(tiny_batched_int8), load_manifest(tiny_batched)
    best = "openvino" if OPENVINO else "onnxruntime"
    assert resolve_long_running(int8) == (best, "int8")
    # a folder without INT8: FP32 on FP32's order (ONNX Runtime first: no compile, same speed)
    assert resolve_long_running(fp32) == ("onnxruntime", "fp32")
    # explicit choices are kept; auto precision on a named backend asks that backend's judge
    assert resolve_long_running(int8, "auto", "fp32") == ("onnxruntime", "fp32")
    assert resolve_long_running(int8, "onnxruntime", "auto") == ("onnxruntime", "int8")
    assert resolve_long_running(int8, "auto", "int8") == (best, "int8")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "openvino" else real(name))
    assert resolve_long_running(int8) == ("onnxruntime", "int8")  # where openvino is not installed


def test_long_running_auto_falls_back_to_fp32_where_int8_failed(tiny_batched_int8, edited_copy):
    def failed(data):
        data["export"]["int8"]["cpu"]["psnr_db_end_to_end"]["held_out"] = 20.0
        if "openvino" in data["export"]["int8"]:
            data["export"]["int8"]["openvino"]["held_out_ok"] = False

    m = load_manifest(edited_copy(tiny_batched_int8, failed))
    assert resolve_long_running(m) == ("onnxruntime", "fp32")


@pytest.mark.skipif(not OPENVINO, reason="openvino is not installed")
def test_int8_streams_on_openvino_open_openvinos_graphs(tiny_batched_int8):
    with StreamBatch(tiny_batched_int8, precision="auto", threads=1) as sb:
        assert sb.backend == "openvino" and sb.precision == "int8"
        m = sb.manifest
        for b in (1, 2, 4):
            assert sb._backends[("generator", b)].path == m.stage_file("generator", "int8", b, prefer="int8_openvino")
        ids = [sb.add_stream(p) for p in PICTURES]
        out = sb.run({sid: FRAMES[i][0] for i, sid in enumerate(ids)})
    assert all(o.shape == (64, 64, 3) and o.dtype == np.uint8 for o in out.values())


def test_precision_is_checked(tiny_batched):
    from jamsdk.errors import InputError

    with pytest.raises(InputError, match=r"precision: expected one of \('auto', 'fp32', 'fp16', 'int8'\), got 'int4'"):
        StreamBatch(tiny_batched, backend="onnxruntime", precision="int4")
