"""Where the edge rim of animated frames comes from: the runtime, or the model's padding.

    python benchmarks/edge_rim.py                                   # the bundled example clip, demo model
    python benchmarks/edge_rim.py --driving talk.mp4 --frames 8     # real footage (any clip)
    python benchmarks/edge_rim.py --checkpoint ckpt.pt --model DIR  # another model and its export

Each driving frame is reconstructed from itself (source = driving = the frame, standard mode), so a
perfect model returns its input; the mean absolute error (0..255 levels) is reported per ring of
pixels at distance 0, 1, 2, … from the border of the model-resolution output, and inside (≥ 8 px).
Rows:

- ``runtime``: ``jamsdk.Animator`` on the exported folder (ONNX Runtime, uint8 frame in and out);
- ``pytorch``: the checkpoint in PyTorch on the same model-space tensor, as trained;
- ``warps border``: the same, every ``grid_sample`` with ``padding_mode="border"`` instead of zeros;
- ``convs replicate``: every padded convolution with ``padding_mode="replicate"`` instead of zeros;
- ``both``: both changes (same weights).

The runtime row equal to the pytorch row shows the runtime adds nothing (its crop/resize is a plain
INTER_AREA box average, no padding); the last rows show how much of the rim is the model's zero
padding.
Writes the table as markdown with ``--markdown OUT``.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np

RINGS = (0, 1, 2, 3, 4, 6)
VARIANTS = ("pytorch", "warps border", "convs replicate", "both")


def ring_errors(out: np.ndarray, ref: np.ndarray) -> list[float]:
    """Mean |out − ref| over channels per ring (distance to the nearest border) and inside (≥ 8)."""
    err = np.abs(out.astype(np.float64) - ref.astype(np.float64)).mean(-1)
    h, w = err.shape
    i, j = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    dist = np.minimum.reduce([i, j, h - 1 - i, w - 1 - j])
    return [float(err[dist == r].mean()) for r in RINGS] + [float(err[dist >= 8].mean())]


def run_variant(model, x: np.ndarray, variant: str) -> np.ndarray:
    """The PyTorch reconstruction of model-space ``x`` with the variant's padding (weights unchanged)."""
    import torch
    import torch.nn.functional as F

    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.padding != (0, 0)]
    saved = [m.padding_mode for m in convs]
    if variant in ("convs replicate", "both"):
        for m in convs:
            m.padding_mode = "replicate"
    pad = "border" if variant in ("warps border", "both") else "zeros"
    grid_sample = F.grid_sample

    def patched(inp, grid, mode="bilinear", padding_mode="zeros", align_corners=None):  # noqa: ANN001, ANN202
        return grid_sample(inp, grid, mode=mode, padding_mode=pad, align_corners=align_corners)

    F.grid_sample = patched
    try:
        with torch.no_grad():
            xt = torch.from_numpy(x)
            return model.animate(xt, xt, mode="standard").numpy()
    finally:
        F.grid_sample = grid_sample
        for m, mode in zip(convs, saved):
            m.padding_mode = mode


def main(argv: list[str] | None = None) -> int:
    from jamsdk import bundled

    p = argparse.ArgumentParser(description="Edge rim of reconstructed frames: runtime vs the model's padding.")
    p.add_argument("--driving", default=str(bundled.ASSETS / "example_driving.mp4"), metavar="VIDEO",
                   help="clip whose frames are reconstructed (default: the bundled example)")
    p.add_argument("--checkpoint", default=str(bundled.DEMO_CHECKPOINT), metavar="CKPT",
                   help="jamsdk checkpoint (default: the bundled demo model's)")
    p.add_argument("--model", default="demo", metavar="DIR", help="its exported folder (default: demo)")
    p.add_argument("--frames", type=int, default=8, metavar="N", help="frames to use (default 8)")
    p.add_argument("--markdown", metavar="OUT", help="also write the table as markdown")
    args = p.parse_args(argv)

    import jamsdk
    from jamsdk.model.checkpoint import load_model
    from jamsdk.runtime.frames import to_image, to_model_input
    from jamsdk.video import read_frames

    warnings.simplefilter("ignore", bundled.DemoModelWarning)
    model, _ = load_model(args.checkpoint)
    model.eval()
    size = model.cfg.image_size
    frames = read_frames(args.driving, max_frames=args.frames)
    rows: dict[str, list[list[float]]] = {name: [] for name in ("runtime", *VARIANTS)}
    with jamsdk.Animator(bundled.resolve_model(args.model), backend="onnxruntime", mode="standard") as anim:
        if anim.image_size != size:
            raise SystemExit(f"--model is {anim.image_size}², --checkpoint {size}²: not the same model")
        for frame in frames:
            x = to_model_input(frame, size)
            target = to_image(x, size)  # the model-space input as uint8: what a perfect model returns
            anim.set_source(frame)
            anim.reset()
            rows["runtime"].append(ring_errors(anim.run(frame), target))
            for variant in VARIANTS:
                rows[variant].append(ring_errors(to_image(run_variant(model, x, variant), size), target))
    head = "| | " + " | ".join(f"ring {r}" for r in RINGS) + " | inside (≥ 8) |"
    lines = [f"{Path(args.driving).name}, {len(frames)} frames, {model.cfg.name} at {size}²: mean |error| in "
             "levels per ring of pixels from the border", "", head, "|---" * (len(RINGS) + 2) + "|"]
    for name, values in rows.items():
        mean = np.mean(values, axis=0)
        lines.append(f"| {name} | " + " | ".join(f"{v:.1f}" for v in mean) + " |")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        from jamsdk._atomic import write_bytes

        write_bytes(args.markdown, (text + "\n").encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
