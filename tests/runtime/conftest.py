"""Fixtures for the runtime tests: a tiny exported model folder and its PyTorch twin.

The folder is exported once per test session with ``jamsdk.export`` (a few seconds for tiny-jam
at 64×64).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")


def _seeded_model(config: str, seed: int = 0):
    """A tiny model with random but well-spread parameters (BN statistics randomised too)."""
    from jamsdk.config import load_model_config
    from jamsdk.model.jam import build_model

    torch.manual_seed(seed)
    cfg = load_model_config(config)
    model = build_model(cfg)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
        if not model.bg_motion.is_identity:  # near the identity start, but not exactly it
            model.bg_motion.fc.weight.normal_(0.0, 0.01)
        if model.avd is not None:
            # An untrained AVD network outputs near-singular affines (det ~1e-5): the region
            # transforms A_s·A_d⁻¹ then amplify float rounding ×1e4 and no two correct
            # implementations agree to 1e-4. Like a trained one, make it output region-sized
            # affines (det ~0.25) that still depend on its inputs.
            last = model.avd.decoder[-1]
            last.bias.copy_(torch.tensor([0.0, 0.0, 0.5, 0.0, 0.0, 0.5]).repeat(cfg.num_regions))
    return model.eval()


def _export(model, out_dir: Path, precision: str = "both") -> Path:
    """Export ``model`` with the project's exporter (fp32 and/or fp16 graphs, AVD included)."""
    from jamsdk.export.pipeline import export_checkpoint
    from jamsdk.model.checkpoint import save_checkpoint

    ckpt = out_dir.parent / "tiny.pt"
    save_checkpoint(ckpt, model, model.cfg, meta={"avd_trained": True})
    export_checkpoint(ckpt, out_dir, precision=precision, avd="on", log=lambda _msg: None)
    return out_dir


@pytest.fixture(scope="session")
def tiny_jam(tmp_path_factory):
    """``(model, model_dir)``: tiny-jam (bg affine, AVD) exported to ONNX (fp32 and mixed fp16)."""
    model = _seeded_model("tiny-jam")
    out = _export(model, tmp_path_factory.mktemp("tiny-jam") / "model")
    return model, out


@pytest.fixture(scope="session")
def tiny_mraa(tmp_path_factory):
    """``(model, model_dir)``: tiny-mraa (no background motion, AVD) exported in fp32."""
    model = _seeded_model("tiny-mraa", seed=3)
    out = _export(model, tmp_path_factory.mktemp("tiny-mraa") / "model", precision="fp32")
    return model, out


@pytest.fixture()
def model_copy(tiny_jam, tmp_path):
    """A private copy of the tiny-jam folder that a test may damage."""
    _, src = tiny_jam
    dst = tmp_path / "model"
    shutil.copytree(src, dst)
    return dst


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """One intra-op thread: the CI box has 2 shared cores and thread contention costs more than it gives."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --- the bundled demo model and example (for the view, smoothing and reference-frame tests) ------

DEMO_ASSETS = Path(__file__).resolve().parents[2] / "jamsdk" / "assets"


@pytest.fixture(scope="session")
def demo_assets():
    return DEMO_ASSETS


@pytest.fixture(scope="session")
def demo_model():
    path = DEMO_ASSETS / "demo_model"
    if not (path / "manifest.json").is_file():
        pytest.skip("the bundled demo model is not in this checkout")
    return path


@pytest.fixture(scope="session")
def demo_source():
    from jamsdk.pictures import read_image

    return read_image(DEMO_ASSETS / "example_source.png")


@pytest.fixture(scope="session")
def demo_frames():
    from jamsdk.video import read_frames

    return read_frames(DEMO_ASSETS / "example_driving.mp4")
