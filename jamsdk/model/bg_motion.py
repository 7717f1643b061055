"""Background motion predictor: one 3×3 transform of the whole frame (zero/shift/affine/perspective)."""

from __future__ import annotations

import torch
from torch import nn

from jamsdk.config import ModelConfig
from jamsdk.model.blocks import Encoder

_IDENTITY_PARAMS = {"shift": [0.0, 0.0], "affine": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
                    "perspective": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]}


class BgMotion(nn.Module):
    """(source, driving) images → (B, 3, 3) transform; starts at (and for ``zero`` stays) the identity."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        bc = cfg.bg_motion
        self.bg_type = bc.bg_type
        if self.bg_type != "zero":
            self.encoder = Encoder(bc.block_expansion, cfg.num_channels * 2, bc.num_blocks, bc.max_features)
            init = _IDENTITY_PARAMS[self.bg_type]
            self.fc = nn.Linear(min(bc.max_features, bc.block_expansion * 2**bc.num_blocks), len(init))
            with torch.no_grad():  # identity at initialisation: the background starts still
                self.fc.weight.zero_()
                self.fc.bias.copy_(torch.tensor(init))

    def forward(self, source_image: torch.Tensor, driving_image: torch.Tensor) -> torch.Tensor:
        b = source_image.shape[0]
        eye = torch.eye(3, dtype=source_image.dtype, device=source_image.device).expand(b, 3, 3)
        if self.bg_type == "zero":
            return eye
        pred = self.fc(self.encoder(torch.cat([source_image, driving_image], dim=1))[-1].mean(dim=(2, 3)))
        zero, one = torch.zeros_like(pred[:, :1]), torch.ones_like(pred[:, :1])
        if self.bg_type == "shift":
            rows = [one, zero, pred[:, 0:1], zero, one, pred[:, 1:2], zero, zero, one]
        elif self.bg_type == "affine":
            rows = [pred[:, i:i + 1] for i in range(6)] + [zero, zero, one]
        else:
            rows = [pred[:, i:i + 1] for i in range(8)] + [one]
        return torch.cat(rows, dim=1).view(b, 3, 3)

    @property
    def is_identity(self) -> bool:
        return self.bg_type == "zero"
