"""Reconstruction evaluation (the paper's Table I): mean L1 over the test videos.

Standard mode, as MRAA's ``reconstruction.py``: for each test video the source is frame 0 and each
frame t is the driving frame; the model rebuilds frame t from the source (``model(source, driving)``,
with the background motion if the model has one) and the error is the mean absolute difference of
pixels in [0, 1]. A video's score is the mean over its frames; the overall score is the mean over
videos.

Beside L1, the **flow error** (:func:`jamsdk.train.motion_metrics.flow_error`): optical flow between
consecutive reconstructed frames against the same between consecutive frames of the video, in pixels
per frame, with the video's own mean flow (what a still output scores) as its no-motion baseline. L1
mixes sharpness and motion; the flow error asks whether the reconstruction moves as the video does.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from jamsdk._atomic import write_bytes
from jamsdk.errors import InputError
from jamsdk.train.motion_metrics import flow_error


@torch.no_grad()
def reconstruct(model: torch.nn.Module, video: torch.Tensor, batch: int = 16) -> tuple[list[float], torch.Tensor]:
    """Per-frame L1 of reconstructing ``video`` (T, 3, S, S) from its first frame, and the frames."""
    if video.dim() != 4 or video.shape[0] < 1:
        raise InputError(f"expected a (T, 3, S, S) video, got {tuple(video.shape)}")
    source = video[:1]
    errs: list[float] = []
    preds = []
    for start in range(0, video.shape[0], batch):
        driving = video[start:start + batch]
        pred = model(source.expand(driving.shape[0], -1, -1, -1), driving)["prediction"].float()
        errs += (pred - driving).abs().mean(dim=(1, 2, 3)).tolist()
        preds.append(pred)
    return errs, torch.cat(preds)


def video_l1(model: torch.nn.Module, video: torch.Tensor, batch: int = 16) -> list[float]:
    """Per-frame L1 of reconstructing ``video`` (T, 3, S, S) from its first frame."""
    return reconstruct(model, video, batch)[0]


def evaluate(checkpoint: str | os.PathLike[str], data_root: str | os.PathLike[str], *, device: str | None = None,
             batch: int = 16, max_videos: int | None = None, progress: bool = False,
             echo: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Mean reconstruction L1 per test video and overall for a checkpoint.

    Args:
        checkpoint: a jamsdk checkpoint.
        data_root: dataset folder with a ``test`` split.
        device: ``cpu`` or ``cuda`` (default: CUDA when available).
        batch: frames per forward pass (BatchNorm is in eval mode, so results do not depend on it).
        max_videos: evaluate only the first N test videos.
        progress: show a tqdm bar over videos.
        echo: called with one line per video.

    Returns:
        ``{"l1": overall, "num_videos", "num_frames", "videos": [{"name", "frames", "l1"}], …}``.
    """
    from jamsdk.model.checkpoint import load_model
    from jamsdk.train.datasets import FramesDataset

    if device in (None, "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {device!r} requested but torch sees no CUDA GPU")
    if batch < 1:
        raise InputError(f"batch: expected ≥ 1, got {batch}")
    model, data = load_model(checkpoint)
    model.to(device)
    size = model.cfg.image_size
    dataset = FramesDataset(data_root, split="test", image_size=size)
    n = len(dataset) if max_videos is None else min(max_videos, len(dataset))
    if n == 0:
        raise InputError(f"{data_root}: the test split holds no videos")
    indices = range(n)
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc="eval", unit="video")
    videos = []
    for i in indices:
        item = dataset[i]
        video = torch.as_tensor(np.asarray(item["video"], dtype=np.float32)).to(device)
        errs, pred = reconstruct(model, video, batch)
        score = float(np.mean(errs))
        row = {"name": str(item["name"]), "frames": len(errs), "l1": score, "flow_epe": None, "video_flow": None}
        if len(errs) > 1:
            as_hwc = lambda t: t.clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()  # noqa: E731
            fe = flow_error(as_hwc(pred), as_hwc(video))
            row.update(flow_epe=fe["epe"], video_flow=fe["truth_flow"])
        videos.append(row)
        if echo is not None:
            flow = "" if row["flow_epe"] is None else \
                f", flow error {row['flow_epe']:.3f} px (video's own flow {row['video_flow']:.3f})"
            echo(f"{item['name']}: L1 {score:.5f} over {len(errs)} frames{flow}")
    overall = float(np.mean([v["l1"] for v in videos]))
    flows = [v for v in videos if v["flow_epe"] is not None]
    if not math.isfinite(overall):
        raise InputError(f"evaluation of {checkpoint} produced a non-finite L1 ({overall}); the weights are broken")
    meta = data.get("meta") or {}
    return {
        "checkpoint": str(checkpoint),
        "data": str(data_root),
        "split": "test",
        "mode": "standard",
        "metric": ("mean |prediction - frame| of pixels in [0, 1]; per video over frames, overall over videos; "
                   "flow_epe: |DIS flow between consecutive predictions - the same in the video|, pixels per "
                   "frame (video_flow: the video's own mean flow, a still output's error)"),
        "model": model.cfg.name,
        "image_size": size,
        "step": meta.get("step"),
        "num_videos": len(videos),
        "num_frames": int(sum(v["frames"] for v in videos)),
        "l1": overall,
        "flow_epe": float(np.mean([v["flow_epe"] for v in flows])) if flows else None,
        "video_flow": float(np.mean([v["video_flow"] for v in flows])) if flows else None,
        "videos": videos,
    }


def write_json(path: str | os.PathLike[str], result: dict[str, Any]) -> Path:
    """Write an evaluation result as JSON, atomically."""
    write_bytes(path, (json.dumps(result, indent=2) + "\n").encode("utf-8"))
    return Path(path)
