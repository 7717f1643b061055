"""The whole model: region predictor, background motion, dense motion, generator and AVD network.

Submodule names are the stage names used everywhere (ONNX files, engines, manifest keys):
``region_predictor``, ``bg_motion``, ``dense_motion``, ``generator`` (``generator_encoder`` is its
source-only half) and ``avd``.
"""

from __future__ import annotations

import torch
from torch import nn

from jamsdk.config import ModelConfig
from jamsdk.errors import InputError
from jamsdk.model.avd import AVDNetwork
from jamsdk.model.bg_motion import BgMotion
from jamsdk.model.dense_motion import DenseMotion
from jamsdk.model.generator import Generator
from jamsdk.model.linalg2x2 import inverse, matmul
from jamsdk.model.region_predictor import RegionPredictor

Params = dict[str, torch.Tensor]
MODES = ("standard", "relative", "avd")


class JamModel(nn.Module):
    """JAM (or, with the ``mraa-256`` config, MRAA) as one module."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.region_predictor = RegionPredictor(cfg)
        self.bg_motion = BgMotion(cfg)
        self.dense_motion = DenseMotion(cfg)
        self.generator = Generator(cfg)
        self.avd = AVDNetwork(cfg) if cfg.avd.enabled else None

    def check_image(self, x: torch.Tensor, name: str = "image") -> None:
        s = self.cfg.image_size
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != self.cfg.num_channels \
                or tuple(x.shape[2:]) != (s, s):
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise InputError(f"{name}: expected a (B, {self.cfg.num_channels}, {s}, {s}) tensor, got {got}")

    def animate_frame(self, source_image: torch.Tensor, source: Params, driving: Params,
                      bg_params: torch.Tensor | None = None,
                      source_feats: list[torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Dense motion + generator for given region params (what the exported graphs compute)."""
        motion = self.dense_motion(source_image, driving, source, bg_params)
        feats = self.generator.encode(source_image) if source_feats is None else source_feats
        pred = self.generator.decode(source_image, feats, motion["optical_flow"], motion["occlusion_map"])
        return {"prediction": pred, **motion}

    def forward(self, source_image: torch.Tensor, driving_image: torch.Tensor) -> dict[str, torch.Tensor]:
        """Reconstruction (training): rebuild ``driving_image`` from ``source_image``."""
        self.check_image(source_image, "source_image")
        self.check_image(driving_image, "driving_image")
        source = self.region_predictor(source_image)
        driving = self.region_predictor(driving_image)
        bg = None if self.bg_motion.is_identity else self.bg_motion(source_image, driving_image)
        out = self.animate_frame(source_image, source, driving, bg)
        out.update(source_regions=source, driving_regions=driving)
        if bg is not None:
            out["bg_params"] = bg
        return out

    def transfer_params(self, source: Params, driving: Params, driving_initial: Params | None,
                        mode: str, movement_scale: torch.Tensor | float | None = None) -> Params:
        """Region params that drive the source in animation ``mode`` (MRAA's animate.py semantics)."""
        if mode == "standard":
            return driving
        if mode == "relative":
            if driving_initial is None:
                raise InputError("relative mode needs the initial driving frame's region params")
            if movement_scale is None:
                movement_scale = movement_scale_torch(source["shift"], driving_initial["shift"])
            if isinstance(movement_scale, torch.Tensor) and movement_scale.dim() == 1:
                movement_scale = movement_scale.view(-1, 1, 1)
            shift = source["shift"] + (driving["shift"] - driving_initial["shift"]) * movement_scale
            affine = matmul(matmul(driving["affine"], inverse(driving_initial["affine"])), source["affine"])
            # covar (and the heatmap) stay those of driving frame t, as in MRAA.
            return {"shift": shift, "affine": affine, "covar": driving["covar"]}
        if mode == "avd":
            if self.avd is None:
                raise InputError("avd mode needs a model with an AVD network (avd.enabled: true)")
            return self.avd(source, driving)
        raise InputError(f"mode: expected one of {MODES}, got {mode!r}")

    @torch.no_grad()
    def animate(self, source_image: torch.Tensor, driving_frames: torch.Tensor, mode: str = "relative") -> torch.Tensor:
        """Animate one source (1, 3, S, S) by driving frames (T, 3, S, S) → (T, 3, S, S).

        The reference the exported runtime is tested against: source work done once, the first
        driving frame is the relative-mode reference.
        """
        self.check_image(source_image, "source_image")
        self.check_image(driving_frames, "driving_frames")
        source = self.region_predictor(source_image)
        feats = self.generator.encode(source_image)
        initial = None
        scale = None
        outs = []
        for t in range(driving_frames.shape[0]):
            driving = self.region_predictor(driving_frames[t:t + 1])
            if initial is None:
                initial = driving
                scale = movement_scale_torch(source["shift"], initial["shift"]) if mode == "relative" else None
            params = self.transfer_params(source, driving, initial, mode, scale)
            outs.append(self.animate_frame(source_image, source, params, None, feats)["prediction"])
        return torch.cat(outs, dim=0)


def movement_scale_torch(source_shift: torch.Tensor, driving_shift: torch.Tensor) -> torch.Tensor:
    """√(hull area of the source shifts) / √(hull area of the driving shifts), per batch item (B,).

    Same numbers as :func:`jamsdk.geometry.movement_scale` (numpy, used by the runtime).
    """
    from jamsdk.geometry import movement_scale

    vals = [movement_scale(s.detach().cpu().double().numpy(), d.detach().cpu().double().numpy())
            for s, d in zip(source_shift, driving_shift)]
    return torch.tensor(vals, dtype=source_shift.dtype, device=source_shift.device)


def build_model(cfg: ModelConfig) -> JamModel:
    """A freshly initialised :class:`JamModel` for ``cfg``."""
    return JamModel(cfg)
