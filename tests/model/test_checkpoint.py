"""jamsdk checkpoints: round trip, safe loading, typed errors, atomic writes."""

import pytest
import torch

from jamsdk.config import load_model_config
from jamsdk.errors import CheckpointError
from jamsdk.model import build_model
from jamsdk.model.checkpoint import load_model, read_checkpoint, save_checkpoint


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    cfg = load_model_config("tiny-jam")
    return cfg, build_model(cfg).eval()


def test_round_trip_with_weights_only(tiny, tmp_path):
    cfg, model = tiny
    path = tmp_path / "m.pt"
    state = {"step": 7, "optimizer": {"lr": torch.tensor(0.1)}, "rng": torch.get_rng_state()}
    save_checkpoint(path, model, cfg, train_state=state, meta={"note": "x"})
    data = torch.load(path, weights_only=True)  # the file holds no code
    assert data["format"] == "jamsdk.checkpoint" and data["train_state"]["step"] == 7
    loaded, data = load_model(path)
    assert loaded.cfg == cfg
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x, x)["prediction"], model(x, x)["prediction"])
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temporary files left


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        read_checkpoint(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="corrupt"):
        read_checkpoint(bad)


def test_truncated_file_is_rejected(tiny, tmp_path):
    cfg, model = tiny
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, cfg)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        read_checkpoint(path)


class Evil:
    def __reduce__(self):
        return (print, ("code ran",))


def test_pickled_code_is_never_executed(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "jamsdk.checkpoint", "version": 1, "payload": Evil()}, path)
    with pytest.raises(CheckpointError, match="not a plain tensor checkpoint but holds pickled Python objects"):
        read_checkpoint(path)


def test_foreign_and_newer_formats(tiny, tmp_path):
    path = tmp_path / "mraa.pth"
    torch.save({"generator": {}, "region_predictor": {}}, path)
    with pytest.raises(CheckpointError, match="convert-mraa"):
        read_checkpoint(path)
    cfg, model = tiny
    save_checkpoint(path, model, cfg)
    data = torch.load(path, weights_only=True)
    data["version"] = 99
    torch.save(data, path)
    with pytest.raises(CheckpointError, match="newer"):
        read_checkpoint(path)


def test_wrong_weights_are_named(tiny, tmp_path):
    cfg, model = tiny
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, cfg)
    data = torch.load(path, weights_only=True)
    del data["model"]["generator.final.bias"]
    data["model"]["generator.extra"] = torch.zeros(1)
    data["model"]["region_predictor.regions.weight"] = torch.zeros(1, 2, 3, 3)
    torch.save(data, path)
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    msg = str(info.value)
    assert "missing keys (1): generator.final.bias" in msg
    assert "unexpected keys (1): generator.extra" in msg
    assert "region_predictor.regions.weight: model (4, 11, 7, 7) vs file (1, 2, 3, 3)" in msg


def test_failed_write_keeps_the_old_checkpoint(tiny, tmp_path, monkeypatch):
    cfg, model = tiny
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, cfg, train_state={"step": 1})
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        save_checkpoint(path, model, cfg, train_state={"step": 2})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]
