import math

import pytest
from torch import nn

from evilm.train.config import OptimConfig
from evilm.train.optim import create_optimizer, create_scheduler, lr_factor


def test_warmup_then_cosine_decay():
    cfg = OptimConfig(warmup_ratio=0.2, schedule="cosine")
    total = 10  # 2 warm-up steps
    factors = [lr_factor(s, total, cfg) for s in range(total)]
    assert factors[0] == pytest.approx(1 / 3)
    assert factors[1] == pytest.approx(2 / 3)
    assert factors[2] == pytest.approx(1.0)
    assert factors[6] == pytest.approx(0.5 * (1 + math.cos(math.pi * 4 / 8)))
    assert all(a >= b for a, b in zip(factors[2:], factors[3:]))


def test_linear_and_constant_and_floor():
    assert lr_factor(5, 10, OptimConfig(warmup_ratio=0.0, schedule="linear")) == pytest.approx(0.5)
    assert lr_factor(9, 10, OptimConfig(warmup_ratio=0.0, schedule="constant")) == 1.0
    floor = OptimConfig(warmup_ratio=0.0, schedule="cosine", min_lr_ratio=0.1)
    assert lr_factor(10, 10, floor) == pytest.approx(0.1)


def test_no_weight_decay_on_biases_and_norms():
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4))
    opt = create_optimizer(model, OptimConfig(weight_decay=0.05))
    decayed = {id(p) for p in opt.param_groups[0]["params"]}
    assert opt.param_groups[0]["weight_decay"] == 0.05 and opt.param_groups[1]["weight_decay"] == 0.0
    assert decayed == {id(model[0].weight)}


def test_scheduler_drives_the_optimizer_lr():
    model = nn.Linear(2, 2)
    cfg = OptimConfig(lr=1e-3, warmup_ratio=0.5, schedule="linear")
    opt = create_optimizer(model, cfg)
    sched = create_scheduler(opt, 4, cfg)
    seen = []
    for _ in range(4):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx([1e-3 * lr_factor(s, 4, cfg) for s in range(4)])


def test_bad_values_named():
    with pytest.raises(ValueError, match="optim.lr"):
        OptimConfig(lr=0.0)
    with pytest.raises(ValueError, match="warmup_ratio"):
        OptimConfig(warmup_ratio=1.0)


def test_lr_scales_keep_their_ratio_under_the_schedule():
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    cfg = OptimConfig(lr=1e-2, warmup_ratio=0.5, schedule="cosine")
    opt = create_optimizer(model, cfg, dict.fromkeys(model[0].parameters(), 0.25))
    sched = create_scheduler(opt, 4, cfg)
    assert opt.param_groups[0]["lr"] == pytest.approx(cfg.lr * lr_factor(0, 4, cfg))  # scale 1 comes first
    slow = [g for g in opt.param_groups if any(p is model[0].weight for p in g["params"])]
    assert len(slow) == 1 and {id(p) for p in slow[0]["params"]} == {id(model[0].weight)}
    assert slow[0]["weight_decay"] == cfg.weight_decay
    for step in range(4):
        for group in opt.param_groups:
            scaled = any(p is model[0].weight or p is model[0].bias for p in group["params"])
            expected = cfg.lr * lr_factor(step, 4, cfg) * (0.25 if scaled else 1.0)
            assert group["lr"] == pytest.approx(expected), (step, group["weight_decay"])
        opt.step()
        sched.step()
