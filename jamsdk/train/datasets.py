"""Video data sets in the MRAA/FOMM layout, as torch-free map-style datasets.

Layout (what MRAA and FOMM users already have)::

    ROOT/train/<item>   ROOT/test/<item>

where each item is one video:

- a folder of frames (``.png``/``.jpg``/…; natural order) — the fastest to train from, since a
  training pair reads only its two frames;
- a video file (``.mp4 .mov .avi .mkv .webm .m4v``) or an animated ``.gif``;
- a horizontal strip of frames in one ``.png``/``.jpg`` (needs ``frame_shape=(H, W)``).

Frames become RGB (gray and RGBA are converted, see :func:`jamsdk.pixels.to_rgb`) and are brought
to ``image_size × image_size`` by :func:`jamsdk.pixels.center_crop_resize` (centred square crop,
then resize; a plain resize for square frames). An item that cannot be read is skipped with a
:class:`DataWarning` naming it and listed in :attr:`FramesDataset.summary`; a split without any
readable item raises :class:`~jamsdk.errors.InputError`. Items are checked when the data set is
built (each is opened and its first frame decoded); a training item that fails later is replaced
by the next readable one with a warning, a test item that fails later raises InputError.

**Id sampling** (``id_sampling=True``, as for VoxCeleb/Celeb-DF): item names look like
``<id>#<clip>``; a training epoch visits every id once (times ``repeats``) and picks one of its
clips at random, so identities with many clips do not dominate. A name without ``#`` is its own
id. It works for every item format (MRAA's only handled ``.mp4``). The test split always lists
every clip.

**Items.** Train: ``{"source", "driving"}`` float32 ``(3, S, S)`` in [0, 1] — two frames of the
same video, indices drawn with replacement and sorted (so they may be the same frame), with the
same augmentation — and ``"name"``. Test: ``{"video"}`` float32 ``(T, 3, S, S)`` in [0, 1] and
``"name"``; test items are never augmented.

**Randomness and reproducibility.** Everything random about item ``index`` comes from
``np.random.default_rng([seed, epoch, index])``: it does not depend on the number of DataLoader
workers, which worker serves an item, or the order of requests. Call :meth:`FramesDataset.set_epoch`
before iterating a DataLoader for each epoch (with the default ``persistent_workers=False`` the
workers copy the data set when the iteration starts, so they see the new epoch); to resume,
set the same epoch and seed the sampler's shuffle from ``(seed, epoch)``, and the batches repeat
exactly. Without ``set_epoch`` every epoch repeats the augmentation of epoch 0.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from jamsdk.errors import InputError
from jamsdk.pictures import IMAGE_EXTS, read_image
from jamsdk.pixels import center_crop_resize
from jamsdk.train.augment import AugmentConfig, augment
from jamsdk.video import VIDEO_EXTS, frame_files, natural_key, probe, read_frames, split_strip

__all__ = ["AugmentConfig", "DataWarning", "DatasetSummary", "FramesDataset", "VideoItem"]

SPLITS = ("train", "test")
_MAX_WARNINGS = 10  # per data set; the rest are counted in the summary only
_MAX_RETRIES = 10


class DataWarning(UserWarning):
    """An item of a data set was skipped or replaced because it could not be read."""


@dataclass(frozen=True)
class VideoItem:
    """One readable video of a split."""

    name: str
    path: Path
    kind: str  # "folder", "video" or "strip"
    video_id: str
    files: tuple[str, ...] = ()  # frame file names, for folders


@dataclass(frozen=True)
class DatasetSummary:
    """What a :class:`FramesDataset` found in its split folder.

    Attributes:
        root: the split folder (``ROOT/train`` or ``ROOT/test``).
        split: ``"train"`` or ``"test"``.
        items: number of readable videos.
        ids: number of distinct ids (the part of a name before ``#``).
        skipped: ``(name, reason)`` for every entry that could not be used.
        kinds: readable videos per kind (``folder``, ``video``, ``strip``).
    """

    root: str
    split: str
    items: int
    ids: int
    skipped: list[tuple[str, str]] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        words = {"folder": "frame folders", "video": "video files", "strip": "image strips"}
        kinds = ", ".join(f"{n} {words.get(k, k)}" for k, n in sorted(self.kinds.items()))
        text = f"{self.root}: {self.items} videos ({kinds}), {self.ids} ids"
        if self.skipped:
            shown = "; ".join(f"{n} ({r})" for n, r in self.skipped[:3])
            more = f"; … {len(self.skipped) - 3} more" if len(self.skipped) > 3 else ""
            text += f"; skipped {len(self.skipped)}: {shown}{more}"
        return text


def _positive_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise InputError(f"expected {name} ≥ {low}, got {value!r}")
    return int(value)


def _scan_entry(path: Path, frame_shape: tuple[int, int] | None) -> tuple[str, tuple[str, ...]]:
    """Classify and check one entry; returns (kind, frame file names). Raises InputError."""
    if path.is_dir():
        files = frame_files(path)
        if not files:
            raise InputError(f"empty frame folder (no {', '.join(IMAGE_EXTS)} files)")
        read_image(files[0])
        return "folder", tuple(f.name for f in files)
    suffix = path.suffix.lower()
    if suffix in VIDEO_EXTS:
        probe(path)
        return "video", ()
    if suffix in IMAGE_EXTS:
        if frame_shape is None:
            raise InputError("an image item is a horizontal strip of frames and needs frame_shape (H, W)")
        split_strip(read_image(path), frame_shape, path.name)
        return "strip", ()
    raise InputError(f"unsupported file type {suffix or '(none)'!r}")


def _short(exc: InputError, path: Path) -> str:
    """The error message without the item's own path (the summary already names the item)."""
    msg = str(exc)
    for prefix in (f"{path}: ", f"{path.name}: "):
        if msg.startswith(prefix):
            return msg[len(prefix):]
    return msg


class FramesDataset:
    """Map-style data set of one split (usable by ``torch.utils.data.DataLoader``; torch-free).

    Args:
        root: data set folder holding ``train/`` and ``test/``.
        split: ``"train"`` (frame pairs) or ``"test"`` (whole videos).
        image_size: side of the square frames returned.
        frame_shape: ``(H, W)`` (or ``(H, W, 3)``) of one frame of image-strip items; other items
            ignore it (they are resized to ``image_size`` anyway).
        id_sampling: sample training items by id (``<id>#<clip>`` names).
        augment: augmentation of training pairs (None: none). Test items are never augmented.
        repeats: the split is listed this many times per epoch (MRAA's ``num_repeats``).
        seed: base of all item randomness (see the module notes on reproducibility).
        max_test_frames: read at most this many frames of a test video (None: all).

    Raises:
        InputError: bad arguments, missing folders, or no readable item in the split.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "train",
        image_size: int = 256,
        frame_shape: tuple[int, ...] | None = None,
        id_sampling: bool = False,
        augment: AugmentConfig | None = None,
        repeats: int = 1,
        seed: int = 0,
        max_test_frames: int | None = None,
    ) -> None:
        if split not in SPLITS:
            raise InputError(f"expected split 'train' or 'test', got {split!r}")
        self.image_size = _positive_int("image_size", image_size, 8)
        self.repeats = _positive_int("repeats", repeats, 1)
        self.seed = _positive_int("seed", seed, 0)
        if max_test_frames is not None:
            _positive_int("max_test_frames", max_test_frames, 1)
        if augment is not None and not isinstance(augment, AugmentConfig):
            raise InputError(f"expected augment to be an AugmentConfig or None, got {type(augment).__name__}")
        shape = None
        if frame_shape is not None:
            shape = tuple(int(s) for s in frame_shape)
            if len(shape) == 3 and shape[2] == 3:
                shape = shape[:2]
            if len(shape) != 2 or min(shape) < 1:
                raise InputError(f"expected frame_shape (H, W) or (H, W, 3), got {frame_shape!r}")
        self.frame_shape: tuple[int, int] | None = shape  # type: ignore[assignment]
        self.split = split
        self.id_sampling = bool(id_sampling)
        self.augment = augment
        self.max_test_frames = max_test_frames
        self.epoch = 0

        self.root = Path(root)
        if not self.root.is_dir():
            raise InputError(f"data set root {self.root}: no such folder")
        folder = self.root / split
        if not folder.is_dir():
            found = sorted(p.name for p in self.root.iterdir() if not p.name.startswith("."))[:8]
            raise InputError(
                f"{folder}: missing; expected the MRAA/FOMM layout ROOT/train/* and ROOT/test/* "
                f"(found in {self.root}: {', '.join(found) or 'nothing'})"
            )
        self.folder = folder
        entries = sorted((p for p in folder.iterdir() if not p.name.startswith(".")),
                         key=lambda p: natural_key(p.name))
        if not entries:
            raise InputError(f"{folder}: no items (expected videos, GIFs, folders of frames or image strips)")

        items: list[VideoItem] = []
        skipped: list[tuple[str, str]] = []
        for path in entries:
            try:
                kind, files = _scan_entry(path, self.frame_shape)
            except InputError as exc:
                skipped.append((path.name, _short(exc, path)))
                continue
            name = path.name if kind == "folder" else path.stem
            items.append(VideoItem(name, path, kind, name.split("#", 1)[0], files))
        for name, reason in skipped[:_MAX_WARNINGS]:
            warnings.warn(f"{folder}: skipping {name}: {reason}", DataWarning, stacklevel=2)
        if len(skipped) > _MAX_WARNINGS:
            warnings.warn(f"{folder}: skipped {len(skipped) - _MAX_WARNINGS} more unreadable items "
                          "(see dataset.summary.skipped)", DataWarning, stacklevel=2)
        if not items:
            shown = "; ".join(f"{n}: {r}" for n, r in skipped[:5])
            raise InputError(f"{folder}: no readable item ({len(skipped)} entries, all unreadable: {shown})")

        self._items = items
        self._ids = sorted({it.video_id for it in items}, key=natural_key)
        self._by_id = {i: [k for k, it in enumerate(items) if it.video_id == i] for i in self._ids}
        kinds: dict[str, int] = {}
        for it in items:
            kinds[it.kind] = kinds.get(it.kind, 0) + 1
        self.summary = DatasetSummary(str(folder), split, len(items), len(self._ids), skipped, kinds)

    # ---- sizes and names

    @property
    def names(self) -> list[str]:
        """Names of the readable videos, in natural order."""
        return [it.name for it in self._items]

    @property
    def items(self) -> list[VideoItem]:
        return list(self._items)

    def _base_len(self) -> int:
        return len(self._ids) if self._by_ids else len(self._items)

    @property
    def _by_ids(self) -> bool:
        return self.split == "train" and self.id_sampling

    def __len__(self) -> int:
        return self._base_len() * self.repeats

    def set_epoch(self, epoch: int) -> None:
        """Make item randomness a function of ``(seed, epoch, index)``; call before each epoch."""
        self.epoch = _positive_int("epoch", epoch, 0)

    def rng(self, index: int) -> np.random.Generator:
        """The random generator of item ``index`` in the current epoch."""
        return np.random.default_rng([self.seed, self.epoch, int(index)])

    # ---- reading

    def _frame(self, frame: np.ndarray) -> np.ndarray:
        return center_crop_resize(frame, self.image_size)

    def _read_all(self, item: VideoItem, max_frames: int | None = None) -> np.ndarray:
        if item.kind == "strip":
            frames = split_strip(read_image(item.path), self.frame_shape, item.name)[:max_frames]  # type: ignore[arg-type]
        else:
            frames = read_frames(item.path, max_frames=max_frames)
        return np.stack([self._frame(f) for f in frames])

    def _read_pair(self, item: VideoItem, rng: np.random.Generator) -> np.ndarray:
        if item.kind == "folder":
            idx = np.sort(rng.choice(len(item.files), size=2, replace=True))
            return np.stack([self._frame(read_image(item.path / item.files[i])) for i in idx])
        frames = self._read_all(item)
        idx = np.sort(rng.choice(len(frames), size=2, replace=True))
        return frames[idx]

    def _check_index(self, index: int) -> int:
        n = len(self)
        index = int(index)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for a data set of {n} items")
        return index

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = self._check_index(index)
        base = index % self._base_len()
        rng = self.rng(index)
        if self._by_ids:
            clips = self._by_id[self._ids[base]]
            k = clips[int(rng.integers(len(clips)))]
        else:
            k = base
        if self.split == "test":
            # No substitution here: an evaluation must not silently score another video twice.
            item = self._items[k]
            video = self._read_all(item, self.max_test_frames).astype(np.float32) / 255.0
            return {"video": np.ascontiguousarray(video.transpose(0, 3, 1, 2)), "name": item.name}
        errors = []
        for attempt in range(min(_MAX_RETRIES, len(self._items))):
            item = self._items[(k + attempt) % len(self._items)]
            try:
                pair = augment(self._read_pair(item, rng), self.augment, rng)
                return {
                    "source": np.ascontiguousarray(pair[0].transpose(2, 0, 1)),
                    "driving": np.ascontiguousarray(pair[1].transpose(2, 0, 1)),
                    "name": item.name,
                }
            except InputError as exc:
                errors.append(f"{item.name}: {_short(exc, item.path)}")
                warnings.warn(f"{self.folder}: cannot read {item.name} ({_short(exc, item.path)}); "
                              "using the next item", DataWarning, stacklevel=2)
        raise InputError(f"{self.folder}: item {index} and the next ones are unreadable: " + "; ".join(errors))

    def __repr__(self) -> str:
        return (f"FramesDataset({str(self.root)!r}, split={self.split!r}, image_size={self.image_size}, "
                f"len={len(self)}, id_sampling={self.id_sampling}, repeats={self.repeats})")
