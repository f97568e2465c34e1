"""Evaluation metrics: accuracy (overall and per answer type) and retrieval ranks.

Retrieval tie rule. The rank of the correct video for a text query is 1 + the
number of *other* videos whose score is at least as high under the default
``"pessimistic"`` rule (a tie counts against the correct item, so a model that
gives every video the same score gets rank N, not 1). ``"optimistic"`` counts
only strictly higher scores; ``"mean"`` averages the two (the expected rank
under a random order of tied items).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from evilm.tasks.config import TieRule


def accuracy(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    """Percent of predictions equal to their targets."""
    if predictions.shape != targets.shape:
        raise ValueError(f"accuracy: predictions {tuple(predictions.shape)} vs targets {tuple(targets.shape)}")
    if predictions.numel() == 0:
        raise ValueError("accuracy: no items")
    return 100.0 * (predictions == targets).float().mean().item()


def accuracy_by_type(correct: Sequence[bool] | torch.Tensor, types: Sequence[str]) -> dict[str, float]:
    """Percent correct within each type (e.g. QA answer/question type), keyed by type, sorted."""
    correct = torch.as_tensor(correct, dtype=torch.float)
    if len(types) != correct.numel():
        raise ValueError(f"accuracy_by_type: {correct.numel()} results but {len(types)} types")
    out: dict[str, float] = {}
    for kind in sorted(set(types)):
        idx = torch.tensor([i for i, t in enumerate(types) if t == kind])
        out[kind] = 100.0 * correct[idx].mean().item()
    return out


def retrieval_ranks(similarity: torch.Tensor, targets: torch.Tensor | None = None, ties: TieRule = "pessimistic") -> torch.Tensor:
    """1-based rank of the correct item for each query row of ``similarity (Nq, Nc)``.

    ``targets (Nq,)`` holds the column of each query's correct item (default: the
    diagonal). The result is float, because the ``"mean"`` tie rule can give halves.
    """
    if similarity.ndim != 2:
        raise ValueError(f"retrieval_ranks: expected a (queries, candidates) matrix, got {tuple(similarity.shape)}")
    nq, nc = similarity.shape
    if targets is None:
        if nq != nc:
            raise ValueError(f"retrieval_ranks: a {nq}x{nc} matrix needs explicit targets")
        targets = torch.arange(nq)
    targets = targets.to(similarity.device).long()
    if targets.shape != (nq,) or bool((targets < 0).any()) or bool((targets >= nc).any()):
        raise ValueError(f"retrieval_ranks: targets must be {nq} column indices in [0, {nc})")
    if bool(torch.isnan(similarity).any()):
        raise ValueError("retrieval_ranks: the similarity matrix contains NaN")
    correct = similarity.gather(1, targets[:, None])
    higher = (similarity > correct).sum(1).float()
    tied = (similarity == correct).sum(1).float() - 1.0  # other items with the same score
    if ties == "pessimistic":
        return 1.0 + higher + tied
    if ties == "optimistic":
        return 1.0 + higher
    if ties == "mean":
        return 1.0 + higher + tied / 2.0
    raise ValueError(f"retrieval_ranks: unknown tie rule '{ties}'; allowed: pessimistic, optimistic, mean")


def recall_at_k(ranks: torch.Tensor, k: int) -> float:
    """Percent of queries whose correct item is within the top ``k``."""
    return 100.0 * (ranks <= k).float().mean().item()


def median_rank(ranks: torch.Tensor) -> float:
    """The median rank; with an even number of queries, the mean of the two middle ranks."""
    return float(torch.quantile(ranks.double(), 0.5).item())


def retrieval_metrics(ranks: torch.Tensor, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    out = {f"R@{k}": recall_at_k(ranks, k) for k in ks}
    out["MdR"] = median_rank(ranks)
    out["MnR"] = float(ranks.double().mean().item())
    return out
