"""VGG-19 feature extractor for the perceptual loss (relu1_1 … relu5_1), frozen.

The layer stack is torchvision's ``vgg19().features`` up to ``relu5_1`` (indices 0–29) under the same
names (``features.N.weight``/``bias``), so torchvision's ImageNet weight file
(``vgg19-dcbb9e9d.pth``) loads key for key; torchvision itself is not needed. Without a weight file
the stack is initialised randomly from a fixed seed: random convolutional features are a known,
usable perceptual prior (they still compare local structure at several receptive-field sizes), but
weaker than ImageNet features, so the trainer adds an L1 pixel term in that case and says so.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from jamsdk.errors import CheckpointError

# torchvision's "E" configuration; "M" is a 2×2 max-pool.
_LAYOUT: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
                                  512, 512, 512, 512, "M", 512)
# Slices of ``features`` ending at relu1_1, relu2_1, relu3_1, relu4_1, relu5_1.
SLICES: tuple[tuple[int, int], ...] = ((0, 2), (2, 7), (7, 12), (12, 21), (21, 30))
NUM_LAYERS = 30
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _features() -> nn.Sequential:
    layers: list[nn.Module] = []
    cin = 3
    for item in _LAYOUT:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(cin, int(item), kernel_size=3, padding=1), nn.ReLU(inplace=False)]
            cin = int(item)
    assert len(layers) == NUM_LAYERS  # a bug in _LAYOUT, not user input
    return nn.Sequential(*layers)


class Vgg19(nn.Module):
    """Frozen VGG-19 returning the five feature maps relu1_1 … relu5_1 of an RGB image in [0, 1].

    Args:
        weights: torchvision ``vgg19`` ImageNet state-dict file; ``None`` uses the fixed-seed random
            initialisation described in the module docstring.
        seed: seed of the random initialisation (ignored when ``weights`` is given).
    """

    def __init__(self, weights: str | os.PathLike[str] | None = None, seed: int = 0):
        super().__init__()
        # Building the layers runs their default init from the global RNG; fork it so that
        # constructing the loss never shifts the training run's random stream.
        with torch.random.fork_rng(devices=[]):
            self.features = _features()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        if weights is None:
            self._random_init(seed)
            self.source = f"random-init VGG-19 (seed {seed})"
        else:
            load_torchvision_vgg19(self, weights)
            self.source = f"ImageNet VGG-19 ({Path(weights).name})"
        self.pretrained = weights is not None
        self.requires_grad_(False)
        self.eval()

    def _random_init(self, seed: int) -> None:
        # torchvision's own init (Kaiming fan-out, zero bias) from a private generator, so the
        # global RNG (and with it the training run's randomness) is left untouched.
        gen = torch.Generator().manual_seed(seed)
        for m in self.features:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=gen)
                nn.init.zeros_(m.bias)

    def train(self, mode: bool = True) -> "Vgg19":
        # Always frozen; there is no BatchNorm or dropout in the kept layers, but keep eval() honest.
        return super().train(False)

    def forward(self, x: torch.Tensor, depth: int = len(SLICES)) -> list[torch.Tensor]:
        """The first ``depth`` feature maps (relu1_1 …); deeper layers are not computed."""
        x = (x - self.mean) / self.std
        outs = []
        for a, b in SLICES[:depth]:
            for i in range(a, b):
                x = self.features[i](x)
            outs.append(x)
        return outs


def load_torchvision_vgg19(model: Vgg19, path: str | os.PathLike[str]) -> None:
    """Load torchvision's ``vgg19`` ImageNet weights (``features.N.*``; classifier keys ignored).

    The file is read with ``torch.load(weights_only=True)``. Keys of layers past ``relu5_1``
    (``features.30`` and up) and ``classifier.*`` are not needed and ignored; anything else that does
    not fit (missing layers, other shapes, a ``vgg19_bn`` file) raises :class:`CheckpointError`.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"VGG-19 weights {p}: no such file")
    try:
        data = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - corrupt zip, pickle refused by weights_only, …
        from jamsdk.model.checkpoint import refused

        raise refused(p, exc, "VGG-19 weights") from None
    if isinstance(data, Mapping) and "state_dict" in data and isinstance(data["state_dict"], Mapping):
        data = data["state_dict"]
    if not isinstance(data, Mapping):
        raise CheckpointError(f"VGG-19 weights {p}: expected a state dict, got {type(data).__name__}")
    own = {f"features.{k}": v for k, v in model.features.state_dict().items()}
    state: dict[str, Any] = {}
    unexpected = []
    for key, value in data.items():
        key = str(key)
        if key.startswith("module."):  # saved from a DataParallel wrapper
            key = key[len("module."):]
        if key in own:
            state[key] = value
        elif key.startswith("classifier.") or _layer_index(key) >= NUM_LAYERS:
            continue
        else:
            unexpected.append(key)
    missing = [k for k in own if k not in state]
    bad_shape = [f"{k}: expected {tuple(own[k].shape)}, got {tuple(getattr(state[k], 'shape', ()))}"
                 for k in own if k in state and tuple(getattr(state[k], "shape", ())) != tuple(own[k].shape)]
    if missing or unexpected or bad_shape:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", bad_shape)):
            if items:
                parts.append(f"{label} ({len(items)}): " + ", ".join(items[:4]) + (" …" if len(items) > 4 else ""))
        raise CheckpointError(
            f"VGG-19 weights {p}: expected torchvision's vgg19 state dict (features.N.weight/bias), "
            + "; ".join(parts)
        )
    model.features.load_state_dict({k[len("features."):]: v for k, v in state.items()})


def _layer_index(key: str) -> int:
    parts = key.split(".")
    if len(parts) == 3 and parts[0] == "features" and parts[1].isdigit():
        return int(parts[1])
    return -1
