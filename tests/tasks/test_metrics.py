import pytest
import torch

from evilm.tasks.metrics import (
    accuracy,
    accuracy_by_type,
    median_rank,
    recall_at_k,
    retrieval_metrics,
    retrieval_ranks,
)


def test_accuracy_and_by_type():
    assert accuracy(torch.tensor([1, 2, 3, 4]), torch.tensor([1, 0, 3, 0])) == 50.0
    by_type = accuracy_by_type([True, False, True, True], ["what", "what", "who", "who"])
    assert by_type == {"what": 50.0, "who": 100.0}
    with pytest.raises(ValueError, match="types"):
        accuracy_by_type([True], ["a", "b"])


SIM = torch.tensor(
    [
        # query 0: correct (col 0) is best, unique -> rank 1
        [0.9, 0.1, 0.2, 0.3],
        # query 1: correct (col 1) ties with col 3, one strictly higher (col 0)
        [0.8, 0.5, 0.1, 0.5],
        # query 2: all equal -> tie with 3 others
        [0.4, 0.4, 0.4, 0.4],
        # query 3: correct (col 3) is the worst
        [0.7, 0.6, 0.5, 0.1],
    ]
)


def test_ranks_with_each_tie_rule():
    assert retrieval_ranks(SIM).tolist() == [1.0, 3.0, 4.0, 4.0]
    assert retrieval_ranks(SIM, ties="optimistic").tolist() == [1.0, 2.0, 1.0, 4.0]
    assert retrieval_ranks(SIM, ties="mean").tolist() == [1.0, 2.5, 2.5, 4.0]


def test_recall_and_median_rank():
    ranks = retrieval_ranks(SIM)
    assert recall_at_k(ranks, 1) == 25.0
    assert recall_at_k(ranks, 3) == 50.0
    assert median_rank(ranks) == 3.5  # mean of the middle two of (1, 3, 4, 4)
    m = retrieval_metrics(ranks, ks=(1, 5))
    assert m == {"R@1": 25.0, "R@5": 100.0, "MdR": 3.5, "MnR": 3.0}


def test_explicit_targets_for_many_captions_per_video():
    sim = torch.tensor([[0.1, 0.9], [0.2, 0.3], [0.5, 0.4]])
    assert retrieval_ranks(sim, torch.tensor([1, 0, 0])).tolist() == [1.0, 2.0, 1.0]
    with pytest.raises(ValueError, match="targets"):
        retrieval_ranks(sim)
    with pytest.raises(ValueError, match="column"):
        retrieval_ranks(sim, torch.tensor([0, 2, 0]))
    with pytest.raises(ValueError, match="tie rule"):
        retrieval_ranks(SIM, ties="random")
