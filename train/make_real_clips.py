"""Write reconstruction clips made of real photographs: scikit-image's sample photos under a camera move.

No real video with a licence to ship is at hand, so this makes the next best thing for checking that a
model trained on cartoons still rebuilds real pixels: real photographs (astronaut, cat, coffee cup,
rocket, stained tissue: ``skimage.data``, public domain or CC0) seen through a smoothly moving camera
(pan, zoom and roll, each a sinusoid with its own phase), cropped to a square. The truth of each frame
is known, so ``jamsdk eval --checkpoint CKPT --data OUT`` scores the reconstruction L1 and the flow
error against the clip's own motion. The motion is global (a camera), not articulated: this checks
appearance on real footage, the synthetic pairs check articulated motion.

    pip install scikit-image            # the photos; not a jamsdk dependency
    python train/make_real_clips.py --out runs/real-clips [--frames 32] [--size 128]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry")


def camera_clip(photo: np.ndarray, frames: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """(frames, size, size, 3) uint8 views of ``photo`` (RGB) through a moving camera."""
    h, w = photo.shape[:2]
    side = 0.7 * min(h, w)  # the view's side in photo pixels at zoom 1: room to pan inside the photo
    cx, cy = w / 2, h / 2
    pan = 0.08 * min(h, w)
    phase = rng.uniform(0, 2 * np.pi, 4)
    period = rng.uniform(1.5, 2.5) * frames
    out = np.empty((frames, size, size, 3), np.uint8)
    for t in range(frames):
        a = 2 * np.pi * t / period
        x = cx + pan * np.sin(a + phase[0])
        y = cy + pan * np.sin(a + phase[1])
        zoom = 1 + 0.08 * np.sin(a + phase[2])
        roll = np.deg2rad(6) * np.sin(a + phase[3])
        scale = size / (side / zoom)  # photo pixels → output pixels
        m = cv2.getRotationMatrix2D((x, y), np.rad2deg(roll), scale)
        m[:, 2] += (size / 2 - x, size / 2 - y)
        out[t] = cv2.warpAffine(photo, m, (size, size), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REFLECT)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="new folder: OUT/test/<photo>_<k>/ frames (and an empty train/)")
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--per-photo", type=int, default=2, help="clips per photo, each its own camera move")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        from skimage import data
    except ImportError:
        print("make_real_clips: needs scikit-image (pip install scikit-image)", file=sys.stderr)
        return 2
    out = Path(args.out)
    if out.exists():
        print(f"make_real_clips: {out} exists; choose a new folder", file=sys.stderr)
        return 2
    (out / "train").mkdir(parents=True)
    for i, name in enumerate(PHOTOS):
        photo = getattr(data, name)()
        for k in range(args.per_photo):
            clip = camera_clip(photo, args.frames, args.size, np.random.default_rng([args.seed, i, k]))
            folder = out / "test" / f"{name}_{k}"
            folder.mkdir(parents=True)
            for t, frame in enumerate(clip):
                cv2.imwrite(str(folder / f"{t:05d}.png"), frame[:, :, ::-1])
    print(f"wrote {len(PHOTOS) * args.per_photo} clips of {args.frames} frames to {out / 'test'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
