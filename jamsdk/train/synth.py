"""Synthetic training data sets: clips of articulated cartoon figures in the MRAA/FOMM layout.

The figures and their rendering are :mod:`jamsdk.train.figures`; this module writes a whole data
set (``train/`` and ``test/`` clips as PNG folders, GIF or MP4, ``synth.json``, and optionally the
held-out animation pairs of :mod:`jamsdk.train.pairs`) atomically.

The output is a pure function of the seed: clip ``i`` of :func:`write_dataset` is rendered from
``np.random.default_rng([seed, i])``, so a data set with more clips starts with the same clips and
the same seed gives byte-identical files with the same numpy/OpenCV (and, for GIF, imageio).

``jamsdk synth`` (:mod:`jamsdk.commands.synth`) is the command-line front end.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from jamsdk import _folders
from jamsdk.errors import InputError
# render_clip is used by write_dataset, and stays part of this module's public names because
# docs/data.md documents it as jamsdk.train.synth.render_clip for users' own scripts.
from jamsdk.train.figures import render_clip
from jamsdk.train.pairs import PAIRS_DIR, VERSION, write_pairs

FORMATS = ("folder", "gif", "mp4")
FPS = 10.0  # MGif's GIFs play at about 10 fps

__all__ = ["FORMATS", "SynthSummary", "render_clip", "write_dataset"]


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`write_dataset` wrote."""

    root: Path
    train: int
    test: int
    frames: int
    size: int
    fmt: str
    bytes: int
    pairs: int = 0


def _check_int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise InputError(f"expected {name} ≥ {low}, got {value!r}")
    return int(value)


def _write_clip(folder: Path, name: str, video: np.ndarray, fmt: str) -> None:
    from jamsdk.video_write import write_video

    if fmt == "folder":
        clip = folder / name
        clip.mkdir()
        for i, frame in enumerate(video):
            ok, buf = cv2.imencode(".png", np.ascontiguousarray(frame[:, :, ::-1]))
            if not ok:
                raise InputError(f"OpenCV could not encode frame {i} of {name} as PNG")
            (clip / f"{i:05d}.png").write_bytes(buf.tobytes())
    else:
        write_video(folder / f"{name}.{fmt}", video, fps=FPS)


def synth_folder_problem(folder: Path) -> str | None:
    """None when ``folder`` is provably a data set :func:`write_dataset` wrote (for ``--overwrite``), else why not."""
    try:
        meta = json.loads((folder / "synth.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return "no readable synth.json"
    if not isinstance(meta, dict) or meta.get("generator") != "jamsdk.train.synth":
        return "its synth.json was not written by jamsdk synth"
    extra = sorted(set(os.listdir(folder)) - {"train", "test", PAIRS_DIR, "synth.json"})
    if extra:
        return f"it also holds {', '.join(extra[:5])}, which replacing it would delete"
    return None


def write_dataset(
    out: str | os.PathLike[str],
    clips: int,
    frames: int,
    size: int,
    seed: int,
    test_fraction: float = 0.2,
    fmt: str = "folder",
    *,
    pairs: int = 0,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> SynthSummary:
    """Write a synthetic data set in the MRAA/FOMM layout: ``out/train/*`` and ``out/test/*``.

    Clips are named ``clip_00000``, ``clip_00001``, …; the first ``clips - n_test`` go to
    ``train``, the rest to ``test``. Each clip is a folder of PNG frames (``fmt="folder"``), an
    animated GIF or an ``mp4v`` MP4. ``out/synth.json`` records the arguments. The data set is
    written to a temporary folder beside ``out`` and renamed into place at the end, so an error
    or interruption never leaves a partial data set.

    Args:
        out: target folder; must not exist or be empty, unless ``overwrite`` and it holds an
            earlier synthetic data set (it has ``synth.json``).
        clips: number of clips (≥ 1).
        frames: frames per clip (≥ 1).
        size: frame size in pixels (≥ 16).
        seed: ≥ 0; clip ``i`` is rendered from ``np.random.default_rng([seed, i])``.
        test_fraction: share of clips for ``test`` in [0, 1); with ≥ 2 clips and a positive
            fraction both splits get at least one clip.
        fmt: ``"folder"``, ``"gif"`` or ``"mp4"``.
        pairs: also write this many held-out animation pairs with ground truth into
            ``out/pairs`` (:mod:`jamsdk.train.pairs`; PNG frames whatever ``fmt``; ``frames``
            frames each).
        progress: called as ``progress(done, clips)`` after each clip.

    Raises:
        InputError: bad arguments, or ``out`` is not free.
    """
    clips = _check_int("clips", clips, 1)
    frames = _check_int("frames", frames, 1)
    size = _check_int("size", size, 16)
    seed = _check_int("seed", seed, 0)
    pairs = _check_int("pairs", pairs, 0)
    if fmt not in FORMATS:
        raise InputError(f"expected fmt one of {FORMATS}, got {fmt!r}")
    if not (isinstance(test_fraction, (int, float)) and 0.0 <= test_fraction < 1.0):
        raise InputError(f"expected test_fraction in [0, 1), got {test_fraction!r}")
    n_test = int(round(clips * test_fraction))
    if clips >= 2 and test_fraction > 0:
        n_test = min(max(n_test, 1), clips - 1)
    n_train = clips - n_test

    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise InputError(f"{out}: exists and is not a folder")
        if any(out.iterdir()):
            why = synth_folder_problem(out)
            if not overwrite or why is not None:
                hint = (f" ({why}; --overwrite replaces only earlier synthetic data sets, whose synth.json says so)"
                        if overwrite else "; pick another folder or pass --overwrite")
                raise InputError(f"{out}: folder is not empty{hint}")
    tmp = _folders.stage(out, synth_folder_problem)
    try:
        for split in ("train", "test"):
            (tmp / split).mkdir()
        for i in range(clips):
            video = render_clip(np.random.default_rng([seed, i]), frames, size)
            _write_clip(tmp / ("train" if i < n_train else "test"), f"clip_{i:05d}", video, fmt)
            if progress is not None:
                progress(i + 1, clips)
        meta = {"generator": "jamsdk.train.synth", "version": 1, "seed": seed, "clips": clips,
                "frames": frames, "size": size, "format": fmt, "fps": FPS,
                "train": n_train, "test": n_test}
        if pairs:
            write_pairs(tmp / PAIRS_DIR, pairs, frames, size, seed)
            meta.update(pairs=pairs, pairs_version=VERSION)
        (tmp / "synth.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        total = sum(f.stat().st_size for f in tmp.rglob("*") if f.is_file() and f.name != _folders.MARKER)
        _folders.replace(tmp, out)
    except BaseException:
        _folders.discard(tmp)
        raise
    return SynthSummary(out, n_train, n_test, frames, size, fmt, total, pairs)
