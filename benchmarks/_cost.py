"""Model cost helpers for the benchmark scripts: MAC and parameter counts, CPU timing, machine info.

Independent of jamsdk (only torch), so any benchmark can reuse it::

    from _cost import MacCounter            # benchmarks/ is sys.path[0] for `python benchmarks/x.py`

    with MacCounter(model) as macs:
        model(x)
    print(macs.total, macs.by_prefix("generator.bottleneck"))

MACs are counted the way MRAA_FACTS §13 (and most papers) count them: multiply-accumulates of the
learned layers only, i.e. ``nn.Conv{1,2,3}d``, ``nn.ConvTranspose{1,2,3}d`` and ``nn.Linear``, biases
excluded. Functional convolutions (``F.conv2d`` with a fixed kernel, e.g. an anti-alias blur),
``grid_sample``, normalisation and elementwise work are not in this number.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import torch
from torch import nn

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_CONV_T = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def layer_macs(module: nn.Module, inputs: tuple, output: torch.Tensor) -> int:
    """MACs of one call of a conv, transposed conv or linear layer (0 for anything else).

    Conv: every output element takes ``in_channels/groups × prod(kernel)`` MACs; stride, padding
    and dilation only change how many output elements there are (dilation spreads the taps, it does
    not add any). Transposed conv: every *input* element is scattered to ``out_channels/groups ×
    prod(kernel)`` outputs. Linear: ``in_features`` MACs per output element.
    """
    if isinstance(module, _CONV):
        return output.numel() * (module.in_channels // module.groups) * math.prod(module.kernel_size)
    if isinstance(module, _CONV_T):
        return inputs[0].numel() * (module.out_channels // module.groups) * math.prod(module.kernel_size)
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    return 0


class MacCounter:
    """Context manager that counts conv/linear MACs of everything ``root`` runs inside the block.

    Hooks every conv/linear submodule of ``root``; a module called several times is counted every
    time. Counts accumulate across ``with`` blocks until :meth:`reset`.
    """

    def __init__(self, root: nn.Module):
        self.root = root
        self.by_module: dict[str, int] = {}
        self._handles: list = []

    def __enter__(self) -> "MacCounter":
        for name, mod in self.root.named_modules():
            if isinstance(mod, _CONV + _CONV_T + (nn.Linear,)):
                self._handles.append(mod.register_forward_hook(self._hook(name)))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _hook(self, name: str):
        def hook(module, inputs, output):
            self.by_module[name] = self.by_module.get(name, 0) + layer_macs(module, inputs, output)
        return hook

    def reset(self) -> None:
        self.by_module.clear()

    @property
    def total(self) -> int:
        return sum(self.by_module.values())

    def by_prefix(self, prefix: str) -> int:
        """MACs of the modules named ``prefix`` or ``prefix.…`` (``""`` = everything)."""
        if not prefix:
            return self.total
        return sum(v for k, v in self.by_module.items() if k == prefix or k.startswith(prefix + "."))

    def grouped(self, depth: int) -> dict[str, int]:
        """MACs summed by the first ``depth`` components of the module names."""
        out: dict[str, int] = {}
        for k, v in self.by_module.items():
            key = ".".join(k.split(".")[:depth])
            out[key] = out.get(key, 0) + v
        return out


def count_macs(root: nn.Module, fn: Callable[[], object]) -> MacCounter:
    """Run ``fn()`` (under ``torch.inference_mode``) and return the filled :class:`MacCounter`."""
    counter = MacCounter(root)
    with counter, torch.inference_mode():
        fn()
    return counter


def count_params(modules: nn.Module | Iterable[nn.Module]) -> int:
    """Learnable parameters (buffers such as BatchNorm running stats excluded), shared ones once."""
    if isinstance(modules, nn.Module):
        modules = [modules]
    seen: dict[int, int] = {}
    for m in modules:
        for p in m.parameters():
            seen[id(p)] = p.numel()
    return sum(seen.values())


@dataclass
class Timings:
    """Wall-clock samples (seconds) of one function."""

    samples: list[float] = field(default_factory=list)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples) * 1e3

    @property
    def min_ms(self) -> float:
        return min(self.samples) * 1e3


def time_interleaved(fns: dict[str, Callable[[], object]], rounds: int, warmup: int = 3) -> dict[str, Timings]:
    """Time every function ``rounds`` times, interleaved: one call of each per round.

    Interleaving spreads slow phases of a shared machine (another process taking a core, thermal
    or frequency changes) over all functions instead of charging them to whichever ran then. The
    order is reversed every other round so no function always runs right after the same one.
    Runs under ``torch.inference_mode``; the caller sets threads and eval mode.
    """
    names = list(fns)
    out = {n: Timings() for n in names}
    with torch.inference_mode():
        for r in range(warmup + rounds):
            order = names if r % 2 == 0 else names[::-1]
            for n in order:
                t0 = time.perf_counter()
                fns[n]()
                dt = time.perf_counter() - t0
                if r >= warmup:
                    out[n].samples.append(dt)
    return out


def calibration_call() -> tuple[Callable[[], object], int]:
    """MRAA_FACTS' yardstick, one 3×3 256→256 conv at 64², as a call and its MACs.

    Timed alongside a benchmark, its spread shows whether the machine was busy during the run.
    """
    conv = nn.Conv2d(256, 256, 3, padding=1).eval()
    x = torch.randn(1, 256, 64, 64)
    return (lambda: conv(x)), 64 * 64 * 256 * 256 * 9


def calibration_gmacs(repeats: int = 5) -> float:
    """Throughput (GMAC/s, best of ``repeats`` after one warm-up) of :func:`calibration_call`."""
    call, macs = calibration_call()
    timings = time_interleaved({"conv": call}, rounds=repeats, warmup=1)
    return macs / (timings["conv"].min_ms / 1e3) / 1e9


def machine_info() -> dict[str, object]:
    """CPU model, core and thread counts, torch and Python versions."""
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
