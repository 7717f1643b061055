"""Region predictor: K soft heatmaps and, per region, a shift, a covariance and a PCA affine."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from jamsdk.config import ModelConfig
from jamsdk.model.blocks import AntiAliasInterpolation2d, Hourglass, coordinate_grid
from jamsdk.model.linalg2x2 import pca_affine


def heatmap_moments(heatmap: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (B, K, 2) and covariance (B, K, 2, 2) of heatmaps (B, K, H, W) that sum to 1.

    Coordinates are the heatmap's own grid in [-1, 1] (MRAA's convention; with ``pad: 0`` the
    valid-conv heatmap is smaller than the feature map and its frame is correspondingly larger).
    """
    h, w = heatmap.shape[2:]
    grid = coordinate_grid(h, w, heatmap.dtype, heatmap.device)
    gx, gy = grid[..., 0], grid[..., 1]
    mx = (heatmap * gx).sum(dim=(2, 3))
    my = (heatmap * gy).sum(dim=(2, 3))
    dx = gx - mx[..., None, None]
    dy = gy - my[..., None, None]
    cxx = (heatmap * dx * dx).sum(dim=(2, 3))
    cxy = (heatmap * dx * dy).sum(dim=(2, 3))
    cyy = (heatmap * dy * dy).sum(dim=(2, 3))
    shift = torch.stack([mx, my], dim=-1)
    covar = torch.stack([torch.stack([cxx, cxy], -1), torch.stack([cxy, cyy], -1)], -2)
    return shift, covar


class RegionPredictor(nn.Module):
    """Image (B, 3, S, S) in [0, 1] → ``shift``, ``covar``, ``affine`` and ``heatmap`` per region."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        rc = cfg.region_predictor
        self.predictor = Hourglass(rc.block_expansion, cfg.num_channels, rc.num_blocks, rc.max_features,
                                   rc.attention, cfg.scse_reduction)
        self.regions = nn.Conv2d(self.predictor.out_filters, cfg.num_regions, 7, padding=rc.pad)
        self.temperature = rc.temperature
        self.down = AntiAliasInterpolation2d(cfg.num_channels, rc.scale_factor) if rc.scale_factor != 1 else None

    def heatmaps(self, x: torch.Tensor) -> torch.Tensor:
        if self.down is not None:
            x = self.down(x)
        logits = self.regions(self.predictor(x))
        b, k, h, w = logits.shape
        # Kept in FP32 in the FP16 export: temperature 0.1 makes sharp peaks.
        return F.softmax(logits.view(b, k, h * w) / self.temperature, dim=2).view(b, k, h, w)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        heatmap = self.heatmaps(x)
        shift, covar = heatmap_moments(heatmap)
        return {"shift": shift, "covar": covar, "affine": pca_affine(covar), "heatmap": heatmap}
