"""The benchmark MAC counter (benchmarks/_cost.py) on a toy net whose MACs are worked out by hand."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

# benchmarks/ is a folder of scripts, not a package: its helpers import as top-level modules.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from _cost import MacCounter, count_macs, count_params, layer_macs, time_interleaved  # noqa: E402


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.plain = nn.Conv2d(3, 8, 3, padding=1)
        self.dilated = nn.Conv2d(8, 8, 3, padding=2, dilation=2)
        self.grouped = nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=4)
        self.up = nn.ConvTranspose2d(16, 4, 2, stride=2, groups=2)
        self.head = nn.Linear(4, 10)
        self.norm = nn.BatchNorm2d(8)

    def forward(self, x):
        x = self.norm(self.plain(x))
        x = self.dilated(self.dilated(x))  # the same module twice: counted twice
        x = self.up(self.grouped(x))
        return self.head(x.mean(dim=(2, 3)))


# Hand counts for a (1, 3, 16, 16) input:
PLAIN = 8 * 16 * 16 * 3 * 9          # out elements × in_ch × k²
DILATED = 8 * 16 * 16 * 8 * 9        # dilation changes neither the output size (padding 2) nor the taps
GROUPED = 16 * 8 * 8 * (8 // 4) * 9  # stride 2 → 8×8 outputs; each sees in_ch/groups channels
UP = 16 * 8 * 8 * (4 // 2) * 4       # transposed: in elements × out_ch/groups × k²
HEAD = 10 * 4


def test_toy_net_macs_by_hand():
    torch.manual_seed(0)
    net = Toy().eval()
    counter = count_macs(net, lambda: net(torch.rand(1, 3, 16, 16)))
    assert counter.by_module == {"plain": PLAIN, "dilated": 2 * DILATED, "grouped": GROUPED, "up": UP,
                                 "head": HEAD}
    assert counter.total == PLAIN + 2 * DILATED + GROUPED + UP + HEAD


def test_batch_scales_macs_and_matches_torch_flop_counter():
    from torch.utils.flop_counter import FlopCounterMode

    net = Toy().eval()
    x = torch.rand(3, 3, 16, 16)
    counter = count_macs(net, lambda: net(x))
    assert counter.total == 3 * (PLAIN + 2 * DILATED + GROUPED + UP + HEAD)
    # Independent check: torch counts 2 FLOPs per MAC for convolutions and matmuls.
    with FlopCounterMode(display=False) as flops, torch.inference_mode():
        net(x)
    assert flops.get_total_flops() == 2 * counter.total


def test_hooks_removed_and_counts_accumulate_until_reset():
    net = Toy().eval()
    x = torch.rand(1, 3, 16, 16)
    counter = MacCounter(net)
    with counter, torch.inference_mode():
        net(x)
    once = counter.total
    with torch.inference_mode():
        net(x)  # outside the block: not counted
    assert counter.total == once
    with counter, torch.inference_mode():
        net(x)
    assert counter.total == 2 * once
    counter.reset()
    assert counter.total == 0
    assert all(not m._forward_hooks for m in net.modules())


def test_prefix_and_grouping():
    outer = nn.Sequential(Toy(), nn.Linear(10, 5))
    counter = count_macs(outer, lambda: outer(torch.rand(1, 3, 16, 16)))
    assert counter.by_prefix("0") == PLAIN + 2 * DILATED + GROUPED + UP + HEAD
    assert counter.by_prefix("0.dilated") == 2 * DILATED
    assert counter.by_prefix("1") == 5 * 10
    assert counter.by_prefix("") == counter.total
    assert counter.grouped(1) == {"0": counter.by_prefix("0"), "1": 50}


def test_layer_macs_ignores_other_modules():
    relu = nn.ReLU()
    x = torch.rand(1, 4)
    assert layer_macs(relu, (x,), relu(x)) == 0


def test_count_params_counts_shared_weights_once():
    a = nn.Linear(4, 3)  # 15 parameters
    b = nn.Sequential(a, nn.BatchNorm1d(3))  # + 6 (weight, bias); running stats are buffers
    assert count_params(a) == 15
    assert count_params([a, b]) == 21


def test_time_interleaved_rounds_and_order():
    calls = []
    fns = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    timings = time_interleaved(fns, rounds=3, warmup=1)
    assert [len(t.samples) for t in timings.values()] == [3, 3]
    assert calls == ["a", "b", "b", "a", "a", "b", "b", "a"]
    assert timings["a"].min_ms <= timings["a"].median_ms
