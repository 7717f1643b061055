"""Building blocks shared by the region predictor, dense motion network and generator.

State-dict names follow MRAA's (``conv``, ``norm``, ``conv1`` …, ``down_blocks.i``, ``up_blocks.i``)
so MRAA-shaped configs load converted MRAA checkpoints key for key; JAM-only parts (SCSE
attention) add keys under ``attention``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def coordinate_grid(h: int, w: int, dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """(h, w, 2) grid whose last axis is (x, y), each spanning [-1, 1] inclusive.

    Built from ``arange`` rather than ``linspace`` so exporters keep it a plain Range/Mul graph.
    """
    xs = torch.arange(w, dtype=dtype, device=device) * (2.0 / max(w - 1, 1)) - 1.0
    ys = torch.arange(h, dtype=dtype, device=device) * (2.0 / max(h - 1, 1)) - 1.0
    return torch.stack([xs.view(1, w).expand(h, w), ys.view(h, 1).expand(h, w)], dim=-1)


class SCSE(nn.Module):
    """Concurrent spatial and channel squeeze-excitation (Roy et al. 2018).

    Channel gate: global average pool → 1×1 conv (C→C/r) → ReLU → 1×1 conv (C/r→C) → sigmoid.
    Spatial gate: 1×1 conv (C→1) → sigmoid. Output ``x·cse + x·sse`` (the two gates in parallel).
    Both export to plain ONNX ops (ReduceMean, Conv, Sigmoid, Mul, Add).
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.channel = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1)
        )
        self.spatial = nn.Conv2d(channels, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cse = torch.sigmoid(self.channel(x.mean(dim=(2, 3), keepdim=True)))
        sse = torch.sigmoid(self.spatial(x))
        return x * cse + x * sse


class ResBlock2d(nn.Module):
    """Pre-activation residual block: BN → ReLU → conv → BN → ReLU → conv, plus the input.

    With ``dilation > 1`` both 3×3 convs are dilated (same padding), with ``attention`` an SCSE
    gate is applied to the residual branch before the addition.
    """

    def __init__(self, channels: int, kernel_size: int = 3, dilation: int = 1, attention: bool = False,
                 reduction: int = 16):
        super().__init__()
        pad = dilation * (kernel_size // 2)
        self.conv1 = nn.Conv2d(channels, channels, kernel_size, padding=pad, dilation=dilation)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size, padding=pad, dilation=dilation)
        self.norm1 = nn.BatchNorm2d(channels)
        self.norm2 = nn.BatchNorm2d(channels)
        self.attention = SCSE(channels, reduction) if attention else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        if self.attention is not None:
            out = self.attention(out)
        return out + x


class BottleneckResBlock2d(nn.Module):
    """JAM's dilated residual block: 1×1 reduce → dilated 3×3 → 1×1 expand (pre-activation).

    The 1×1 convs shrink the channel count by ``reduction`` around the one dilated 3×3 conv, which
    is where JAM saves most of MRAA's generator work; the dilation keeps the receptive field.
    """

    def __init__(self, channels: int, dilation: int = 1, reduction: int = 4, attention: bool = True,
                 scse_reduction: int = 16):
        super().__init__()
        mid = max(channels // reduction, 1)
        self.norm1 = nn.BatchNorm2d(channels)
        self.conv1 = nn.Conv2d(channels, mid, 1)
        self.norm2 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, padding=dilation, dilation=dilation)
        self.norm3 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, channels, 1)
        self.attention = SCSE(channels, scse_reduction) if attention else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        out = self.conv3(F.relu(self.norm3(out)))
        if self.attention is not None:
            out = self.attention(out)
        return out + x


class UpBlock2d(nn.Module):
    """Nearest ×2 upsampling → 3×3 conv → BN → ReLU (→ SCSE)."""

    def __init__(self, in_features: int, out_features: int, attention: bool = False, reduction: int = 16):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, 3, padding=1)
        self.norm = nn.BatchNorm2d(out_features)
        self.attention = SCSE(out_features, reduction) if attention else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.interpolate(x, scale_factor=2.0, mode="nearest")
        out = F.relu(self.norm(self.conv(out)))
        if self.attention is not None:
            out = self.attention(out)
        return out


class DownBlock2d(nn.Module):
    """3×3 conv → BN → ReLU (→ SCSE) → 2×2 average pool."""

    def __init__(self, in_features: int, out_features: int, attention: bool = False, reduction: int = 16):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, 3, padding=1)
        self.norm = nn.BatchNorm2d(out_features)
        self.attention = SCSE(out_features, reduction) if attention else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.norm(self.conv(x)))
        if self.attention is not None:
            out = self.attention(out)
        return F.avg_pool2d(out, 2)


class SameBlock2d(nn.Module):
    """conv → BN → ReLU at the same resolution."""

    def __init__(self, in_features: int, out_features: int, kernel_size: int = 3, padding: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size, padding=padding)
        self.norm = nn.BatchNorm2d(out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(x)))


class Encoder(nn.Module):
    """``num_blocks`` DownBlocks; returns ``[x, d1, …, d_n]`` for the U-Net skips."""

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int = 3, max_features: int = 256,
                 attention: bool = False, reduction: int = 16):
        super().__init__()
        blocks = []
        for i in range(num_blocks):
            cin = in_features if i == 0 else min(max_features, block_expansion * 2**i)
            cout = min(max_features, block_expansion * 2 ** (i + 1))
            blocks.append(DownBlock2d(cin, cout, attention, reduction))
        self.down_blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = [x]
        for block in self.down_blocks:
            outs.append(block(outs[-1]))
        return outs


class Decoder(nn.Module):
    """UpBlocks from the deepest feature back up, concatenating each encoder skip."""

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int = 3, max_features: int = 256,
                 attention: bool = False, reduction: int = 16):
        super().__init__()
        blocks = []
        for i in reversed(range(num_blocks)):
            cin = (1 if i == num_blocks - 1 else 2) * min(max_features, block_expansion * 2 ** (i + 1))
            cout = min(max_features, block_expansion * 2**i)
            blocks.append(UpBlock2d(cin, cout, attention, reduction))
        self.up_blocks = nn.ModuleList(blocks)
        self.out_filters = block_expansion + in_features

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        feats = list(feats)
        out = feats.pop()
        for block in self.up_blocks:
            out = block(out)
            out = torch.cat([out, feats.pop()], dim=1)
        return out


class Hourglass(nn.Module):
    """U-Net hourglass. ``attention`` ∈ {none, decoder, encoder, both} places SCSE blocks."""

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int = 3, max_features: int = 256,
                 attention: str = "none", reduction: int = 16):
        super().__init__()
        enc_att = attention in ("encoder", "both")
        dec_att = attention in ("decoder", "both")
        self.encoder = Encoder(block_expansion, in_features, num_blocks, max_features, enc_att, reduction)
        self.decoder = Decoder(block_expansion, in_features, num_blocks, max_features, dec_att, reduction)
        self.out_filters = self.decoder.out_filters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class AntiAliasInterpolation2d(nn.Module):
    """Gaussian blur then strided subsampling by ``1/scale`` (a depthwise conv and a slice).

    σ = (1/scale − 1)/2 and a kernel of 2·round(4σ)+1 taps; the kernel is a persistent buffer
    ``weight`` (MRAA checkpoints carry it).
    """

    def __init__(self, channels: int, scale: float):
        super().__init__()
        sigma = (1 / scale - 1) / 2
        kernel_size = 2 * round(sigma * 4) + 1
        self.ka = kernel_size // 2
        self.kb = self.ka - 1 if kernel_size % 2 == 0 else self.ka
        coords = torch.arange(kernel_size, dtype=torch.float32)
        mean = (kernel_size - 1) / 2
        g = torch.exp(-((coords - mean) ** 2) / (2 * sigma**2)) if sigma > 0 else (coords == mean).float()
        kernel = g.view(-1, 1) * g.view(1, -1)
        kernel = kernel / kernel.sum()
        self.register_buffer("weight", kernel.view(1, 1, kernel_size, kernel_size).repeat(channels, 1, 1, 1))
        self.groups = channels
        self.step = int(round(1 / scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.step == 1:
            return x
        out = F.pad(x, (self.ka, self.kb, self.ka, self.kb))
        out = F.conv2d(out, self.weight, groups=self.groups)
        return out[:, :, :: self.step, :: self.step]


def gaussian_heatmaps(mean: torch.Tensor, covar: torch.Tensor | float, h: int, w: int) -> torch.Tensor:
    """Unnormalised ``exp(-½ (z−μ)ᵀ Σ⁻¹ (z−μ))`` on an (h, w) grid: (B, K, h, w).

    ``mean`` (B, K, 2); ``covar`` (B, K, 2, 2) or a float variance (isotropic). Written as
    elementwise math (no 6-D MatMul, no Inverse) for export and TensorRT.
    """
    from jamsdk.model.linalg2x2 import inverse

    grid = coordinate_grid(h, w, mean.dtype, mean.device)
    dx = grid[..., 0] - mean[..., 0, None, None]
    dy = grid[..., 1] - mean[..., 1, None, None]
    if isinstance(covar, (float, int)):
        quad = (dx * dx + dy * dy) / float(covar)
    else:
        inv = inverse(covar)
        i00, i01 = inv[..., 0, 0, None, None], inv[..., 0, 1, None, None]
        i10, i11 = inv[..., 1, 0, None, None], inv[..., 1, 1, None, None]
        quad = i00 * dx * dx + (i01 + i10) * dx * dy + i11 * dy * dy
    return torch.exp(-0.5 * quad)

