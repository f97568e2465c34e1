import math

import pytest
import torch

from evilm.tokenizers.usage import CodeCounter, codebook_usage


def test_usage_of_a_hand_made_assignment():
    codes = torch.tensor([[0, 0], [1, 3]])
    usage = codebook_usage(codes, codebook_size=5)
    assert usage["usage_rate"] == pytest.approx(3 / 5)
    assert usage["codes_used"] == 3
    entropy = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))
    assert usage["perplexity"] == pytest.approx(math.exp(entropy))


def test_streaming_equals_all_at_once_and_uniform_use_gives_full_perplexity():
    counter = CodeCounter(4)
    counter.update(torch.tensor([0, 1]))
    counter.update(torch.tensor([[2, 3]]))
    assert counter.result() == codebook_usage(torch.arange(4), 4)
    assert counter.result()["perplexity"] == pytest.approx(4.0)
    assert counter.result()["usage_rate"] == 1.0


def test_out_of_range_codes_and_empty_sets_are_errors():
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        codebook_usage(torch.tensor([0, 4]), 4)
    with pytest.raises(ValueError, match="empty"):
        CodeCounter(4).result()
