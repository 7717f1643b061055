"""Make docs/strip.png: the bundled model animating the bundled example, the picture on the front page.

    python docs/make_strip.py                    # the bundled model (--model demo) → docs/strip.png
    python docs/make_strip.py --model DIR --out strip.png --every 5 --columns 7

Top row: the driving frames; bottom row: the animated picture; first column: the source picture.
Rerun it whenever the bundled model changes (the README and docs/index.md show the result).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent


def strip(model: str, every: int, columns: int, side: int = 128) -> np.ndarray:
    """The strip as an RGB uint8 array: (2·side, (columns + 1)·side, 3)."""
    import jamsdk
    from jamsdk.bundled import ASSETS
    from jamsdk.pictures import read_image
    from jamsdk.pixels import center_crop_resize
    from jamsdk.video import iter_frames

    picture = read_image(ASSETS / "example_source.png")
    driving, results = [], []
    with jamsdk.Animator(model, backend="onnxruntime") as anim:
        anim.set_source(picture)
        for i, frame in enumerate(iter_frames(ASSETS / "example_driving.mp4")):
            result = anim.run(frame)  # every frame: the relative mode follows the whole motion
            if i % every == 0 and len(results) < columns:
                driving.append(center_crop_resize(frame, side))
                results.append(cv2.resize(result, (side, side), interpolation=cv2.INTER_AREA))
    blank = np.full((side, side, 3), 255, np.uint8)
    top = np.concatenate([_label(blank, "driving"), *driving], axis=1)
    bottom = np.concatenate([_label(center_crop_resize(picture, side), "source"), *results], axis=1)
    return np.concatenate([top, bottom], axis=0)


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    out = tile.copy()
    cv2.putText(out, text, (6, out.shape[0] - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, text, (6, out.shape[0] - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="demo", help="model folder, or demo (default) for the bundled model")
    p.add_argument("--out", default=str(HERE / "strip.png"), help="PNG to write (default docs/strip.png)")
    p.add_argument("--every", type=int, default=5, help="keep every N-th frame (default 5)")
    p.add_argument("--columns", type=int, default=7, help="animated frames shown (default 7)")
    args = p.parse_args(argv)
    image = strip(args.model, args.every, args.columns)
    ok, data = cv2.imencode(".png", image[:, :, ::-1])
    if not ok:
        raise SystemExit("could not encode the strip")
    Path(args.out).write_bytes(data.tobytes())
    print(f"wrote {args.out}: {image.shape[1]}×{image.shape[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
