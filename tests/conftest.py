"""Shared pytest set-up: ``@pytest.mark.gpu`` tests skip cleanly where TensorRT cannot run, and the
slow tier.

The GPU is probed with cuda-python first (never by touching TensorRT: without a GPU, deserialising
an engine segfaults instead of raising), then tensorrt must import.

Two tiers: ``python -m pytest -q -m "not slow"`` (the quick tier, every jamsdk module exercised,
a few minutes on 2 cores) and ``python -m pytest -q`` (everything; CI). A test is slow when it is
marked ``@pytest.mark.slow`` in its file or named in :data:`SLOW` below: the list keeps the tier in
one place, measured, without touching test files that other work edits at the same time.
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


#: Tests in the full run only: a node id, or a prefix of one (a module, a test and all its
#: parameters). Each costs seconds to a minute on the 2-core machine (``pytest --durations=0``,
#: 2026-12-07, load 6-7): real processes (Ray, Ray Serve, torchrun, a browser, killed exports),
#: training steps, INT8 calibrations and full-size models. tests/test_tiers.py checks that every
#: entry still names a test; docs/benchmarks.md has the coverage run showing that the quick tier
#: still reaches every jamsdk module.
SLOW: tuple[str, ...] = (
    # Ray, Ray Serve and clusters: starting Ray alone is ~10 s
    "tests/scale/test_cluster.py", "tests/scale/test_offline.py", "tests/scale/test_bundle.py",
    "tests/serve/test_serve.py", "tests/serve/test_hostile_clients.py", "tests/serve/test_replicas.py",
    "tests/serve/test_startup.py::test_failed_deployment_says_why_the_replicas_did_not_start",
    "tests/serve/test_proxy_guard.py::test_without_the_guard_the_replica_refuses_a_penalised_address_itself",
    "tests/test_install.py",  # jamsdk from the clone's parent folder: fresh interpreters, Ray, Serve
    # torchrun, training, benchmark scripts at smoke scale
    "tests/train/test_distributed.py",
    "tests/train/test_trainer.py::test_loss_decreases_on_a_fixed_batch",
    "tests/train/test_trainer.py::test_sigkill_at_a_random_moment_leaves_a_loadable_checkpoint",
    "tests/train/test_trainer.py::test_resume_reproduces_the_uninterrupted_run",
    "tests/train/test_trainer.py::test_sigterm_saves_and_exits_cleanly",
    "tests/train/test_trainer.py::test_cli_train_resume_and_plot",
    "tests/train/test_animation_eval.py::test_exported_model_through_the_animator_matches_the_checkpoint",
    "tests/benchmarks/test_gpu_check.py", "tests/benchmarks/test_ablation.py", "tests/benchmarks/test_int8_bench.py",
    "tests/benchmarks/test_compare.py", "tests/benchmarks/test_cpu_backends.py",
    "tests/benchmarks/test_gpu_check_pipeline.py",
    # INT8 calibration (each module exports its own calibrated folder)
    "tests/export/test_int8_cpu.py", "tests/export/test_int8_openvino.py",
    "tests/export/test_int8.py::test_int8_folder_manifest_and_graph_structure",
    "tests/export/test_int8.py::test_int8_animator_close_to_fp32",
    "tests/export/test_int8.py::test_fallback_when_a_stage_is_too_sensitive",
    "tests/export/test_int8.py::test_gate_rejects_only_the_perturbed_stage",
    "tests/export/test_int8.py::test_qdq_check_catches_what_tensorrt_refuses",
    "tests/export/test_int8.py::test_u8s8_variant_is_flagged_for_tensorrt",
    "tests/export/test_int8.py::test_manifest_reads_int8_engines_record",
    "tests/export/test_int8.py::test_cli_bench_and_animate_int8",
    # full-size models, killed or failing exports, a live server under attack, a browser
    "tests/model/test_model.py::test_forward_shapes_and_ranges[mraa-256]",
    "tests/model/test_model.py::test_forward_shapes_and_ranges[jam-256]",
    "tests/model/test_mraa_import.py::test_full_size_",
    "tests/export/test_export_options.py::test_failed_verify_keeps_the_previous_export",
    "tests/export/test_hostile_folders.py::test_kill_9_mid_export_leaves_litter_that_the_next_export_removes",
    "tests/export/test_hostile_model_folder.py::test_refused_checkpoints_are_one_line_without_unsafe_advice",
    "tests/live/test_hostile_requests.py::test_live_process_under_attack_keeps_streaming_and_stays_quiet",
    "tests/live/test_browser.py",
    "tests/runtime/test_animator.py::test_mraa_shaped_model_without_background_stage",
    "tests/runtime/test_cli.py::test_a_clean_demo_run_prints_only_jamsdk_lines",
    "tests/runtime/test_smoothing.py::test_smoothing_reduces_output_jitter_and_resets",
    # a few seconds each, with a quick neighbour that stays: OpenVINO through StreamBatch and the CLI
    # (the bundled model on OpenVINO stays), a missing extra in a fresh interpreter after a synthetic
    # data set (the training commands' stay), half-open connections, a second folder-ownership case
    "tests/runtime/test_openvino.py::test_stream_batch_on_openvino_matches_onnxruntime",
    "tests/runtime/test_openvino.py::test_cli_animate_bench_and_errors_on_openvino",
    "tests/test_cli_extras.py::test_animation_eval_of_a_folder_without_onnxruntime_names_its_extra",
    "tests/live/test_hostile_requests.py::test_half_open_connections_are_capped_evicted_timed_out_and_quiet",
    "tests/export/test_hostile_folders.py::test_a_model_folder_with_files_of_its_owner_is_not_replaced",
)


def slow_entry(nodeid: str) -> str | None:
    """The :data:`SLOW` entry that names ``nodeid`` (a module, a test, a test's parameters, or a test
    name's prefix ending in ``_``), or None."""
    for entry in SLOW:
        follows = "::" if entry.endswith(".py") else "["
        if nodeid == entry or nodeid.startswith(entry + follows) or (entry.endswith("_") and nodeid.startswith(entry)):
            return entry
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if slow_entry(item.nodeid) is not None:
            item.add_marker(pytest.mark.slow)
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
    """ONE local Ray for the whole test run (2 CPUs, no dashboard), shut down at the end, started as
    jamsdk batch and serve start theirs (jamsdk.scale.connect.start_local: on loopback, a fresh token)."""
    ray = pytest.importorskip("ray")
    from jamsdk.scale.connect import disconnect, start_local
    from jamsdk.serve import proxy_guard

    # As jamsdk serve starts a local Ray: Serve's proxy runs the penalty guard and believes no
    # X-Forwarded-For header (no --trusted-proxy).
    with _session_env(proxy_guard.ENV, proxy_guard.IMPORT_PATH), \
            _session_env(proxy_guard.FORWARDED_ENV, proxy_guard.forwarded_setting()):
        conn = start_local(ray, num_cpus=2)
        yield ray
        try:
            from ray import serve

            serve.shutdown()
        finally:
            disconnect(conn)
