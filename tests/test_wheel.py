"""jamsdk as a package: ``python -m build`` makes an sdist and a wheel, and the wheel, installed into a
fresh virtual environment with no clone on ``sys.path``, runs ``jamsdk --version``, ``doctor``, ``demo``
and the README's Python example — so the demo model, the configs, the example media and the live page
ship inside it.

Only what the runtime needs is installed (the ``onnxruntime`` extra: numpy, OpenCV, ONNX Runtime; no
torch), from pip's cache or the package index.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from jamsdk._version import __version__

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME") and not k.startswith("PYTEST")}
    env.update(extra)
    return env


def _run(argv: list[str], cwd: Path, timeout: float = 900, **env: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, cwd=cwd, env=_clean_env(**env), capture_output=True, text=True, timeout=timeout)
    return proc


def _readme_example() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return re.search(r"^```python\n(.*?)^```", text, re.S | re.M).group(1)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(the venv's bin folder, a working folder outside the clone, the dist folder)."""
    pytest.importorskip("build")
    work = tmp_path_factory.mktemp("wheel")
    dist = work / "dist"
    built = _run([sys.executable, "-m", "build", "--outdir", str(dist), str(REPO)], work)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    wheels = list(dist.glob("jamsdk-*.whl"))
    assert len(wheels) == 1 and list(dist.glob("jamsdk-*.tar.gz")), sorted(p.name for p in dist.iterdir())
    venv = work / "venv"
    made = _run([sys.executable, "-m", "venv", str(venv)], work)
    assert made.returncode == 0, made.stderr
    bin_dir = venv / "bin"
    pip = _run([str(bin_dir / "python"), "-m", "pip", "install", "-q", "-c", str(REPO / "constraints.txt"),
                f"{wheels[0]}[onnxruntime]"], work)
    assert pip.returncode == 0, pip.stdout[-3000:] + pip.stderr[-3000:]
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    return bin_dir, elsewhere, dist


def test_the_wheel_holds_the_package_data(installed):
    _, _, dist = installed
    names = set(zipfile.ZipFile(next(dist.glob("jamsdk-*.whl"))).namelist())
    for name in ("jamsdk/assets/demo.pt", "jamsdk/assets/demo_model/manifest.json",
                 "jamsdk/assets/demo_model/generator.onnx", "jamsdk/assets/example_source.png",
                 "jamsdk/assets/example_driving.mp4", "jamsdk/configs/jam-256.yaml",
                 "jamsdk/configs/mraa/vox256.yaml", "jamsdk/export/trt103_ops.json", "jamsdk/live/page.py"):
        assert name in names, name
    assert not any(n.startswith(("tests/", "docs/", "benchmarks/", "train/")) for n in names)


def test_version_doctor_demo_and_the_readme_example_from_the_wheel(installed):
    bin_dir, elsewhere, _ = installed
    python, jamsdk = str(bin_dir / "python"), str(bin_dir / "jamsdk")
    where = _run([python, "-c", "import jamsdk, sys; print(jamsdk.__file__); print(sys.path)"], elsewhere)
    assert where.returncode == 0 and str(REPO) not in where.stdout, where.stdout + where.stderr
    assert "site-packages" in where.stdout.splitlines()[0]

    version = _run([jamsdk, "--version"], elsewhere)
    assert version.returncode == 0 and version.stdout == f"jamsdk {__version__}\n", version.stderr

    doctor = _run([jamsdk, "doctor", "--model", "demo"], elsewhere)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert doctor.stdout.splitlines()[0] == f"jamsdk {__version__} (installed package)"
    assert "onnxruntime can run this model here" in doctor.stdout

    demo = _run([jamsdk, "demo", "--no-progress"], elsewhere)
    assert demo.returncode == 0, demo.stderr
    assert demo.stdout.startswith("wrote demo.mp4: 40 frames") and (elsewhere / "demo.mp4").stat().st_size > 1000

    example = _run([python, "-c", _readme_example()], elsewhere)
    assert example.returncode == 0, example.stderr
    assert (elsewhere / "animated.mp4").stat().st_size > 1000 and "generator" in example.stdout


def test_a_missing_extra_names_the_wheel_s_install_command(installed):
    # The clone's form (pip install -e ".[X]") is tested in tests/test_lazy.py and tests/test_cli_extras.py.
    bin_dir, elsewhere, _ = installed
    proc = _run([str(bin_dir / "jamsdk"), "export", "--checkpoint", "demo.pt", "--out", "m"], elsewhere)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().endswith('install it with: pip install "jamsdk[export]"'), proc.stderr
