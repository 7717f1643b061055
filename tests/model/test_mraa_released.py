"""MRAA's released checkpoints: the table, the lookup by size then SHA-256, and convert-mraa picking the
config itself. No released file can be downloaded here and none can be made to match a real hash, so
the lookup and the command are tested with a small file registered under its own hash."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from jamsdk.cli import main
from jamsdk.model import mraa_released
from jamsdk.model.mraa_released import MRAA_CONFIGS, RELEASED, Released, identify

REFERENCE = {  # MRAA_FACTS §0: the Git LFS pointers of snap-research/articulated-animation 451f7da
    "mgif256.pth": (248_256_308, "58b796e31f763ccfbb240f959c9d92c2afe8a6e57da303e07d8fabd1f2921c68"),
    "taichi256.pth": (273_409_176, "6fd5ebb68953d6c7d02ff765986efa1c8a62d349817fe736a6069e07dc8c17af"),
    "ted384.pth": (273_409_224, "5c88fb60718a64a8fd87043b0e95781b50e500457d03bf3b4fd26cca6b70c3f7"),
    "ted-youtube384.pth": (292_943_746, "75ce78089fc2f0b0a276346bf8f14c2043895845ed869bdbe9b2656d3feec13b"),
    "vox256.pth": (291_747_542, "a8c59e0b38f96195eac6414265dcf8e4b15e0675cea2622489b735edc61b3b66"),
}


def test_the_table_is_the_five_released_files_with_shipped_configs():
    assert {r.file: (r.bytes, r.sha256) for r in RELEASED} == REFERENCE
    assert {r.name: r.size for r in RELEASED} == {"mgif256": 256, "taichi256": 256, "ted384": 384,
                                                   "ted-youtube384": 384, "vox256": 256}
    for r in RELEASED:
        assert r.config_path == MRAA_CONFIGS / f"{r.name}.yaml" and r.config_path.is_file()


def _registered(path: Path, name: str = "testnet", **kw) -> Released:
    data = path.read_bytes()
    return Released(name, len(data), hashlib.sha256(data).hexdigest(), "a test file", 64, **kw)


def test_lookup_by_size_then_hash(tmp_path, monkeypatch):
    f = tmp_path / "model.pth"
    f.write_bytes(b"weights" * 100)
    entry = _registered(f)
    assert identify(f, [entry]) == entry
    # The neighbour: the same size, one byte different, is not it.
    other = tmp_path / "other.pth"
    other.write_bytes(b"weighs" + b"t" + b"weights" * 99)
    assert other.stat().st_size == f.stat().st_size and identify(other, [entry]) is None
    # A file of no released size is never hashed (a stat decides).
    monkeypatch.setattr(mraa_released, "sha256_file", lambda p: pytest.fail("hashed a file of another size"))
    f.write_bytes(b"weights" * 101)
    assert identify(f, [entry]) is None and identify(tmp_path / "absent.pth", [entry]) is None


@pytest.fixture()
def tiny_released(tmp_path, monkeypatch):
    """A tiny MRAA checkpoint registered as a released file (its config: the tiny mgif test config)."""
    pytest.importorskip("torch")
    import torch
    from test_mraa_import import TINY, tiny_mraa_checkpoint

    src = tmp_path / "tiny.pth"
    torch.save(tiny_mraa_checkpoint(TINY["mgif"]), src)
    entry = _registered(src, "tiny-mgif", config=TINY["mgif"])
    monkeypatch.setattr(mraa_released, "RELEASED", (*RELEASED, entry))
    return src


def test_convert_picks_the_config_of_a_released_file_and_says_so(tiny_released, tmp_path, capsys):
    from jamsdk.model.checkpoint import load_model

    out = tmp_path / "tiny-jamsdk.pt"
    assert main(["convert-mraa", "--checkpoint", str(tiny_released), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"note: {tiny_released} is MRAA's released tiny-mgif (a test file; its SHA-256 matches): its shipped " \
           "config, size 64" in err
    model, data = load_model(out)
    assert data["config"]["image_size"] == 64 and data["meta"]["source_checkpoint"]["file"] == "tiny.pth"


def test_any_other_file_still_needs_its_config(tiny_released, tmp_path, capsys):
    changed = tmp_path / "changed.pth"
    raw = bytearray(tiny_released.read_bytes())
    raw[-1] ^= 1  # the same size, another hash
    changed.write_bytes(bytes(raw))
    assert main(["convert-mraa", "--checkpoint", str(changed), "--out", str(tmp_path / "o.pt")]) == 2
    err = capsys.readouterr().err
    assert "--config YAML is needed" in err and "not one of MRAA's released checkpoints" in err
    assert "vox256.pth" in err and err.count("\n") == 1 and not (tmp_path / "o.pt").exists()
