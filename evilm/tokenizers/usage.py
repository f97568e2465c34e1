"""Codebook usage: the paper's VOC. RATE and the code perplexity.

VOC. RATE (Table 6) = the fraction of the M codes chosen at least once over a
held-out set. Perplexity = exp(entropy of the code frequencies): the number of
equally used codes that would give the same entropy (M at best, 1 for collapse).
"""

from __future__ import annotations

import math

import torch


class CodeCounter:
    """Streaming histogram of code ids, for usage over a whole evaluation pass."""

    def __init__(self, codebook_size: int):
        if codebook_size < 1:
            raise ValueError(f"codebook_size must be positive, got {codebook_size}")
        self.codebook_size = codebook_size
        self.counts = torch.zeros(codebook_size, dtype=torch.long)

    def update(self, codes: torch.Tensor) -> None:
        flat = codes.detach().flatten().to("cpu", torch.long)
        if len(flat) and (int(flat.min()) < 0 or int(flat.max()) >= self.codebook_size):
            raise ValueError(
                f"code ids must lie in [0, {self.codebook_size}), got range [{int(flat.min())}, {int(flat.max())}]"
            )
        self.counts += torch.bincount(flat, minlength=self.codebook_size)

    def result(self) -> dict[str, float]:
        return usage_from_counts(self.counts)


def usage_from_counts(counts: torch.Tensor) -> dict[str, float]:
    total = int(counts.sum())
    if total == 0:
        raise ValueError("no codes were counted; usage is undefined on an empty set")
    used = int((counts > 0).sum())
    probs = counts[counts > 0].double() / total
    entropy = float(-(probs * probs.log()).sum())
    return {"usage_rate": used / len(counts), "perplexity": math.exp(entropy), "codes_used": float(used)}


def codebook_usage(codes: torch.Tensor, codebook_size: int) -> dict[str, float]:
    """``{"usage_rate", "perplexity", "codes_used"}`` of code ids of any shape."""
    counter = CodeCounter(codebook_size)
    counter.update(codes)
    return counter.result()
