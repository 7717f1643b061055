"""The runtime imports no torch, onnx, onnxruntime, openvino, tensorrt or yaml until a backend opens."""

import subprocess
import sys

# The CUDA bindings themselves, not the ``cuda`` namespace: cuda-bindings ≥ 12.9 installs a .pth file
# (``_cuda_bindings_redirector``) that imports the empty ``cuda`` namespace package at interpreter start.
HEAVY = ("torch", "onnx", "onnxruntime", "tensorrt", "openvino", "yaml", "cuda.bindings", "cuda.cudart", "pycuda")


def test_runtime_modules_import_nothing_heavy():
    code = ("import sys\n"
            "import jamsdk.runtime.animator, jamsdk.runtime.backends, jamsdk.runtime.backends.openvino\n"
            "import jamsdk.runtime.onnx2engine, jamsdk.runtime.batch, jamsdk.commands.bench, jamsdk.commands.doctor\n"
            "import jamsdk.runtime.render, jamsdk.commands.build, jamsdk.commands.animate, jamsdk.commands.demo\n"
            "import jamsdk\n"
            "jamsdk.Animator\n"
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
