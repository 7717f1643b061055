"""`jamsdk convert-mraa`: MRAA checkpoint import — layout, safety, typed errors and exact semantics.

The semantic tests compare the converted jamsdk model with ``MraaReference`` below: MRAA's forward
math written straight from MRAA_FACTS §2–§8 (torch.svd on the CPU for the PCA, torch.inverse for 2×2
inverses, the 6-D matmul form of the sparse motions and Gaussians, a gift-wrapping convex hull for
the relative mode), reading the *MRAA-named* tensors of the source checkpoint with functional ops.
So a wrong key mapping, a wrong block order or a different sign convention shows up as a difference.
"""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from jamsdk.cli import main
from jamsdk.config import read_yaml
from jamsdk.errors import CheckpointError, ConfigError, InputError
from jamsdk.model import build_model
from jamsdk.model.checkpoint import load_model
from jamsdk.model.linalg2x2 import pca_affine
from jamsdk.model.mraa_checkpoint import jam_key_to_mraa
from jamsdk.model.mraa_config import model_config_from_mraa
from jamsdk.model.mraa_import import load_mraa
from jamsdk.model.mraa_released import MRAA_CONFIGS
from jamsdk.model.region_predictor import heatmap_moments

DATA = Path(__file__).resolve().parents[1] / "data"
# The five released configs ship with jamsdk (convert-mraa picks them for the released checkpoints).
released_config = lambda name: MRAA_CONFIGS / f"{name}.yaml"  # noqa: E731
TINY = {"mgif": DATA / "mraa-tiny-mgif.yaml", "vox": DATA / "mraa-tiny-vox.yaml"}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Tiny ops only: one thread is as fast and does not spin against other work on a shared CPU.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------------------------------------
# The key listing of the released checkpoints (tests/data/mraa_keys.txt, a copy of the reference)


def read_listing(path: Path) -> dict[str, dict[str, dict]]:
    """{block: {section: {"tensors": n, "params": p, "keys": {name: (shape, dtype)}}}} for the
    ``mgif256`` block and the ``bg_affine`` block of the listing."""
    blocks: dict[str, dict[str, dict]] = {}
    block = section = None
    for line in path.read_text().splitlines():
        if line.startswith("# ====="):
            block = "mgif256" if "config mgif256" in line else "bg_affine" if "bg_type='affine'" in line else None
            continue
        head = re.match(r"## (\w+): (\d+) tensors, ([\d,]+) params", line)
        if head:
            section = head.group(1)
            if block:
                blocks.setdefault(block, {})[section] = {
                    "tensors": int(head.group(2)), "params": int(head.group(3).replace(",", "")), "keys": {}}
            continue
        if block is None or not line.strip() or line[0] in "# ":
            continue
        name, shape, dtype = line.split("\t")
        blocks[block][section]["keys"][name] = (tuple(int(d) for d in re.findall(r"\d+", shape)), dtype)
    return blocks


FULL = {  # released config → (bg_predictor block of the listing, parameters, region pad, bg_type)
    "mgif256": ("mgif256", 62_012_739, 0, "zero"),
    "vox256": ("bg_affine", 68_295_177, 3, "affine"),
}


def listing_checkpoint(name: str, seed: int = 0) -> dict:
    """An MRAA checkpoint of the released ``name`` model: every key and shape of the listing, with
    trained-like random values, plus the training entries MRAA saves."""
    listing = read_listing(DATA / "mraa_keys.txt")
    sections = {**{k: v for k, v in listing["mgif256"].items() if k != "bg_predictor"},
                "bg_predictor": listing[FULL[name][0]]["bg_predictor"]}
    assert listing["mgif256"]["bg_predictor"]["tensors"] == 0 and listing["bg_affine"]["bg_predictor"]["tensors"] == 37
    shapes = {}
    for sec, info in sections.items():
        assert len(info["keys"]) == info["tensors"]
        shapes.update({key: shape for key, (shape, _dtype) in info["keys"].items()})
    ckpt = trained_like(shapes, k=10, seed=seed)
    for sec in sections:
        ckpt.setdefault(sec, {})
    ckpt.update({"optimizer_reconstruction": {"state": {}, "param_groups": [{"lr": 2e-4}]},
                 "epoch_reconstruction": 99, "epoch_avd": 29})
    return ckpt, sections


@pytest.fixture(scope="module", params=sorted(FULL))
def full_size(request, tmp_path_factory):
    """(name, MRAA checkpoint, sections of the listing, captured CLI output, converted model, meta)."""
    name = request.param
    tmp = tmp_path_factory.mktemp(f"full-{name}")
    ckpt, sections = listing_checkpoint(name)
    src = tmp / f"{name}.pth"
    torch.save(ckpt, src, _use_new_zipfile_serialization=False)  # what torch 1.4 wrote
    out = tmp / f"{name}-jamsdk.pt"
    import contextlib
    import io

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        rc = main(["convert-mraa", "--checkpoint", str(src), "--config", str(released_config(name)),
                   "--out", str(out)])
    assert rc == 0, stderr.getvalue()
    assert sorted(p.name for p in tmp.iterdir()) == sorted([src.name, out.name])  # no temp files
    model, data = load_model(out)  # strict: every key present, nothing extra, shapes equal
    return name, ckpt, sections, (stdout.getvalue(), stderr.getvalue()), model, data["meta"]


def test_full_size_checkpoint_converts_and_loads_strictly(full_size):
    """Every key and shape of the released mgif256 / vox256 layouts (the listing; vox256 = the mgif256
    sections + the affine bg_predictor), in the released config layout, saved in torch 1.4's legacy
    format with training entries, converts and loads, value for value."""
    name, ckpt, sections, (out, err), model, meta = full_size
    params, pad, bg_type = FULL[name][1:]
    assert f"{params:,} parameters" in out
    assert "ignored training entries: epoch_avd, epoch_reconstruction, optimizer_reconstruction" in err
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(model.dense_motion) + count(model.generator) == sections["generator"]["params"] == 45_575_391
    assert count(model.region_predictor) == sections["region_predictor"]["params"] == 14_146_728
    assert count(model.bg_motion) == sections["bg_predictor"]["params"]
    assert count(model.avd) == sections["avd_network"]["params"] == 2_290_620
    state = model.state_dict()
    assert len(state) == sum(info["tensors"] for info in sections.values())
    for key, value in state.items():  # every tensor arrived under the right name, value for value
        sec, rest = jam_key_to_mraa(key).split(".", 1)
        assert torch.equal(value, ckpt[sec][rest]), key
    cfg = model.cfg
    assert (cfg.image_size, cfg.num_regions, cfg.region_predictor.pad, cfg.bg_motion.bg_type) == (256, 10, pad, bg_type)
    assert meta["source_checkpoint"]["file"] == f"{name}.pth"
    assert re.fullmatch(r"[0-9a-f]{64}", meta["source_checkpoint"]["sha256"])
    assert meta["mraa_config"]["model_params"]["bg_predictor_params"]["bg_type"] == bg_type
    assert meta["mraa_config"]["model_params"]["num_regions"] == 10


@torch.no_grad()
def test_full_size_conversion_matches_the_mraa_reference(full_size):
    """The converted released-size model computes what MRAA's formulas compute on the same tensors
    (regions, background, dense motion, prediction; relative and avd transfer), on 128×128 frames."""
    name, ckpt, _, _, model, _ = full_size
    ref = MraaReference(ckpt, read_yaml(released_config(name)))
    frames = synthetic_frames(3, size=128)  # the networks are convolutional: 128² keeps the test short
    source, driving = frames[:1], frames[2:3]
    r_src, r_drv, r_drv0 = ref.regions(source), ref.regions(driving), ref.regions(frames[1:2])
    j_src, j_drv = model.region_predictor(source), model.region_predictor(driving)
    d = max_diff(j_drv, r_drv, ["shift", "covar", "affine"])
    d.update({f"src.{k}": v for k, v in max_diff(j_src, r_src, ["shift", "covar", "affine"]).items()})
    bg = ref.background(source, driving) if FULL[name][3] == "affine" else None
    if bg is not None:
        d["bg"] = (model.bg_motion(source, driving) - bg).abs().max().item()
    for mode, params in (("relative", ref.relative(r_src, r_drv, r_drv0)), ("avd", ref.avd(r_src, r_drv))):
        ours = (model.transfer_params(r_src, r_drv, r_drv0, mode) if mode == "relative" else model.avd(r_src, r_drv))
        d.update({f"{mode}.{k}": v for k, v in max_diff(ours, params, ["shift", "affine"]).items()})
    ref_out = ref.generate(source, r_drv, r_src, bg)
    jam_out = model.animate_frame(source, r_src, r_drv, bg)
    d["prediction"] = (jam_out["prediction"] - ref_out["prediction"]).abs().max().item()
    d["occlusion"] = (jam_out["occlusion_map"] - ref_out["occlusion_map"]).abs().max().item()
    record(f"full.{name}", d)
    assert max(d.values()) < 1e-4, d
    assert ref_out["prediction"].std() > 1e-3  # not a flat picture: the comparison has content


# ---------------------------------------------------------------------------------------------
# Tiny MRAA-layout checkpoints with trained-like statistics


def tiny_mraa_checkpoint(config: Path, seed: int = 0) -> dict:
    """A random MRAA-layout checkpoint for ``config`` whose weights behave like trained ones:
    peaked region heatmaps (not the near-uniform ones of a fresh init), a near-identity but not
    identity background transform, non-trivial BatchNorm statistics."""
    cfg = model_config_from_mraa(read_yaml(config), 64)
    shapes = {jam_key_to_mraa(k): v for k, v in build_model(cfg).state_dict().items()}
    return trained_like(shapes, cfg.num_regions, seed)


def trained_like(shapes: dict, k: int, seed: int = 0) -> dict:
    """MRAA checkpoint sections with trained-like random values for ``{mraa name: tensor or shape}``
    (a tensor's value is kept for the fixed anti-alias buffers; for a bare shape they get a random
    normalised positive kernel, which both sides of a comparison then read from the checkpoint)."""
    gen = torch.Generator().manual_seed(seed)
    rand = lambda *s: torch.rand(*s, generator=gen)  # noqa: E731
    randn = lambda *s: torch.randn(*s, generator=gen)  # noqa: E731
    out: dict = {"generator": {}, "region_predictor": {}, "bg_predictor": {}, "avd_network": {}}
    for name, like in shapes.items():
        sec, key = name.split(".", 1)
        shape = like.shape if isinstance(like, torch.Tensor) else torch.Size(like)
        if key.endswith("num_batches_tracked"):
            value = torch.tensor(1000)
        elif key.endswith("down.weight"):  # the fixed anti-alias Gaussian buffer
            if isinstance(like, torch.Tensor):
                value = like.clone()
            else:
                value = rand(shape) + 0.1
                value = value / value.sum(dim=(2, 3), keepdim=True)
        elif key.endswith("running_mean"):
            value = 0.1 * randn(shape)
        elif key.endswith("running_var"):
            value = 0.5 + rand(shape)
        elif re.search(r"norm\d?\.weight$", key) or (sec == "avd_network" and len(shape) == 1
                                                        and key.endswith("weight")):  # BatchNorm scales
            value = 0.7 + 0.6 * rand(shape)
        elif key.endswith("bias") and len(shape) == 1 and not key.startswith("fc."):
            value = 0.05 * randn(shape)
        elif key == "fc.bias":  # the background transform: identity plus a little
            value = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]) + 0.03 * randn(shape)
        elif key == "fc.weight":
            value = 0.01 * randn(shape)
        else:  # conv / linear weights, He-scaled
            fan_in = math.prod(shape[1:])
            value = randn(shape) * math.sqrt(2.0 / fan_in)
            if key == "regions.weight":
                # Sharper heatmaps: region variances from ~3e-3 (like trained MRAA's σ² ≈ 2.5e-3) up.
                value = value * 1.5
        out[sec][key] = value
    # A trained AVD network outputs plausible regions (PCA-like affines of the source's scale), not
    # the arbitrary, sometimes near-singular ones a random last layer gives.
    out["avd_network"]["decoder.9.weight"] *= 0.05
    ang = math.pi * rand(k)
    u = torch.stack([torch.stack([ang.cos(), ang.sin()], -1), torch.stack([ang.sin(), -ang.cos()], -1)], -2)
    affine = u * (0.05 + 0.15 * rand(k, 1, 2))
    out["avd_network"]["decoder.9.bias"] = torch.cat([rand(k, 2) - 0.5, affine.reshape(k, 4)], dim=1).reshape(-1)
    return out


def save_tiny(tmp_path: Path, kind: str, **changes) -> Path:
    ckpt = tiny_mraa_checkpoint(TINY[kind])
    ckpt.update(changes)
    path = tmp_path / f"tiny-{kind}.pth"
    torch.save(ckpt, path)
    return path


def synthetic_frames(n: int, size: int = 64, seed: int = 1) -> torch.Tensor:
    """(n, 3, S, S) smooth pictures: a shaded background and coloured ellipses that move and turn."""
    gen = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    blobs = [(torch.rand(2, generator=gen) * 1.2 - 0.6, 0.15 + 0.25 * torch.rand(2, generator=gen),
              math.pi * torch.rand(1, generator=gen).item(), torch.rand(3, generator=gen)) for _ in range(5)]
    frames = []
    for t in range(n):
        img = torch.stack([0.3 + 0.2 * xs, 0.4 + 0.1 * ys, 0.5 - 0.15 * xs * ys])
        for i, (c, r, a, col) in enumerate(blobs):
            cx, cy = c + 0.08 * t * torch.tensor([math.cos(i), math.sin(i)])
            ang = a + 0.15 * t * (1 if i % 2 else -1)
            u = ((xs - cx) * math.cos(ang) + (ys - cy) * math.sin(ang)) / r[0]
            v = (-(xs - cx) * math.sin(ang) + (ys - cy) * math.cos(ang)) / r[1]
            w = torch.sigmoid(12 * (1 - (u * u + v * v)))
            img = img * (1 - w) + col.view(3, 1, 1) * w
        frames.append(img.clamp(0, 1))
    return torch.stack(frames)


# ---------------------------------------------------------------------------------------------
# MRAA's math, written from MRAA_FACTS, on MRAA-named tensors


def make_grid(h: int, w: int, dtype) -> torch.Tensor:
    """MRAA_FACTS §2: (h, w, 2), last axis (x, y), each 2·(i/(n−1)) − 1."""
    x = 2 * (torch.arange(w, dtype=dtype) / (w - 1)) - 1
    y = 2 * (torch.arange(h, dtype=dtype) / (h - 1)) - 1
    return torch.cat([x.view(1, -1).repeat(h, 1).unsqueeze(2), y.view(-1, 1).repeat(1, w).unsqueeze(2)], 2)


def gift_wrap_area(points: torch.Tensor) -> float:
    """Area of the convex hull of (N, 2) points: Jarvis march, then the shoelace formula."""
    pts = [tuple(map(float, p)) for p in points]
    start = min(pts)
    hull, cur = [], start
    while True:
        hull.append(cur)
        cand = pts[0] if pts[0] != cur else pts[1]
        for p in pts:
            cross = (cand[0] - cur[0]) * (p[1] - cur[1]) - (cand[1] - cur[1]) * (p[0] - cur[0])
            if cross < 0 or (cross == 0 and math.dist(cur, p) > math.dist(cur, cand)):
                cand = p
        cur = cand
        if cur == start:
            break
    return 0.5 * abs(sum(hull[i][0] * hull[i - 1][1] - hull[i - 1][0] * hull[i][1] for i in range(len(hull))))


class MraaReference:
    """MRAA's forward passes (MRAA_FACTS §2–§8) over an MRAA checkpoint's tensors, eval mode."""

    def __init__(self, ckpt: dict, mraa_yaml: dict):
        self.sd = {f"{sec}.{k}": v for sec, state in ckpt.items() if isinstance(state, dict) for k, v in state.items()}
        mp = mraa_yaml["model_params"]
        self.k = mp["num_regions"]  # MRAA's layout: model-wide keys directly under model_params
        self.revert = mp["revert_axis_swap"]
        self.rp = mp["region_predictor_params"]
        self.gp = mp["generator_params"]
        self.fp = self.gp["pixelwise_flow_predictor_params"]
        self.bg_type = mp["bg_predictor_params"]["bg_type"]
        self.bgp = mp["bg_predictor_params"]

    # blocks (§2)
    def conv(self, x, name, padding):
        return F.conv2d(x, self.sd[f"{name}.weight"], self.sd[f"{name}.bias"], padding=padding)

    def bn(self, x, name):
        sd = self.sd
        return F.batch_norm(x, sd[f"{name}.running_mean"], sd[f"{name}.running_var"], sd[f"{name}.weight"],
                            sd[f"{name}.bias"], training=False, eps=1e-5)

    def down(self, x, name):
        return F.avg_pool2d(F.relu(self.bn(self.conv(x, f"{name}.conv", 1), f"{name}.norm")), 2)

    def up(self, x, name):
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return F.relu(self.bn(self.conv(x, f"{name}.conv", 1), f"{name}.norm"))

    def hourglass(self, x, name, nb):
        outs = [x]
        for i in range(nb):
            outs.append(self.down(outs[-1], f"{name}.encoder.down_blocks.{i}"))
        out = outs.pop()
        for i in range(nb):
            out = torch.cat([self.up(out, f"{name}.decoder.up_blocks.{i}"), outs.pop()], dim=1)
        return out

    def anti_alias(self, x, name, scale):
        if scale == 1:
            return x
        kernel = self.sd[name]
        ka = kernel.shape[-1] // 2
        kb = ka - 1 if kernel.shape[-1] % 2 == 0 else ka
        out = F.conv2d(F.pad(x, (ka, kb, ka, kb)), kernel, groups=x.shape[1])
        step = int(round(1 / scale))
        return out[:, :, ::step, ::step]

    # region predictor (§3)
    def regions(self, img):
        rp = self.rp
        x = self.anti_alias(img, "region_predictor.down.weight", rp["scale_factor"])
        logits = self.conv(self.hourglass(x, "region_predictor.predictor", rp["num_blocks"]),
                           "region_predictor.regions", rp.get("pad", 3))
        b, k, h, w = logits.shape
        heat = F.softmax(logits.view(b, k, -1) / rp["temperature"], dim=2).view(b, k, h, w)
        grid = make_grid(h, w, img.dtype)
        shift = (heat.unsqueeze(-1) * grid).sum(dim=(2, 3))
        diff = (grid - shift.view(b, k, 1, 1, 2)).unsqueeze(-1)  # (B, K, h, w, 2, 1)
        covar = (heat.view(b, k, h, w, 1, 1) * (diff @ diff.transpose(-1, -2))).sum(dim=(2, 3))
        u, s, _v = torch.svd(covar.view(-1, 2, 2).cpu())  # on the CPU, as MRAA forces
        affine = (u @ torch.diag_embed(s.sqrt())).view(b, k, 2, 2)
        return {"shift": shift, "covar": covar, "affine": affine, "heatmap": heat}

    # pixelwise flow predictor (§4)
    def gaussians(self, mean, covar, h, w):
        grid = make_grid(h, w, mean.dtype)
        diff = (grid - mean[:, :, None, None]).unsqueeze(-1)  # (B, K, h, w, 2, 1)
        if isinstance(covar, float):
            return torch.exp(-0.5 * (diff**2).sum(dim=(-1, -2)) / covar)
        inv = torch.inverse(covar)[:, :, None, None]
        return torch.exp(-0.5 * (diff.transpose(-1, -2) @ inv @ diff).squeeze(-1).squeeze(-1))

    def sparse_motions(self, drv, src, h, w, bg_params):
        b, k = drv["shift"].shape[:2]
        grid = make_grid(h, w, drv["shift"].dtype)
        m = src["affine"] @ torch.inverse(drv["affine"])
        if self.revert:
            m = m * torch.sign(m[..., 0:1, 0:1])
        m = m.view(b, k, 1, 1, 2, 2).repeat(1, 1, h, w, 1, 1)
        z = (grid.view(1, 1, h, w, 2) - drv["shift"].view(b, k, 1, 1, 2)).unsqueeze(-1)
        regions = (m @ z).squeeze(-1) + src["shift"].view(b, k, 1, 1, 2)
        if bg_params is None:
            bg = grid.view(1, 1, h, w, 2).repeat(b, 1, 1, 1, 1)
        else:
            homog = torch.cat([grid, torch.ones(h, w, 1, dtype=grid.dtype)], dim=-1)
            t = (bg_params.view(b, 1, 1, 1, 3, 3) @ homog.view(1, 1, h, w, 3, 1)).squeeze(-1)
            bg = t[..., :2] / t[..., 2:]
        return torch.cat([bg, regions], dim=1)

    def dense_motion(self, source_image, drv, src, bg_params=None):
        fp, name = self.fp, "generator.pixelwise_flow_predictor"
        x = self.anti_alias(source_image, f"{name}.down.weight", fp["scale_factor"])
        b, c, h, w = x.shape
        k1 = self.k + 1
        if fp["use_covar_heatmap"]:
            heat = self.gaussians(drv["shift"], drv["covar"], h, w) - self.gaussians(src["shift"], src["covar"], h, w)
        else:
            var = fp.get("region_var", 0.01)
            heat = self.gaussians(drv["shift"], var, h, w) - self.gaussians(src["shift"], var, h, w)
        heat = torch.cat([torch.zeros(b, 1, h, w, dtype=x.dtype), heat], dim=1).unsqueeze(2)
        motions = self.sparse_motions(drv, src, h, w, bg_params)
        parts = [heat]
        if fp["use_deformed_source"]:
            rep = x.unsqueeze(1).repeat(1, k1, 1, 1, 1).view(b * k1, c, h, w)
            deformed = F.grid_sample(rep, motions.view(b * k1, h, w, 2), align_corners=False)
            parts.append(deformed.view(b, k1, c, h, w))
        feat = self.hourglass(torch.cat(parts, dim=2).view(b, -1, h, w), f"{name}.hourglass", fp["num_blocks"])
        mask = F.softmax(self.conv(feat, f"{name}.mask", 3), dim=1)
        flow = (motions * mask.unsqueeze(-1)).sum(dim=1)
        occlusion = torch.sigmoid(self.conv(feat, f"{name}.occlusion", 3))
        return {"optical_flow": flow, "occlusion_map": occlusion}

    # generator (§5)
    def generate(self, source_image, drv, src, bg_params=None):
        motion = self.dense_motion(source_image, drv, src, bg_params)
        flow, occ = motion["optical_flow"], motion["occlusion_map"]

        def apply_optical(inp, previous=None):
            h, w = inp.shape[2:]
            f, o = flow, occ
            if f.shape[1:3] != (h, w):
                f = F.interpolate(f.permute(0, 3, 1, 2), size=(h, w), mode="bilinear",
                                  align_corners=False).permute(0, 2, 3, 1)
            if o.shape[2:] != (h, w):
                o = F.interpolate(o, size=(h, w), mode="bilinear", align_corners=False)
            out = F.grid_sample(inp, f, align_corners=False) * o
            return out if previous is None else out + previous * (1 - o)

        out = F.relu(self.bn(self.conv(source_image, "generator.first.conv", 3), "generator.first.norm"))
        skips = [out]
        for i in range(self.gp["num_down_blocks"]):
            out = self.down(out, f"generator.down_blocks.{i}")
            skips.append(out)
        out = apply_optical(skips[-1])
        for i in range(self.gp["num_bottleneck_blocks"]):
            n = f"generator.bottleneck.r{i}"
            res = self.conv(F.relu(self.bn(out, f"{n}.norm1")), f"{n}.conv1", 1)
            out = out + self.conv(F.relu(self.bn(res, f"{n}.norm2")), f"{n}.conv2", 1)
        for i in range(self.gp["num_down_blocks"]):
            out = self.up(apply_optical(skips[-(i + 1)], previous=out), f"generator.up_blocks.{i}")
        out = apply_optical(skips[0], previous=out)
        out = torch.sigmoid(self.conv(out, "generator.final", 3))
        return {"prediction": apply_optical(source_image, previous=out), **motion}

    # background (§6)
    def background(self, source_image, driving_image):
        b = source_image.shape[0]
        x = torch.cat([source_image, driving_image], dim=1)
        for i in range(self.bgp["num_blocks"]):
            x = self.down(x, f"bg_predictor.encoder.down_blocks.{i}")
        p = F.linear(x.mean(dim=(2, 3)), self.sd["bg_predictor.fc.weight"], self.sd["bg_predictor.fc.bias"])
        assert self.bg_type == "affine"
        last = torch.tensor([0.0, 0.0, 1.0], dtype=p.dtype).view(1, 1, 3).repeat(b, 1, 1)
        return torch.cat([p.view(b, 2, 3), last], dim=1)

    # AVD network (§7)
    def mlp(self, x, name):
        for i in (0, 3, 6):
            x = F.linear(x, self.sd[f"{name}.{i}.weight"], self.sd[f"{name}.{i}.bias"])
            n = f"{name}.{i + 1}"
            x = F.relu(F.batch_norm(x, self.sd[f"{n}.running_mean"], self.sd[f"{n}.running_var"],
                                    self.sd[f"{n}.weight"], self.sd[f"{n}.bias"], training=False, eps=1e-5))
        return F.linear(x, self.sd[f"{name}.9.weight"], self.sd[f"{name}.9.bias"])

    def avd(self, src, drv):
        b, k = src["shift"].shape[:2]
        a_id = src["affine"]
        if self.revert:
            a_id = a_id * torch.sign((a_id @ torch.inverse(drv["affine"]))[..., 0:1, 0:1])
        x_id = torch.cat([src["shift"], a_id.reshape(b, k, 4)], dim=-1).view(b, -1)
        x_pose = torch.cat([drv["shift"], drv["affine"].reshape(b, k, 4)], dim=-1).view(b, -1)
        rec = self.mlp(torch.cat([self.mlp(x_pose, "avd_network.pose_encoder"),
                                  self.mlp(x_id, "avd_network.id_encoder")], dim=1), "avd_network.decoder")
        rec = rec.view(b, k, 6)
        affine = rec[..., 2:].reshape(b, k, 2, 2)
        return {"shift": rec[..., :2], "affine": affine, "covar": affine @ affine.transpose(-1, -2)}

    # animation modes (§8)
    def relative(self, src, drv, drv0):
        scale = math.sqrt(gift_wrap_area(src["shift"][0])) / math.sqrt(gift_wrap_area(drv0["shift"][0]))
        shift = src["shift"] + (drv["shift"] - drv0["shift"]) * scale
        affine = drv["affine"] @ torch.inverse(drv0["affine"]) @ src["affine"]
        return {"shift": shift, "affine": affine, "covar": drv["covar"]}

    def animate(self, source, frames, mode):
        src = self.regions(source)
        drv0 = self.regions(frames[:1])
        outs = []
        for t in range(frames.shape[0]):
            drv = self.regions(frames[t:t + 1])
            params = {"standard": lambda: drv, "relative": lambda: self.relative(src, drv, drv0),
                      "avd": lambda: self.avd(src, drv)}[mode]()
            outs.append(self.generate(source, params, src)["prediction"])
        return torch.cat(outs)


# ---------------------------------------------------------------------------------------------
# Semantic equivalence


def max_diff(a: dict, b: dict, keys) -> dict:
    return {k: (a[k] - b[k]).abs().max().item() for k in keys}


@pytest.fixture(scope="module", params=["mgif", "vox"])
def converted(request, tmp_path_factory):
    """(kind, MRAA checkpoint dict, MRAA yaml, converted jamsdk model) for a tiny config."""
    kind = request.param
    tmp = tmp_path_factory.mktemp(f"mraa-{kind}")
    ckpt = tiny_mraa_checkpoint(TINY[kind])
    src, out = tmp / "tiny.pth", tmp / "tiny-jamsdk.pt"
    torch.save(ckpt, src)
    assert main(["convert-mraa", "--checkpoint", str(src), "--config", str(TINY[kind]), "--out", str(out), "--size", "64"]) == 0
    model, _ = load_model(out)
    return kind, ckpt, read_yaml(TINY[kind]), model


DIFFS: dict[str, float] = {}  # measured maxima, printed when the module finishes (pytest -s)


@pytest.fixture(scope="module", autouse=True)
def print_measured_differences():
    yield
    for k in sorted(DIFFS):
        print(f"max |jamsdk − MRAA reference| {k}: {DIFFS[k]:.2e}")


def record(prefix: str, diffs: dict) -> None:
    for k, v in diffs.items():
        DIFFS[f"{prefix}.{k}"] = max(DIFFS.get(f"{prefix}.{k}", 0.0), v)


@torch.no_grad()
def test_region_params_dense_motion_and_prediction_match_mraa(converted):
    kind, ckpt, mraa_yaml, model = converted
    ref = MraaReference(ckpt, mraa_yaml)
    frames = synthetic_frames(4)
    source, driving = frames[:1].repeat(2, 1, 1, 1), frames[2:4]  # batch 2
    r_src, r_drv = ref.regions(source), ref.regions(driving)
    j_src, j_drv = model.region_predictor(source), model.region_predictor(driving)

    # trained-like heatmaps: peaked, with well separated covariance eigenvalues
    heat = r_drv["heatmap"]
    assert heat.shape[-1] == (10 if kind == "mgif" else 16)  # pad 0 (58-style) vs the default pad 3
    uniform = 1.0 / heat[0, 0].numel()
    assert heat.amax(dim=(2, 3)).min() > 5 * uniform
    ev = torch.linalg.eigvalsh(r_drv["covar"])
    assert (ev[..., 1] / ev[..., 0]).min() > 1.05  # no near-isotropic region: the PCA signs are defined

    d = max_diff(j_src, r_src, ["shift", "covar", "affine", "heatmap"])
    d2 = max_diff(j_drv, r_drv, ["shift", "covar", "affine", "heatmap"])
    record("regions", {k: max(d[k], d2[k]) for k in d})
    assert max(d.values()) < 1e-5 and max(d2.values()) < 1e-5, (d, d2)

    bg = None
    if kind == "vox":
        bg = ref.background(source, driving)
        j_bg = model.bg_motion(source, driving)
        record("bg_params", {"bg": (bg - j_bg).abs().max().item()})
        assert (bg - j_bg).abs().max() < 1e-5
        assert (bg - torch.eye(3)).abs().max() > 1e-3  # a real background motion is exercised
    ref_out = ref.generate(source, r_drv, r_src, bg)
    dense = model.dense_motion(source, r_drv, r_src, bg)
    d = max_diff(dense, ref_out, ["optical_flow", "occlusion_map"])
    jam_out = model.animate_frame(source, r_src, r_drv, bg)
    d["prediction"] = (jam_out["prediction"] - ref_out["prediction"]).abs().max().item()
    record("dense+generator", d)
    assert max(d.values()) < 1e-5, d


@torch.no_grad()
def test_avd_and_relative_mode_match_mraa(converted):
    kind, ckpt, mraa_yaml, model = converted
    ref = MraaReference(ckpt, mraa_yaml)
    frames = synthetic_frames(5)
    src, drv0 = ref.regions(frames[:1]), ref.regions(frames[1:2])
    for t in (2, 4):
        drv = ref.regions(frames[t:t + 1])
        d = max_diff(model.avd(src, drv), ref.avd(src, drv), ["shift", "affine", "covar"])
        record("avd", d)
        assert max(d.values()) < 1e-5, d
        d = max_diff(model.transfer_params(src, drv, drv0, "relative"), ref.relative(src, drv, drv0),
                     ["shift", "affine", "covar"])
        record("relative", d)
        assert max(d.values()) < 1e-5, d
    # The AVD input sees the PCA sign: flipping one source axis changes its output (so the
    # agreement above is a real check of the convention, not of a sign-blind network).
    flipped = dict(src, affine=src["affine"] * torch.tensor([1.0, -1.0]))
    assert (model.avd(flipped, drv)["shift"] - model.avd(src, drv)["shift"]).abs().max() > 1e-4


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 5e-5), (torch.float64, 1e-11)])
@torch.no_grad()
def test_animation_end_to_end_matches_mraa(converted, dtype, tol):
    """Whole animations in every mode; in float64 the two agree to rounding, showing that the
    float32 differences are rounding (adjugate vs LAPACK inverse, closed-form vs LAPACK PCA)."""
    kind, ckpt, mraa_yaml, model = converted
    ckpt = {s: ({k: (v.to(dtype) if v.is_floating_point() else v) for k, v in st.items()}
                if isinstance(st, dict) else st) for s, st in ckpt.items()}
    ref = MraaReference(ckpt, mraa_yaml)
    model = copy.deepcopy(model).to(dtype)  # float32 weights → float64 is exact
    frames = synthetic_frames(4).to(dtype)
    for mode in ("standard", "relative", "avd"):
        ours = model.animate(frames[:1], frames[1:], mode)
        theirs = ref.animate(frames[:1], frames[1:], mode)
        diff = (ours - theirs).abs().max().item()
        record(f"animate.{mode}.{str(dtype)[6:]}", {"prediction": diff})
        assert diff < tol, (mode, diff)


def test_pca_of_synthetic_heatmaps_matches_torch_svd():
    """Many anisotropic Gaussian heatmaps (any orientation) on 58² and 64² grids:
    heatmap_moments + the closed-form PCA equal MRAA's moments + CPU torch.svd, signs included."""
    gen = torch.Generator().manual_seed(3)
    for size in (58, 64):
        n = 2000
        grid = make_grid(size, size, torch.float32)
        mean = torch.rand(n, 2, generator=gen) * 1.4 - 0.7
        ang = torch.rand(n, generator=gen).view(n, 1, 1) * math.pi
        sd = 0.03 + 0.25 * torch.rand(n, 2, generator=gen)
        dx, dy = grid[..., 0] - mean[:, 0, None, None], grid[..., 1] - mean[:, 1, None, None]
        u = (dx * ang.cos() + dy * ang.sin()) / sd[:, 0, None, None]  # coordinates along the axes
        v = (-dx * ang.sin() + dy * ang.cos()) / sd[:, 1, None, None]
        heat = torch.softmax(-0.5 * (u * u + v * v).view(n, -1), dim=1).view(1, n, size, size)
        shift, covar = heatmap_moments(heat)
        ref_shift = (heat[0].unsqueeze(-1) * grid).sum(dim=(1, 2))
        d = (grid - ref_shift.view(n, 1, 1, 2)).unsqueeze(-1)
        ref_covar = (heat[0].view(n, size, size, 1, 1) * (d @ d.transpose(-1, -2))).sum(dim=(1, 2))
        u, s, _ = torch.svd(ref_covar)
        ref_affine = u @ torch.diag_embed(s.sqrt())
        ev = torch.linalg.eigvalsh(ref_covar)
        keep = ev[:, 1] > 1.01 * ev[:, 0]  # equal eigenvalues have no defined eigenvectors
        assert keep.sum() > 0.95 * n
        record(f"synthetic{size}", {
            "shift": (shift[0] - ref_shift).abs().max().item(),
            "covar": (covar[0] - ref_covar).abs().max().item(),
            "affine": (pca_affine(covar[0])[keep] - ref_affine[keep]).abs().max().item()})
        assert (shift[0] - ref_shift).abs().max() < 1e-5
        assert (covar[0] - ref_covar).abs().max() < 1e-5
        assert (pca_affine(covar[0])[keep] - ref_affine[keep]).abs().max() < 1e-5


# ---------------------------------------------------------------------------------------------
# Variants that must be accepted


def test_mgif_without_bg_and_avd_is_accepted(tmp_path, capsys):
    path = save_tiny(tmp_path, "mgif", bg_predictor=None, optimizer_avd={"state": {}})
    ckpt = torch.load(path, weights_only=True)
    del ckpt["avd_network"]  # a stage-1 checkpoint
    # saved from a DataParallel wrapper
    ckpt["region_predictor"] = {f"module.{k}": v for k, v in ckpt["region_predictor"].items()}
    torch.save(ckpt, path)
    out = tmp_path / "out.pt"
    args = ["convert-mraa", "--checkpoint", str(path), "--config", str(TINY["mgif"]), "--out", str(out), "--size", "128"]
    assert main(args) == 0
    assert "no avd_network" in capsys.readouterr().err
    model, data = load_model(out)
    assert model.avd is None and model.cfg.image_size == 128 and model.cfg.bg_motion.bg_type == "zero"
    assert data["meta"]["source_checkpoint"]["ignored_entries"] == ["optimizer_avd"]
    with pytest.raises(InputError, match="avd mode needs"):
        model.animate(torch.rand(1, 3, 128, 128), torch.rand(1, 3, 128, 128), "avd")


# ---------------------------------------------------------------------------------------------
# Errors name the problem


def convert(path: Path, config: Path, size: int = 64):
    return load_mraa(path, config, size)


def test_missing_extra_and_mis_shaped_keys_are_named_mraa_style(tmp_path):
    ckpt = tiny_mraa_checkpoint(TINY["mgif"])
    del ckpt["generator"]["final.bias"]
    ckpt["generator"]["extra.weight"] = torch.zeros(1)
    ckpt["region_predictor"]["regions.weight"] = torch.zeros(5, 11, 7, 7)
    path = tmp_path / "bad.pth"
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError) as info:
        convert(path, TINY["mgif"])
    msg = str(info.value)
    assert "missing in the checkpoint (1): generator.final.bias" in msg
    assert "unexpected in the checkpoint (1): generator.extra.weight" in msg
    assert "region_predictor.regions.weight: checkpoint (5, 11, 7, 7) vs config (4, 11, 7, 7)" in msg


def test_fomm_jacobian_and_bg_mismatch_get_hints(tmp_path):
    path = save_tiny(tmp_path, "mgif")
    ckpt = torch.load(path, weights_only=True)
    ckpt["region_predictor"]["jacobian.weight"] = torch.zeros(4, 11, 7, 7)
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match=r"jacobian.weight.*regression-jacobian"):
        convert(path, TINY["mgif"])
    path = save_tiny(tmp_path, "vox", bg_predictor={})  # config says affine, file has none
    with pytest.raises(CheckpointError, match=r"missing in the checkpoint \(23\): bg_predictor\.encoder.*bg_type"):
        convert(path, TINY["vox"])


def write_yaml(tmp_path: Path, base: Path, edit) -> Path:
    data = yaml.safe_load(base.read_text())
    edit(data["model_params"])
    path = tmp_path / f"edited-{len(list(tmp_path.iterdir()))}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("edit, error, match", [
    (lambda mp: mp["region_predictor_params"].update(pca_based=False), ConfigError,
     r"pca_based: expected true.*regression-jacobian"),
    (lambda mp: mp.pop("num_regions"), ConfigError, r"model_params\.num_regions: missing"),
    (lambda mp: mp.update(estimate_affine=False), ConfigError, r"model_params\.estimate_affine: expected true"),
    (lambda mp: mp.update(num_kpts=3), ConfigError, r"model_params\.num_kpts: unknown key"),
    (lambda mp: mp["generator_params"].update(fancy=1), ConfigError, r"generator_params\.fancy: unknown key"),
    (lambda mp: mp["region_predictor_params"].update(temperature="hot"), ConfigError,
     r"region_predictor_params\.temperature: expected float, got 'hot'"),
    (lambda mp: mp["bg_predictor_params"].update(bg_type="wobbly"), ConfigError, r"bg_type: expected one of"),
    (lambda mp: mp.update(kp_detector_params={}), ConfigError, r"kp_detector_params: this is the layout of a FOMM"),
    (lambda mp: mp.update(revert_axis_swap=False), ConfigError,
     r"avd_network_params\.revert_axis_swap is True \(MRAA's default\)"),
])
def test_bad_mraa_configs(tmp_path, edit, error, match):
    path = save_tiny(tmp_path, "mgif")
    with pytest.raises(error, match=match):
        convert(path, write_yaml(tmp_path, TINY["mgif"], edit))


RELEASED = {  # config → (size it was trained at, K, region pad, bg_type)
    "mgif256": (256, 10, 0, "zero"), "vox256": (256, 10, 3, "affine"), "taichi256": (256, 10, 0, "affine"),
    "ted384": (384, 10, 0, "affine"), "ted-youtube384": (384, 20, 0, "affine"),
}


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_every_released_config_layout_is_read(name):
    raw = read_yaml(released_config(name))
    assert "common_params" not in raw["model_params"] and "num_regions" in raw["model_params"]  # the real layout
    assert set(raw) == {"dataset_params", "model_params", "train_params", "train_avd_params",
                        "reconstruction_params", "animate_params", "visualizer_params"}
    size, k, pad, bg_type = RELEASED[name]
    cfg = model_config_from_mraa(raw, size, name=f"mraa-{name}")
    assert (cfg.image_size, cfg.num_regions, cfg.region_predictor.pad, cfg.bg_motion.bg_type) == (size, k, pad, bg_type)
    assert cfg.avd.enabled and cfg.revert_axis_swap and cfg.region_predictor.attention == "none"
    assert (cfg.region_predictor.max_features, cfg.dense_motion.max_features, cfg.generator.max_features) == \
        (1024, 1024, 512)


def fomm_config() -> dict:
    """FOMM's model_params layout (first-order-model config/mgif-256.yaml, as MRAA_FACTS §10 describes it)."""
    return {"dataset_params": {"frame_shape": [256, 256, 3]},
            "model_params": {"common_params": {"num_kp": 10, "num_channels": 3, "estimate_jacobian": True},
                             "kp_detector_params": {"temperature": 0.1, "block_expansion": 32, "max_features": 1024,
                                                    "scale_factor": 0.25, "num_blocks": 5,
                                                    "single_jacobian_map": True},
                             "generator_params": {"block_expansion": 64, "max_features": 512,
                                                  "num_down_blocks": 2, "num_bottleneck_blocks": 6,
                                                  "estimate_occlusion_map": True,
                                                  "dense_motion_params": {"block_expansion": 64,
                                                                          "max_features": 1024, "num_blocks": 5,
                                                                          "scale_factor": 0.25}},
                             "discriminator_params": {"scales": [1], "block_expansion": 32, "max_features": 512,
                                                      "num_blocks": 4, "sn": True}}}


def test_fomm_layouts_are_refused_clearly(tmp_path):
    path = save_tiny(tmp_path, "mgif")
    fomm = tmp_path / "mgif-256.yaml"
    fomm.write_text(yaml.safe_dump(fomm_config()))
    with pytest.raises(ConfigError, match=r"model_params\.common_params: this is the layout of a FOMM "
                                          r"\(first-order-model\) config.*directly under model_params"):
        convert(path, fomm)
    # jamsdk's earlier invented layout (MRAA keys inside common_params) is FOMM's shape too
    old = read_yaml(TINY["mgif"])
    mp = old["model_params"]
    mp["common_params"] = {key: mp.pop(key) for key in ("num_regions", "num_channels", "estimate_affine",
                                                         "revert_axis_swap")}
    (tmp_path / "old.yaml").write_text(yaml.safe_dump(old))
    with pytest.raises(ConfigError, match=r"common_params: this is the layout of a FOMM"):
        convert(path, tmp_path / "old.yaml")


def test_size_is_validated(tmp_path, capsys):
    path = save_tiny(tmp_path, "mgif")
    with pytest.raises(ConfigError, match=r"size 72 does not fit.*2\*\*num_blocks.*sizes that fit: 32, 64"):
        convert(path, TINY["mgif"], size=72)
    out = tmp_path / "x.pt"
    assert main(["convert-mraa", "--checkpoint", str(path), "--config", str(TINY["mgif"]), "--out", str(out), "--size", "72"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jamsdk convert-mraa: error:") and err.count("\n") == 1 and not out.exists()


def test_corrupt_truncated_and_missing_files(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"garbage" * 10)
    with pytest.raises(CheckpointError, match="corrupt or not a torch checkpoint"):
        convert(bad, TINY["mgif"])
    good = save_tiny(tmp_path, "mgif")
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        convert(bad, TINY["mgif"])
    with pytest.raises(CheckpointError, match="does not exist"):
        convert(tmp_path / "nope.pth", TINY["mgif"])
    torch.save({"generator": {}, "discriminator": {}}, bad)
    with pytest.raises(CheckpointError, match=r"unexpected top-level entries: discriminator"):
        convert(bad, TINY["mgif"])
    torch.save({"generator": {}}, bad)
    with pytest.raises(CheckpointError, match=r"missing top-level entries: region_predictor"):
        convert(bad, TINY["mgif"])
    torch.save({"generator": {}, "kp_detector": {}}, bad)
    with pytest.raises(CheckpointError, match=r"FOMM"):
        convert(bad, TINY["mgif"])


class Payload:
    """Unpickling this would create a file: the test checks that it never happens."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_pickled_code_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "code-ran"
    ckpt = tiny_mraa_checkpoint(TINY["mgif"])
    ckpt["epoch_reconstruction"] = Payload(str(marker))
    path = tmp_path / "unsafe.pth"
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match=r"weights_only=True.*pickled Python objects"):
        convert(path, TINY["mgif"])
    assert not marker.exists()


def test_output_never_replaces_the_source(tmp_path):
    path = save_tiny(tmp_path, "mgif")
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match="is the MRAA checkpoint itself"):
        from jamsdk.model.mraa_import import convert_mraa

        convert_mraa(path, TINY["mgif"], path, size=64)
    assert path.read_bytes() == before


