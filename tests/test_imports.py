"""`import jamsdk` stays light: no torch, onnx, onnxruntime, openvino, tensorrt or CUDA binding (checked in a fresh process)."""

import subprocess
import sys

HEAVY = ("torch", "onnx", "onnxruntime", "tensorrt", "openvino", "openvino_telemetry", "onnxsim", "onnxscript", "yaml",
         "cuda.bindings", "cuda.cudart", "pycuda")


def loaded_after(stmt: str) -> list[str]:
    code = (
        f"import sys\n{stmt}\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [m for m in out.stdout.strip().split(",") if m]


def test_import_jamsdk_is_light():
    assert loaded_after("import jamsdk") == []


def test_runtime_modules_are_light():
    assert loaded_after("import jamsdk, jamsdk.stages, jamsdk.geometry, jamsdk.errors, jamsdk.config") == []
    # the foundation floor the runtime stands on (docs/architecture.md), and the backends' modules
    # themselves: each imports its library only when a backend is opened
    assert loaded_after("import jamsdk.manifest, jamsdk.manifest_write, jamsdk.model_files, jamsdk.pixels, "
                        "jamsdk.pictures, jamsdk.video, jamsdk.video_write, jamsdk.user_cache, "
                        "jamsdk.runtime.animator, jamsdk.runtime.batch, jamsdk.runtime.onnx2engine, "
                        "jamsdk.runtime.backends.onnxruntime, jamsdk.runtime.backends.openvino, "
                        "jamsdk.runtime.backends.tensorrt") == []


def test_cli_help_is_light():
    assert loaded_after("from jamsdk.cli import build_parser; build_parser()") == []
