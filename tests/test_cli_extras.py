"""A command whose optional package is missing says which extra to install, in one line (exit 2).

Each case runs the real ``jamsdk`` entry point in a fresh process where an import hook makes the
named packages absent, as on a runtime-only install (``pip install "jamsdk[onnxruntime]"``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from jamsdk._lazy import install_command

REPO = Path(__file__).resolve().parents[1]
DEMO_PT = REPO / "jamsdk" / "assets" / "demo.pt"
TINY = REPO / "train" / "configs" / "tiny.yaml"
TRAIN_PACKAGES = "torch,yaml,tqdm,onnx,onnxsim,onnxscript"

# The packages named on the command line are not installed: importing them fails as a missing
# module does ("No module named ..."), whether or not they are on this machine.
_ENTRY = """
import sys

class NotInstalled:
    names = set(sys.argv[1].split(","))

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
from jamsdk.cli import main
raise SystemExit(main(sys.argv[2:]))
"""


def jamsdk_without(packages: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _ENTRY, packages, *argv], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("argv, package, extra", [
    (["export", "--checkpoint", str(DEMO_PT), "--out", "{tmp}/model"], "torch", "export"),
    (["train", "--config", str(TINY), "--data", "{tmp}", "--out", "{tmp}/run"], None, "train"),
    (["eval", "--checkpoint", str(DEMO_PT), "--data", "{tmp}"], "torch", "train"),
    (["eval", "--animation", "{tmp}", "--checkpoint", str(DEMO_PT)], "torch", "train"),
    (["convert-mraa", "--checkpoint", str(DEMO_PT), "--config", str(TINY), "--out", "{tmp}/c.pt"], None, "train"),
])
def test_training_commands_without_torch_name_their_extra(argv, package, extra, tmp_path):
    proc = jamsdk_without(TRAIN_PACKAGES, *[a.format(tmp=tmp_path) for a in argv])
    err = proc.stderr
    assert proc.returncode == 2, err
    assert err.startswith(f"jamsdk {argv[0]}: error: ") and err.count("\n") == 1, err
    assert install_command(extra) in err, err  # the wheel's or the clone's form (tests/test_install.py)
    if package:
        assert package in err
    assert not list(tmp_path.iterdir())  # nothing written


def test_animation_eval_of_a_folder_without_onnxruntime_names_its_extra(tmp_path):
    from jamsdk.train.synth import write_dataset

    write_dataset(tmp_path / "data", clips=2, frames=3, size=128, seed=0, pairs=1)
    proc = jamsdk_without("onnxruntime", "eval", "--animation", str(tmp_path / "data"), "--model", "demo")
    errors = [line for line in proc.stderr.splitlines() if not line.startswith("jamsdk eval: note: ")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr  # the bundled model's note, then the error
    assert errors[0] == 'jamsdk eval: error: onnxruntime is not installed (jamsdk eval needs it); install it with: ' \
                        + install_command("onnxruntime")


def test_a_missing_core_module_is_still_a_traceback():
    # numpy is not optional: its absence is a broken install, not a message about extras
    proc = jamsdk_without("numpy", "synth", "--out", "nowhere")
    assert proc.returncode == 1 and "Traceback" in proc.stderr
