"""Pixelwise flow predictor ("dense motion"): region transforms → dense flow and occlusion map."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from jamsdk.config import ModelConfig
from jamsdk.model.blocks import AntiAliasInterpolation2d, Hourglass, coordinate_grid, gaussian_heatmaps
from jamsdk.model.linalg2x2 import inverse, matmul

Params = dict[str, torch.Tensor]


def region_transforms(source: Params, driving: Params, revert_axis_swap: bool = True) -> torch.Tensor:
    """``M_k = A_s,k · A_d,k⁻¹`` (B, K, 2, 2), with MRAA's axis-swap sign fix.

    The PCA may return a region's axes swapped or reflected between source and driving when the
    eigenvalues are close; multiplying M by the sign of its [0, 0] entry undoes the common case.
    """
    m = matmul(source["affine"], inverse(driving["affine"]))
    if revert_axis_swap:
        m = m * torch.sign(m[..., 0:1, 0:1])
    return m


def sparse_motions(source: Params, driving: Params, h: int, w: int, bg_params: torch.Tensor | None = None,
                   revert_axis_swap: bool = True) -> torch.Tensor:
    """Per-region backward warps ``T_k(z) = M_k (z − μ_d,k) + μ_s,k`` plus the background (B, K+1, h, w, 2)."""
    mu_d, mu_s = driving["shift"], source["shift"]
    b = mu_d.shape[0]
    grid = coordinate_grid(h, w, mu_d.dtype, mu_d.device)
    gx, gy = grid[..., 0], grid[..., 1]
    m = region_transforms(source, driving, revert_axis_swap)
    dx = gx - mu_d[..., 0, None, None]
    dy = gy - mu_d[..., 1, None, None]
    tx = m[..., 0, 0, None, None] * dx + m[..., 0, 1, None, None] * dy + mu_s[..., 0, None, None]
    ty = m[..., 1, 0, None, None] * dx + m[..., 1, 1, None, None] * dy + mu_s[..., 1, None, None]
    regions = torch.stack([tx, ty], dim=-1)
    if bg_params is None:
        bg = grid.unsqueeze(0).expand(b, h, w, 2)
    else:
        p = bg_params[:, None, None]  # (B, 1, 1, 3, 3) applied to homogeneous (x, y, 1)
        hx = p[..., 0, 0] * gx + p[..., 0, 1] * gy + p[..., 0, 2]
        hy = p[..., 1, 0] * gx + p[..., 1, 1] * gy + p[..., 1, 2]
        hz = p[..., 2, 0] * gx + p[..., 2, 1] * gy + p[..., 2, 2]
        bg = torch.stack([hx / hz, hy / hz], dim=-1)
    return torch.cat([bg.unsqueeze(1), regions], dim=1)


class DenseMotion(nn.Module):
    """Source image + source/driving region params (+ background transform) → flow and occlusion."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        dc = cfg.dense_motion
        k, c = cfg.num_regions, cfg.num_channels
        in_features = (k + 1) * (c * int(dc.use_deformed_source) + 1)
        self.hourglass = Hourglass(dc.block_expansion, in_features, dc.num_blocks, dc.max_features, dc.attention,
                                   cfg.scse_reduction)
        self.mask = nn.Conv2d(self.hourglass.out_filters, k + 1, 7, padding=3)
        self.occlusion = nn.Conv2d(self.hourglass.out_filters, 1, 7, padding=3) if dc.estimate_occlusion_map else None
        self.down = AntiAliasInterpolation2d(c, dc.scale_factor) if dc.scale_factor != 1 else None
        self.num_regions = k
        self.use_covar_heatmap = dc.use_covar_heatmap
        self.use_deformed_source = dc.use_deformed_source
        self.region_var = dc.region_var
        self.revert_axis_swap = cfg.revert_axis_swap
        self.align_corners = cfg.align_corners

    def forward(self, source_image: torch.Tensor, driving: Params, source: Params,
                bg_params: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if self.down is not None:
            source_image = self.down(source_image)
        b, c, h, w = source_image.shape
        k1 = self.num_regions + 1

        cov_d = driving["covar"] if self.use_covar_heatmap else self.region_var
        cov_s = source["covar"] if self.use_covar_heatmap else self.region_var
        heat = gaussian_heatmaps(driving["shift"], cov_d, h, w) - gaussian_heatmaps(source["shift"], cov_s, h, w)
        heat = torch.cat([torch.zeros_like(heat[:, :1]), heat], dim=1).unsqueeze(2)  # (B, K+1, 1, h, w)

        motions = sparse_motions(source, driving, h, w, bg_params, self.revert_axis_swap)  # (B, K+1, h, w, 2)
        if self.use_deformed_source:
            repeated = source_image.unsqueeze(1).expand(b, k1, c, h, w).reshape(b * k1, c, h, w)
            deformed = F.grid_sample(repeated, motions.reshape(b * k1, h, w, 2), mode="bilinear",
                                     padding_mode="zeros", align_corners=self.align_corners)
            inp = torch.cat([heat, deformed.view(b, k1, c, h, w)], dim=2)
        else:
            inp = heat
        feats = self.hourglass(inp.reshape(b, -1, h, w))

        mask = F.softmax(self.mask(feats), dim=1)  # (B, K+1, h, w)
        flow = (motions * mask.unsqueeze(-1)).sum(dim=1)  # (B, h, w, 2)
        if self.occlusion is not None:
            occlusion = torch.sigmoid(self.occlusion(feats))
        else:  # no occlusion estimate: everything visible, so every blend keeps the warped features
            occlusion = torch.ones_like(feats[:, :1])
        return {"optical_flow": flow, "occlusion_map": occlusion}
