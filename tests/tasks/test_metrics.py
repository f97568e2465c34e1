import pytest
import torch

from evilm.tasks.metrics import (
    accuracy,
    accuracy_by_type,
    choice_credit,
    median_rank,
    rank_queries,
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
    assert retrieval_ranks(SIM).tolist() == [1.0, 2.5, 2.5, 4.0]  # random: the expected rank
    assert retrieval_ranks(SIM, ties="pessimistic").tolist() == [1.0, 3.0, 4.0, 4.0]
    assert retrieval_ranks(SIM, ties="optimistic").tolist() == [1.0, 2.0, 1.0, 4.0]


def test_recall_gives_ties_a_random_tie_breaks_expected_credit():
    ranking = rank_queries(SIM)
    assert ranking.higher.tolist() == [0.0, 1.0, 0.0, 3.0] and ranking.tied.tolist() == [0.0, 1.0, 3.0, 0.0]
    # query 1: places 2-3, so half a hit at k=2; query 2: places 1-4, a quarter per place
    assert ranking.hits(1).tolist() == [1.0, 0.0, 0.25, 0.0]
    assert ranking.hits(2).tolist() == [1.0, 0.5, 0.5, 0.0]
    assert ranking.hits(3).tolist() == [1.0, 1.0, 0.75, 0.0]
    assert ranking.hits(2, "pessimistic").tolist() == [1.0, 0.0, 0.0, 0.0]
    assert ranking.hits(1, "optimistic").tolist() == [1.0, 0.0, 1.0, 0.0]
    m = retrieval_metrics(ranking, ks=(1, 2))
    assert m == {"R@1": 31.25, "R@2": 50.0, "MdR": 2.5, "MnR": 2.5, "tied_queries": 2.0}
    assert retrieval_metrics(ranking, ks=(1,), ties="pessimistic")["R@1"] == 25.0


def test_an_indifferent_model_sits_at_chance():
    n = 10
    flat = torch.zeros(n, n)  # every video scores the same for every text
    m = retrieval_metrics(rank_queries(flat), ks=(1, 5, 10))
    assert m["R@1"] == pytest.approx(10.0) and m["R@5"] == pytest.approx(50.0) and m["R@10"] == 100.0
    assert m["tied_queries"] == n and m["MnR"] == pytest.approx((n + 1) / 2)
    assert retrieval_metrics(rank_queries(flat), ks=(1,), ties="pessimistic")["R@1"] == 0.0


def test_recall_and_median_rank_from_ranks():
    ranks = retrieval_ranks(SIM, ties="pessimistic")
    assert recall_at_k(ranks, 1) == 25.0
    assert recall_at_k(ranks, 3) == 50.0
    assert median_rank(ranks) == 3.5  # mean of the middle two of (1, 3, 4, 4)
    m = retrieval_metrics(ranks, ks=(1, 5))
    assert m == {"R@1": 25.0, "R@5": 100.0, "MdR": 3.5, "MnR": 3.0}


def test_multiple_choice_credit_on_hand_made_scores():
    assert choice_credit(torch.tensor([0.1, 0.9, 0.3]), 1) == (1.0, 1)
    assert choice_credit(torch.tensor([0.1, 0.9, 0.3]), 0) == (0.0, 1)
    assert choice_credit(torch.tensor([0.9, 0.9, 0.3]), 1) == (0.5, 2)  # a two-way tie holding the answer
    assert choice_credit(torch.tensor([0.9, 0.9, 0.3]), 2) == (0.0, 2)  # a tie the answer is not in
    assert choice_credit(torch.tensor([0.5] * 5), 3) == (0.2, 5)  # indifferent: chance, 1/5
    # a model indifferent on every item of a 5-option benchmark scores its chance, 20%
    items = [choice_credit(torch.zeros(5), answer)[0] for answer in (0, 1, 2, 3, 4, 2)]
    assert accuracy_by_type(items, ["all"] * 6) == {"all": pytest.approx(20.0)}
    with pytest.raises(ValueError, match="answer"):
        choice_credit(torch.zeros(3), 3)


def test_explicit_targets_for_many_captions_per_video():
    sim = torch.tensor([[0.1, 0.9], [0.2, 0.3], [0.5, 0.4]])
    assert retrieval_ranks(sim, torch.tensor([1, 0, 0])).tolist() == [1.0, 2.0, 1.0]
    with pytest.raises(ValueError, match="targets"):
        retrieval_ranks(sim)
    with pytest.raises(ValueError, match="column"):
        retrieval_ranks(sim, torch.tensor([0, 2, 0]))
    with pytest.raises(ValueError, match="tie rule"):
        retrieval_ranks(SIM, ties="mean")
