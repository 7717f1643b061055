"""Calibration material for INT8 export: a real clip read into model space, and the stage chain.

:func:`load_calibration` reads the clip (a video or a folder of frames) and an optional source
picture, centre-crops and resizes them to the model's size, and splits the driving frames into
calibration frames (spread over the whole clip) and held-out frames (others, between them) that
the quality gates judge separately. It runs before any slow export work, so a missing, unreadable
or too-short clip fails at once.

:class:`StageChain` chains stage graphs in ONNX Runtime (CPU) as the runtime's standard mode does
(region predictor on the source and on each frame, generator encoder once, dense motion,
generator; the background transform is the identity as in animation). Any stage can be swapped
for another graph (an INT8 candidate), and the chain can record every stage's inputs: those are
the calibration data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from jamsdk._lazy import require
from jamsdk.errors import InputError

DEFAULT_CALIBRATION_FRAMES = 16
#: at most this many held-out frames are judged (each costs a chain run per gate)
MAX_HELD_OUT = 8
#: the clip is read up to this many frames (calibration frames are spread over what was read)
MAX_READ = 600


@dataclass(frozen=True)
class CalibrationClip:
    """Model-space arrays, float32 in [0, 1], NCHW: ``source (1, 3, S, S)``, frames ``(T, 3, S, S)``."""

    path: str
    source: np.ndarray
    source_from: str
    calibration: np.ndarray
    held_out: np.ndarray
    frames_read: int


def _to_model(images: np.ndarray, size: int) -> np.ndarray:
    from jamsdk.pixels import center_crop_resize

    out = np.stack([center_crop_resize(img, size) for img in images]).astype(np.float32) / 255.0
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def load_calibration(path: str | os.PathLike[str] | None, size: int, frames: int = DEFAULT_CALIBRATION_FRAMES,
                     source: str | os.PathLike[str] | None = None) -> CalibrationClip:
    """Read the calibration clip at ``path`` for a model of ``size`` pixels.

    The source picture is ``source`` when given, else the clip's first frame (which is then not
    used as a driving frame). ``frames`` calibration frames are taken at evenly spaced positions
    over the clip (at most its first :data:`MAX_READ` frames); up to :data:`MAX_HELD_OUT` of the
    remaining frames, also spread over the clip, are held out.

    Raises:
        InputError: no clip given, a missing/unreadable clip or source, or fewer than
            ``frames + 1`` driving frames (at least one must be held out).
    """
    from jamsdk.pictures import read_image
    from jamsdk.video import read_frames

    if path is None:
        raise InputError("INT8 export needs calibration data: add --calibration VIDEO|FOLDER (a driving clip "
                         "like the ones the model will animate; e.g. jamsdk/assets/example_driving.mp4)")
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise InputError(f"--calibration-frames: expected a whole number ≥ 1, got {frames!r}")
    p = Path(path)
    if not p.exists():
        raise InputError(f"--calibration {p}: no such file or folder (expected a driving video or a folder of frames)")
    try:
        clip = read_frames(p, max_frames=MAX_READ)
    except InputError as exc:
        raise InputError(f"--calibration: {exc}") from None
    if source is not None:
        src_img, src_from = read_image(source)[None], os.fspath(source)
        driving = clip
    else:
        src_img, src_from = clip[:1], f"first frame of {p.name}"
        driving = clip[1:]
    need = frames + 1
    if len(driving) < need:
        raise InputError(f"--calibration {p}: {len(driving)} driving frame(s)"
                         + ("" if source is not None else " after the first (used as the source picture)")
                         + f", --calibration-frames {frames} needs at least {need} ({frames} to calibrate, "
                           f"≥ 1 held out); use a longer clip or fewer --calibration-frames")
    cal_idx = np.unique(np.linspace(0, len(driving) - 1, frames).round().astype(int))
    rest = np.setdiff1d(np.arange(len(driving)), cal_idx)
    held_idx = rest[np.unique(np.linspace(0, len(rest) - 1, min(MAX_HELD_OUT, len(rest))).round().astype(int))]
    return CalibrationClip(os.fspath(p), _to_model(src_img, size), src_from, _to_model(driving[cal_idx], size),
                           _to_model(driving[held_idx], size), len(clip))


Graph = Any  # a path, serialized bytes or an onnx.ModelProto


class StageChain:
    """Stage graphs (``stage → graph``) chained in standard mode on ONNX Runtime's CPU provider."""

    def __init__(self, graphs: Mapping[str, Graph], threads: int | None = None):
        self.threads = threads
        self.sessions: dict[str, Any] = {}
        for name, graph in graphs.items():
            self.set(name, graph)

    def set(self, stage: str, graph: Graph) -> None:
        """Use ``graph`` for ``stage`` from now on."""
        from jamsdk.runtime.backends.onnxruntime import session_options

        ort = require("onnxruntime")
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if self.threads:
            opts.intra_op_num_threads = self.threads
        session_options(opts)  # one session per stage: no pool spinning while the next one runs
        if hasattr(graph, "SerializeToString"):
            graph = graph.SerializeToString()
        elif isinstance(graph, (str, os.PathLike)):
            graph = os.fspath(graph)
        self.sessions[stage] = ort.InferenceSession(graph, opts, providers=["CPUExecutionProvider"])

    def run(self, stage: str, feeds: Mapping[str, np.ndarray],
            record: dict[str, list] | None = None) -> dict[str, np.ndarray]:
        sess = self.sessions[stage]
        feeds = {i.name: feeds[i.name] for i in sess.get_inputs()}
        if record is not None:
            record.setdefault(stage, []).append(feeds)
        names = [o.name for o in sess.get_outputs()]
        return dict(zip(names, sess.run(names, feeds)))

    def animate(self, source: np.ndarray, driving: np.ndarray,
                record: dict[str, list] | None = None) -> np.ndarray:
        """``(T, 3, S, S)`` predictions; ``record`` collects every stage's feeds, call by call."""
        src = self.run("region_predictor", {"image": source}, record)
        feats = self.run("generator_encoder", {"source": source}, record)
        out = []
        for t in range(driving.shape[0]):
            drv = self.run("region_predictor", {"image": driving[t:t + 1]}, record)
            feeds = {"source": source, **{f"source_{k}": v for k, v in src.items()},
                     **{f"driving_{k}": v for k, v in drv.items()},
                     "bg_params": np.eye(3, dtype=np.float32)[None]}
            motion = self.run("dense_motion", feeds, record)
            out.append(self.run("generator", {"source": source, **feats, **motion}, record)["prediction"])
        return np.concatenate(out)

    def animate_batched(self, source: np.ndarray, driving: np.ndarray, batch: int) -> np.ndarray:
        """:meth:`animate` with ``batch`` driving frames per call of the per-frame stages.

        The chain's per-frame graphs take ``batch`` rows (``export --batch-sizes``), its
        ``generator_encoder`` one; the source's rows are repeated, and a last call with fewer frames
        is filled up with its last frame (those rows are dropped).
        """
        rows = lambda a: np.repeat(a, batch, axis=0)  # noqa: E731
        src_image = rows(source)
        src = self.run("region_predictor", {"image": src_image})
        feats = {k: rows(v) for k, v in self.run("generator_encoder", {"source": source}).items()}
        identity = rows(np.eye(3, dtype=np.float32)[None])
        out = []
        for t in range(0, driving.shape[0], batch):
            chunk = driving[t:t + batch]
            n = chunk.shape[0]
            if n < batch:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch - n, axis=0)])
            drv = self.run("region_predictor", {"image": chunk})
            feeds = {"source": src_image, **{f"source_{k}": v for k, v in src.items()},
                     **{f"driving_{k}": v for k, v in drv.items()}, "bg_params": identity}
            motion = self.run("dense_motion", feeds)
            out.append(self.run("generator", {"source": src_image, **feats, **motion})["prediction"][:n])
        return np.concatenate(out)
