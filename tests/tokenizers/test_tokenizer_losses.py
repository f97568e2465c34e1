import math

import pytest
import torch
import torch.nn.functional as F

from evilm.tokenizers.losses import asymmetric_loss, bce_loss


def sig(x):
    return 1 / (1 + math.exp(-x))


LOGITS = torch.tensor([[0.0, 2.0], [-1.0, 1.0]])
TARGETS = torch.tensor([[1.0, 0.0], [0.0, 1.0]])


def test_paper_focal_loss_by_hand():
    # gamma+ = 0, gamma- = 1: positives log p, negatives p log(1 - p); minus the mean.
    terms = [
        math.log(sig(0.0)),
        sig(2.0) * math.log(1 - sig(2.0)),
        sig(-1.0) * math.log(1 - sig(-1.0)),
        math.log(sig(1.0)),
    ]
    expected = -sum(terms) / 4
    assert asymmetric_loss(LOGITS, TARGETS, gamma_pos=0, gamma_neg=1).item() == pytest.approx(expected, rel=1e-6)


def test_general_gammas_and_clip_by_hand():
    gp, gn, clip = 1.0, 2.0, 0.05
    terms = []
    for x, y in zip(LOGITS.flatten().tolist(), TARGETS.flatten().tolist()):
        p = sig(x)
        if y:
            terms.append((1 - p) ** gp * math.log(p))
        else:
            pm = max(p - clip, 0.0)
            terms.append(pm**gn * math.log(1 - pm))
    expected = -sum(terms) / 4
    got = asymmetric_loss(LOGITS, TARGETS, gamma_pos=gp, gamma_neg=gn, clip=clip).item()
    assert got == pytest.approx(expected, rel=1e-6)


def test_bce_by_hand_and_as_zero_gamma_asymmetric():
    terms = [math.log(sig(0.0)), math.log(1 - sig(2.0)), math.log(1 - sig(-1.0)), math.log(sig(1.0))]
    expected = -sum(terms) / 4
    assert bce_loss(LOGITS, TARGETS).item() == pytest.approx(expected, rel=1e-6)
    assert asymmetric_loss(LOGITS, TARGETS, 0, 0).item() == pytest.approx(expected, rel=1e-6)


def test_focal_down_weights_easy_negatives_more_than_bce():
    logits = torch.full((1, 100), -4.0)  # confident, correct negatives
    targets = torch.zeros(1, 100)
    assert asymmetric_loss(logits, targets) < 0.05 * bce_loss(logits, targets)


def test_stable_for_extreme_logits():
    logits = torch.tensor([[80.0, -80.0]], requires_grad=True)
    loss = asymmetric_loss(logits, torch.tensor([[0.0, 1.0]]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    assert loss.item() == pytest.approx(F.binary_cross_entropy_with_logits(logits, torch.tensor([[0.0, 1.0]])).item(), rel=1e-3)


def test_shape_mismatch_names_vocab_size():
    with pytest.raises(ValueError, match="vocab_size"):
        bce_loss(torch.zeros(2, 3), torch.zeros(2, 4))
