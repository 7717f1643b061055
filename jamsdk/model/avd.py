"""Animation-via-disentanglement network (MRAA stage 2).

Encodes the source's region parameters as identity and the driving frame's as pose, and decodes
new region parameters: the driving pose in the source's shape. Each frame's parameters are embedded
region by region as ``[shift_x, shift_y, a00, a01, a10, a11]``.
"""

from __future__ import annotations

import torch
from torch import nn

from jamsdk.config import ModelConfig
from jamsdk.model.linalg2x2 import inverse, matmul

Params = dict[str, torch.Tensor]


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers += [nn.BatchNorm1d(sizes[i + 1]), nn.ReLU()]
    return nn.Sequential(*layers)


class AVDNetwork(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        ac = cfg.avd
        n = 6 * cfg.num_regions
        self.num_regions = cfg.num_regions
        self.revert_axis_swap = cfg.revert_axis_swap
        hidden = list(ac.hidden_sizes)
        self.id_encoder = _mlp([n, *hidden, ac.id_bottleneck_size])
        self.pose_encoder = _mlp([n, *hidden, ac.pose_bottleneck_size])
        self.decoder = _mlp([ac.id_bottleneck_size + ac.pose_bottleneck_size, *hidden[::-1], n])

    @staticmethod
    def embed(shift: torch.Tensor, affine: torch.Tensor) -> torch.Tensor:
        b, k = shift.shape[:2]
        return torch.cat([shift, affine.reshape(b, k, 4)], dim=-1).reshape(b, k * 6)

    def forward(self, source: Params, driving: Params) -> Params:
        id_affine = source["affine"]
        if self.revert_axis_swap:
            m = matmul(id_affine, inverse(driving["affine"]))
            id_affine = id_affine * torch.sign(m[..., 0:1, 0:1])
        pose = self.pose_encoder(self.embed(driving["shift"], driving["affine"]))
        ident = self.id_encoder(self.embed(source["shift"], id_affine))
        out = self.decoder(torch.cat([pose, ident], dim=1)).view(-1, self.num_regions, 6)
        affine = out[..., 2:].reshape(-1, self.num_regions, 2, 2)
        return {"shift": out[..., :2], "affine": affine, "covar": matmul(affine, affine.transpose(-1, -2))}
