import pytest
import torch

from evilm.pretrain.masking import (
    MaskConfig,
    apply_region_mask,
    block_mask,
    make_mask,
    masked_count,
    random_mask,
    tube_mask,
)


def components(frame: torch.Tensor) -> int:
    """Number of 4-connected groups of masked regions in a (gh, gw) mask."""
    gh, gw = frame.shape
    seen = set()
    count = 0
    for i in range(gh):
        for j in range(gw):
            if frame[i, j] and (i, j) not in seen:
                count += 1
                stack = [(i, j)]
                while stack:
                    a, b = stack.pop()
                    if (a, b) in seen or not (0 <= a < gh and 0 <= b < gw) or not frame[a, b]:
                        continue
                    seen.add((a, b))
                    stack += [(a + 1, b), (a - 1, b), (a, b + 1), (a, b - 1)]
    return count


def test_masked_count():
    assert masked_count(8, 8, 0.4) == 26  # round(25.6)
    assert masked_count(4, 4, 0.4) == 6
    assert masked_count(2, 2, 0.4) == 2
    assert masked_count(2, 2, 0.0) == 0
    assert masked_count(2, 2, 0.01) == 1  # any positive ratio masks something
    assert masked_count(2, 2, 0.99) == 3  # one region always stays visible


@pytest.mark.parametrize("kind", ["block", "random", "tube"])
@pytest.mark.parametrize("grid,ratio", [((2, 2), 0.4), ((4, 4), 0.4), ((8, 8), 0.4), ((14, 14), 0.75), ((8, 8), 0.1)])
def test_exact_count_per_frame(kind, grid, ratio):
    cfg = MaskConfig(kind=kind, ratio=ratio)
    mask = make_mask((3, 4, *grid), cfg, torch.Generator().manual_seed(1))
    assert mask.dtype == torch.bool and mask.shape == (3, 4, *grid)
    per_frame = mask.flatten(2).sum(-1)
    assert (per_frame == masked_count(*grid, ratio)).all()


def test_block_of_min_size_is_one_connected_block():
    # When the target equals the smallest block, every frame holds exactly one block.
    cfg = MaskConfig(kind="block", ratio=4 / 64, min_block=4)
    mask = block_mask((8, 4, 8, 8), cfg, torch.Generator().manual_seed(0))
    for frame in mask.flatten(0, 1):
        assert frame.sum() == 4
        assert components(frame) == 1


def test_block_masks_are_blockier_than_random():
    cfg_b = MaskConfig(kind="block", ratio=0.4)
    cfg_r = MaskConfig(kind="random", ratio=0.4)
    g = torch.Generator().manual_seed(3)
    blocks = block_mask((8, 4, 14, 14), cfg_b, g).flatten(0, 1)
    rand = random_mask((8, 4, 14, 14), cfg_r, g).flatten(0, 1)
    mean_b = sum(components(f) for f in blocks) / len(blocks)
    mean_r = sum(components(f) for f in rand) / len(rand)
    assert mean_b < mean_r / 2, (mean_b, mean_r)


def test_tube_repeats_over_time_and_random_does_not():
    g = torch.Generator().manual_seed(0)
    tube = tube_mask((4, 3, 8, 8), MaskConfig(kind="tube"), g)
    assert (tube == tube[:, :1]).all()
    rand = random_mask((4, 3, 8, 8), MaskConfig(kind="random"), g)
    assert not (rand == rand[:, :1]).all()


@pytest.mark.parametrize("kind", ["block", "random", "tube"])
def test_same_generator_state_same_mask(kind):
    cfg = MaskConfig(kind=kind)
    a = make_mask((2, 2, 8, 8), cfg, torch.Generator().manual_seed(7))
    b = make_mask((2, 2, 8, 8), cfg, torch.Generator().manual_seed(7))
    c = make_mask((2, 2, 8, 8), cfg, torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_apply_region_mask_zeroes_exactly_the_masked_patches():
    frames = torch.rand(1, 2, 3, 4, 6) + 0.1  # no zero pixel to begin with
    mask = torch.zeros(1, 2, 2, 3, dtype=torch.bool)
    mask[0, 0, 1, 2] = True
    mask[0, 1, 0, 0] = True
    out = apply_region_mask(frames, mask, stride=2)
    assert (out[0, 0, :, 2:4, 4:6] == 0).all()
    assert (out[0, 1, :, 0:2, 0:2] == 0).all()
    assert (out == 0).sum() == 2 * 3 * 2 * 2
    keep = out != 0
    assert torch.equal(out[keep], frames[keep])


def test_apply_region_mask_rejects_a_mask_that_does_not_tile():
    with pytest.raises(ValueError, match="does not tile"):
        apply_region_mask(torch.rand(1, 2, 3, 8, 8), torch.zeros(1, 2, 2, 2, dtype=torch.bool), stride=32)


def test_bad_config_values():
    with pytest.raises(ValueError, match="ratio"):
        MaskConfig(ratio=1.0)
    with pytest.raises(ValueError, match="kind"):
        make_mask((1, 1, 2, 2), MaskConfig(kind="zigzag"))
