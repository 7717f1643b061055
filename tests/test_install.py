"""The installed jamsdk wins from any working directory, including the folder that holds the clone.

From the clone's parent the working directory holds a folder named ``jamsdk`` (the clone itself,
with no ``__init__.py``). Python puts the working directory first on ``sys.path`` (``python -c``,
``python -m``) and Ray puts the driver's working directory on every worker's ``sys.path``; an
editable install that resolves ``jamsdk`` after the normal path search let that folder be imported
as a namespace package instead of the real one. CI clones into a folder of any name, so each test
makes the situation itself: a temporary folder holding a link named ``jamsdk`` to the repository.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REINSTALL = 'if this checkout was installed before, reinstall it: pip install -e ".[dev]" -c constraints.txt'


@pytest.fixture()
def parent(tmp_path) -> Path:
    """A working directory like the clone's parent: it holds a folder named jamsdk (the repository)."""
    (tmp_path / "jamsdk").symlink_to(REPO, target_is_directory=True)
    return tmp_path


def _run(argv: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RAY_ADDRESS")}
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_python_api_from_the_clones_parent(parent):
    code = (
        "import warnings, numpy as np, jamsdk\n"
        "from jamsdk.bundled import DemoModelWarning\n"
        "warnings.simplefilter('ignore', DemoModelWarning)\n"
        "print(jamsdk.__file__)\n"
        "import jamsdk.runtime\n"
        "print(jamsdk.runtime.__file__)\n"
        "with jamsdk.Animator('demo', backend='onnxruntime', threads=1) as anim:\n"
        "    anim.set_source(np.zeros((64, 64, 3), np.uint8))\n"
        "    print(anim.run(np.zeros((64, 64, 3), np.uint8)).shape)\n"
    )
    proc = _run([sys.executable, "-c", code], parent)
    assert proc.returncode == 0, f"{REINSTALL}\n{proc.stderr[-2000:]}"
    package, runtime, shape = proc.stdout.split("\n")[:3]
    assert Path(package).resolve() == REPO / "jamsdk" / "__init__.py", REINSTALL
    assert Path(runtime).resolve() == REPO / "jamsdk" / "runtime" / "__init__.py"  # not the top-level runtime/
    assert shape == "(128, 128, 3)"


def test_cli_module_from_the_clones_parent(parent):
    proc = _run([sys.executable, "-m", "jamsdk", "--version"], parent)
    assert proc.returncode == 0 and proc.stdout.startswith("jamsdk "), f"{REINSTALL}\n{proc.stderr[-2000:]}"


@pytest.mark.slow
def test_batch_on_ray_from_the_clones_parent(parent):
    """Ray's workers get the driver's working directory on sys.path: the actor must still import jamsdk."""
    pytest.importorskip("ray")
    pytest.importorskip("onnxruntime")
    import numpy as np

    from jamsdk.video_write import write_video

    write_video(parent / "clip.mp4", [np.full((64, 64, 3), 40 * i, np.uint8) for i in range(2)], fps=10)
    source = REPO / "jamsdk" / "assets" / "example_source.png"
    (parent / "jobs.csv").write_text(f"source,driving,out\n{source},clip.mp4,row1.mp4\n")
    # The console script: its own sys.path is fine, so only the workers' can fail.
    script = Path(sys.executable).parent / "jamsdk"
    if not script.is_file():
        pytest.skip(f"no jamsdk console script next to {sys.executable}")
    proc = _run([str(script), "batch", "--jobs", "jobs.csv", "--out-dir", "outs",
                 "--threads", "1", "--backend", "onnxruntime", "--no-progress"], parent)
    assert proc.returncode == 0, f"{REINSTALL}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    assert "1 done" in proc.stdout and (parent / "outs" / "row1.mp4").is_file()
    # A clean run prints jamsdk's lines only (Ray's own warnings and C++ log lines are hidden).
    assert _foreign(proc.stderr, "batch", ("animating 1 row(s) with 1 actor(s) on Ray ",)) == [], proc.stderr
    assert proc.stdout.splitlines()[-1].startswith("1 rows: 1 done"), proc.stdout


@pytest.mark.slow
def test_serve_from_the_clones_parent_starts_and_stops_quietly(parent):
    pytest.importorskip("ray.serve")
    pytest.importorskip("onnxruntime")
    import signal
    import socket
    import threading
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RAY_ADDRESS")}
    script = Path(sys.executable).parent / "jamsdk"
    if not script.is_file():
        pytest.skip(f"no jamsdk console script next to {sys.executable}")
    proc = subprocess.Popen([str(script), "serve", "--port", str(port), "--threads", "1"], cwd=parent, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Reader threads own the pipes (communicate() after a readline() would lose what it buffered).
    out_lines: list[str] = []
    err_chunks: list[str] = []
    readers = [threading.Thread(target=lambda: out_lines.extend(proc.stdout), daemon=True),
               threading.Thread(target=lambda: err_chunks.append(proc.stderr.read()), daemon=True)]
    for reader in readers:
        reader.start()
    try:
        # Ready when it says so (the line comes once Serve has deployed the application).
        deadline = time.monotonic() + 300
        while not out_lines and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert out_lines and out_lines[0].startswith("serving "), (out_lines, proc.poll())
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=30) as r:
            assert json.loads(r.read())["backend"] == "onnxruntime"
        proc.send_signal(signal.SIGTERM)  # what a service manager sends; Ctrl-C takes the same path
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for reader in readers:
        reader.join(30)
    out, err = "".join(out_lines), "".join(err_chunks)
    assert proc.returncode == 0, err
    assert out.splitlines() == [f"serving {REPO / 'jamsdk' / 'assets' / 'demo_model'} on ws://127.0.0.1:{port}/stream "
                                f"with 1 replica(s); health: http://127.0.0.1:{port}/health; Ctrl-C stops",
                                "access: loopback only (this machine); no token needed", "stopped"], out
    assert _foreign(err, "serve") == [], err


def _foreign(stderr: str, command: str, own: tuple[str, ...] = ()) -> list[str]:
    """Lines of ``stderr`` that are not jamsdk's own: its notes, its progress lines and ``own``."""
    mine = (f"jamsdk {command}: note: ", "note: ", *own)
    progress = re.compile(r"^\[\d+/\d+\] row \d+: ")  # jamsdk batch's per-row lines
    return [line for line in stderr.splitlines() if line and not line.startswith(mine) and not progress.match(line)]
