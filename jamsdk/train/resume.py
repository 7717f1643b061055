"""What exact resume needs besides weights and optimizer: every RNG's state, and the data position.

A training checkpoint stores :func:`rng_state` (tensors, lists and numbers, so that
``torch.load(weights_only=True)`` reads it back) and the epoch and batch reached; on resume,
:func:`set_rng_state` puts every generator back and :class:`EpochSampler` starts that epoch's
order (a function of seed and epoch) part-way in. So N steps straight and N/2 + resume + N/2 give
the same weights (:mod:`jamsdk.train.trainer`).
"""

from __future__ import annotations

import random
from typing import Any, Iterator

import numpy as np
import torch


def rng_state(transform_gen: torch.Generator) -> dict[str, Any]:
    """Every RNG the run touches, as tensors/lists/numbers (``weights_only``-loadable)."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": [py_state[0], list(py_state[1]), py_state[2]],
        "transform": transform_gen.get_state(),
    }


def set_rng_state(state: dict[str, Any], transform_gen: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    v, internal, gauss = state["python"]
    random.setstate((v, tuple(internal), gauss))
    transform_gen.set_state(state["transform"])


class EpochSampler(torch.utils.data.Sampler):
    """A DistributedSampler (shuffled by seed + epoch) that can start part-way into an epoch."""

    def __init__(self, dataset: Any, seed: int, rank: int = 0, world: int = 1):
        from torch.utils.data.distributed import DistributedSampler

        self.inner = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed,
                                        drop_last=True)
        self.skip = 0

    def set_position(self, epoch: int, skip: int) -> None:
        self.inner.set_epoch(epoch)
        self.skip = skip

    def __iter__(self) -> Iterator[int]:
        return iter(list(self.inner)[self.skip:])

    def __len__(self) -> int:
        return len(self.inner) - self.skip

    @property
    def per_epoch(self) -> int:
        return len(self.inner)
