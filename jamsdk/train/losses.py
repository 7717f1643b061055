"""Training losses: VGG-19 perceptual pyramid (or image pyramid L1 + SSIM), pixel L1, equivariance
(stage 1) and AVD (stage 2).

Formulas follow MRAA_FACTS §9 (re-implemented, no MRAA code):

* perceptual = Σ_scales Σ_layers w_l · mean|φ_l(pred_s) − φ_l(driving_s)|, the pyramid made with
  :class:`~jamsdk.model.blocks.AntiAliasInterpolation2d` at scales 1, ½, ¼, ⅛;
* ``train.loss.reconstruction: pyramid`` replaces the VGG term by Σ_scales (w_l1 · mean|pred_s −
  driving_s| + w_ssim · mean(1 − SSIM(pred_s, driving_s)) / 2) on the same pyramid: no VGG forward or
  backward (about 60 % of a CPU step at 128²), for runs without ImageNet VGG-19 weights;
* equivariance_shift = λ · mean|μ_d − T(μ_t)| and equivariance_affine = λ · mean|I − V| with
  V = A_d⁻¹ · J_T(μ_t) · A_t, where μ_t, A_t are the regions of the randomly warped driving frame;
* AVD: λ_shift · mean|μ_gt − μ_rec| + λ_affine · mean|A_gt − A_rec| with the driving pose randomly
  rescaled before the network sees it.

The two ``*Objective`` modules bundle model and losses into one ``forward(source, driving) → losses``
so that DistributedDataParallel can wrap the whole training computation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from jamsdk.model.blocks import AntiAliasInterpolation2d
from jamsdk.model.linalg2x2 import inverse, matmul
from jamsdk.train.transforms import RandomTPS

if TYPE_CHECKING:
    from jamsdk.model.jam import JamModel
    from jamsdk.train.train_config import TrainConfig
    from jamsdk.train.vgg import Vgg19

Params = dict[str, torch.Tensor]


class ImagePyramid(nn.Module):
    """Anti-aliased copies of an image at the given scales: ``{"1.0": x, "0.5": x↓2, …}``."""

    def __init__(self, scales: tuple[float, ...], channels: int = 3):
        super().__init__()
        self.scales = tuple(float(s) for s in scales)
        # Keys without dots: ModuleDict forbids "." in names.
        self.downs = nn.ModuleDict({_key(s): AntiAliasInterpolation2d(channels, s) for s in self.scales})

    def forward(self, x: torch.Tensor) -> dict[float, torch.Tensor]:
        return {s: self.downs[_key(s)](x) for s in self.scales}


def _key(scale: float) -> str:
    return f"s{scale:g}".replace(".", "_")


class PerceptualLoss(nn.Module):
    """Multi-scale VGG-19 feature L1 between a prediction and its target.

    Args:
        vgg: the frozen feature extractor.
        scales: pyramid scales (1 = full size).
        weights: one weight per VGG slice (relu1_1 … relu5_1).
    """

    def __init__(self, vgg: "Vgg19", scales: tuple[float, ...], weights: tuple[float, ...]):
        super().__init__()
        self.vgg = vgg
        self.pyramid = ImagePyramid(scales)
        self.weights = tuple(float(w) for w in weights)
        # Slices after the last weighted one are skipped (zero weights cost nothing).
        self.depth = max((i + 1 for i, w in enumerate(self.weights) if w), default=0)

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        pred_pyr = self.pyramid(prediction)
        with torch.no_grad():
            target_pyr = self.pyramid(target)
        total = prediction.new_zeros(())
        if not self.depth:
            return total
        for scale, pred in pred_pyr.items():
            pred_feats = self.vgg(pred, self.depth)
            with torch.no_grad():
                target_feats = self.vgg(target_pyr[scale], self.depth)
            for w, pf, tf in zip(self.weights, pred_feats, target_feats):
                if w:
                    total = total + w * (pf - tf).abs().mean()
        return total


def ssim_map(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-pixel SSIM of two images in [0, 1] with 3×3 mean windows (reflection padding).

    The small box window (as in self-supervised depth work) keeps it cheap and usable down to the
    pyramid's 16-pixel level.
    """
    import torch.nn.functional as F

    c1, c2 = 0.01 ** 2, 0.03 ** 2
    x = F.pad(x, (1, 1, 1, 1), mode="reflect")
    y = F.pad(y, (1, 1, 1, 1), mode="reflect")
    mu_x, mu_y = F.avg_pool2d(x, 3, 1), F.avg_pool2d(y, 3, 1)
    sxx = F.avg_pool2d(x * x, 3, 1) - mu_x ** 2
    syy = F.avg_pool2d(y * y, 3, 1) - mu_y ** 2
    sxy = F.avg_pool2d(x * y, 3, 1) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x ** 2 + mu_y ** 2 + c1) * (sxx + syy + c2)
    return num / den


class PyramidLoss(nn.Module):
    """Multi-scale pixel L1 + SSIM between a prediction and its target (no feature network).

    Args:
        scales: pyramid scales (1 = full size), made with the same anti-aliased downsampling as
            :class:`PerceptualLoss`.
        l1: weight of the mean absolute error at each scale.
        ssim: weight of the mean structural dissimilarity (1 − SSIM) / 2 at each scale.
    """

    def __init__(self, scales: tuple[float, ...], l1: float, ssim: float):
        super().__init__()
        self.pyramid = ImagePyramid(scales)
        self.l1, self.ssim = float(l1), float(ssim)

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        pred_pyr = self.pyramid(prediction)
        with torch.no_grad():
            target_pyr = self.pyramid(target)
        total = prediction.new_zeros(())
        for scale, pred in pred_pyr.items():
            tgt = target_pyr[scale]
            if self.l1:
                total = total + self.l1 * (pred - tgt).abs().mean()
            if self.ssim:
                total = total + self.ssim * ((1 - ssim_map(pred, tgt)) / 2).clamp(0, 1).mean()
        return total


def equivariance_losses(region_predictor: nn.Module, driving_image: torch.Tensor, driving: Params,
                        transform: RandomTPS, revert_axis_swap: bool = True) -> dict[str, torch.Tensor]:
    """Unweighted equivariance errors ``{"shift": …, "affine": …}`` for one random warp per item.

    The 2×2 algebra runs in FP32 (under autocast too): region covariances are tiny and their
    determinants underflow in FP16.
    """
    transformed_image = transform.transform_frame(driving_image)
    transformed = region_predictor(transformed_image)
    with torch.autocast(device_type=driving_image.device.type, enabled=False):
        mu_t = transformed["shift"].float()
        mu_d = driving["shift"].float()
        shift = (mu_d - transform.warp_coordinates(mu_t)).abs().mean()
        jac = transform.jacobian(mu_t)
        v = matmul(inverse(driving["affine"].float()), matmul(jac, transformed["affine"].float()))
        if revert_axis_swap:
            v = v * torch.sign(v[..., 0:1, 0:1])
        eye = torch.eye(2, dtype=v.dtype, device=v.device)
        affine = (eye - v).abs().mean()
    return {"shift": shift, "affine": affine}


def random_scale(params: Params, scale: float, generator: torch.Generator | None = None,
                 shard: tuple[int, int] = (0, 1)) -> Params:
    """Scale a pose per sample by diag(θ), θ ~ U[1 − s, 1 + s]² (the AVD stage's augmentation).

    ``shard = (rank, world)``: draw for the global batch and keep this process's rows (see
    :class:`~jamsdk.train.transforms.RandomTPS`).
    """
    b = params["shift"].shape[0]
    rank, world = shard
    theta = torch.rand(b * world, 2, generator=generator)[rank::world]
    theta = (theta * 2 * scale + 1 - scale).to(params["shift"])
    shift = params["shift"] * theta[:, None, :]
    affine = params["affine"] * theta[:, None, :, None]  # diag(θ)·A scales the rows of A
    return {"shift": shift, "affine": affine, "covar": matmul(affine, affine.transpose(-1, -2))}


class ReconstructionObjective(nn.Module):
    """Stage 1: reconstruct the driving frame from the source; returns the weighted losses.

    Args:
        model: the JAM model (region predictor, background, dense motion and generator train).
        vgg: the perceptual feature extractor, or None with ``train.loss.reconstruction: pyramid``.
        cfg: the training config (loss weights, pyramid scales, warp parameters).
        pixel_weight: weight of the L1 pixel term (the config's, plus the fallback's when the VGG is
            random).
        generator: CPU generator for the random warps.
    """

    def __init__(self, model: "JamModel", vgg: "Vgg19 | None", cfg: "TrainConfig", pixel_weight: float,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.model = model
        lw = cfg.loss
        # The term keeps the name "perceptual" in logs for both kinds (one column, one curve).
        self.perceptual = (PerceptualLoss(vgg, cfg.scales, lw.perceptual) if lw.reconstruction == "vgg"
                           else PyramidLoss(cfg.scales, lw.pyramid_l1, lw.pyramid_ssim))
        self.cfg = cfg
        self.pixel_weight = float(pixel_weight)
        self.generator = generator
        # (rank, world) under DDP: the sampler gives rank r the global batch's items r, r + world, …
        self.shard = (0, 1)

    def forward(self, source: torch.Tensor, driving: torch.Tensor,
                animation: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        lw = self.cfg.loss
        if animation is None:
            out = self.model(source, driving)
        else:
            out, animated = self._with_animation_pairs(source, driving, animation)
        pred = out["prediction"].float()
        losses = {"perceptual": self.perceptual(pred, driving)}
        if animation is not None:
            # The same kind of loss as the self-supervised pairs', against the rendered truth.
            losses["animation"] = self.cfg.animation_pairs.weight * self.perceptual(animated, animation["truth"])
        if self.pixel_weight:
            losses["pixel"] = self.pixel_weight * (pred - driving).abs().mean()
        if lw.equivariance_shift or lw.equivariance_affine:
            eq = self.cfg.equivariance
            rank, world = self.shard
            transform = RandomTPS(driving.shape[0] * world, eq.sigma_affine, eq.sigma_tps, eq.points_tps,
                                  self.generator, driving.device, rows=slice(rank, None, world))
            errs = equivariance_losses(self.model.region_predictor, driving, out["driving_regions"], transform,
                                       self.model.cfg.revert_axis_swap)
            if lw.equivariance_shift:
                losses["equivariance_shift"] = lw.equivariance_shift * errs["shift"]
            if lw.equivariance_affine:
                losses["equivariance_affine"] = lw.equivariance_affine * errs["affine"]
        return losses

    def _with_animation_pairs(self, source: torch.Tensor, driving: torch.Tensor,
                              animation: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The reconstruction forward plus relative-mode animation of the training animation pairs
        (:mod:`jamsdk.train.animation_pairs`), in one batch through each network so BatchNorm sees both.

        Returns the reconstruction outputs (as ``JamModel.forward``) and the animated pictures.
        """
        from jamsdk.model.jam import movement_scale_torch

        model = self.model
        for name in ("source", "driving"):
            model.check_image(animation[name], f"animation pairs {name}")
        n, m = source.shape[0], animation["source"].shape[0]
        images = torch.cat([source, driving, animation["source"], animation["driving_initial"], animation["driving"]])
        regions = model.region_predictor(images)
        cut = [n, n, m, m, m]
        src, drv, a_src, a_initial, a_drv = [dict(zip(regions, vals)) for vals in
                                             zip(*(regions[k].split(cut) for k in regions))]
        # The run-time rule (convex hulls of the centres), constant per pair: no gradient through it.
        scale = movement_scale_torch(a_src["shift"].detach(), a_initial["shift"].detach())
        moved = model.transfer_params(a_src, a_drv, a_initial, "relative", scale)
        keys = ("shift", "covar", "affine")
        both_src = {k: torch.cat([src[k], a_src[k]]) for k in keys}
        both_drv = {k: torch.cat([drv[k], moved[k]]) for k in keys}
        out = model.animate_frame(torch.cat([source, animation["source"]]), both_src, both_drv)
        pred = out["prediction"]
        out = {**{k: v[:n] for k, v in out.items()}, "source_regions": src, "driving_regions": drv}
        return out, pred[n:].float()


class AvdObjective(nn.Module):
    """Stage 2: train only the AVD network to put a (rescaled) driving pose into the source's shape.

    The region predictor is frozen (eval mode, no gradients); ``model.avd`` is the only thing that
    learns.
    """

    def __init__(self, model: "JamModel", cfg: "TrainConfig", generator: torch.Generator | None = None):
        super().__init__()
        self.model = model
        self.cfg = cfg
        self.generator = generator
        self.shard = (0, 1)  # as in ReconstructionObjective

    def forward(self, source: torch.Tensor, driving: torch.Tensor) -> dict[str, torch.Tensor]:
        ac = self.cfg.avd
        rp = self.model.region_predictor
        with torch.no_grad():
            ident = _pose(rp(source))
            pose_gt = _pose(rp(driving))
        pose = random_scale(pose_gt, ac.random_scale, self.generator, self.shard)
        rec = self.model.avd(ident, pose)
        return {
            "avd_shift": ac.lambda_shift * (pose_gt["shift"] - rec["shift"]).abs().mean(),
            "avd_affine": ac.lambda_affine * (pose_gt["affine"] - rec["affine"]).abs().mean(),
        }


def _pose(params: Params) -> Params:
    return {k: params[k].float() for k in ("shift", "covar", "affine")}
