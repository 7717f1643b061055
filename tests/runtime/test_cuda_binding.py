"""``_cuda._CudaPython`` against the real cuda-python binding, which installs and answers without a GPU.

The stand-ins (cuda_standin.py) imitate what the wrapper *calls*; this checks the wrapper against
the binding itself, for each cuda-python the ``tensorrt`` extra allows:

* the newest 12.x in this environment (the ``dev`` extra installs it on x86-64): without a driver
  every call returns an error tuple (``cudaErrorInsufficientDriver``);
* 12.6.2.post1, JetPack 6's pin, from the folder named by ``JAMSDK_TEST_CUDA_PYTHON_126`` (``.ci/run``
  installs it there with ``pip install --target``): without a driver its calls *raise* RuntimeError.

Each binding runs in its own subprocess (two cuda-python versions cannot share a process). On a
machine whose driver answers, the "no driver" expectations are skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = r'''
import json, sys
from jamsdk.errors import EngineError
from jamsdk.runtime import _cuda

api, why = _cuda._binding()
rt = api.rt
out = {"binding": api.binding, "version": None, "calls": {}}
try:
    import cuda.bindings
    out["version"] = cuda.bindings.__version__
except Exception:
    pass

def shape(fn):
    try:
        r = fn()
    except Exception as exc:
        return {"raises": type(exc).__name__, "message": str(exc)[:200]}
    if not isinstance(r, tuple):
        return {"not_a_tuple": repr(r)}
    return {"len": len(r), "err_type": type(r[0]).__name__, "err_is_int": isinstance(r[0], int),
            "err": int(r[0]), "err_name": getattr(r[0], "name", None),
            "values": [None if v is None else type(v).__name__ for v in r[1:]]}

calls = {
    "cudaGetDeviceCount": lambda: rt.cudaGetDeviceCount(),
    "cudaMalloc": lambda: rt.cudaMalloc(256),
    "cudaMallocHost": lambda: rt.cudaMallocHost(256),
    "cudaStreamCreateWithFlags": lambda: rt.cudaStreamCreateWithFlags(rt.cudaStreamNonBlocking),
    "cudaMemcpyAsync": lambda: rt.cudaMemcpyAsync(0, 0, 0, rt.cudaMemcpyKind.cudaMemcpyDeviceToDevice, 0),
    "cudaStreamBeginCapture": lambda: rt.cudaStreamBeginCapture(
        0, rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal),
    "cudaStreamEndCapture": lambda: rt.cudaStreamEndCapture(0),
    "cudaGraphInstantiate": lambda: rt.cudaGraphInstantiate(rt.cudaGraph_t(), 0),
    "cudaMemGetInfo": lambda: rt.cudaMemGetInfo(),
    "cudaGetLastError": lambda: rt.cudaGetLastError(),
}
out["calls"] = {name: shape(fn) for name, fn in calls.items()}
out["constants"] = {
    "non_blocking": [type(rt.cudaStreamNonBlocking).__name__, int(rt.cudaStreamNonBlocking)],
    "invalidated": int(rt.cudaError_t.cudaErrorStreamCaptureInvalidated),
    "thread_local": int(rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal),
}
probe = _cuda._probe()
out["probe"] = [probe[0] is not None, probe[1]]
out["driver_version"] = api.driver_version()
wrapped = {}
for name, fn in {"malloc": lambda: api.malloc(256), "stream_create": api.stream_create,
                 "end_capture": lambda: api.end_capture(0), "synchronize": lambda: api.synchronize(0),
                 "d2d": lambda: api.d2d(0, 0, 0, 0)}.items():
    try:
        fn()
        wrapped[name] = "returned"
    except EngineError as exc:
        wrapped[name] = "EngineError: " + str(exc)
    except Exception as exc:
        wrapped[name] = type(exc).__name__ + ": " + str(exc)
out["wrapped"] = wrapped
out["loaded_by_import_jamsdk"] = None
print(json.dumps(out))
'''


def _probe(extra_path: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (extra_path, str(ROOT)) if p)
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _common(r: dict) -> None:
    assert r["binding"] == "cuda.bindings.runtime"
    assert r["constants"] == {"non_blocking": ["int", 1], "invalidated": 901, "thread_local": 1}
    if r["probe"][0]:
        pytest.skip("a CUDA driver answers here: the no-driver contract does not apply")
    assert r["probe"][1]  # "no GPU" says why, never raises


def test_newest_12x_returns_error_tuples_without_a_driver():
    try:
        import cuda.bindings  # noqa: F401
    except ImportError:
        pytest.skip('cuda-python is not installed here (the dev extra installs it on x86-64: pip install -e ".[dev]")')
    r = _probe(None)
    _common(r)
    assert r["version"].startswith("12."), r["version"]  # the tensorrt extra allows 12.x only
    calls = r["calls"]
    for name in ("cudaGetDeviceCount", "cudaMalloc", "cudaMallocHost", "cudaStreamCreateWithFlags",
                 "cudaStreamEndCapture", "cudaGraphInstantiate"):
        c = calls[name]
        assert c["len"] == 2 and c["values"] == [None], (name, c)  # (err, None): _check raises on err
        assert c["err_is_int"] and c["err_type"] == "cudaError_t" and c["err"] == 35, (name, c)
        assert c["err_name"] == "cudaErrorInsufficientDriver"
    for name in ("cudaMemcpyAsync", "cudaStreamBeginCapture", "cudaGetLastError"):
        assert calls[name]["len"] == 1 and calls[name]["values"] == [], (name, calls[name])  # (err,)
    assert calls["cudaMemGetInfo"]["len"] == 3  # (err, free, total)
    assert r["probe"][1] == "cudaGetDeviceCount: cudaErrorInsufficientDriver"
    # cudaDriverGetVersion answers (cudaSuccess, 0) without a driver: "no driver", not CUDA 0.0
    assert r["driver_version"] is None
    for name, what in r["wrapped"].items():
        assert what.startswith("EngineError: CUDA call ") and "cudaErrorInsufficientDriver (35)" in what, (name, what)


def test_jetpack6_pin_raises_without_a_driver():
    folder = os.environ.get("JAMSDK_TEST_CUDA_PYTHON_126")
    if not folder or not Path(folder, "cuda").is_dir():
        pytest.skip("set JAMSDK_TEST_CUDA_PYTHON_126 to a `pip install --target DIR cuda-python==12.6.2.post1` "
                    "folder (.ci/run does)")
    r = _probe(folder)
    _common(r)
    assert r["version"] is None or r["version"].startswith("12.6"), r["version"]
    for name in ("cudaGetDeviceCount", "cudaMalloc", "cudaStreamEndCapture", "cudaGraphInstantiate"):
        assert r["calls"][name].get("raises") == "RuntimeError", (name, r["calls"][name])
    assert r["probe"][1].startswith("CUDA probe failed: ")  # caught: auto falls back, doctor says why
    assert r["driver_version"] is None
    for name, what in r["wrapped"].items():  # raised by the binding itself, not turned into anything else
        assert what.startswith("RuntimeError: "), (name, what)


def test_import_jamsdk_loads_no_cuda_binding():
    code = ("import sys, jamsdk, jamsdk.runtime.animator, jamsdk.runtime.backends\n"
            "print([m for m in ('cuda.bindings', 'cuda.bindings.runtime', 'cuda.cudart') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
