"""``jamsdk doctor`` here (no GPU, no driver) and with stand-ins for cuda-python, the driver and
TensorRT: a GPU that answers, a binding newer than the driver, a Jetson, engines built elsewhere.

The stand-ins replace only what this machine lacks (``cuda.bindings.runtime`` in sys.modules, the
driver's CUDA version, ``tensorrt``); every check, the verdict and the exit status are the real
code. The TensorRT stand-in fails the test if anything creates a runtime: doctor only imports
TensorRT (deserialising without a usable CUDA is the segfault path it exists to avoid).
"""

import enum
import importlib.util
import json
import os
import re
import shutil
import sys
import types
from pathlib import Path

import pytest

from jamsdk._lazy import install_command
from jamsdk.cli import main
from jamsdk.bundled import DEMO_MODEL_DIR as DEMO_MODEL
from jamsdk.model_files import sha256_file
from jamsdk.runtime import cudaenv, doctor, sysinfo
from jamsdk.runtime.cudaenv import FAIL, OK, SKIP, WARN

REPO = Path(__file__).resolve().parents[2]


class CudaError(enum.IntEnum):
    cudaSuccess = 0
    cudaErrorInsufficientDriver = 35
    cudaErrorNoDevice = 100


def install_fake_cuda(monkeypatch, version="12.9.4", driver=12080, err=CudaError.cudaSuccess,
                      name=b"NVIDIA H200\x00\x00", cc=(9, 0), integrated=0):
    """cuda-python ``version`` (``cuda.bindings.runtime``) on a driver for CUDA ``driver``."""
    rt = types.ModuleType("cuda.bindings.runtime")
    rt.cudaGetDeviceCount = lambda: (err, 1 if err == 0 else None)
    rt.cudaGetDevice = lambda: (CudaError.cudaSuccess, 0)
    props = types.SimpleNamespace(name=name, major=cc[0], minor=cc[1], totalGlobalMem=141 * 2**30,
                                  integrated=integrated)
    rt.cudaGetDeviceProperties = lambda dev: (CudaError.cudaSuccess, props)
    bindings = types.ModuleType("cuda.bindings")
    bindings.__version__ = version
    bindings.runtime = rt
    top = types.ModuleType("cuda")
    top.bindings = bindings
    for mod_name, mod in (("cuda", top), ("cuda.bindings", bindings), ("cuda.bindings.runtime", rt)):
        monkeypatch.setitem(sys.modules, mod_name, mod)
    monkeypatch.setattr(cudaenv, "driver_cuda_version", lambda: (driver, "") if driver else (None, "none found"))
    monkeypatch.setattr(sysinfo, "nvidia_driver", lambda run=None: "570.86.10" if driver else None)
    return rt


def install_fake_tensorrt(monkeypatch, version="10.3.0.30"):
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version

    def forbidden(*args, **kwargs):
        pytest.fail("doctor must not create TensorRT objects")

    trt.Runtime = trt.Builder = trt.Logger = forbidden
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    return trt


def engine_dir(tmp_path, gpu_name="NVIDIA H200", cc="9.0", trt_version="10.3.0.30", current=True):
    """The bundled demo model with "engines" (its graphs' bytes) recorded for ``gpu_name``/``trt_version``.

    ``current``: as today's ``jamsdk build`` writes them (helper engines, ``tf32: false``); else as
    builds before the device-resident path did (neither).
    """
    out = tmp_path / "model"
    shutil.copytree(DEMO_MODEL, out)
    data = json.loads((out / "manifest.json").read_text())

    def refs(names):
        for name in names:
            shutil.copy(out / f"{name}.onnx", out / f"{name}.engine")
        return {n: {"file": f"{n}.engine", "sha256": sha256_file(out / f"{n}.engine")} for n in names}

    data["engines"] = {"tensorrt_version": trt_version, "gpu_name": gpu_name, "compute_capability": cc,
                       "precision": "fp16", "stages": refs(data["stages"])}
    if current:
        data["engines"].update(tf32=False, helpers=refs(data["helpers"]))
    (out / "manifest.json").write_text(json.dumps(data))
    return out


def by_name(report):
    return {r.name: r for r in report.results}


# -- here: no GPU, no driver -------------------------------------------------------------------------

def test_doctor_here_without_a_gpu(capsys, tmp_path):
    assert main(["doctor", "--json", str(tmp_path / "r.json")]) == 0  # ONNX Runtime can run
    out = capsys.readouterr().out
    assert "onnxruntime can run models here" in out and "✅" in out
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["ok"] is True and data["chosen"] == "onnxruntime" and data["backend"] == "auto"
    names = [r["name"] for r in data["results"]]
    for name in ("Python", "numpy", "OpenCV", "onnxruntime", "NVIDIA driver", "cuda-python", "pycuda", "GPU",
                 "TensorRT", "Jetson"):
        assert name in names
    assert main(["doctor", "--backend", "tensorrt"]) == 1  # no GPU: TensorRT cannot run
    out = capsys.readouterr().out
    assert "❌" in out and "tensorrt cannot run models here" in out


def test_doctor_checks_a_model_folder(capsys, tmp_path):
    assert main(["doctor", "--model", "demo", "--backend", "onnxruntime"]) == 0
    out = capsys.readouterr().out
    assert "jam-demo-128" in out and "engines: none built yet" in out
    # No GPU here: build cannot run either, so no build command is suggested.
    assert "TensorRT cannot run on this machine (no usable GPU)" in out and "jamsdk build" not in out
    broken = tmp_path / "broken"
    shutil.copytree(DEMO_MODEL, broken)
    (broken / "generator.onnx").write_bytes(b"not the exported graph")
    assert main(["doctor", "--model", str(broken)]) == 1
    out = capsys.readouterr().out
    assert "❌ manifest:" in out and "generator" in out and "cannot run this model" in out


def test_positional_model_suggests_the_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["doctor", "some/model"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "'some/model'" in err and "--model DIR" in err and err.count("\n") == 1


def test_missing_model_folder_is_a_failed_check(capsys, tmp_path):
    assert main(["doctor", "--model", str(tmp_path / "nope")]) == 1
    out = capsys.readouterr().out
    assert "❌ manifest:" in out and "nope" in out


def test_ascii_report_where_the_terminal_cannot_print_symbols():
    text = doctor.format_report(doctor.run_checks())
    ascii_text = doctor.format_report(doctor.run_checks(), ascii_only=True)
    assert "✅" in text and "[ok]" in ascii_text
    ascii_text.encode("ascii")


# -- binding vs driver -------------------------------------------------------------------------------

def test_binding_verdicts():
    desktop_fix = 'pip install "cuda-python>=12.6,<13"'
    jetson_fix = 'pip install "cuda-python>=12.6,<12.7"'
    status, message, fix = cudaenv.binding_verdict("13.0.1", 12060, jetson=False, machine="x86_64")
    assert status == FAIL and "CUDA 13.0" in message and "CUDA 12.6" in message and "580" in message
    assert fix == desktop_fix
    assert cudaenv.binding_verdict("13.0.1", 12060, jetson=True)[2] == jetson_fix
    assert cudaenv.binding_verdict("12.9.4", 12060, jetson=False)[0] == OK  # minor version compatibility
    status, message, fix = cudaenv.binding_verdict("12.9.4", 12060, jetson=True)
    assert status == WARN and "Jetson" in message and fix == jetson_fix
    assert cudaenv.binding_verdict("12.6.2", 12060, jetson=True)[0] == OK
    assert cudaenv.binding_verdict("12.9.4", 13000, jetson=False)[0] == OK  # older binding, newer driver
    assert cudaenv.binding_verdict("12.9.4", 12080, jetson=False, probe_code=35)[0] == FAIL
    assert cudaenv.binding_verdict("11.8.7", 12080, jetson=False)[0] == WARN
    assert cudaenv.binding_verdict("12.9.4", None, jetson=False)[0] == SKIP
    assert cudaenv.binding_verdict(None, 12060, jetson=False)[0] == SKIP
    assert cudaenv.cuda_version_text(12060) == "12.6" and cudaenv.cuda_version_text(13000) == "13.0"


def test_fix_commands_match_the_tensorrt_extra():
    tomllib = pytest.importorskip("tomllib")
    from packaging.requirements import Requirement

    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["tensorrt"]
    for machine in ("x86_64", "aarch64", "AMD64"):
        pins = [str(r.specifier) for r in map(Requirement, extra)
                if r.name == "cuda-python" and (r.marker is None or r.marker.evaluate({"platform_machine": machine}))]
        assert len(pins) == 1, (machine, pins)
        want = Requirement(f"cuda-python{cudaenv.pin_for(machine)}").specifier
        assert pins[0] == str(want)
        assert not want.contains("13.0.0") and want.contains("12.6.2")  # never a CUDA 13 binding
    assert not Requirement(f"cuda-python{cudaenv.pin_for('aarch64')}").specifier.contains("12.8.0")


def test_driver_probe_without_libcuda():
    def loader(name):
        raise OSError(f"{name}: cannot open shared object file")

    version, why = cudaenv.driver_cuda_version(loader)
    assert version is None and "does not load" in why


# -- stand-ins: a GPU that answers, a driver that is too old, a Jetson, engines --------------------

def test_gpu_present_and_engines_that_fit(monkeypatch, capsys, tmp_path):
    install_fake_cuda(monkeypatch)
    install_fake_tensorrt(monkeypatch)
    model = engine_dir(tmp_path)
    report = doctor.run_checks(model)
    r = by_name(report)
    assert r["GPU"].status == OK and "NVIDIA H200, compute capability 9.0, 144384 MiB" in r["GPU"].message
    assert r["cuda-python"].status == OK and r["TensorRT"].status == OK and r["engines"].status == OK
    assert r["helpers"].status == OK and "helper engines" not in r and "TF32" not in r
    assert report.chosen == "tensorrt" and report.ok
    assert main(["doctor", "--model", str(model), "--backend", "tensorrt"]) == 0
    assert "tensorrt can run this model here" in capsys.readouterr().out


def test_build_is_suggested_where_it_can_run_with_a_command_that_works(monkeypatch, tmp_path):
    install_fake_cuda(monkeypatch)
    install_fake_tensorrt(monkeypatch)
    engines = by_name(doctor.run_checks(str(DEMO_MODEL)))["engines"]
    # The bundled folder belongs to the installed package (build refuses to write into it): a copy.
    assert engines.fix == "build them on this machine: jamsdk build --model demo --out demo-engines (then run it " \
                          "with --model demo-engines)"
    own = tmp_path / "own"
    shutil.copytree(DEMO_MODEL, own)
    assert by_name(doctor.run_checks(str(own)))["engines"].fix == f"build them on this machine: jamsdk build --model {own}"


def test_tensorrt_older_than_8_6_is_refused_in_one_line(monkeypatch, capsys, tmp_path):
    install_fake_cuda(monkeypatch)
    install_fake_tensorrt(monkeypatch, version="8.5.2.2")  # JetPack 5.1.x's apt TensorRT
    model = engine_dir(tmp_path, trt_version="8.5.2.2")
    report = doctor.run_checks(model, backend="tensorrt")
    r = by_name(report)
    assert r["TensorRT"].status == FAIL and not report.ok
    assert r["TensorRT"].message == ("TensorRT 8.5.2.2 is older than 8.6, the oldest jamsdk runs on; JetPack 6.1 or "
                                     "later ships TensorRT 10.3; elsewhere " + install_command("tensorrt")
                                     + " (TensorRT 10.3 or newer)")
    assert main(["doctor", "--model", str(model), "--backend", "tensorrt"]) == 1
    assert "❌ TensorRT 8.5.2.2 is older than 8.6" in capsys.readouterr().out
    assert main(["doctor", "--model", str(model)]) == 0  # auto: ONNX Runtime runs the graphs


@pytest.mark.parametrize("version,strong", [("8.6.1.6", False), ("10.0.1.6", True)])
def test_tensorrt_8_6_and_10_0_are_supported(monkeypatch, tmp_path, version, strong):
    install_fake_cuda(monkeypatch)
    trt = install_fake_tensorrt(monkeypatch, version=version)
    if strong:
        trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(EXPLICIT_BATCH=0, STRONGLY_TYPED=1)
    report = doctor.run_checks(engine_dir(tmp_path, trt_version=version), backend="tensorrt")
    r = by_name(report)
    assert r["TensorRT"].status == OK and report.ok and report.chosen == "tensorrt"
    assert ("weakly typed and no int8" in r["TensorRT"].message) is not strong


def test_binding_newer_than_the_driver(monkeypatch, capsys):
    # cuda-python 13 on a CUDA 12.6 driver: every call returns cudaErrorInsufficientDriver.
    install_fake_cuda(monkeypatch, version="13.0.1", driver=12060, err=CudaError.cudaErrorInsufficientDriver)
    install_fake_tensorrt(monkeypatch)
    monkeypatch.setattr(cudaenv.platform, "machine", lambda: "x86_64")
    report = doctor.run_checks(backend="tensorrt")
    r = by_name(report)
    assert r["cuda-python"].status == FAIL and r["cuda-python"].fix == 'pip install "cuda-python>=12.6,<13"'
    assert "newer than the driver" in r["cuda-python"].message
    assert r["GPU"].status == FAIL and "cudaErrorInsufficientDriver" in r["GPU"].message
    assert r["GPU"].fix == r["cuda-python"].fix
    assert "not imported" in r["TensorRT"].message  # no GPU answered: TensorRT left alone
    assert not report.ok
    assert main(["doctor", "--backend", "tensorrt"]) == 1
    out = capsys.readouterr().out
    assert '❌ cuda-python 13.0.1 (CUDA 13.0) is newer than the driver' in out
    assert 'fix: pip install "cuda-python>=12.6,<13"' in out
    assert main(["doctor"]) == 0  # auto: ONNX Runtime still runs


def test_engines_built_for_another_gpu(monkeypatch, capsys, tmp_path):
    install_fake_cuda(monkeypatch, name=b"NVIDIA GeForce RTX 4090", cc=(8, 9))
    install_fake_tensorrt(monkeypatch, version="10.8.0.43")
    model = engine_dir(tmp_path)  # built with TensorRT 10.3 on an H200
    r = by_name(doctor.run_checks(model, backend="tensorrt"))
    assert r["engines"].status == FAIL and "rebuild" in r["engines"].fix and "jamsdk build --model" in r["engines"].fix
    assert re.search(r"different TensorRT version, compute capability and GPU model", r["engines"].message)
    assert main(["doctor", "--model", str(model), "--backend", "tensorrt"]) == 1
    assert main(["doctor", "--model", str(model)]) == 0  # auto falls back to ONNX Runtime on the graphs
    assert "TensorRT: no engines built for this TensorRT and GPU" in capsys.readouterr().out


def test_jetson_with_a_binding_newer_than_jetpack(monkeypatch, tmp_path):
    install_fake_cuda(monkeypatch, version="12.9.4", driver=12060, name=b"Orin", cc=(8, 7), integrated=1)
    install_fake_tensorrt(monkeypatch)
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/nv_tegra_release").write_text("# R36 (release), REVISION: 4.0, GCID: 1, BOARD: generic\n")
    (tmp_path / "proc/device-tree").mkdir(parents=True)
    (tmp_path / "proc/device-tree/model").write_bytes(b"NVIDIA Jetson Orin Nano Developer Kit\x00")

    def run(argv):
        return {"dpkg-query": (0, "6.1+b123"), "nvpmodel": (0, "NV Power Mode: 7W\n1\n"),
                "jetson_clocks": (1, "Error: Run jetson_clocks as root")}[argv[0]]

    report = doctor.run_checks(backend="tensorrt", root=str(tmp_path), run=run)
    r = by_name(report)
    assert r["cuda-python"].status == WARN and r["cuda-python"].fix == 'pip install "cuda-python>=12.6,<12.7"'
    assert r["GPU"].status == OK and "shared with the CPU" in r["GPU"].message
    assert "Orin Nano" in r["Jetson"].message and "JetPack 6.1" in r["Jetson"].message
    # JetPack 6.1 Orin Nano: no MAXN; the highest mode is 15W (id 0)
    assert r["power mode"].status == WARN and r["power mode"].fix.startswith("sudo nvpmodel -m 0 ")
    assert r["clocks"].status == WARN and r["clocks"].fix == "sudo jetson_clocks"
    assert report.chosen == "tensorrt"  # a warning does not stop it


def test_binding_without_a_driver_blames_the_driver(monkeypatch):
    # What cuda-python really does without a driver (checked with 12.9 and 13.5): error 35, like a too-old driver.
    install_fake_cuda(monkeypatch, version="13.0.1", driver=None, err=CudaError.cudaErrorInsufficientDriver)
    r = by_name(doctor.run_checks(backend="tensorrt"))
    assert r["NVIDIA driver"].status == FAIL and r["NVIDIA driver"].fix.startswith("install the NVIDIA driver")
    assert r["cuda-python"].status == doctor.INFO and r["GPU"].message == "GPU: none usable (no NVIDIA driver)"


def test_a_check_that_raises_is_one_failed_line(monkeypatch):
    def check_onnxruntime(facts):
        raise RuntimeError("boom")

    monkeypatch.setattr(doctor, "check_onnxruntime", check_onnxruntime)
    report = doctor.run_checks(backend="onnxruntime")
    line = by_name(report)["check_onnxruntime"]
    assert line.status == FAIL and "RuntimeError: boom" in line.message and not report.ok
    assert "GPU" in by_name(report)  # the later checks still ran


def test_engines_from_before_the_device_path_are_warned_about(monkeypatch, tmp_path):
    install_fake_cuda(monkeypatch)
    install_fake_tensorrt(monkeypatch)
    model = engine_dir(tmp_path, current=False)  # no helper engines, TF32 not recorded as off
    report = doctor.run_checks(model, backend="tensorrt")
    r = by_name(report)
    assert r["helper engines"].status == WARN and "preprocess" in r["helper engines"].message
    assert r["TF32"].status == WARN and r["TF32"].fix == f"rebuild: jamsdk build --model {model}"
    assert report.chosen == "tensorrt"  # they still run


def test_doctor_openvino(capsys, monkeypatch, tmp_path):
    if importlib.util.find_spec("openvino") is None:  # not importorskip: `import openvino` starts its telemetry
        pytest.skip("openvino is not installed")
    assert main(["doctor", "--model", "demo", "--backend", "openvino", "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "openvino can run this model here" in out
    line = by_name(doctor.run_checks(backend="openvino"))["openvino"]
    assert line.status == OK and "INT8" in line.data["capabilities"] and line.data["version"]
    monkeypatch.setattr(doctor.importlib.util, "find_spec", lambda name: None if name == "openvino" else object())
    report = doctor.run_checks(backend="openvino")
    line = by_name(report)["openvino"]
    assert line.status == FAIL and line.fix == install_command("openvino") and not report.ok
    assert by_name(doctor.run_checks(backend="onnxruntime"))["openvino"].status == SKIP  # not asked for


def test_cpu_flags_from_cpuinfo():
    text = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_vnni avx512_bf16 amx_tile\n"
    assert sysinfo.cpu_flags(text) == ["avx2", "avx512f", "avx512_vnni", "avx512_bf16"]
    assert sysinfo.cpu_flags("Features\t: fp asimd asimddp\n") == ["asimddp"]
    assert sysinfo.cpu_flags("") == []


def test_doctor_reports_a_broken_numpy_instead_of_dying(tmp_path):
    """A numpy that does not import (a half-upgraded install; numpy 2 under an OpenCV built for 1) is
    what doctor is for: it must say so in its report, not die in a traceback before the first line."""
    import subprocess

    broken = tmp_path / "site" / "numpy"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text('raise ImportError("this numpy is broken on purpose")\n')
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    proc = subprocess.run([sys.executable, "-m", "jamsdk", "doctor", "--model", "demo"], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr[-2000:]
    assert "❌ numpy does not import: ImportError: this numpy is broken on purpose" in proc.stdout
    assert "pip install --force-reinstall numpy" in proc.stdout
    assert "a jamsdk bug" not in proc.stdout
    assert proc.stdout.rstrip().splitlines()[-1].startswith("❌ nothing can run this model here")
