"""Missing-extra messages give the command that fits how jamsdk is installed (PEP 610's direct_url.json):
``pip install -e ".[X]"`` in an editable clone, ``pip install "jamsdk[X]"`` from a wheel or an index.
The real wheel is installed and asked in tests/test_wheel.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jamsdk import _lazy
from jamsdk._lazy import checkout_of, install_command


class Dist:
    """An installed distribution as importlib.metadata shows it: read_text of one of its files."""

    def __init__(self, direct_url: dict | str | None):
        self.text = direct_url if isinstance(direct_url, str) or direct_url is None else json.dumps(direct_url)

    def read_text(self, name: str) -> str | None:
        return self.text if name == "direct_url.json" else None


def editable(folder: Path) -> Dist:
    return Dist({"url": folder.as_uri(), "dir_info": {"editable": True}})


def test_an_editable_install_of_this_folder_is_a_checkout(tmp_path):
    assert checkout_of(tmp_path, [editable(tmp_path)]) == tmp_path


@pytest.mark.parametrize("dist", [
    Dist({"url": "file:///somewhere/jamsdk-0.1.0-py3-none-any.whl", "archive_info": {"hashes": {}}}),  # wheel file
    Dist(None),                                                                                    # an index
    Dist({"url": "file:///elsewhere", "dir_info": {"editable": True}}),         # another clone's install
    Dist({"url": "file:///here", "dir_info": {}}),                              # a folder, not editable
    Dist("{not json"),
])
def test_a_wheel_an_index_or_another_folder_is_not(tmp_path, dist):
    assert checkout_of(tmp_path, [dist]) is None


def test_a_clone_on_sys_path_without_an_install_is_one(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\n")
    assert checkout_of(tmp_path, []) == tmp_path
    # an egg-info in the clone first on sys.path (no direct_url.json), the real install after it
    assert checkout_of(tmp_path / "x", [Dist(None), editable(tmp_path / "x")]) == tmp_path / "x"


def test_the_command_for_each_kind_of_install(tmp_path, monkeypatch):
    monkeypatch.setattr(_lazy, "editable_checkout", lambda: None)
    assert install_command("export") == 'pip install "jamsdk[export]"'
    assert install_command("onnxruntime", "--force-reinstall") == 'pip install --force-reinstall "jamsdk[onnxruntime]"'
    monkeypatch.setattr(_lazy, "editable_checkout", lambda: tmp_path)
    monkeypatch.chdir(tmp_path)
    assert install_command("export") == 'pip install -e ".[export]"'
    monkeypatch.chdir(tmp_path.parent)  # from elsewhere: the clone's path, so it can be pasted anywhere
    assert install_command("export") == f'pip install -e "{tmp_path}[export]"'


def test_require_and_the_cli_use_it(monkeypatch):
    from jamsdk.errors import MissingDependencyError

    monkeypatch.setattr(_lazy, "editable_checkout", lambda: None)
    with pytest.raises(MissingDependencyError, match=r'install it with: pip install "jamsdk\[ray\]"$'):
        _lazy.require("a_module_nobody_has", extra="ray")
    assert _lazy.not_installed("pyvirtualcam_absent_here") == "pyvirtualcam_absent_here is not installed"


def test_this_test_run_is_an_editable_clone():
    # The suite runs from the clone (pip install -e ".[dev]"): the real lookup says so.
    _lazy.editable_checkout.cache_clear()
    assert _lazy.editable_checkout() == Path(_lazy.__file__).resolve().parents[1]
