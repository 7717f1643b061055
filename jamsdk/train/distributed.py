"""Processes and devices of a training run: torchrun's process group, the device, agreement across ranks.

A single process (no ``WORLD_SIZE``, or 1) needs none of it: every helper is then a pass-through.
Under ``torchrun`` each rank joins one process group (NCCL on CUDA, gloo on the CPU) and uses its
``LOCAL_RANK`` GPU; DistributedDataParallel itself is set up by :class:`jamsdk.train.trainer.Trainer`.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass

import torch

from jamsdk.errors import InputError


@dataclass
class DistInfo:
    """This process's place in the run: its rank among ``world`` processes and its GPU (``local_rank``)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owned: bool = False  # this process group was started here, so it is torn down here

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str | None) -> tuple[DistInfo, torch.device]:
    """Join the process group torchrun describes (if any) and pick this rank's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(), pick_device(device)
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available() and device != "cpu"
    owned = not dist.is_initialized()
    if owned:
        # DDP imports torch.distributed.nn, whose functions take `group=group.WORLD` as a default
        # argument: imported after the group exists, those defaults hold it until the interpreter
        # ends, and shutdown_distributed could no longer free it (nor join its threads).
        importlib.import_module("torch.distributed.nn")

        dist.init_process_group(backend="nccl" if cuda else "gloo")
    if cuda:
        torch.cuda.set_device(local_rank)
    dev = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, owned), dev


def shutdown_distributed(dist_info: DistInfo) -> None:
    """Tear down the process group this process started, once every rank has finished.

    Gloo's worker threads release the last collective's tensors after the caller has its result;
    releasing a tensor that Python knows takes the GIL. If the interpreter is already shutting down
    by then (a rank that finished first and exits while rank 0 still writes the checkpoint), Python
    ends that thread with a forced unwind and C++ aborts the process ("terminate called without an
    active exception"). Destroying the group while the interpreter is alive joins those threads
    first. The barrier keeps a rank from leaving while another still needs it.
    """
    if dist_info.world == 1 or not dist_info.owned:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def pick_device(device: str | None) -> torch.device:
    """``None``/``auto`` (CUDA when there is one), ``cpu``, ``cuda`` or ``cuda:N``, checked."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise InputError(f"device: expected 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {device!r} requested but torch sees no CUDA GPU (torch {torch.__version__})")
    return torch.device(device)


def any_rank(flag: bool, dist_info: DistInfo, device: torch.device) -> bool:
    """True on every rank if ``flag`` is true on any (so all ranks stop at the same step)."""
    if dist_info.world == 1:
        return flag
    import torch.distributed as dist

    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def mean_over_ranks(values: dict[str, float], dist_info: DistInfo, device: torch.device) -> dict[str, float]:
    """Loss values averaged over processes: what a single process would log for the global batch."""
    if dist_info.world == 1:
        return values
    import torch.distributed as dist

    t = torch.tensor(list(values.values()), dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return dict(zip(values, (t / dist_info.world).tolist()))
