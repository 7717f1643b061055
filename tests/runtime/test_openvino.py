"""OpenVINO backend: the same frames as ONNX Runtime in FP32, its cache, its telemetry, its errors."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import jamsdk
from jamsdk._lazy import install_command
from jamsdk.errors import EngineError, InputError, MissingDependencyError
from jamsdk.manifest import load_manifest
from jamsdk.runtime.backends import BACKENDS, resolve_backend
from jamsdk.runtime.backends import openvino as ovb
from jamsdk.runtime.batch import StreamBatch

if importlib.util.find_spec("openvino") is None:  # not importorskip: a plain `import openvino` starts its telemetry
    pytest.skip("openvino is not installed", allow_module_level=True)

RNG = np.random.default_rng(11)
PICTURE = RNG.integers(0, 256, (80, 72, 3), dtype=np.uint8)
FRAMES = [RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(3)]
# FP32 against FP32: the two runtimes order sums differently, nothing more. OpenVINO's default
# precision on a BF16 CPU (bf16) gave a max |difference| of 0.18 on the demo model: far outside.
FP32_TOL = 1e-4


def frames_of(model_dir, backend, mode="relative", **kw):
    with jamsdk.Animator(model_dir, backend=backend, mode=mode, threads=1, **kw) as anim:
        anim.set_source_tensor(_tensor(PICTURE, anim.image_size))
        return np.concatenate([anim.run_tensor(_tensor(f, anim.image_size)) for f in FRAMES])


def _tensor(image, size):
    from jamsdk.runtime.frames import to_model_input

    return to_model_input(image, size, False, "test")


@pytest.mark.parametrize("mode", ["relative", "standard", "avd"])
def test_same_frames_as_onnxruntime_fp32(tiny_jam, mode):
    _, model_dir = tiny_jam
    want, got = frames_of(model_dir, "onnxruntime", mode), frames_of(model_dir, "openvino", mode)
    assert np.abs(got - want).max() <= FP32_TOL
    assert np.abs(want[0] - want[1]).max() > 1e-3  # the frames differ, so equality is not trivial


def test_bundled_model_in_fp32_not_bf16(demo_model, demo_source, demo_frames):
    """The bundled model's flow path is what bf16 ruins: compiled without the f32 hint this fails."""
    outs = {}
    for backend in ("onnxruntime", "openvino"):
        with jamsdk.Animator(demo_model, backend=backend, threads=1) as anim:
            anim.set_source(demo_source)
            outs[backend] = np.concatenate([anim.run_tensor(_tensor(f, anim.image_size)) for f in demo_frames[:4]])
            if backend == "openvino":
                compiled = anim._backends["generator"]._request.get_compiled_model()
                assert str(compiled.get_property("INFERENCE_PRECISION_HINT")) == "<Type: 'float32'>"
    assert np.abs(outs["openvino"] - outs["onnxruntime"]).max() <= FP32_TOL


def test_uint8_frames_and_bgr(tiny_jam):
    _, model_dir = tiny_jam
    got = {}
    for backend in ("onnxruntime", "openvino"):
        with jamsdk.Animator(model_dir, backend=backend, threads=1, bgr=True) as anim:
            anim.set_source(PICTURE)
            got[backend] = [anim.run(f) for f in FRAMES]
    for a, b in zip(got["openvino"], got["onnxruntime"], strict=True):
        assert a.shape == b.shape == (64, 64, 3) and a.dtype == np.uint8
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_compiled_models_are_cached_by_graph_hash(tiny_jam, tmp_path, monkeypatch):
    _, model_dir = tiny_jam
    monkeypatch.setenv("JAMSDK_CACHE_DIR", str(tmp_path / "cache"))
    before = sorted(os.listdir(model_dir))
    manifest = load_manifest(model_dir)
    with jamsdk.Animator(model_dir, backend="openvino", mode="standard"):
        pass
    folders = sorted(os.listdir(tmp_path / "cache" / "openvino"))
    want = sorted({manifest.file_sha256(manifest.stage_file(n)) for n in ("region_predictor", "generator_encoder",
                                                                          "dense_motion", "generator")})
    assert folders == want
    assert all(os.listdir(tmp_path / "cache" / "openvino" / f) for f in folders)  # a blob in each
    assert sorted(os.listdir(model_dir)) == before  # nothing written next to the model
    assert frames_of(model_dir, "openvino", "standard").shape == (3, 3, 64, 64)  # from the cache


def test_unwritable_cache_compiles_anyway(tiny_jam, tmp_path, monkeypatch):
    _, model_dir = tiny_jam
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("JAMSDK_CACHE_DIR", str(blocker / "cache"))
    assert ovb.cache_dir_for("0" * 64) is None
    with jamsdk.Animator(model_dir, backend="openvino", mode="standard") as anim:
        assert "CACHE_DIR" not in anim._backends["generator"].properties()


def _blobs(cache) -> list:
    return sorted(p for p in cache.rglob("*.blob"))


def test_a_changed_blob_is_rebuilt_not_used(tiny_jam, tmp_path, monkeypatch):
    """The probe's O3: bytes flipped in a cached blob changed the output silently (exit 0)."""
    from jamsdk.runtime.backends import ov_cache

    _, model_dir = tiny_jam
    cache = tmp_path / "cache"
    monkeypatch.setenv("JAMSDK_CACHE_DIR", str(cache))
    want = frames_of(model_dir, "openvino", "standard")
    blobs = _blobs(cache)
    assert blobs and all((b.parent / ov_cache.RECORD).is_file() for b in blobs)
    for blob in blobs:  # flip bytes in the middle of every blob (the weights)
        data = bytearray(blob.read_bytes())
        blob.chmod(0o600)
        mid = len(data) // 2
        data[mid:mid + 256] = bytes(b ^ 0x5A for b in data[mid:mid + 256])
        blob.write_bytes(bytes(data))
    tampered = {b: b.read_bytes() for b in blobs}
    assert np.array_equal(frames_of(model_dir, "openvino", "standard"), want)
    for blob, data in tampered.items():  # each bad entry was removed and compiled again
        assert not blob.exists() or blob.read_bytes() != data
    assert _blobs(cache) and all(ov_cache.verify(b.parent) for b in _blobs(cache))
    assert np.array_equal(frames_of(model_dir, "openvino", "standard"), want)  # and the rebuilt cache is used


def test_an_unlisted_or_unrecorded_entry_empties_the_folder(tmp_path):
    from jamsdk.runtime.backends import ov_cache

    folder = tmp_path / "f"
    folder.mkdir()
    assert ov_cache.verify(folder)  # empty: nothing to check
    (folder / "a.blob").write_bytes(b"compiled")
    assert not ov_cache.verify(folder) and not any(folder.iterdir())  # no record: not trusted
    (folder / "a.blob").write_bytes(b"compiled")
    ov_cache.record(folder)
    assert ov_cache.verify(folder) and (folder / "a.blob").is_file()
    (folder / "planted.blob").write_bytes(b"other")  # one more file than recorded
    assert not ov_cache.verify(folder) and not any(p.name != ov_cache.RECORD for p in folder.iterdir())


def test_a_cache_folder_of_another_user_is_refused(tiny_jam, tmp_path, monkeypatch):
    """The probe's O5: a cache folder made by another user (mode 0777) was used, with its planted blob.
    The same folder made by this user is taken back (made 0700) and used."""
    from jamsdk.runtime.backends import ov_cache

    _, model_dir = tiny_jam
    cache = tmp_path / "cache"
    monkeypatch.setenv("JAMSDK_CACHE_DIR", str(cache))
    sha = "1" * 64
    folder = ov_cache.folder_for(sha)
    folder.chmod(0o777)
    assert ov_cache.folder_for(sha) == folder and (folder.stat().st_mode & 0o777) == 0o700
    me = os.getuid()
    monkeypatch.setattr(ov_cache.os, "getuid", lambda: me + 1)  # every folder above is now someone else's
    with pytest.raises(EngineError, match=rf"OpenVINO cache {cache}(/openvino)? belongs to another user \(uid {me}"):
        ov_cache.folder_for(sha)
    with pytest.raises(EngineError, match="belongs to another user"):
        jamsdk.Animator(model_dir, backend="openvino", mode="standard")
    monkeypatch.setattr(ov_cache.os, "getuid", lambda: me)
    cache.chmod(0o777)  # ours, but anyone may write in it (and replace openvino/)
    with pytest.raises(EngineError, match=r"is writable by every user \(mode 0777, not sticky\)"):
        ov_cache.folder_for(sha)
    cache.chmod(0o1777)  # sticky, like /tmp: others cannot replace our folders
    assert ov_cache.folder_for(sha) == folder
    (cache / "openvino" / ("2" * 64)).symlink_to(folder)
    with pytest.raises(EngineError, match="is a symbolic link or a file"):
        ov_cache.folder_for("2" * 64)


def test_openvino_does_not_phone_home(tmp_path):
    """Without a consent file openvino-telemetry counts as consent on `import openvino`: it writes a
    client id under ~/intel and sends an event. jamsdk's import hides it (the CI variables that would
    also silence it are removed here, so this fails if the hiding stops working)."""
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TF_BUILD", "JENKINS_URL")}
    env["HOME"] = str(tmp_path)
    code = ("import sys\n"
            "from jamsdk.runtime.backends.openvino import core\n"
            "core()\n"
            "print(sorted(m for m in sys.modules if m.startswith('openvino_telemetry')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True, timeout=120)
    assert out.stdout.strip() == "[]"
    assert not (tmp_path / "intel").exists()


def test_missing_openvino_names_the_extra(tiny_jam, monkeypatch):
    _, model_dir = tiny_jam
    monkeypatch.setattr(ovb, "_core", None)
    monkeypatch.delitem(sys.modules, "openvino", raising=False)
    monkeypatch.setitem(sys.modules, "openvino", None)  # `import openvino` raises ImportError
    with pytest.raises(MissingDependencyError, match=re.escape(install_command("openvino"))):
        jamsdk.Animator(model_dir, backend="openvino")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert install_command("openvino") in BACKENDS["openvino"].usable(load_manifest(model_dir))


def test_bad_feeds_and_bad_graph(tiny_jam, model_copy):
    _, model_dir = tiny_jam
    with jamsdk.Animator(model_dir, backend="openvino") as anim:
        with pytest.raises(InputError, match=r"expected \(1, 3, 64, 64\) float32"):
            anim._backends["region_predictor"].run({"image": np.zeros((1, 3, 32, 32), np.float32)})
        with pytest.raises(InputError, match="no source picture"):
            anim.run(FRAMES[0])
    (model_copy / "generator.onnx").write_bytes(b"not an onnx graph")
    with pytest.raises(EngineError, match=r"OpenVINO cannot compile .*generator.onnx: Unable to read the model") as info:
        jamsdk.Animator(model_copy, backend="openvino", verify_hashes=False)
    assert "Exception from src/" not in str(info.value)


def test_fp16_graphs_run_as_fp32_numbers(tiny_jam):
    """precision="fp16" loads the mixed graphs (their casts kept) and stays close to ONNX Runtime's run of them."""
    _, model_dir = tiny_jam
    want, got = frames_of(model_dir, "onnxruntime", precision="fp16"), frames_of(model_dir, "openvino",
                                                                                  precision="fp16")
    assert np.abs(got - want).max() <= 2e-3


def test_auto_takes_openvino_for_int8_only(tiny_jam, monkeypatch):
    _, model_dir = tiny_jam
    manifest = load_manifest(model_dir)
    assert resolve_backend(manifest, "openvino") == "openvino"
    assert resolve_backend(manifest, "auto", "int8") == "openvino"  # no GPU here: TensorRT is not usable
    assert resolve_backend(manifest, "auto", "fp32") == resolve_backend(manifest, "auto", "fp16") == "onnxruntime"
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "openvino" else real(name))
    assert resolve_backend(manifest, "auto", "int8") == "onnxruntime"  # where openvino is not installed


def test_stream_batch_on_openvino_matches_onnxruntime(tiny_batched):
    pictures = [RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(5)]
    out = {}
    for backend in ("onnxruntime", "openvino"):
        with StreamBatch(tiny_batched, backend=backend, mode="standard", threads=1) as sb:
            assert sb.batch_sizes == (1, 2, 4) and sb.backend == backend
            ids = [sb.add_stream(p) for p in pictures]
            out[backend] = [sb.run({sid: FRAMES[t] for sid in ids}) for t in range(2)]
            calls = sb.stats()
        assert calls["generator@b4"]["count"] == 2 and calls["generator@b1"]["count"] == 2  # batched graphs ran
    for t in range(2):
        for sid in out["onnxruntime"][t]:
            a, b = out["openvino"][t][sid].astype(int), out["onnxruntime"][t][sid].astype(int)
            assert np.abs(a - b).max() <= 1


def test_cli_animate_bench_and_errors_on_openvino(tiny_jam, demo_assets, tmp_path, capsys):
    from jamsdk.cli import main

    _, model_dir = tiny_jam
    out = tmp_path / "out.gif"
    assert main(["animate", "--model", str(model_dir), "--backend", "openvino", "--source",
                 str(demo_assets / "example_source.png"), "--driving", str(demo_assets / "example_driving.mp4"),
                 "--max-frames", "3", "--out", str(out)]) == 0
    assert out.is_file() and "openvino" in capsys.readouterr().out
    report = tmp_path / "bench.json"
    assert main(["bench", "--model", str(model_dir), "--backend", "openvino", "--frames", "3", "--warmup", "1",
                 "--threads", "1", "--json", str(report), "--no-progress"]) == 0
    import json

    data = json.loads(report.read_text())
    assert data["settings"]["backend"] == "openvino" and data["machine"]["openvino"]
    from jamsdk.runtime.sysinfo import cpu_flags

    assert data["machine"]["cpu_flags"] == cpu_flags()
    assert "openvino" in capsys.readouterr().out
    assert main(["animate", "--model", str(model_dir), "--backend", "openvino", "--precision", "int8", "--source",
                 str(demo_assets / "example_source.png"), "--driving", str(demo_assets / "example_driving.mp4"),
                 "--out", str(tmp_path / "x.gif")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no 'int8' graph" in err


def test_this_test_process_never_loaded_openvino_telemetry(tiny_jam):
    """Every OpenVINO use in the suite goes through jamsdk's import (a plain `import openvino`, e.g.
    pytest.importorskip, would load openvino_telemetry here and count as consent to send)."""
    _, model_dir = tiny_jam
    with jamsdk.Animator(model_dir, backend="openvino", mode="standard"):
        pass
    assert "openvino" in sys.modules and "openvino_telemetry" not in sys.modules


def test_throughput_mode_runs_rows_as_requests_with_the_same_frames(tiny_batched_int8):
    """openvino_hint="throughput": a size-4 call runs the batch-1 graph as 4 requests; the frames are
    those of the batched graph (the same quantized maths, row by row)."""
    pictures = [RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(5)]
    out = {}
    for hint in ("latency", "throughput"):
        with StreamBatch(tiny_batched_int8, backend="openvino", precision="int8", mode="standard", threads=1,
                         openvino_hint=hint) as sb:
            big = sb._backends[("generator", 4)]
            m = sb.manifest
            if hint == "throughput":
                assert big.rows == 4 and big.path == m.stage_file("generator", "int8", 1, prefer="int8_openvino")
                compiled = big._queue[0].get_compiled_model()
                assert str(compiled.get_property("PERFORMANCE_HINT")) == "THROUGHPUT"
                assert sb._backends[("generator", 1)].rows == 1  # a one-row call is one plain request
            else:
                assert big.rows == 1 and big.path == m.stage_file("generator", "int8", 4, prefer="int8_openvino")
            ids = [sb.add_stream(p) for p in pictures]
            out[hint] = [sb.run({sid: FRAMES[t] for sid in ids}) for t in range(2)]
    for t in range(2):
        for sid, frame in out["latency"][t].items():
            assert np.abs(out["throughput"][t][sid].astype(int) - frame.astype(int)).max() <= 2
    first = list(out["throughput"][0].values())
    assert np.abs(first[0].astype(int) - first[1].astype(int)).max() > 2  # rows differ: order matters


def test_unknown_hint_is_refused(tiny_batched):
    from jamsdk.manifest import load_manifest
    from jamsdk.runtime.backends.base import manifest_stage

    m = load_manifest(tiny_batched)
    stage, _ = manifest_stage(m, "generator", {"batch": 2})
    with pytest.raises(InputError, match=r"openvino hint: expected one of \('latency', 'throughput'\), got 'fast'"):
        ovb.OpenVINOBackend(stage, m.stage_file("generator"), hint="fast")
