"""Evaluation metrics: accuracy (overall and per answer type), multiple-choice credit and retrieval ranks.

Ties. A model that cannot tell options (or videos) apart gives them the same score; it should then
score at chance, not below it. So a tie gets the expected credit of a random tie-break:

- multiple choice: when ``k`` options share the top score and the answer is one of them, the item
  counts ``1/k`` (``choice_credit``);
- retrieval: the correct video's position is uniform among the places it shares with the ``t``
  other videos of its score, after the ``h`` strictly higher ones, so ``R@k`` counts
  ``clamp(k - h, 0, t + 1) / (t + 1)`` and its rank is ``1 + h + t / 2`` (tie rule ``"random"``,
  the default). ``"pessimistic"`` (a tie counts against the correct video: rank ``1 + h + t``) and
  ``"optimistic"`` (rank ``1 + h``, as Frozen-in-Time breaks ties) remain available. Under
  ``"random"`` the median rank is the median of the expected ranks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import get_args

import torch

from evilm.tasks.config import TieRule

TIE_RULES: tuple[str, ...] = get_args(TieRule)


def accuracy(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    """Percent of predictions equal to their targets."""
    if predictions.shape != targets.shape:
        raise ValueError(f"accuracy: predictions {tuple(predictions.shape)} vs targets {tuple(targets.shape)}")
    if predictions.numel() == 0:
        raise ValueError("accuracy: no items")
    return 100.0 * (predictions == targets).float().mean().item()


def accuracy_by_type(correct: Sequence[float] | torch.Tensor, types: Sequence[str]) -> dict[str, float]:
    """Percent correct within each type (e.g. QA answer/question type), keyed by type, sorted.
    ``correct`` may hold fractional credit (a tie's share)."""
    correct = torch.as_tensor(correct, dtype=torch.float)
    if len(types) != correct.numel():
        raise ValueError(f"accuracy_by_type: {correct.numel()} results but {len(types)} types")
    out: dict[str, float] = {}
    for kind in sorted(set(types)):
        idx = torch.tensor([i for i, t in enumerate(types) if t == kind])
        out[kind] = 100.0 * correct[idx].mean().item()
    return out


def choice_credit(scores: torch.Tensor, answer: int) -> tuple[float, int]:
    """``(credit, tied)`` of one multiple-choice item: ``tied`` options share the top score, and the
    answer gets ``1 / tied`` when it is one of them (a random tie-break's expected credit), else 0."""
    if scores.ndim != 1 or not 0 <= answer < scores.numel():
        raise ValueError(f"choice_credit: answer {answer} of {tuple(scores.shape)} scores")
    if bool(torch.isnan(scores).any()):
        raise ValueError("choice_credit: the scores contain NaN")
    top = scores == scores.max()
    tied = int(top.sum())
    return (1.0 / tied if bool(top[answer]) else 0.0), tied


@dataclass
class Ranking:
    """Where each query's correct item lands: how many candidates score strictly higher, and how many
    *other* candidates share its score (both float, ``(Nq,)``)."""

    higher: torch.Tensor
    tied: torch.Tensor

    def ranks(self, ties: TieRule = "random") -> torch.Tensor:
        """1-based rank of the correct item (the expected rank under ``"random"``)."""
        if ties == "random":
            return 1.0 + self.higher + self.tied / 2.0
        if ties == "pessimistic":
            return 1.0 + self.higher + self.tied
        if ties == "optimistic":
            return 1.0 + self.higher
        raise ValueError(f"unknown tie rule '{ties}'; allowed: {', '.join(TIE_RULES)}")

    def hits(self, k: int, ties: TieRule = "random") -> torch.Tensor:
        """Per query, the credit of "within the top ``k``": 0/1, or a random tie-break's expected share."""
        if ties == "random":
            return ((k - self.higher).clamp(0.0, None).minimum(self.tied + 1.0)) / (self.tied + 1.0)
        return (self.ranks(ties) <= k).float()

    @property
    def tied_queries(self) -> int:
        """Queries whose correct item shares its score with another candidate."""
        return int((self.tied > 0).sum())


def rank_queries(similarity: torch.Tensor, targets: torch.Tensor | None = None) -> Ranking:
    """The ``Ranking`` of each query row of ``similarity (Nq, Nc)``; ``targets (Nq,)`` holds the column
    of each query's correct item (default: the diagonal)."""
    if similarity.ndim != 2:
        raise ValueError(f"rank_queries: expected a (queries, candidates) matrix, got {tuple(similarity.shape)}")
    nq, nc = similarity.shape
    if targets is None:
        if nq != nc:
            raise ValueError(f"rank_queries: a {nq}x{nc} matrix needs explicit targets")
        targets = torch.arange(nq)
    targets = targets.to(similarity.device).long()
    if targets.shape != (nq,) or bool((targets < 0).any()) or bool((targets >= nc).any()):
        raise ValueError(f"rank_queries: targets must be {nq} column indices in [0, {nc})")
    if bool(torch.isnan(similarity).any()):
        raise ValueError("rank_queries: the similarity matrix contains NaN")
    correct = similarity.gather(1, targets[:, None])
    higher = (similarity > correct).sum(1).float()
    tied = (similarity == correct).sum(1).float() - 1.0
    return Ranking(higher.cpu(), tied.cpu())


def retrieval_ranks(similarity: torch.Tensor, targets: torch.Tensor | None = None, ties: TieRule = "random") -> torch.Tensor:
    """1-based rank of the correct item for each query row of ``similarity (Nq, Nc)`` (float: the
    ``"random"`` rule's expected rank can be a half)."""
    return rank_queries(similarity, targets).ranks(ties)


def recall_at_k(ranks: torch.Tensor, k: int) -> float:
    """Percent of queries whose correct item is within the top ``k`` (ranks as a tie rule gave them)."""
    return 100.0 * (ranks <= k).float().mean().item()


def median_rank(ranks: torch.Tensor) -> float:
    """The median rank; with an even number of queries, the mean of the two middle ranks."""
    return float(torch.quantile(ranks.double(), 0.5).item())


def retrieval_metrics(ranks: torch.Tensor | Ranking, ks: Sequence[int] = (1, 5, 10), ties: TieRule = "random") -> dict[str, float]:
    """R@k, median and mean rank; from a ``Ranking`` under the tie rule ``ties`` (R@k then gives ties
    their expected credit, and ``tied_queries`` counts the queries with a tie), or from ranks."""
    if isinstance(ranks, Ranking):
        out = {f"R@{k}": 100.0 * ranks.hits(k, ties).mean().item() for k in ks}
        ranks, tied = ranks.ranks(ties), float(ranks.tied_queries)
    else:
        out, tied = {f"R@{k}": recall_at_k(ranks, k) for k in ks}, None
    out["MdR"] = median_rank(ranks)
    out["MnR"] = float(ranks.double().mean().item())
    if tied is not None:
        out["tied_queries"] = tied
    return out
