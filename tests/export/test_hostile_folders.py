"""Commands that replace a folder (export --out, build --out, synth --overwrite) against folders
jamsdk did not write, and the litter of killed exports: refused in one line, nothing touched."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jamsdk import _folders
from jamsdk.errors import InputError
from jamsdk.export.pipeline import export_checkpoint
from jamsdk.manifest import load_manifest
from jamsdk.manifest_write import model_folder_problem

ROOT = Path(__file__).resolve().parents[2]
QUIET = {"log": lambda _m: None, "precision": "fp32"}


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def web_app(folder: Path) -> dict[str, bytes]:
    """What the probe lost: a web-app folder whose manifest.json is a web app manifest."""
    (folder / "src").mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"name": "My app", "start_url": "/", "icons": []}))
    (folder / "index.html").write_text("<!doctype html><title>app</title>")
    (folder / "src" / "important.txt").write_text("do not lose me")
    return snapshot(folder)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture(scope="module")
def first_export(tiny_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("first") / "model"
    export_checkpoint(tiny_checkpoint, out, **QUIET)
    return out


def test_export_never_replaces_a_folder_jamsdk_did_not_write(tiny_checkpoint, tmp_path):
    app = tmp_path / "webapp"
    before = web_app(app)
    with pytest.raises(InputError, match=r"webapp is not empty and not a jamsdk model folder \(its manifest.json has "
                                         r"format None, not 'jamsdk.model'\); nothing was changed"):
        export_checkpoint(tiny_checkpoint, app, **QUIET)
    assert snapshot(app) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["webapp"]  # no staging folder left either
    # The same from the command line: one line, exit 2.
    r = subprocess.run([sys.executable, "-m", "jamsdk", "export", "--checkpoint", str(tiny_checkpoint), "--out",
                        str(app), "--precision", "fp32"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "nothing was changed" in r.stderr
    assert snapshot(app) == before


def test_a_model_folder_with_files_of_its_owner_is_not_replaced(tiny_checkpoint, first_export, tmp_path):
    out = tmp_path / "model"
    shutil.copytree(first_export, out)
    (out / "notes.txt").write_text("my notes")
    (out / "calib").mkdir()
    before = snapshot(out)
    with pytest.raises(InputError, match=r"holds files its manifest.json does not list \(calib, notes.txt\)"):
        export_checkpoint(tiny_checkpoint, out, **QUIET)
    assert snapshot(out) == before
    shutil.rmtree(out / "calib")
    (out / "notes.txt").unlink()
    # Hidden files are the owner's too (a git checkout of the folder, editor notes); one alone suffices.
    (out / ".git").mkdir()
    (out / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    before = snapshot(out)
    with pytest.raises(InputError, match=r"holds files its manifest.json does not list \(.git\)"):
        export_checkpoint(tiny_checkpoint, out, **QUIET)
    assert snapshot(out) == before and (out / ".git" / "HEAD").is_file()
    shutil.rmtree(out / ".git")
    export_checkpoint(tiny_checkpoint, out, **QUIET)  # a folder jamsdk wrote is replaced as before
    assert load_manifest(out).stages
    assert model_folder_problem(out) is None


def test_a_symlinked_or_file_target_is_refused(tiny_checkpoint, first_export, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(first_export, target_is_directory=True)
    with pytest.raises(InputError, match="is a symbolic link"):
        export_checkpoint(tiny_checkpoint, link, **QUIET)
    assert link.is_symlink() and (first_export / "manifest.json").is_file()


def test_build_out_refuses_a_foreign_folder(first_export, tmp_path):
    from jamsdk.runtime.onnx2engine import build_engines

    app = tmp_path / "webapp"
    before = web_app(app)
    with pytest.raises(InputError, match="--out .*webapp is not empty and not a jamsdk model folder"):
        build_engines(first_export, app)
    assert snapshot(app) == before


def test_synth_overwrite_refuses_a_foreign_synth_json(tmp_path):
    from jamsdk.train.synth import write_dataset

    data = tmp_path / "data"
    data.mkdir()
    (data / "synth.json").write_text(json.dumps({"generator": "someone else"}))
    (data / "photo.jpg").write_bytes(b"jpg")
    before = snapshot(data)
    with pytest.raises(InputError, match="not written by jamsdk synth"):
        write_dataset(data, clips=1, frames=1, size=16, seed=0, overwrite=True)
    assert snapshot(data) == before
    ours = tmp_path / "ours"
    write_dataset(ours, clips=2, frames=1, size=16, seed=0)
    (ours / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="also holds keep.txt"):
        write_dataset(ours, clips=2, frames=1, size=16, seed=1, overwrite=True)
    (ours / "keep.txt").unlink()
    write_dataset(ours, clips=2, frames=1, size=16, seed=1, overwrite=True)
    assert json.loads((ours / "synth.json").read_text())["seed"] == 1


def test_staging_left_by_dead_runs_is_cleaned_and_nothing_else(tiny_checkpoint, tmp_path):
    out = tmp_path / "model"
    host = socket.gethostname()
    dead, alive = dead_pid(), os.getppid()

    def staging(name: str, marker: str | None) -> Path:
        path = tmp_path / name
        path.mkdir()
        (path / "generator.onnx").write_bytes(b"x" * 1000)
        if marker is not None:
            (path / _folders.MARKER).write_text(marker + "\n")
        return path

    litter = staging(f".model.tmp-{dead}-abcd_123", host)
    kept = [staging(f".model.tmp-{dead}-nomarker", None),  # not provably ours
            staging(f".model.tmp-{alive}-alive123", host),  # a live export's
            staging(f".model.tmp-{dead}-otherhst", "another-host"),  # another machine's, on a shared disk
            staging(f".other.tmp-{dead}-abcdefgh", host),  # another target's
            staging(".model.tmp-notes", None)]  # a user's folder with a look-alike name
    export_checkpoint(tiny_checkpoint, out, **QUIET)
    assert not litter.exists()
    assert all(p.is_dir() and (p / "generator.onnx").is_file() for p in kept)
    assert load_manifest(out).stages


def test_an_interrupted_swap_is_finished(first_export, tmp_path):
    out = tmp_path / "model"
    old = tmp_path / f".model.old-{dead_pid()}"
    shutil.copytree(first_export, old)
    assert _folders.clean_stale(out, model_folder_problem) == [old]
    assert (out / "manifest.json").is_file() and not old.exists()  # killed between the renames: put back
    shutil.copytree(first_export, old)
    _folders.clean_stale(out, model_folder_problem)
    assert not old.exists() and (out / "manifest.json").is_file()  # the swap had finished: litter
    foreign = tmp_path / f".model.old-{dead_pid()}"
    web_app(foreign)
    _folders.clean_stale(out, model_folder_problem)
    assert (foreign / "src" / "important.txt").is_file()  # not provably ours: never deleted


def test_kill_9_mid_export_leaves_litter_that_the_next_export_removes(tiny_checkpoint, tmp_path):
    out = tmp_path / "model"
    code = ("import sys; from jamsdk.export.pipeline import export_checkpoint; "
            "export_checkpoint(sys.argv[1], sys.argv[2], precision='both', verify=True)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tiny_checkpoint), str(out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    staged: list[Path] = []
    while time.monotonic() < deadline and proc.poll() is None:
        staged = [p for p in tmp_path.glob(".model.tmp-*") if any(p.glob("*.onnx"))]
        if staged:
            break
        time.sleep(0.05)
    if proc.poll() is not None:
        pytest.skip("the export finished before it could be killed")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert staged and staged[0].is_dir() and not out.exists()  # what kill -9 leaves
    export_checkpoint(tiny_checkpoint, out, **QUIET)
    assert not staged[0].exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_a_manifest_entry_with_an_empty_file_name_is_a_refusal_not_a_crash(tiny_checkpoint, first_export, tmp_path):
    """Found by the mutation check: {"file": ""} raised IndexError in model_folder_problem, so
    export --out over such a folder printed a traceback."""
    import json

    out = tmp_path / "model"
    shutil.copytree(first_export, out)
    data = json.loads((out / "manifest.json").read_text())
    data["stages"]["generator"]["files"]["fp32"]["file"] = ""
    (out / "manifest.json").write_text(json.dumps(data))
    assert model_folder_problem(out) == ("holds files its manifest.json does not list (generator.onnx), which "
                                         "replacing it would delete")
    before = snapshot(out)
    r = subprocess.run([sys.executable, "-m", "jamsdk", "export", "--checkpoint", str(tiny_checkpoint), "--out",
                        str(out), "--precision", "fp32"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr[-2000:]
    assert "does not list (generator.onnx)" in r.stderr and snapshot(out) == before


def test_export_onto_a_full_disk_is_one_line_and_leaves_nothing(tiny_checkpoint, tmp_path, monkeypatch, capsys):
    """The probe's D1: `export --out` on a full disk was an OSError traceback (ENOSPC). The disk
    fills while the graphs are written (a writer that raises ENOSPC, as a full file system does)."""
    import errno

    import jamsdk.export.pipeline as pipeline
    from jamsdk.cli import main

    def full(*_args, **_kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pipeline, "save_model", full)
    work = tmp_path / "work"
    work.mkdir()
    assert main(["export", "--checkpoint", str(tiny_checkpoint), "--out", str(work / "model"),
                 "--precision", "fp32"]) == 2
    err = [ln for ln in capsys.readouterr().err.strip().splitlines() if ln.strip()]
    assert len(err) == 1 and "no space left on the device holding" in err[0] and "nothing was written" in err[0], err
    assert os.listdir(work) == []  # no staging folder, no half model
    monkeypatch.setattr(pipeline, "save_model", lambda *a, **k: (_ for _ in ()).throw(
        OSError(errno.EIO, "Input/output error")))
    with pytest.raises(OSError, match="Input/output error"):  # other OS errors are not called a full disk
        main(["export", "--checkpoint", str(tiny_checkpoint), "--out", str(work / "model"), "--precision", "fp32"])


def test_export_onto_a_really_full_file_system(tiny_checkpoint, tmp_path):
    """The same on a 300 KB tmpfs (root only): exit 2, one line, the file system left empty."""
    full = tmp_path / "full"
    full.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(full)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs needs root")
    try:
        r = subprocess.run([sys.executable, "-m", "jamsdk", "export", "--checkpoint", str(tiny_checkpoint), "--out",
                            str(full / "model"), "--precision", "fp32"], capture_output=True, text=True, timeout=600,
                           cwd=ROOT)
        lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
        assert r.returncode == 2 and len(lines) == 1 and f"no space left on the device holding {full}" in lines[0], \
            r.stderr[-2000:]
        assert os.listdir(full) == []
    finally:
        subprocess.run(["umount", str(full)], check=False)
