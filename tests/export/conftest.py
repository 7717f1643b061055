"""Fixtures for the export tests: tiny checkpoints and their exported folders, made once per session.

The models are freshly built with :func:`jamsdk.export.samples.trained_like` heads: a random
model's heatmaps, occlusion and decoded frame are nearly constant, which would let export bugs
through unnoticed.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxsim")
pytest.importorskip("onnxruntime")

CONFIGS = ("tiny-jam", "tiny-mraa")


def make_checkpoint(path: Path, config: str = "tiny-jam", meta: dict | None = None, seed: int = 0):
    """Save a freshly built, trained-like ``config`` model to ``path``; returns the model (eval)."""
    from jamsdk.config import load_model_config
    from jamsdk.export.samples import trained_like
    from jamsdk.model.checkpoint import save_checkpoint
    from jamsdk.model.jam import build_model

    torch.manual_seed(seed)
    cfg = load_model_config(config)
    model = trained_like(build_model(cfg).eval(), seed)
    save_checkpoint(path, model, cfg, meta=meta)
    return model


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """One intra-op thread: 2 shared cores, where thread contention costs more than it gives."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session", params=CONFIGS)
def exported(request, tmp_path_factory):
    """A tiny model exported once with FP32 and FP16 graphs (``--precision auto``) and ``--verify`` (AVD marked trained)."""
    from jamsdk.export.pipeline import export_checkpoint

    root = tmp_path_factory.mktemp(request.param)
    ckpt = root / "model.pt"
    model = make_checkpoint(ckpt, request.param, meta={"avd_trained": True})
    lines: list[str] = []
    result = export_checkpoint(ckpt, root / "model", precision="both", verify=True, log=lines.append)
    return SimpleNamespace(config=request.param, model=model, checkpoint=ckpt, out=root / "model",
                           result=result, log=lines)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A tiny-jam checkpoint without ``meta.avd_trained`` (for option and error tests)."""
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    make_checkpoint(path, "tiny-jam")
    return path


INT8_FRAMES = 4  # calibration frames of int8_dir


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    """A folder of 8 PNG frames: the synthetic clip (moving, turning ellipses) at 64×64."""
    import cv2

    from jamsdk.export.samples import synthetic_clip

    folder = tmp_path_factory.mktemp("clip")
    _, driving = synthetic_clip(64, 8, seed=1)
    for i, f in enumerate((driving.numpy().transpose(0, 2, 3, 1) * 255 + 0.5).astype(np.uint8)):
        cv2.imwrite(str(folder / f"{i:03d}.png"), f[..., ::-1])
    return folder


@pytest.fixture(scope="module")
def int8_dir(tiny_checkpoint, clip_dir, tmp_path_factory):
    from jamsdk.export.pipeline import export_checkpoint

    out = tmp_path_factory.mktemp("int8") / "model"
    lines: list[str] = []
    export_checkpoint(tiny_checkpoint, out, precision="int8", calibration=clip_dir, calibration_frames=INT8_FRAMES,
                      log=lines.append)
    return out, lines
