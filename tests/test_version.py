"""One version: jamsdk/_version.py, read by pyproject.toml (the wheel's metadata) and shown by
``jamsdk --version``, ``info``, ``doctor`` and every manifest the exporter writes."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from jamsdk._version import __version__, describe
from jamsdk.cli import main

REPO = Path(__file__).resolve().parents[1]


def test_pyproject_reads_the_version_from_the_module():
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "jamsdk._version.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)


def test_installed_metadata_is_the_module_s():
    from importlib import metadata

    # The clone's editable install was made from this tree: a mismatch means a stale install.
    assert metadata.version("jamsdk") == __version__, 'reinstall: pip install -e ".[dev]" -c constraints.txt'


def test_version_info_and_doctor_show_it(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out == f"jamsdk {__version__}\n"
    assert main(["info"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == describe()
    main(["doctor"])
    assert capsys.readouterr().out.splitlines()[0] == describe()
    assert describe().startswith(f"jamsdk {__version__} (clone at ")  # the tests run from the clone


def test_a_new_manifest_records_it():
    from jamsdk.config import load_model_config
    from jamsdk.manifest_write import new_manifest

    manifest = new_manifest(load_model_config("tiny-jam"), 64, 17, {}, ["fp32"])
    assert manifest["jamsdk_version"] == __version__


def test_python_dash_m_jamsdk(monkeypatch, capsys):
    # python -m jamsdk runs the same entry point (in-process here; the pipe tests run it as a process).
    import runpy

    monkeypatch.setattr("sys.argv", ["jamsdk", "--version"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("jamsdk", run_name="__main__")
    assert exit_info.value.code == 0 and capsys.readouterr().out == f"jamsdk {__version__}\n"
