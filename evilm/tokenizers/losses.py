"""Multi-label losses for predicting a caption's words (HEAD^S, eq. 5-6).

Eq. 6 of the paper, as printed, lacks its minus sign; it is the asymmetric loss
(ASL) of its ref. [7] with gamma+ = 0 and gamma- = 1:

    L = -1/K sum_k [ y_k (1 - p_k)^gamma+ log p_k + (1 - y_k) p_m,k^gamma- log(1 - p_m,k) ]

with p_m = max(p - clip, 0) the shifted probability of ASL (clip = 0, the paper's
formula, leaves p_m = p). With both gammas 0 and no clip it is plain binary
cross-entropy, the ``T_BCE`` row of Table 6. Both losses average over the K words
and the batch by default (eq. 6's 1/K), so they are on the same scale;
``reduction="sum"`` sums over the words instead (ASL's reference implementation
does), which weighs the word loss K times more against the VQ terms of eq. 7.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def asymmetric_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    gamma_pos: float = 0.0,
    gamma_neg: float = 1.0,
    clip: float = 0.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Asymmetric focal loss of ``logits`` (B, K) against multi-hot ``targets`` (B, K).

    ``reduction``: "mean" over words and batch (eq. 6), or "sum" over words, mean over the batch.
    """
    _check(logits, targets)
    targets = targets.to(logits.dtype)
    prob = torch.sigmoid(logits)
    log_prob = F.logsigmoid(logits)
    if clip > 0:
        prob_neg = (prob - clip).clamp(min=0.0)
        log_not_prob = torch.log((1.0 - prob_neg).clamp(min=1e-8))
    else:
        prob_neg = prob
        log_not_prob = F.logsigmoid(-logits)  # log(1 - p), stable for large logits
    positive = targets * log_prob
    if gamma_pos:
        positive = positive * (1.0 - prob).pow(gamma_pos)
    negative = (1.0 - targets) * log_not_prob
    if gamma_neg:
        negative = negative * prob_neg.pow(gamma_neg)
    return _reduce(-(positive + negative), reduction)


def bce_loss(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Binary cross-entropy over words (the ``T_BCE`` tokenizer), reduced as ``asymmetric_loss``."""
    _check(logits, targets)
    loss = F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype), reduction="none")
    return _reduce(loss, reduction)


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum(dim=-1).mean()
    raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")


def _check(logits: torch.Tensor, targets: torch.Tensor) -> None:
    if logits.shape != targets.shape:
        raise ValueError(
            f"word logits {tuple(logits.shape)} and word_targets {tuple(targets.shape)} differ in shape; "
            "the tokenizer's vocab_size must equal the caption vocabulary's multi-hot width"
        )
