"""Turn a Celeb-DF (v2) download into a training set: folders of cropped 256×256 frames, ``<id>#<clip>``.

Celeb-DF-v2 (Li et al., CVPR 2020; request access from its authors) unpacks to::

    Celeb-DF-v2/Celeb-real/id0_0000.mp4 …     590 real interview videos, 59 celebrities
    Celeb-DF-v2/YouTube-real/00000.mp4 …      300 extra real videos, identities not given
    Celeb-DF-v2/Celeb-synthesis/…             DeepFakes (not used: their motion is not real)
    Celeb-DF-v2/List_of_testing_videos.txt

Output, ready for ``FramesDataset(OUT, id_sampling=True)`` and ``jamsdk train``::

    OUT/train/id0#0000/00000.png …            Celeb-real: id0_0000.mp4 → id "id0", clip "0000"
    OUT/train/yt00000#0/00000.png …           YouTube-real: each video is its own id
    OUT/test/…

Honest limits: the crop is a fixed box per data set, not a face tracker. ``--crop center`` (the
default) takes the largest centred square of every frame: Celeb-DF is mostly frontal interview
footage with the speaker near the centre, so this gives head-and-shoulders crops, wider than the
tight face crops of VoxCeleb-style preprocessing. ``--crop X,Y,W,H`` takes a fixed box instead
(fractions of the frame width/height, e.g. ``0.25,0.05,0.5,0.8``), then its centred square. The
split is by identity (no person appears in both splits), drawn with a fixed seed; the official
``List_of_testing_videos.txt`` is a deepfake-detection split and is not used.

Disk: PNG frames at 256² take ~100 KB each; all 890 real videos at full length come to tens of
GB. ``--stride 2 --max-frames 150`` keeps about a fifth; ``--ext jpg`` another ~4× less.

Each clip is written to a temporary folder and renamed when complete; a rerun skips clips that
exist, so an interrupted run can simply be restarted.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from jamsdk.errors import InputError
from jamsdk.pixels import center_crop_resize
from jamsdk.video import iter_frames, natural_key

SOURCES = {"Celeb-real": "celeb", "YouTube-real": "youtube"}


UMASK = os.umask(0)
os.umask(UMASK)


def clip_name(source: str, stem: str) -> str:
    """``<id>#<clip>`` for one video: ``id0_0000`` → ``id0#0000``; YouTube ``00012`` → ``yt00012#0``."""
    if source == "Celeb-real":
        m = re.fullmatch(r"(id\d+)_(\d+)", stem)
        if m:
            return f"{m.group(1)}#{m.group(2)}"
    return f"yt{stem}#0"


def parse_box(text: str) -> tuple[float, float, float, float] | None:
    if text == "center":
        return None
    try:
        x, y, w, h = (float(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"--crop: expected 'center' or X,Y,W,H fractions, got {text!r}") from None
    if not (0 <= x < 1 and 0 <= y < 1 and 0 < w <= 1 - x + 1e-9 and 0 < h <= 1 - y + 1e-9):
        raise InputError(f"--crop: the box {text!r} must lie inside the frame (fractions in [0, 1])")
    return x, y, w, h


def crop_frame(frame: np.ndarray, box: tuple[float, float, float, float] | None, size: int) -> np.ndarray:
    if box is not None:
        h, w = frame.shape[:2]
        x0, y0 = int(round(box[0] * w)), int(round(box[1] * h))
        x1, y1 = int(round((box[0] + box[2]) * w)), int(round((box[1] + box[3]) * h))
        frame = frame[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)]
    return center_crop_resize(frame, size)


def convert(job: tuple[Path, Path, dict]) -> tuple[str, str | None]:
    """Write one video's frames to ``target``; returns (name, error or None)."""
    video, target, opt = job
    if target.is_dir():
        return target.name, None  # done in an earlier run
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    os.chmod(tmp, 0o777 & ~UMASK)  # mkdtemp makes it private; the clip is an ordinary folder
    try:
        written = 0
        for i, frame in enumerate(iter_frames(video)):
            if i % opt["stride"]:
                continue
            img = crop_frame(frame, opt["box"], opt["size"])[:, :, ::-1]
            params = [cv2.IMWRITE_JPEG_QUALITY, 95] if opt["ext"] == "jpg" else []
            ok, buf = cv2.imencode(f".{opt['ext']}", np.ascontiguousarray(img), params)
            if not ok:
                raise InputError(f"cannot encode frame {i}")
            (tmp / f"{written:05d}.{opt['ext']}").write_bytes(buf.tobytes())
            written += 1
            if opt["max_frames"] and written >= opt["max_frames"]:
                break
        os.replace(tmp, target)
        return target.name, None
    except InputError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        return target.name, str(exc)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", dest="root", required=True, type=Path, metavar="DIR", help="the Celeb-DF-v2 folder (holding Celeb-real/ …)")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output data set folder (train/ and test/ are created)")
    p.add_argument("--size", type=int, default=256, help="frame size (default 256)")
    p.add_argument("--crop", default="center", help="'center' (default) or a fixed box X,Y,W,H in fractions")
    p.add_argument("--sources", default="Celeb-real,YouTube-real",
                   help="comma-separated source folders (default Celeb-real,YouTube-real)")
    p.add_argument("--test-fraction", type=float, default=0.1, help="share of identities for test/ (default 0.1)")
    p.add_argument("--stride", type=int, default=1, help="keep every k-th frame (default 1)")
    p.add_argument("--max-frames", type=int, default=0, help="frames kept per video, 0 = all (default)")
    p.add_argument("--ext", choices=("png", "jpg"), default="png", help="frame format (default png)")
    p.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the identity split (default 0)")
    args = p.parse_args(argv)

    try:
        box = parse_box(args.crop)
        if args.size < 16 or args.stride < 1 or args.max_frames < 0 or args.workers < 1:
            raise InputError("expected --size ≥ 16, --stride ≥ 1, --max-frames ≥ 0 and --workers ≥ 1")
        if not 0 < args.test_fraction < 1:
            raise InputError(f"--test-fraction: expected a value in (0, 1), got {args.test_fraction}")
        videos = []
        for source in (s.strip() for s in args.sources.split(",") if s.strip()):
            if source not in SOURCES:
                raise InputError(f"--sources: unknown folder {source!r} (expected {', '.join(SOURCES)})")
            folder = args.root / source
            if not folder.is_dir():
                raise InputError(f"{folder}: missing; is {args.root} the Celeb-DF-v2 folder?")
            videos += [(clip_name(source, f.stem), f)
                       for f in sorted(folder.glob("*.mp4"), key=lambda f: natural_key(f.name))]
        if not videos:
            raise InputError(f"{args.root}: no .mp4 videos in {args.sources}")
    except InputError as exc:
        print(f"prepare_celebdf: error: {exc}", file=sys.stderr)
        return 2

    ids = sorted({name.split("#")[0] for name, _ in videos}, key=natural_key)
    order = np.random.default_rng(args.seed).permutation(len(ids))
    n_test = max(1, int(round(len(ids) * args.test_fraction))) if len(ids) > 1 else 0
    test_ids = {ids[i] for i in order[:n_test]}
    opt = {"size": args.size, "box": box, "stride": args.stride, "max_frames": args.max_frames, "ext": args.ext}
    jobs = []
    for name, path in videos:
        split = "test" if name.split("#")[0] in test_ids else "train"
        (args.out / split).mkdir(parents=True, exist_ok=True)
        jobs.append((path, args.out / split / name, opt))
    (args.out / "train").mkdir(parents=True, exist_ok=True)
    (args.out / "test").mkdir(parents=True, exist_ok=True)
    print(f"{len(videos)} videos of {len(ids)} identities → {args.out} "
          f"({len(ids) - n_test} train ids, {n_test} test ids)")

    failed = []
    if args.workers == 1:
        results = map(convert, jobs)
    else:
        pool = ProcessPoolExecutor(args.workers)
        results = pool.map(convert, jobs, chunksize=4)
    for k, (name, error) in enumerate(results, 1):
        if error:
            failed.append(name)
            print(f"  skipped {name}: {error}")
        if k % 50 == 0 or k == len(jobs):
            print(f"  {k}/{len(jobs)} videos", flush=True)
    if args.workers > 1:
        pool.shutdown()
    print(f"done: {len(jobs) - len(failed)} clips written, {len(failed)} unreadable")
    return 0 if len(failed) < len(jobs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
