"""Shared pytest set-up: ``@pytest.mark.gpu`` tests skip cleanly where TensorRT cannot run.

The GPU is probed with cuda-python first (never by touching TensorRT: without a GPU, deserialising
an engine segfaults instead of raising), then tensorrt must import.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os

import pytest


@contextlib.contextmanager
def _session_env(name: str, value: str):
    """``os.environ[name] = value`` for the test session (subprocesses inherit it), then as it was."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


@pytest.fixture(scope="session", autouse=True)
def _private_cache_dir(tmp_path_factory):
    """Rebuildable caches (OpenVINO's compiled models, TensorRT's timings) go to a temporary folder,
    never the user's ~/.cache."""
    with _session_env("JAMSDK_CACHE_DIR", str(tmp_path_factory.mktemp("jamsdk-cache"))):
        yield


@functools.lru_cache(maxsize=1)
def _gpu_skip_reason() -> str:
    from jamsdk.runtime import _cuda

    if _cuda.gpu_info() is None:
        return f"no usable NVIDIA GPU ({_cuda.gpu_problem()})"
    try:
        importlib.import_module("tensorrt")
    except Exception as exc:  # ImportError, or a broken install's OSError
        return f"tensorrt does not import ({exc})"
    return ""


def pytest_configure(config: pytest.Config) -> None:
    # A failed CUDA graph capture makes the device pipeline warn and run without graphs: correct
    # output, so only this filter lets a test notice that the code under test broke capture.
    config.addinivalue_line("filterwarnings", "error::jamsdk.runtime.backends.trt_pipeline.CaptureWarning")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if not gpu_items:
        return
    reason = _gpu_skip_reason()
    if reason:
        marker = pytest.mark.skip(reason=f"gpu test: {reason}")
        for item in gpu_items:
            item.add_marker(marker)


# -- shared by tests/runtime/test_batch.py, tests/export, tests/scale and tests/serve ---------------

@pytest.fixture(scope="session")
def tiny_batched(tmp_path_factory):
    """A tiny-jam folder (FP32, AVD) exported with batched graphs for 2 and 4 streams per call."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from jamsdk.config import load_model_config
    from jamsdk.export.pipeline import export_checkpoint
    from jamsdk.model.checkpoint import save_checkpoint
    from jamsdk.model.jam import build_model

    torch.manual_seed(5)
    model = build_model(load_model_config("tiny-jam")).eval()
    work = tmp_path_factory.mktemp("tiny-batched")
    save_checkpoint(work / "tiny.pt", model, model.cfg, meta={"avd_trained": True})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        export_checkpoint(work / "tiny.pt", work / "model", precision="fp32", avd="on", batch_sizes=(2, 4),
                          log=lambda _msg: None)
    finally:
        torch.set_num_threads(threads)
    return work / "model"


@pytest.fixture(scope="session")
def tiny_batched_int8(tmp_path_factory):
    """A trained-like tiny-jam folder exported with ``--precision int8`` (calibrated on 4 frames of the
    bundled example clip) and batched graphs for 2 and 4 streams per call: batched INT8 included."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from jamsdk.config import CONFIG_DIR, load_model_config
    from jamsdk.export.pipeline import export_checkpoint
    from jamsdk.export.samples import trained_like
    from jamsdk.model.checkpoint import save_checkpoint
    from jamsdk.model.jam import build_model

    torch.manual_seed(5)
    model = trained_like(build_model(load_model_config("tiny-jam")).eval())
    work = tmp_path_factory.mktemp("tiny-batched-int8")
    save_checkpoint(work / "tiny.pt", model, model.cfg)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    lines: list[str] = []
    try:
        export_checkpoint(work / "tiny.pt", work / "model", precision="int8", batch_sizes=(2, 4), threads=1,
                          calibration=CONFIG_DIR.parent / "assets" / "example_driving.mp4", calibration_frames=4,
                          log=lines.append)
    finally:
        torch.set_num_threads(threads)
    (work / "export.log").write_text("\n".join(lines) + "\n")
    return work / "model"


@pytest.fixture()
def edited_copy(tmp_path):
    """``edited_copy(folder, edit)``: a copy of model folder ``folder`` whose manifest data went through ``edit``."""
    import json
    import shutil

    def make(folder, edit, name="model"):
        copy = tmp_path / name
        shutil.copytree(folder, copy)
        data = json.loads((copy / "manifest.json").read_text())
        edit(data)
        (copy / "manifest.json").write_text(json.dumps(data))
        return copy

    return make


@pytest.fixture(scope="session", autouse=True)
def _model_cache(tmp_path_factory):
    """Models shipped to Ray nodes (jamsdk.scale.bundle) go to a folder of this test session, not the
    machine's temp folder; Ray workers, loopback nodes and CLI subprocesses inherit the variable."""
    with _session_env("JAMSDK_MODEL_CACHE", str(tmp_path_factory.mktemp("model-cache"))):
        yield


@pytest.fixture(scope="session")
def ray_local():
    """ONE local Ray for the whole test run (2 CPUs, no dashboard), shut down at the end."""
    ray = pytest.importorskip("ray")
    from jamsdk.serve import proxy_guard

    # As jamsdk serve starts a local Ray: Serve's proxy runs the penalty guard.
    with _session_env(proxy_guard.ENV, proxy_guard.IMPORT_PATH):
        ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
        yield ray
        try:
            from ray import serve

            serve.shutdown()
        finally:
            ray.shutdown()
