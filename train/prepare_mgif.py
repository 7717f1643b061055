"""Check a Moving GIF (MGif) download and optionally convert it to frame folders.

MGif (FOMM's "moving-gif") holds cartoon-animal animations at 256×256 in ``train/`` and ``test/``.
This script reads every item the way training does (``jamsdk.train.datasets.FramesDataset``) and
reports what it found: counts per split and format, frame sizes and counts, unreadable items.

With ``--out`` it writes a converted copy: every readable item becomes a folder of PNG frames at
``--size`` (centred square crop + resize, the training policy), which trains faster than GIFs
because a training pair then decodes two frames instead of the whole animation. A download
without ``train/``/``test/`` (a flat folder of items) is split deterministically into the copy
(``--test-fraction``, seeded permutation). The copy appears only when complete.

Examples::

    python train/prepare_mgif.py --data data/moving-gif                       # check only
    python train/prepare_mgif.py --data data/moving-gif --out data/mgif-frames
    jamsdk train --config jam-256 --data data/mgif-frames ...

Exit status: 0 when both splits (or the flat folder) hold readable items, 1 otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import cv2
import numpy as np

from jamsdk.errors import InputError
from jamsdk.pixels import center_crop_resize
from jamsdk.train.datasets import DataWarning, FramesDataset
from jamsdk.video import natural_key, probe, read_frames


UMASK = os.umask(0)
os.umask(UMASK)


def check_split(root: Path, split: str, frame_shape, label: str | None = None) -> FramesDataset | None:
    """Open one split like training does and print what it holds; None if it is unusable."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)  # the summary lists every skipped item
        try:
            ds = FramesDataset(root, split, image_size=256, frame_shape=frame_shape)
        except InputError as exc:
            print(f"{split}: {str(exc).replace(str(root / split), label) if label else exc}")
            return None
    text = str(ds.summary)
    print(f"{split}: {text.replace(str(ds.folder), label) if label else text}")
    sizes, counts = {}, []
    for item in ds.items:
        try:
            info = probe(item.path, frame_shape if item.kind == "strip" else None)
        except InputError:
            continue
        sizes[(info.width, info.height)] = sizes.get((info.width, info.height), 0) + 1
        if info.frames:
            counts.append(info.frames)
    shown = ", ".join(f"{w}×{h}: {n}" for (w, h), n in sorted(sizes.items(), key=lambda kv: -kv[1])[:5])
    print(f"  frame sizes: {shown}")
    if counts:
        print(f"  frames per item: min {min(counts)}, median {int(np.median(counts))}, max {max(counts)}")
    for name, reason in ds.summary.skipped:
        print(f"  skipped {name}: {reason}")
    return ds


def write_frames(folder: Path, frames: np.ndarray, size: int) -> None:
    folder.mkdir(parents=True)
    for i, frame in enumerate(frames):
        ok, buf = cv2.imencode(".png", np.ascontiguousarray(center_crop_resize(frame, size)[:, :, ::-1]))
        if not ok:
            raise InputError(f"cannot encode frame {i} of {folder.name}")
        (folder / f"{i:05d}.png").write_bytes(buf.tobytes())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", dest="root", required=True, type=Path, metavar="DIR", help="the moving-gif folder (with train/ and test/, or flat)")
    p.add_argument("--out", type=Path, help="write a copy as folders of PNG frames here")
    p.add_argument("--size", type=int, default=256, help="frame size of the copy (default 256)")
    p.add_argument("--frame-shape", type=int, nargs=2, metavar=("H", "W"),
                   help="frame size of .png/.jpg strip items, if the download has any")
    p.add_argument("--test-fraction", type=float, default=0.2,
                   help="test share when the download has no train/ and test/ (default 0.2)")
    args = p.parse_args(argv)
    root: Path = args.root
    if not root.is_dir():
        print(f"{root}: no such folder", file=sys.stderr)
        return 1

    flat = not (root / "train").is_dir() and not (root / "test").is_dir()
    if flat:
        # Look at the flat folder through a temporary train/ link, so the same checks apply.
        with tempfile.TemporaryDirectory() as tmp:
            os.symlink(root.resolve(), Path(tmp) / "train")
            ds = check_split(Path(tmp), "train", args.frame_shape, label=str(root))
            # Point the items back at the real folder (the link goes away with tmp).
            items = [] if ds is None else [dataclasses.replace(it, path=root / it.path.name) for it in ds.items]
        if not items:
            return 1
        order = np.random.default_rng(0).permutation(len(items))
        n_test = max(1, int(round(len(items) * args.test_fraction))) if len(items) > 1 else 0
        test = {items[i].name for i in order[:n_test]}
        plan = [("test" if it.name in test else "train", it) for it in items]
        print(f"flat folder: {len(items) - n_test} train / {n_test} test items after the split")
    else:
        plan = []
        for split in ("train", "test"):
            ds = check_split(root, split, args.frame_shape)
            if ds is None:
                return 1
            plan += [(split, it) for it in ds.items]

    if args.out is None:
        return 0
    out: Path = args.out
    if out.exists() and any(out.iterdir()):
        print(f"{out}: exists and is not empty; pick another folder", file=sys.stderr)
        return 1
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    os.chmod(tmp, 0o777 & ~UMASK)  # mkdtemp makes it private; the copy is an ordinary folder
    failed = 0
    try:
        for split, item in sorted(plan, key=lambda si: (si[0], natural_key(si[1].name))):
            try:
                shape = args.frame_shape if item.kind == "strip" else None
                write_frames(tmp / split / item.name, read_frames(item.path, frame_shape=shape), args.size)
            except InputError as exc:
                failed += 1
                print(f"  cannot convert {split}/{item.name}: {exc}")
        (tmp / "train").mkdir(exist_ok=True)
        (tmp / "test").mkdir(exist_ok=True)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(f"wrote {len(plan) - failed} items as {args.size}×{args.size} PNG folders to {out}"
          + (f" ({failed} failed)" if failed else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
