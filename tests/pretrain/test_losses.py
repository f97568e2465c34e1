import math

import pytest
import torch

from evilm.pretrain.losses import IGNORE, align_loss, mlm_loss, mvm_loss, vtm_loss, vtm_pairs


def test_mlm_loss_hand_computed():
    logits = torch.tensor([[[5.0, -2.0], [0.0, 0.0], [0.0, math.log(3.0)]]])
    labels = torch.tensor([[IGNORE, 0, 1]])
    # position 1: -log(1/2); position 2: -log(3/4); the ignored position does not count.
    expected = (math.log(2.0) + math.log(4.0 / 3.0)) / 2
    assert mlm_loss(logits, labels).item() == pytest.approx(expected, abs=1e-6)


def test_mlm_loss_without_masked_words_is_zero_and_differentiable():
    logits = torch.randn(2, 3, 5, requires_grad=True)
    loss = mlm_loss(logits, torch.full((2, 3), IGNORE))
    assert loss.item() == 0.0
    loss.backward()
    assert logits.grad is not None


def test_vtm_loss_hand_computed():
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0], [0.0, math.log(4.0)]])
    labels = torch.tensor([1, 0, 1])
    expected = (math.log(2.0) + math.log(4.0 / 3.0) + math.log(5.0 / 4.0)) / 3
    assert vtm_loss(logits, labels).item() == pytest.approx(expected, abs=1e-6)


def test_mvm_loss_averages_over_masked_regions_only():
    # one clip, T=1, a 2x2 grid, 3 codes; regions are flattened row by row
    logits = torch.zeros(1, 4, 3)
    logits[0, 1] = torch.tensor([math.log(2.0), 0.0, 0.0])  # p(code 0) = 2/4
    logits[0, 2] = torch.tensor([100.0, 0.0, 0.0])  # unmasked: would add a huge loss for code 2
    codes = torch.tensor([[[[1, 0], [2, 2]]]])
    mask = torch.tensor([[[[True, True], [False, True]]]])
    # region 0: -log(1/3); region 1: -log(1/2); region 3: -log(1/3)
    expected = (math.log(3.0) + math.log(2.0) + math.log(3.0)) / 3
    assert mvm_loss(logits, codes, mask).item() == pytest.approx(expected, abs=1e-6)


def test_mvm_loss_checks_shapes():
    with pytest.raises(ValueError, match="regions"):
        mvm_loss(torch.zeros(1, 5, 3), torch.zeros(1, 1, 2, 2, dtype=torch.long), torch.ones(1, 1, 2, 2, dtype=torch.bool))


@pytest.mark.parametrize("b", [2, 3, 7, 32])
def test_vtm_pairs_never_pairs_a_clip_with_its_own_caption(b):
    g = torch.Generator().manual_seed(b)
    for _ in range(20):
        perm = vtm_pairs(b, g)
        assert sorted(perm.tolist()) == list(range(b))
        assert (perm != torch.arange(b)).all()


def test_vtm_pairs_needs_two_items():
    with pytest.raises(ValueError, match="at least 2"):
        vtm_pairs(1)


def test_mvm_loss_on_masked_logits_only_equals_full():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 2 * 3 * 3, 7, generator=g)
    codes = torch.randint(0, 7, (2, 2, 3, 3), generator=g)
    mask = torch.rand(2, 2, 3, 3, generator=g) < 0.4
    full = mvm_loss(logits, codes, mask)
    selected = mvm_loss(logits[mask.flatten(1)], codes, mask)
    assert selected.item() == pytest.approx(full.item(), abs=1e-6)


def test_align_loss_is_low_for_aligned_pairs_and_high_for_shuffled_ones():
    g = torch.Generator().manual_seed(0)
    video = torch.randn(8, 5, 16, generator=g)
    text = torch.cat([video.mean(1, keepdim=True).expand(-1, 3, -1), torch.randn(8, 2, 16, generator=g)], 1)
    mask = torch.tensor([[1, 1, 1, 0, 0]] * 8)  # the padded words must not count
    aligned = align_loss(text, mask, video)
    shuffled = align_loss(text[torch.arange(8).roll(1)], mask, video)
    assert aligned < 0.01 and shuffled > math.log(8)
