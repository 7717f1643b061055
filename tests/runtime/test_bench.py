"""``jamsdk bench`` (jamsdk.runtime.bench) and the machine/Jetson information it records (jamsdk.runtime.sysinfo,
jamsdk.runtime.jetson, jamsdk.runtime.tegrastats).

ONNX Runtime runs for real on the tiny model. The TensorRT path (CUDA-event GPU timing, device
memory) runs on the stand-ins of test_tensorrt_plumbing.py, extended with a fake GPU clock, and for
real in the ``gpu`` test. Jetson queries are parsed from sample outputs of the real tools.
"""

import json
import os
import subprocess
import sys
import time
import types

import cv2
import numpy as np
import pytest
from cuda_standin import GPU, VERSION, FakeCuda, install, make_engine_dir

import jamsdk

from jamsdk.cli import main
from jamsdk.errors import InputError, ManifestError
from jamsdk.runtime import jetson, sysinfo, tegrastats
from jamsdk.runtime.bench import run_bench, summarize, write_json
from jamsdk.runtime.bench_report import write_plot

PER_FRAME = ["preprocess", "region_predictor", "dense_motion", "generator", "postprocess", "host_other"]


def _bench(model_dir, **kw):
    kw = {"frames": 5, "warmup": 1, "threads": 1, "show_progress": False, "use_tegrastats": False, **kw}
    return run_bench(model_dir, **kw)


# -- ONNX Runtime, end to end --------------------------------------------------------------------

def test_cli_writes_sane_json_and_plot(tiny_jam, tmp_path, capsys):
    _, model_dir = tiny_jam
    out_json, out_png = tmp_path / "b.json", tmp_path / "b.png"
    rc = main(["bench", "--model", str(model_dir), "--backend", "onnxruntime", "--frames", "8", "--warmup", "2", "--threads", "1",
               "--input-shape", "90x120", "--json", str(out_json), "--plot", str(out_png), "--no-progress"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "END TO END" in printed and "FPS" in printed and "peak RSS" in printed
    r = json.loads(out_json.read_text())
    assert r["format"] == "jamsdk.bench" and r["model"]["name"] == "tiny-jam" and r["model"]["image_size"] == 64
    st = r["settings"]
    assert (st["backend"], st["mode"], st["frames"], st["warmup"], st["threads"]) == \
        ("onnxruntime", "relative", 8, 2, 1)
    assert st["input_shape"] == [90, 120, 3]
    parts = r["latency_ms"]["parts"]
    assert list(parts) == PER_FRAME  # bg_motion/avd are not run in relative mode without use_bg_motion
    for s in [*parts.values(), r["latency_ms"]["end_to_end"]]:
        assert s["count"] == 8
        assert 0 <= s["min"] <= s["p50"] <= s["p90"] <= s["p99"] <= s["max"]
    # Every frame: the parts add up to the end-to-end time (host_other is the remainder, never negative).
    samples = r["samples_ms"]
    e2e = np.array(samples["end_to_end"])
    total = np.sum([samples[k] for k in PER_FRAME], axis=0)
    np.testing.assert_allclose(total, e2e, atol=1e-3)
    assert (np.array(samples["host_other"]) >= 0).all()
    assert min(parts[k]["p50"] for k in ("region_predictor", "dense_motion", "generator")) > 0
    assert r["fps"]["mean"] == pytest.approx(1e3 / r["latency_ms"]["end_to_end"]["mean"])
    assert r["source_ms"] > 0 and r["load_s"] > 0
    mem = r["memory"]
    assert mem["host_peak_rss_mb"] >= mem["host_rss_mb"]["end"] > 10
    assert mem["device"] is None and r["gpu_ms"] is None  # ONNX Runtime on the CPU
    import onnxruntime

    m = r["machine"]
    assert m["cpu"] and m["logical_cpus"] >= 1 and m["onnxruntime"] == onnxruntime.__version__
    img = cv2.imread(str(out_png))
    assert img is not None and img.shape[1] == 1280 and img.shape[0] > 300
    assert img.std() > 10  # drawn, not blank
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.json", "b.png"]  # no temporaries left


def test_avd_mode_times_the_avd_stage(tiny_jam):
    r = _bench(tiny_jam[1], mode="avd", frames=3, warmup=0)
    assert "avd" in r["latency_ms"]["parts"] and r["latency_ms"]["parts"]["avd"]["count"] == 3


def test_bad_model_dir_and_arguments(tiny_jam, tmp_path, capsys):
    with pytest.raises(ManifestError, match="does not exist"):
        run_bench(tmp_path / "nope", show_progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no manifest.json"):
        run_bench(tmp_path / "empty", show_progress=False)
    with pytest.raises(InputError, match="frames: expected an integer ≥ 1, got 0"):
        run_bench(tiny_jam[1], frames=0)
    with pytest.raises(InputError, match="input_shape"):
        run_bench(tiny_jam[1], input_shape=(0, 10))
    with pytest.raises(InputError, match="backend"):
        run_bench(tiny_jam[1], backend="cuda")
    assert main(["bench", "--model", str(tmp_path / "nope"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jamsdk bench: error: model folder") and err.count("\n") == 1
    assert main(["bench", "--model", str(tiny_jam[1]), "--plot", str(tmp_path / "p.jpg")]) == 2
    with pytest.raises(SystemExit):
        main(["bench", "--model", str(tiny_jam[1]), "--input-shape", "640"])


def test_json_is_written_atomically(tmp_path):
    target = tmp_path / "r.json"
    target.write_text("previous")
    with pytest.raises(ValueError):
        write_json({"latency": float("nan")}, target)  # refused before anything replaces the old file
    assert target.read_text() == "previous" and [p.name for p in tmp_path.iterdir()] == ["r.json"]
    write_json({"a": 1}, target)
    assert json.loads(target.read_text()) == {"a": 1}


def test_summarize():
    s = summarize(np.arange(1, 101, dtype=float))
    assert (s["count"], s["min"], s["max"], s["p50"], s["mean"]) == (100, 1, 100, 50.5, 50.5)
    assert s["p90"] == pytest.approx(90.1) and s["p99"] == pytest.approx(99.01)


def test_bench_runs_without_torch(tiny_jam):
    code = ("import sys\nfrom jamsdk.cli import main\n"
            f"rc = main(['bench', '--model', {str(tiny_jam[1])!r}, '--frames', '2', '--warmup', '0', '--threads', '1', "
            "'--no-progress'])\n"
            "print('RC', rc, 'HEAVY', [m for m in ('torch', 'onnx', 'tensorrt') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "RC 0 HEAVY []" in out.stdout, out.stdout + out.stderr


# -- TensorRT path on stand-ins --------------------------------------------------------------------

COMPUTE_MS, H2D_MS, D2H_MS = 0.01, 0.001, 0.0005  # per engine run, per H2D copy, per D2H copy
COST = {"enqueues": COMPUTE_MS, "h2d_bytes": H2D_MS, "d2h_bytes": D2H_MS}


class ClockedCuda(FakeCuda):
    """FakeCuda with a GPU clock that copies and engine runs advance when they execute, and events."""

    TOTAL = 8 << 30

    def __init__(self):
        super().__init__()
        self.clock = 0.0
        self.rt = self._runtime_api()

    def enqueue(self, stream, op, nbytes=0, kind="", scratch=None):
        if self.capturing(stream) is not None:  # timed when a launch of the graph runs
            return super().enqueue(stream, op, nbytes, kind, scratch)

        def timed():
            op()
            self.clock += COST.get(kind, 0.0)
        super().enqueue(stream, timed, nbytes, kind, scratch)

    def _runtime_api(self):
        cuda = self
        live = set()

        def create():
            event = types.SimpleNamespace(t=None)
            live.add(id(event))
            return 0, event

        def record(event, stream):
            assert not cuda.captures, "an event recorded inside a CUDA-graph capture"
            cuda.enqueue(stream, lambda: setattr(event, "t", cuda.clock), 0, "events")
            return (0,)

        def elapsed(a, b):
            assert a.t is not None and b.t is not None, "elapsed time of an event that has not happened"
            return 0, b.t - a.t

        def destroy(event):
            live.discard(id(event))
            return (0,)

        def mem_get_info():
            return 0, cuda.TOTAL - cuda.device_bytes, cuda.TOTAL

        self.live_events = live
        return types.SimpleNamespace(cudaEventCreate=create, cudaEventRecord=record, cudaEventElapsedTime=elapsed,
                                     cudaEventDestroy=destroy, cudaMemGetInfo=mem_get_info)


@pytest.fixture()
def clocked_gpu(monkeypatch):
    return install(monkeypatch, ClockedCuda())


@pytest.fixture()
def engine_dir(tiny_jam, tmp_path):
    """The tiny model with its ONNX graphs as FP16 "engines" (the fake TensorRT runs them)."""
    return make_engine_dir(tiny_jam[1], tmp_path / "model", precision="fp16")


@pytest.mark.parametrize("cuda_graph", [False, True])
def test_tensorrt_gpu_time_and_device_memory(clocked_gpu, engine_dir, tmp_path, cuda_graph):
    r = _bench(engine_dir, backend="auto", frames=4, cuda_graph=cuda_graph)
    assert r["settings"]["backend"] == "tensorrt" and r["settings"]["precision"] == "fp16"
    gpu = r["gpu_ms"]
    # a steady frame: preprocess, region_predictor, relative, dense_motion, generator, postprocess on
    # the device; one H2D (the uint8 crop) charged to the first, one D2H (the result) to the last
    per_frame = ["preprocess", "region_predictor", "relative", "dense_motion", "generator", "postprocess"]
    assert gpu["compute"]["p50"] == pytest.approx(len(per_frame) * COMPUTE_MS)
    assert gpu["transfers"]["p50"] == pytest.approx(H2D_MS + D2H_MS)
    if cuda_graph:  # one graph: its whole time is one interval, charged to the first stage
        assert gpu["stages"]["preprocess"]["compute"]["p50"] == pytest.approx(len(per_frame) * COMPUTE_MS)
    else:
        assert set(gpu["stages"]) == set(per_frame)  # generator_encoder runs per source, not per frame
        for name in per_frame:
            assert gpu["stages"][name]["compute"]["p50"] == pytest.approx(COMPUTE_MS)
    assert gpu["stages"]["preprocess"]["h2d"]["max"] == pytest.approx(H2D_MS)
    samples = r["samples_ms"]
    np.testing.assert_allclose(np.array(samples["host_minus_gpu"]),
                               np.array(samples["end_to_end"]) - np.array(samples["gpu_compute"])
                               - np.array(samples["gpu_transfers"]), atol=1e-4)
    # Device memory: what an Animator on this folder allocates (engines, a buffer per slot, one scratch)
    with jamsdk.Animator(engine_dir, backend="tensorrt"):
        nbytes = clocked_gpu.device_bytes
    dev = r["memory"]["device"]
    assert dev["total_mb"] == ClockedCuda.TOTAL / 2**20 and dev["used_before_load_mb"] == 0
    assert dev["model_mb"] == pytest.approx(nbytes / 2**20)
    assert r["machine"]["gpu"]["name"] == GPU.name and r["machine"]["tensorrt"] == VERSION
    assert clocked_gpu.live_events == set() and clocked_gpu.mem == {}  # events and buffers freed on close
    assert (clocked_gpu.launches > 0) == cuda_graph  # replays were timed too (recording inside a capture asserts)
    write_plot(r, tmp_path / "trt.png")
    assert cv2.imread(str(tmp_path / "trt.png")) is not None


def test_gpu_timing_off_without_cuda_python(fake_gpu_no_rt, engine_dir):
    r = _bench(engine_dir, backend="tensorrt", frames=2)
    assert "cuda-python" in r["gpu_ms"]["unavailable"] and r["memory"]["device"] is None
    assert "parts" in r["latency_ms"]  # the wall-clock measurement still works


@pytest.fixture()
def fake_gpu_no_rt(monkeypatch):
    """The plain stand-ins: a CUDA binding without cuda-python's runtime module (like pycuda)."""
    return install(monkeypatch)


@pytest.mark.gpu
def test_tensorrt_on_a_real_gpu(tiny_jam, tmp_path):
    from jamsdk.runtime.onnx2engine import build_engines

    out = build_engines(tiny_jam[1], tmp_path / "engines", precision="fp16")
    r = _bench(out, backend="tensorrt", frames=20, warmup=5)
    gpu = r["gpu_ms"]
    assert "compute" in gpu, gpu
    assert 0 < gpu["compute"]["p50"] < r["latency_ms"]["end_to_end"]["p50"]
    assert gpu["transfers"]["p50"] > 0
    dev = r["memory"]["device"]
    assert dev["total_mb"] > 0 and dev["model_mb"] > 0
    assert r["machine"]["gpu"]["name"] and r["machine"]["tensorrt"]
    r = _bench(out, backend="tensorrt", frames=10, warmup=2, cuda_graph=True)
    assert r["gpu_ms"]["compute"]["p50"] > 0


# -- machine and Jetson information ----------------------------------------------------------------

ORIN_TEGRASTATS = (
    "11-24-2026 10:15:30 RAM 3012/7620MB (lfb 2x4MB) SWAP 0/3810MB (cached 0MB) "
    "CPU [12%@1510,5%@1510,3%@1510,2%@1510,off,off] EMC_FREQ 4%@2133 GR3D_FREQ 61%@[1020] NVDEC off NVJPG off "
    "VIC off OFA off APE 200 cpu@47.5C soc2@46.1C soc0@46.5C gpu@48.6C tj@48.6C soc1@46.2C "
    "VDD_IN 7820mW/7100mW VDD_CPU_GPU_CV 2633mW/2400mW VDD_SOC 1424mW/1400mW")
NANO_TEGRASTATS = (
    "RAM 2214/3956MB (lfb 102x4MB) SWAP 0/1978MB (cached 0MB) IRAM 0/252kB(lfb 252kB) "
    "CPU [7%@1479,1%@1479,0%@1479,0%@1479] EMC_FREQ 0%@1600 GR3D_FREQ 99%@921 APE 25 PLL@30C CPU@31C "
    "PMIC@100C GPU@30.5C AO@37.5C thermal@30.5C POM_5V_IN 5315/4315 POM_5V_GPU 2100/1500 POM_5V_CPU 861/761")
NVPMODEL_Q = "NVPM WARN: fan mode is not set!\nNV Power Mode: MAXN_SUPER\n2\n"
CLOCKS_ON = """SOC family:tegra234  Machine:NVIDIA Jetson Orin Nano Developer Kit
Online CPUs: 0-5
cpu0: Online=1 Governor=schedutil MinFreq=1728000 MaxFreq=1728000 CurrentFreq=1728000 IdleStates: WFI=0 cpuidle=0
cpu1: Online=1 Governor=schedutil MinFreq=1728000 MaxFreq=1728000 CurrentFreq=1728000 IdleStates: WFI=0 cpuidle=0
GPU MinFreq=1020000000 MaxFreq=1020000000 CurrentFreq=1020000000
EMC MinFreq=204000000 MaxFreq=3199000000 CurrentFreq=3199000000 FreqOverride=1
FAN Dynamic Speed control=active hwmon4_pwm=44
NV Power Mode: MAXN_SUPER
"""
CLOCKS_OFF = CLOCKS_ON.replace("MinFreq=1728000", "MinFreq=729600").replace("GPU MinFreq=1020000000",
                                                                               "GPU MinFreq=306000000")


def test_parse_tegrastats_lines():
    orin = tegrastats.parse_tegrastats(ORIN_TEGRASTATS)
    assert (orin["ram_used_mb"], orin["ram_total_mb"], orin["gpu_load_percent"], orin["gpu_mhz"]) == \
        (3012, 7620, 61, 1020)
    assert orin["power_mw"] == {"VDD_IN": 7820, "VDD_CPU_GPU_CV": 2633, "VDD_SOC": 1424}
    assert orin["cpu_load_percent"] == [12, 5, 3, 2] and orin["temperature_c"]["gpu"] == 48.6
    nano = tegrastats.parse_tegrastats(NANO_TEGRASTATS)
    assert (nano["ram_used_mb"], nano["gpu_load_percent"], nano["gpu_mhz"]) == (2214, 99, 921)
    assert nano["power_mw"] == {"POM_5V_IN": 5315, "POM_5V_GPU": 2100, "POM_5V_CPU": 861}  # RAM/SWAP/IRAM are not rails
    assert tegrastats.parse_tegrastats("tegrastats: error opening file") is None
    summary = tegrastats.summarize_tegrastats([orin, tegrastats.parse_tegrastats(ORIN_TEGRASTATS.replace("3012/", "3500/")
                                                                          .replace("GR3D_FREQ 61%", "GR3D_FREQ 81%"))])
    assert summary["samples"] == 2 and summary["ram_used_mb"]["max"] == 3500
    assert summary["gpu_load_percent"] == {"mean": 71.0, "max": 81.0}
    assert summary["power_mw"]["VDD_IN"] == {"mean": 7820.0, "max": 7820.0}
    assert tegrastats.summarize_tegrastats([]) is None


def test_parse_jetson_queries():
    assert jetson.parse_nvpmodel(NVPMODEL_Q) == {"name": "MAXN_SUPER", "id": 2}
    assert jetson.parse_nvpmodel("NV Power Mode: 15W\n") == {"name": "15W", "id": None}
    assert jetson.parse_nvpmodel("nvpmodel: permission denied") is None
    on, off = jetson.parse_jetson_clocks(CLOCKS_ON), jetson.parse_jetson_clocks(CLOCKS_OFF)
    assert on["on"] is True and on["gpu"]["MaxFreq"] == 1020000000 and on["cpus_online"] == 2
    assert off["on"] is False and off["cpus_pinned"] == 0
    assert jetson.parse_jetson_clocks("Error: Run jetson_clocks as root") is None
    assert jetson.parse_l4t_release("# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, "
                                     "EABI: aarch64, DATE: Wed Jan  8 01:49:37 UTC 2025") == "36.4.3"
    assert jetson.parse_l4t_release("# R32 (release), REVISION: 7.1, GCID: 29818004") == "32.7.1"
    assert jetson.parse_l4t_release("garbage") is None
    assert sysinfo.parse_driver_version(
        "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  560.35.03  Release Build  (dvs-builder@U16)") \
        == "560.35.03"
    assert sysinfo.parse_driver_version(
        "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar") == "550.54.15"
    assert sysinfo.cpu_model("processor\t: 0\nmodel name\t: AMD EPYC 7B13\n") == "AMD EPYC 7B13"
    assert sysinfo.cpu_model("processor : 0\nBogoMIPS : 62.50\nModel : NVIDIA Jetson Orin Nano\n") == \
        "NVIDIA Jetson Orin Nano"


def _fake_jetson(tmp_path, cpu_min, gpu_min):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/nv_tegra_release").write_text("# R36 (release), REVISION: 4.3, GCID: 1, BOARD: generic\n")
    (tmp_path / "proc/device-tree").mkdir(parents=True)
    (tmp_path / "proc/device-tree/model").write_bytes(b"NVIDIA Jetson Orin Nano Developer Kit\x00")
    for i in range(2):
        d = tmp_path / f"sys/devices/system/cpu/cpu{i}/cpufreq"
        d.mkdir(parents=True)
        (d / "scaling_min_freq").write_text(f"{cpu_min}\n")
        (d / "scaling_max_freq").write_text("1728000\n")
    g = tmp_path / "sys/class/devfreq/17000000.gpu"
    g.mkdir(parents=True)
    (g / "min_freq").write_text(f"{gpu_min}\n")
    (g / "max_freq").write_text("1020000000\n")
    (g / "cur_freq").write_text("1020000000\n")
    return tmp_path


def test_jetson_info_reads_and_never_changes(tmp_path):
    root = _fake_jetson(tmp_path, cpu_min=729600, gpu_min=306000000)
    calls = []

    def run(argv):
        calls.append(list(argv))
        return {"dpkg-query": (0, "6.2+b77"), "nvpmodel": (0, "NV Power Mode: 15W\n0\n"),
                "jetson_clocks": (1, "Error: Run jetson_clocks as root")}[argv[0]]

    info = jetson.jetson_info(root, run)
    assert (info["l4t"], info["jetpack"], info["model"]) == ("36.4.3", "6.2", "NVIDIA Jetson Orin Nano Developer Kit")
    assert info["nvpmodel"] == {"name": "15W", "id": 0}
    clocks = info["jetson_clocks"]  # not root: decided from sysfs instead
    assert clocks["on"] is False and clocks["source"].startswith("sysfs") and clocks["gpu"]["MinFreq"] == 306000000
    assert any("as root" in p for p in info["problems"])
    # queries only: nothing that sets a mode or pins clocks
    assert calls == [["dpkg-query", "-W", "-f=${Version}", "nvidia-jetpack"], ["nvpmodel", "-q"],
                     ["jetson_clocks", "--show"]]
    advice = jetson.jetson_advice(info)
    assert len(advice) == 2 and advice[0].startswith("sudo nvpmodel -m") and advice[1].startswith("sudo jetson_clocks")


def test_jetson_pinned_and_maxn_needs_no_advice(tmp_path):
    root = _fake_jetson(tmp_path, cpu_min=1728000, gpu_min=1020000000)

    def run(argv):
        return {"dpkg-query": None, "nvpmodel": (0, NVPMODEL_Q), "jetson_clocks": (0, CLOCKS_ON)}[argv[0]]

    info = jetson.jetson_info(root, run)
    assert info["jetpack"] is None and info["jetson_clocks"]["source"] == "jetson_clocks --show"
    assert info["jetson_clocks"]["on"] is True and jetson.jetson_advice(info) == []
    assert jetson.clocks_from_sysfs(root)["on"] is True
    assert jetson.jetson_info(tmp_path / "not-a-jetson", run) is None
    lines = sysinfo.describe_machine({**sysinfo.machine_info(probe_gpu=False), "jetson": info})
    assert any("MAXN_SUPER (id 2); jetson_clocks on" in line for line in lines)


@pytest.fixture()
def fake_tegrastats(tmp_path, monkeypatch):
    """A ``tegrastats`` on PATH that prints the Orin sample line every 50 ms until stopped."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "tegrastats"
    script.write_text(f"#!/bin/sh\nwhile true; do echo '{ORIN_TEGRASTATS}'; sleep 0.05; done\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    return script


def test_tegrastats_runs_alongside_and_stops(fake_tegrastats):
    stats = tegrastats.Tegrastats(interval_ms=50)
    assert stats.available
    with stats:
        proc = stats._proc
        deadline = time.monotonic() + 5
        while len(stats.lines) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert proc.poll() is not None  # stopped when the block ended
    summary = stats.summary()
    assert summary["samples"] >= 2 and summary["ram_used_mb"]["max"] == 3012 and summary["interval_ms"] == 50
    assert not tegrastats.Tegrastats(command="no-such-tegrastats-here").available


def test_bench_records_tegrastats_when_present(tiny_jam, fake_tegrastats):
    r = _bench(tiny_jam[1], frames=3, warmup=0, use_tegrastats=True)
    tegra = r["tegrastats"]
    assert tegra is not None
    if "error" not in tegra:  # a very fast run can end before the first line arrives
        assert tegra["ram_total_mb"] == 7620
