import pytest
import torch
from torch import nn

from evilm.profiling.breakdown import KINDS, operator_kind, profile_breakdown


def test_operator_kinds_by_hand():
    assert operator_kind("aten::conv2d", [[1, 8, 5, 5], [8, 1, 3, 3], [8]]) == "depthwise conv"
    assert operator_kind("aten::conv2d", [[1, 3, 5, 5], [8, 3, 3, 3], [8]]) == "conv"
    assert (
        operator_kind("aten::conv2d", [[1, 1, 5, 5], [1, 1, 3, 3], [1]]) == "conv"
    )  # one channel: not depthwise
    assert operator_kind("aten::layer_norm", []) == "layer norm"
    assert operator_kind("aten::linear", []) == "linear / matmul"
    assert operator_kind("aten::scaled_dot_product_attention", []) == "attention"
    assert operator_kind("aten::gelu", []) == "GELU"
    assert operator_kind("aten::mul", []) == "element-wise"
    assert operator_kind("aten::cat", []) == "copy / layout"
    assert operator_kind("aten::embedding", []) == "other"


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.head = nn.Sequential(nn.LayerNorm(8), nn.Linear(8, 16), nn.GELU())

    def forward(self, x):
        x = self.dw(self.stem(x)) * 2
        return self.head(x.permute(0, 2, 3, 1))


def test_profile_splits_time_by_part_and_kind():
    b = profile_breakdown(
        Tiny(), (torch.rand(1, 3, 16, 16),), parts=("stem", "dw", "head", "missing"), repeats=2
    )
    parts = b.by_part()
    assert {"stem", "dw", "head"} <= set(parts) and "missing" not in parts
    assert b.ms[("dw", "depthwise conv")] > 0 and b.ms[("stem", "conv")] > 0
    for kind in ("layer norm", "linear / matmul", "GELU"):
        assert b.ms[("head", kind)] > 0
    assert b.ms[("(outside the parts)", "element-wise")] > 0  # the * 2 between the parts
    assert set(b.by_kind()) <= set(KINDS)
    assert sum(parts.values()) <= b.total_ms * 1.05
    assert sum(parts.values()) == pytest.approx(sum(b.by_kind().values()))
    table = b.markdown()
    assert "| dw |" in table and "depthwise conv" in table.splitlines()[0]
