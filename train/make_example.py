"""Write the demo's example inputs: ``jamsdk/assets/example_source.png`` and ``example_driving.mp4``.

Both are synthetic figures from :func:`jamsdk.train.figures.render_clip` with fixed seeds, so the
files are ours to ship and can be rebuilt at any time::

    python train/make_example.py [--out jamsdk/assets]

The source is the first frame of clip ``[2024, 7]``; the driving video is a different figure,
clip ``[2024, 6]``: 40 frames, 256×256, 10 fps, MPEG-4 part 2 (``mp4v``, the codec OpenCV's
wheels can write). The seeds were picked by eye from the first dozen for figures that stay
inside the frame.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from jamsdk._atomic import write_bytes
from jamsdk.train.figures import render_clip
from jamsdk.train.synth import FPS
from jamsdk.video_write import write_video

SEED = 2024
SOURCE_CLIP, DRIVING_CLIP = 7, 6
SIZE, FRAMES = 256, 40


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "jamsdk" / "assets")
    args = p.parse_args(argv)
    source = render_clip(np.random.default_rng([SEED, SOURCE_CLIP]), 1, SIZE)[0]
    ok, png = cv2.imencode(".png", np.ascontiguousarray(source[:, :, ::-1]))
    if not ok:
        raise RuntimeError("OpenCV could not encode the source PNG")
    write_bytes(args.out / "example_source.png", png.tobytes())
    driving = render_clip(np.random.default_rng([SEED, DRIVING_CLIP]), FRAMES, SIZE)
    write_video(args.out / "example_driving.mp4", driving, fps=FPS)
    for name in ("example_source.png", "example_driving.mp4"):
        print(f"{args.out / name}: {(args.out / name).stat().st_size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
