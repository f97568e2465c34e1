import re
from pathlib import Path

import pytest
import torch
from torch import nn

from evilm.train.config import OptimConfig
from evilm.train.engine import Engine, RunningMeans, check_finite
from evilm.train.optim import lr_factor
from evilm.train.runtime import NonFiniteLossError


def model_and_loss(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 1))
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(1))
    return model, lambda: (model(x) * 10).pow(2).mean()


def test_a_step_is_adamw_with_clipping_and_the_schedule():
    cfg = OptimConfig(lr=1e-2, weight_decay=0.1, warmup_ratio=0.5, grad_clip=0.5)
    model, loss_fn = model_and_loss()
    ref_model, ref_loss = model_and_loss()
    engine = Engine(model, cfg, total_steps=4)
    decay = [p for p in ref_model.parameters() if p.ndim >= 2]
    no_decay = [p for p in ref_model.parameters() if p.ndim < 2]
    ref = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-2)
    for step in range(4):
        assert engine.lr == pytest.approx(1e-2 * lr_factor(step, 4, cfg))
        for group in ref.param_groups:
            group["lr"] = 1e-2 * lr_factor(step, 4, cfg)
        engine.zero_grad()
        engine.backward(loss_fn())
        norm = engine.step()
        ref.zero_grad()
        ref_loss().backward()
        ref_norm = torch.nn.utils.clip_grad_norm_(list(ref_model.parameters()), 0.5)
        ref.step()
        assert norm == pytest.approx(float(ref_norm)) and norm > 0.5  # the norm before clipping
    for a, b in zip(model.parameters(), ref_model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_gradients_are_clipped_to_grad_clip_or_left_alone_at_zero():
    for clip in (0.1, 0.0):
        model, loss_fn = model_and_loss()
        engine = Engine(model, OptimConfig(grad_clip=clip), total_steps=1)
        engine.backward(loss_fn())
        before = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()]))
        norm = engine.step()
        after = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()]))
        assert norm == pytest.approx(float(before))
        assert float(after) == pytest.approx(0.1 if clip else float(before), rel=1e-5)


def test_only_trainable_parameters_and_a_step_without_gradients():
    model, _ = model_and_loss()
    model[0].weight.requires_grad_(False)
    engine = Engine(model, OptimConfig(), total_steps=2)
    assert all(p is not model[0].weight for p in engine.params) and len(engine.params) == 5
    assert engine.step() == 0.0  # no parameter reached: nothing moves, the schedule still advances
    assert engine.scheduler.last_epoch == 1


def test_mixed_precision_settings():
    model, loss_fn = model_and_loss()
    assert Engine(model, OptimConfig(), 1).scaler is None
    assert Engine(model, OptimConfig(), 1, amp_dtype=torch.bfloat16).scaler is None
    assert Engine(model, OptimConfig(), 1, amp_dtype=torch.float16).scaler is not None
    engine = Engine(model, OptimConfig(), 1, amp_dtype=torch.bfloat16)
    with engine.autocast():
        assert model[0](torch.randn(2, 4)).dtype == torch.bfloat16
    with Engine(model, OptimConfig(), 1).autocast():
        assert model[0](torch.randn(2, 4)).dtype == torch.float32


def test_check_finite_names_the_step_and_the_term():
    check_finite(3, {"loss": 1.0, "mvm": 0.0})
    with pytest.raises(NonFiniteLossError, match="step 3: mvm = inf") as err:
        check_finite(3, {"loss": 1.0, "mvm": float("inf")})
    assert (err.value.step, err.value.term) == (3, "mvm")


def test_running_means():
    means = RunningMeans()
    means.add({"loss": 1.0, "acc": 0.5})
    means.add({"loss": 3.0})  # a name missing from a step counts as 0 for it
    assert means.means("train/") == {"train/loss": 2.0, "train/acc": 0.25}
    assert (means.sums, means.count) == ({"loss": 4.0, "acc": 0.5}, 2)
    resumed = RunningMeans(means.sums, means.count)
    resumed.add({"loss": 5.0, "acc": 1.0})
    assert resumed.means() == {"loss": 3.0, "acc": 0.5}
    means.reset()
    assert means.means() == {} and means.count == 0


def test_the_optimizer_step_has_one_implementation():
    """Every loop of evilm steps through the engine: nothing else clips, steps, scales or backpropagates."""
    root = Path(__file__).resolve().parents[2] / "evilm"
    marks = re.compile(r"clip_grad_norm_\(|optimizer\.step\(|scheduler\.step\(|(?<!engine)\.backward\(|GradScaler\("
                       r"|create_optimizer\(|create_scheduler\(")
    users = {p.relative_to(root).as_posix() for p in root.rglob("*.py")
             if marks.search(p.read_text()) and p.name != "optim.py"}
    assert users == {"train/engine.py"}
