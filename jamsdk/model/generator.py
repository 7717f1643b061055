"""Generator: encode the source, warp its features by the dense flow, blend by occlusion, decode.

Split in two so streaming can run the source-only part once per source:
:meth:`Generator.encode` (first block + down blocks → skip features) and :meth:`Generator.decode`
(per frame: warps, residual bottleneck, up blocks, final conv, blend with the warped source).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from jamsdk.config import ModelConfig
from jamsdk.model.blocks import BottleneckResBlock2d, DownBlock2d, ResBlock2d, SameBlock2d, UpBlock2d


class Generator(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        gc = cfg.generator
        be, mf, nd = gc.block_expansion, gc.max_features, gc.num_down_blocks
        self.first = SameBlock2d(cfg.num_channels, be, kernel_size=7, padding=3)
        self.down_blocks = nn.ModuleList(
            DownBlock2d(min(mf, be * 2**i), min(mf, be * 2 ** (i + 1))) for i in range(nd)
        )
        self.up_blocks = nn.ModuleList(
            UpBlock2d(min(mf, be * 2 ** (nd - i)), min(mf, be * 2 ** (nd - i - 1))) for i in range(nd)
        )
        channels = min(mf, be * 2**nd)
        dilations = gc.dilations * gc.num_bottleneck_blocks if len(gc.dilations) == 1 else gc.dilations
        self.bottleneck = nn.Sequential()
        for i, d in enumerate(dilations):
            if gc.res_block == "bottleneck":
                block = BottleneckResBlock2d(channels, d, gc.bottleneck_reduction, gc.attention, cfg.scse_reduction)
            else:
                block = ResBlock2d(channels, 3, d, gc.attention, cfg.scse_reduction)
            self.bottleneck.add_module(f"r{i}", block)
        self.final = nn.Conv2d(be, cfg.num_channels, 7, padding=3)
        self.skips = gc.skips
        self.align_corners = cfg.align_corners

    def encode(self, source_image: torch.Tensor) -> list[torch.Tensor]:
        """Source-only work: ``[f0, f1, …, f_nd]`` at full, ½, … resolution."""
        feats = [self.first(source_image)]
        for block in self.down_blocks:
            feats.append(block(feats[-1]))
        return feats

    def _warp(self, feat: torch.Tensor, flow: torch.Tensor, occlusion: torch.Tensor,
              previous: torch.Tensor | None = None) -> torch.Tensor:
        """``warp(feat)·o + previous·(1−o)``, flow and occlusion resized to ``feat``'s size."""
        h, w = feat.shape[2:]
        if flow.shape[1:3] != (h, w):
            flow = F.interpolate(flow.permute(0, 3, 1, 2), size=(h, w), mode="bilinear",
                                 align_corners=self.align_corners).permute(0, 2, 3, 1)
        if occlusion.shape[2:] != (h, w):
            occlusion = F.interpolate(occlusion, size=(h, w), mode="bilinear", align_corners=self.align_corners)
        warped = F.grid_sample(feat, flow, mode="bilinear", padding_mode="zeros", align_corners=self.align_corners)
        out = warped * occlusion
        if previous is not None:
            out = out + previous * (1 - occlusion)
        return out

    def decode(self, source_image: torch.Tensor, feats: list[torch.Tensor], optical_flow: torch.Tensor,
               occlusion_map: torch.Tensor) -> torch.Tensor:
        """Per-frame work: the animated frame (B, 3, S, S) in [0, 1]."""
        out = self._warp(feats[-1], optical_flow, occlusion_map)
        out = self.bottleneck(out)
        for i, block in enumerate(self.up_blocks):
            if self.skips:
                out = self._warp(feats[-(i + 1)], optical_flow, occlusion_map, previous=out)
            out = block(out)
        if self.skips:
            out = self._warp(feats[0], optical_flow, occlusion_map, previous=out)
        out = torch.sigmoid(self.final(out))
        if self.skips:
            out = self._warp(source_image, optical_flow, occlusion_map, previous=out)
        return out

    def forward(self, source_image: torch.Tensor, optical_flow: torch.Tensor,
                occlusion_map: torch.Tensor) -> torch.Tensor:
        return self.decode(source_image, self.encode(source_image), optical_flow, occlusion_map)
