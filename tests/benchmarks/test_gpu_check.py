"""The GPU check (benchmarks/gpu_check.sh and its python parts) on this CPU: the logic with tiny
models, the FP32 islands, the clean skip where CUDA is asked for and absent, and the orchestration
of the shell script (parts' status, the pipeline part only where its script exists).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))
import _gpu_stages as gs  # noqa: E402
import _mini_yaml  # noqa: E402
import gpu_fp16_numerics  # noqa: E402
import gpu_latency  # noqa: E402

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA path")


def test_mini_yaml_reads_every_shipped_config_like_pyyaml():
    yaml = pytest.importorskip("yaml")
    configs = sorted((BENCH.parent / "jamsdk" / "configs").glob("*.yaml"))
    assert configs
    for path in configs:
        text = path.read_text()
        assert _mini_yaml.safe_load(text) == yaml.safe_load(text), path.name
    assert _mini_yaml.safe_load("a:\n  b: [1, {c: 2.5, d: null}]\n  e: 'x # y'\n") == \
        {"a": {"b": [1, {"c": 2.5, "d": None}], "e": "x # y"}}
    with pytest.raises(_mini_yaml.YAMLError):
        _mini_yaml.safe_load("a:\n  - 1\n")


def test_fp16_bodies_are_the_exports():
    model = gs.build_model("tiny-jam")
    fp32, mixed = gs.stage_sets(model, torch.device("cpu"), torch.float16)
    names = {n: gs.body_module_names(fp32.modules[n], n) for n in fp32.stages}
    assert names["region_predictor"] == [] and names["avd"] == []  # FP32 islands entirely
    assert names["dense_motion"] == ["dense_motion.hourglass"]
    assert names["generator_encoder"] == ["generator.first", "generator.down_blocks.0", "generator.down_blocks.1"]
    assert {"generator.bottleneck", "generator.final", "generator.up_blocks.0"} <= set(names["generator"])
    assert not any(n.startswith(("generator.first", "generator.down_blocks")) for n in names["generator"])
    assert names["bg_motion"] == ["bg_motion.encoder"]
    dm = mixed.modules["dense_motion"]
    assert all(p.dtype == torch.float16 for p in dm.dense_motion.hourglass.parameters())
    outside = [p for n, p in dm.named_parameters() if ".hourglass." not in n]
    assert outside and all(p.dtype == torch.float32 for p in outside)  # the heads stay FP32
    assert all(p.dtype == torch.float32 for p in fp32.modules["dense_motion"].parameters())  # the copy is untouched


def test_numerics_on_the_cpu(tmp_path):
    out = tmp_path / "n.json"
    assert gpu_fp16_numerics.main(["--device", "cpu", "--config", "tiny-jam", "--frames", "1",
                                   "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["status"] == "ok" and result["half_dtype"] == "float16" and not result["tf32_effective"]
    (m,) = result["models"]
    stages = m["stages"]
    assert set(stages) == {"region_predictor", "generator_encoder", "bg_motion", "avd", "dense_motion", "generator"}
    # All-FP32 stages are bit-identical; TF32 variants run on CUDA only.
    assert stages["region_predictor"]["fp16"]["psnr_db_min"] is None and stages["avd"]["fp16"]["max_abs"] == 0
    assert m["variants"] == ["fp16"] and all(set(v) == {"fp16"} for v in stages.values())
    # FP16 bodies round: finite, high PSNR (float16 has ~3.3 significant digits).
    for stage in ("generator_encoder", "dense_motion", "generator"):
        assert 40 < stages[stage]["fp16"]["psnr_db_min"] < 140, (stage, stages[stage]["fp16"])
    for mode in ("standard", "avd"):
        e2e = m["end_to_end"][mode]["fp16"]
        assert 40 < e2e["psnr_db_min"] <= e2e["psnr_db_mean"] < 140


def test_latency_on_the_cpu(tmp_path, capsys):
    out = tmp_path / "l.json"
    assert gpu_latency.main(["--device", "cpu", "--config", "tiny-mraa", "--config", "tiny-jam", "--iters", "1",
                             "--rounds", "2", "--warmup", "0", "--half-dtype", "float32", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert set(rows) == {"tiny-mraa", "tiny-jam"} and not result["cuda_graphs"]
    assert "bg_motion eager" in rows["tiny-jam"] and "bg_motion eager" not in rows["tiny-mraa"]
    for name in ("tiny-mraa", "tiny-jam"):
        frame = rows[name]["per frame eager"]
        assert frame["n"] == 2 and frame["p50_ms"] > 0
        assert not any(r.endswith(" graph") for r in rows[name])  # CUDA graphs: CUDA only
    assert "| per frame eager |" in capsys.readouterr().out


@no_cuda
@pytest.mark.parametrize("script", [gpu_fp16_numerics, gpu_latency])
def test_cuda_requested_without_cuda_skips(script, tmp_path, capsys):
    out = tmp_path / "s.json"
    assert script.main(["--device", "cuda", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["status"] == "skipped"
    assert "skipped: CUDA requested" in capsys.readouterr().out


@no_cuda
@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None, reason="needs bash, timeout")
def test_gpu_check_script_orchestration(tmp_path):
    fake = tmp_path / "pipeline.py"
    fake.write_text("import json, sys\nout = sys.argv[sys.argv.index('--out') + 1]\n"
                    "json.dump({'status': 'ran', 'verdict': 'PASS', 'argv': sys.argv[1:]}, "
                    "open(out + '/gpu_check_pipeline.json', 'w'))\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the script sets it itself
    env.update(PYTHON=sys.executable, GPU_CHECK_PIPELINE=str(fake))
    out = tmp_path / "out"
    done = subprocess.run(["bash", str(BENCH / "gpu_check.sh"), "--out", str(out)], env=env, capture_output=True,
                          text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((out / "gpu_check.json").read_text())
    parts = summary["parts"]
    assert parts["pipeline"]["status"] == "ok" and parts["pipeline"]["verdict"] == "PASS"
    assert summary["verdict"] == "PASS"
    assert json.loads((out / "gpu_check_pipeline.json").read_text())["argv"] == ["--out", str(out)]
    if importlib.util.find_spec("tensorrt") is None:  # the engine part says why it did not run
        assert "TensorRT not installed: engine part skipped" in done.stdout
        assert parts["engines"]["verdict"] == "SKIPPED" and "import tensorrt failed" in parts["engines"]["reason"]
        assert summary["ran"] == ["pipeline"] and summary["skipped"] == ["engines", "fp16_numerics", "latency"]
        assert "ran: pipeline; skipped: engines, fp16_numerics, latency" in done.stdout
    assert parts["fp16_numerics"]["status"] == "skipped" and parts["latency"]["status"] == "skipped"
    assert parts["fp16_numerics"]["verdict"] == "SKIPPED"
    assert "torch" in (out / "env.txt").read_text()

    fake.write_text("raise SystemExit('pipeline broke')\n")
    env["GPU_CHECK_PIPELINE"] = str(tmp_path / "missing.py")
    only = ["--parts", "pipeline"]
    done = subprocess.run(["bash", str(BENCH / "gpu_check.sh"), "--out", str(out), *only], env=env,
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0 and "not available" in done.stdout
    parts = json.loads((out / "gpu_check.json").read_text())["parts"]
    assert parts["pipeline"]["status"] == "not available" and parts["pipeline"]["verdict"] == "NOT AVAILABLE"
    env["GPU_CHECK_PIPELINE"] = str(fake)
    done = subprocess.run(["bash", str(BENCH / "gpu_check.sh"), "--out", str(out), *only], env=env,
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 1
    parts = json.loads((out / "gpu_check.json").read_text())["parts"]
    assert parts["pipeline"]["status"] == "failed" and set(parts) == {"pipeline"}
    assert parts["pipeline"]["verdict"] == "FAIL"
    bad = subprocess.run(["bash", str(BENCH / "gpu_check.sh"), "--parts", "pipline"], env=env, capture_output=True,
                         text=True, timeout=60, cwd=tmp_path)
    assert bad.returncode == 2 and "unknown part 'pipline'" in bad.stderr

def test_engine_part_skips_in_one_line_where_tensorrt_does_not_import(tmp_path, capsys, monkeypatch):
    import gpu_check_engines

    monkeypatch.setitem(sys.modules, "tensorrt", None)  # `import tensorrt` raises ImportError
    assert gpu_check_engines.main(["--out", str(tmp_path)]) == 0
    assert capsys.readouterr().out == "TensorRT not installed: engine part skipped\n"
    report = json.loads((tmp_path / "gpu_check_engines.json").read_text())
    assert report["status"] == "skipped" and report["reason"].startswith("import tensorrt failed")


@pytest.fixture(scope="module")
def tiny_all(tmp_path_factory):
    """tiny-jam exported with FP32, FP16 and INT8 graphs and batch-4 graphs (what the engine part needs)."""
    from jamsdk.bundled import ASSETS
    from jamsdk.config import load_model_config
    from jamsdk.export.pipeline import export_checkpoint
    from jamsdk.model.checkpoint import save_checkpoint
    from jamsdk.model.jam import build_model

    torch.manual_seed(5)
    work = tmp_path_factory.mktemp("tiny-all")
    model = build_model(load_model_config("tiny-jam")).eval()
    save_checkpoint(work / "tiny.pt", model, model.cfg, meta={})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        export_checkpoint(work / "tiny.pt", work / "model", precision="all", batch_sizes=(4,), avd="off",
                          calibration=ASSETS / "example_driving.mp4", cpu_speed_gate=False, log=lambda _l: None,
                          threads=1)
    finally:
        torch.set_num_threads(threads)
    return work / "model"


def test_engine_part_logic_on_the_standins(tiny_all, tmp_path, monkeypatch):
    import gpu_check_engines

    assert gpu_check_engines.main(["--out", str(tmp_path), "--frames", "2", "--cpu-standin",
                                   "--model", str(tiny_all)], patch=monkeypatch) == 0
    r = json.loads((tmp_path / "gpu_check_engines.json").read_text())
    assert r["status"] == "ran" and r["verdict"] == "PASS" and set(r["folders"]) == {"fp16", "int8"}
    s = r["image_size"]
    for precision, folder in r["folders"].items():
        anim, sb = folder["animator"], folder["stream_batch"]
        assert folder["ok"] and folder["build"]["precision"] == precision
        assert anim["h2d_bytes_per_frame"] == anim["d2h_bytes_per_frame"] == s * s * 3 and anim["syncs_per_frame"] == 1
        assert sb["h2d_bytes_per_chunk"] == sb["d2h_bytes_per_chunk"] == 4 * s * s * 3 and sb["syncs_per_chunk"] == 1
        assert anim["scratch_bytes"] == max(anim["activation_bytes"].values())  # one scratch, the largest engine's
        # one precision per StreamBatch: an INT8 export with --batch-sizes has batched Q/DQ graphs (#32)
        assert sb["precision"] == folder["build"]["batched_precision"] == precision



@no_cuda
@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None, reason="needs bash, timeout")
def test_gpu_check_prefers_python3_and_keeps_to_its_budget(tmp_path):
    fake = tmp_path / "pipeline.py"
    fake.write_text("import json, sys\nout = sys.argv[sys.argv.index('--out') + 1]\n"
                    "json.dump({'status': 'ran', 'verdict': 'PASS'}, open(out + '/gpu_check_pipeline.json', 'w'))\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").write_text("#!/bin/sh\nexit 7\n")  # a system python without what the parts need
    (bin_dir / "python").chmod(0o755)
    (bin_dir / "python3").symlink_to(sys.executable)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHON")}
    env.update(PATH=f"{bin_dir}:{env['PATH']}", GPU_CHECK_PIPELINE=str(fake))
    out = tmp_path / "out"
    done = subprocess.run(["bash", str(BENCH / "gpu_check.sh"), "--out", str(out), "--parts", "pipeline"], env=env,
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads((out / "gpu_check.json").read_text())["parts"]["pipeline"]["verdict"] == "PASS"
    # a spent budget: parts are not started and count as failed (timeout), the summary is still written
    env["GPU_CHECK_BUDGET"] = "1"
    done = subprocess.run(["bash", str(BENCH / "gpu_check.sh"), "--out", str(out)], env=env, capture_output=True,
                          text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 1 and "budget is spent" in done.stdout
    parts = json.loads((out / "gpu_check.json").read_text())["parts"]
    assert {p["status"] for p in parts.values()} == {"timeout"} and len(parts) == 4


@no_cuda
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None, reason="needs bash, timeout")
def test_gpu_check_cpu_quick_passes(tmp_path):
    """The whole script on the CPU: the pipeline part runs the GPU run's code over the CUDA stand-in,
    including its rule that a +graph mode launches exactly one graph per frame."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GPU_CHECK_PIPELINE")}
    env["PYTHON"] = sys.executable
    out = tmp_path / "out"
    done = subprocess.run(["bash", str(BENCH / "gpu_check.sh"), "--device", "cpu", "--quick", "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=1800, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    summary = json.loads((out / "gpu_check.json").read_text())
    assert summary["verdict"] == "PASS" and {p["verdict"] for p in summary["parts"].values()} == {"PASS"}
    modes = summary["parts"]["pipeline"]["numbers"]["modes"]
    assert set(modes) == {f"{m}{g}" for m in ("relative", "standard", "avd") for g in ("", "+graph")}
    for name, m in modes.items():
        assert m["graph_launches_per_frame"] == (1 if name.endswith("+graph") else 0) and m["syncs_per_frame"] == 1
    engines = summary["parts"]["engines"]["numbers"]  # the engine part's logic on the stand-ins
    assert engines["kind"] == "cpu stand-in" and set(engines) >= {"fp16", "int8"}
    assert engines["int8"]["stream_batch"]["precision"] == engines["int8"]["build"]["batched_precision"]


def test_engine_part_judges_each_rule():
    import gpu_check_engines as gce

    s = 16
    good = {"psnr_db_uint8": 40.0, "syncs_per_frame": 1, "h2d_bytes_per_frame": s * s * 3,
            "d2h_bytes_per_frame": s * s * 3, "capture_failures": []}
    chunk = {"psnr_db_uint8": 40.0, "syncs_per_chunk": 1, "h2d_bytes_per_chunk": 4 * s * s * 3,
             "d2h_bytes_per_chunk": 4 * s * s * 3, "capture_failures": [], "precision": "fp16"}
    build = {"batched_precision": "fp16"}
    assert gce.judge("fp16", {"animator": good, "stream_batch": chunk, "build": build}, s) == []
    assert gce.judge("int8", {"animator": {**good, "psnr_db_uint8": 29.0}, "stream_batch": chunk, "build": build},
                     s) == []  # INT8's floor is lower
    bad = gce.judge("fp16", {"animator": {**good, "psnr_db_uint8": 34.9, "syncs_per_frame": 2,
                                          "d2h_bytes_per_frame": s * s * 3 + 4097},
                             "stream_batch": {**chunk, "precision": "int8", "capture_failures": ["x"]},
                             "build": build}, s)
    assert len(bad) == 5 and any("PSNR 34.9 dB < 35.0" in b for b in bad) and any("2 syncs per frame" in b for b in bad)
    assert any("d2h_bytes_per_frame" in b for b in bad) and any("capture failed: x" in b for b in bad)
    assert any("StreamBatch runs int8, the batched engines are fp16" in b for b in bad)
