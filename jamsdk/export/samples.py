"""Inputs for exporting and checking stage graphs: plausible random tensors and a synthetic clip.

Random weights make some tensors degenerate (a random region predictor's heatmaps are nearly
uniform, so its covariances are all alike), so stage inputs are drawn the way a trained model's
look instead: region centres spread over the frame, covariances of σ ≈ 0.05–0.2 with their PCA
affines, flows near the identity grid, occlusions in (0, 1). Sample inputs come from running the
PyTorch model on a synthetic clip (moving, turning coloured ellipses over a textured background),
so no media file has to ship with the package.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from jamsdk.model.blocks import coordinate_grid
from jamsdk.model.linalg2x2 import pca_affine
from jamsdk.stages import Stage

if TYPE_CHECKING:
    from jamsdk.model.jam import JamModel

Feeds = dict[str, torch.Tensor]


def smooth_noise(shape: tuple[int, ...], gen: torch.Generator, cells: int = 8) -> torch.Tensor:
    """Low-frequency noise in about [-1, 1]: random values on a coarse grid, bicubically upsampled."""
    *lead, h, w = shape
    coarse = torch.rand(*lead, cells, cells, generator=gen) * 2 - 1
    flat = coarse.reshape(-1, 1, cells, cells)
    up = F.interpolate(flat, size=(h, w), mode="bicubic", align_corners=False)
    return up.reshape(*lead, h, w).clamp(-1, 1)


def random_image(size: int, gen: torch.Generator, channels: int = 3) -> torch.Tensor:
    """A smooth random picture (1, C, S, S) in [0, 1] with some fine texture."""
    base = 0.5 + 0.4 * smooth_noise((1, channels, size, size), gen)
    fine = 0.05 * (torch.rand(1, channels, size, size, generator=gen) * 2 - 1)
    return (base + fine).clamp(0, 1)


def random_region_params(k: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Region params of one frame like a trained predictor's: ``shift``, ``covar``, ``affine``."""
    shift = (torch.rand(1, k, 2, generator=gen) * 2 - 1) * 0.6
    sigma = 0.05 + 0.15 * torch.rand(1, k, 2, generator=gen)
    theta = torch.rand(1, k, generator=gen) * math.pi
    c, s = torch.cos(theta), torch.sin(theta)
    rot = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
    covar = rot @ torch.diag_embed(sigma**2) @ rot.transpose(-1, -2)
    covar = 0.5 * (covar + covar.transpose(-1, -2))
    return {"shift": shift, "covar": covar, "affine": pca_affine(covar)}


def random_feeds(stage: Stage, gen: torch.Generator) -> Feeds:
    """A plausible random value for every input of ``stage``, keyed by tensor name."""
    feeds: Feeds = {}
    regions: dict[str, dict[str, torch.Tensor]] = {}
    for spec in stage.inputs:
        name, shape = spec.name, spec.shape
        prefix, _, kind = name.rpartition("_")
        if name in ("image", "source", "driving"):
            feeds[name] = random_image(shape[-1], gen, shape[1])
        elif kind in ("shift", "covar", "affine"):
            if prefix not in regions:
                regions[prefix] = random_region_params(shape[1], gen)
            feeds[name] = regions[prefix][kind]
        elif name.startswith("source_feature_"):
            feeds[name] = torch.relu(torch.randn(*shape, generator=gen))
        elif name == "optical_flow":
            h, w = shape[1:3]
            grid = coordinate_grid(h, w).unsqueeze(0)
            feeds[name] = grid + 0.1 * smooth_noise((1, 2, h, w), gen).permute(0, 2, 3, 1)
        elif name == "occlusion_map":
            feeds[name] = torch.sigmoid(3 * smooth_noise(shape, gen))
        elif name == "bg_params":
            bg = torch.eye(3).unsqueeze(0).clone()
            bg[:, :2] += 0.05 * (torch.rand(1, 2, 3, generator=gen) * 2 - 1)
            feeds[name] = bg
        else:  # a new stage input needs a rule here; fail loudly rather than feed nonsense
            raise KeyError(f"no sample rule for input {name!r} of stage {stage.name!r}")
    return feeds


def synthetic_clip(size: int, frames: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(source (1, 3, S, S), driving (T, 3, S, S))``: ellipses that move and turn over a texture.

    The source is frame 0 of a second scene (other colours, same layout), as in animation, where
    the source is a different picture posed like the first driving frame.
    """
    gen = torch.Generator().manual_seed(seed)
    grid = coordinate_grid(size, size)
    gx, gy = grid[..., 0], grid[..., 1]
    n = 4
    centres = (torch.rand(n, 2, generator=gen) * 2 - 1) * 0.5
    axes = 0.12 + 0.18 * torch.rand(n, 2, generator=gen)
    angles = torch.rand(n, generator=gen) * math.pi
    velocity = (torch.rand(n, 2, generator=gen) * 2 - 1) * 0.04
    spin = (torch.rand(n, generator=gen) * 2 - 1) * 0.15

    def scene(colours: torch.Tensor, background: torch.Tensor, t: float) -> torch.Tensor:
        img = background.clone()
        for i in range(n):
            cx, cy = (centres[i] + velocity[i] * t).tolist()
            a = float(angles[i] + spin[i] * t)
            dx, dy = gx - cx, gy - cy
            u = (math.cos(a) * dx + math.sin(a) * dy) / axes[i, 0]
            v = (-math.sin(a) * dx + math.cos(a) * dy) / axes[i, 1]
            mask = torch.sigmoid((1 - (u * u + v * v)) * 12)  # soft edge
            img = img * (1 - mask) + colours[i].view(3, 1, 1) * mask
        return img.clamp(0, 1)

    def background() -> torch.Tensor:
        return (0.5 + 0.3 * smooth_noise((3, size, size), gen, cells=6)
                + 0.05 * torch.sin(gx * 20 + gy * 13)).clamp(0, 1)

    drv_colours, drv_bg = torch.rand(n, 3, generator=gen), background()
    src_colours, src_bg = torch.rand(n, 3, generator=gen), background()
    source = scene(src_colours, src_bg, 0.0).unsqueeze(0)
    driving = torch.stack([scene(drv_colours, drv_bg, float(t)) for t in range(frames)])
    return source, driving


@torch.no_grad()
def pipeline_feeds(model: "JamModel", stages: dict[str, Stage], source: torch.Tensor,
                   driving: torch.Tensor) -> dict[str, Feeds]:
    """Every stage's inputs as the standard-mode pipeline produces them for one driving frame."""
    src = model.region_predictor(source)
    drv = model.region_predictor(driving)
    feats = model.generator.encode(source)
    bg = model.bg_motion(source, driving) if "bg_motion" in stages else None
    motion = model.dense_motion(source, drv, src, bg)
    values: Feeds = {"image": driving, "source": source, "driving": driving,
                     "optical_flow": motion["optical_flow"], "occlusion_map": motion["occlusion_map"]}
    for prefix, params in (("source", src), ("driving", drv)):
        for kind in ("shift", "covar", "affine"):
            values[f"{prefix}_{kind}"] = params[kind]
    values.update({f"source_feature_{i}": f for i, f in enumerate(feats)})
    if bg is not None:
        values["bg_params"] = bg
    return {name: {s.name: values[s.name] for s in st.inputs} for name, st in stages.items()}


# Pre-activation spread each head gets in trained_like (std over the frame).
_HEAD_TARGETS = {
    ("region_predictor", "regions"): 8.0,   # logits/T: compact heatmaps on same-coloured blobs
    ("dense_motion", "mask"): 2.0,          # a mask that picks regions instead of averaging them
    ("dense_motion", "occlusion"): 2.0,     # occlusion spread over (0, 1), not stuck at 0.5
    ("generator", "final"): 1.5,            # decoded colours over the whole [0, 1] range
}


@torch.no_grad()
def trained_like(model: "JamModel", seed: int = 0) -> "JamModel":
    """Rescale a freshly built model's output heads so its outputs look like a trained model's.

    A random model's heads are nearly constant (uniform heatmaps with covariances ≈ 0.33, occlusion
    ≈ 0.5, decoded frame ≈ 0.49 ± 0.01), which hides export and FP16 errors rather than showing
    them. Each head conv (weights and bias) is scaled so that its pre-activation spread on the
    synthetic clip reaches :data:`_HEAD_TARGETS`; the background predictor's zero-initialised last
    layer gets small random weights. Random features give spatially white logits, whose softmax is
    scattered over the whole frame (covariances ≈ 1/3 as for uniform heatmaps), so the region head
    also reads the image itself (the hourglass passes it through as its last channels): each region
    follows one colour, i.e. one blob of the clip, as a trained region follows one part. For tests
    and benchmarks only; never for a model to ship.
    """
    gen = torch.Generator().manual_seed(seed)
    size = model.cfg.image_size
    source, driving = synthetic_clip(size, 2, seed)
    regions = model.region_predictor.regions
    c, k, centre = model.cfg.num_channels, regions.out_channels, regions.kernel_size[0] // 2
    colours = torch.randn(k, c, generator=gen)
    regions.weight.mul_(0.05)
    regions.weight[:, -c:] = 0.0
    regions.weight[:, -c:, centre, centre] = colours / colours.norm(dim=1, keepdim=True)
    regions.bias.zero_()
    if not model.bg_motion.is_identity:
        fc = model.bg_motion.fc
        fc.weight.copy_(torch.randn(fc.weight.shape, generator=gen) * 0.02)
    stats: dict[tuple[str, str], float] = {}
    hooks = []
    for key in _HEAD_TARGETS:
        conv = getattr(getattr(model, key[0]), key[1], None)
        if conv is None:
            continue
        temperature = model.region_predictor.temperature if key[0] == "region_predictor" else 1.0
        hooks.append(conv.register_forward_hook(
            lambda _m, _i, out, key=key, t=temperature: stats.__setitem__(key, float((out / t).std()))))
    model.eval()
    try:
        model(source, driving[1:2])
    finally:
        for h in hooks:
            h.remove()
    for key, std in stats.items():
        conv = getattr(getattr(model, key[0]), key[1])
        scale = _HEAD_TARGETS[key] / max(std, 1e-12)
        conv.weight.mul_(scale)
        if conv.bias is not None:
            conv.bias.mul_(scale)
    return model
