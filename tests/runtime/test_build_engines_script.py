"""runtime/build_engines.sh with stand-in ``jamsdk`` and ``trtexec`` commands on PATH.

The script must time the engines it just built (in ``--out`` when given), pass the build options
through, and follow the CLI grammar (``--model``; a stray positional suggests it).
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "runtime" / "build_engines.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")

# A `jamsdk` stand-in: logs its arguments, writes one engine into the folder the build targets.
FAKE_JAMSDK = r"""#!/usr/bin/env bash
echo "$*" >> "$LOG_DIR/jamsdk.log"
shift  # build
model=""; out=""
while [ $# -gt 0 ]; do
    case "$1" in
        --model) model="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        -*) shift 2 ;;
        *) model="$1"; shift ;;
    esac
done
target="${out:-$model}"
mkdir -p "$target" && echo plan > "$target/generator.engine"
"""
FAKE_TRTEXEC = r"""#!/usr/bin/env bash
echo "$1" >> "$LOG_DIR/trtexec.log"
echo "[I] GPU Compute Time: min = 1.0 ms"
"""


@pytest.fixture()
def env(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name, text in (("jamsdk", FAKE_JAMSDK), ("trtexec", FAKE_TRTEXEC)):
        (bindir / name).write_text(text)
        (bindir / name).chmod(0o755)
    model = tmp_path / "model"
    model.mkdir()
    (model / "stale.engine").write_text("an old engine that must not be timed")
    return {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "LOG_DIR": str(tmp_path)}, model


def _run(args, env):
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60)


def test_times_the_engines_in_out(env, tmp_path):
    environ, model = env
    out = tmp_path / "engines"
    done = _run(["--model", str(model), "--out", str(out), "--workspace", "2048"], environ)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "jamsdk.log").read_text().split() == ["build", "--model", str(model), "--out", str(out),
                                                               "--workspace", "2048"]
    timed = (tmp_path / "trtexec.log").read_text().split()
    assert timed == [f"--loadEngine={out}/generator.engine"]
    assert "GPU Compute Time" in done.stdout


def test_times_the_model_folder_without_out(env, tmp_path):
    environ, model = env
    done = _run([f"--model={model}"], environ)
    assert done.returncode == 0, done.stderr
    timed = sorted((tmp_path / "trtexec.log").read_text().split())
    assert timed == [f"--loadEngine={model}/generator.engine", f"--loadEngine={model}/stale.engine"]


def test_positional_model_suggests_the_option(env, tmp_path):
    environ, model = env
    done = _run([str(model)], environ)
    assert done.returncode == 2 and f"--model {model}" in done.stderr
    assert not (tmp_path / "jamsdk.log").exists()
    assert _run([], environ).returncode == 2
