"""How semantic are a tokenizer's codes? The same measure for every tokenizer.

Each clip becomes its bag of codes (how often each of the M codes occurs, positions
ignored), as a document is a bag of words. A multinomial naive-Bayes classifier,
a linear classifier of the code histogram fitted in closed form (add-``alpha``
smoothing, no iterations, deterministic), is fitted on training clips and
scored on held-out clips:

* per ground-truth field of a clip (e.g. the main object's colour, shape, action):
  top-1 accuracy, beside the majority-class accuracy as chance;
* for the caption's words: one present/absent classifier per word, whose
  log-odds rank the held-out clips; mean average precision over the words that
  occur there, beside the mAP of a ranking that ignores the codes (chance).

A code that recurs for regions of the same colour or action makes these read-outs
accurate; codes that track pixels only do not. With many rarely used codes the
classifier has less evidence per code: held-out accuracy also rewards codes that
generalise, not just codes that are many.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def code_histograms(codes: torch.Tensor, codebook_size: int) -> torch.Tensor:
    """Codes ``(N, ...)`` -> ``float (N, M)``: how often each code occurs in each clip."""
    flat = codes.reshape(len(codes), -1).long()
    hist = torch.zeros(len(codes), codebook_size)
    return hist.scatter_add_(1, flat, torch.ones_like(flat, dtype=hist.dtype))


def _counts_per_class(codes: torch.Tensor, memberships: torch.Tensor, codebook_size: int) -> torch.Tensor:
    """``(M, C)``: occurrences of each code in the clips of each class (``memberships`` (N, C), 0/1)."""
    flat = codes.reshape(len(codes), -1).long()
    counts = torch.zeros(codebook_size, memberships.shape[1])
    for start in range(0, len(flat), 256):  # bounded memory: regions x classes per chunk
        chunk = flat[start : start + 256]
        weights = memberships[start : start + 256].float().repeat_interleave(chunk.shape[1], dim=0)
        counts.index_add_(0, chunk.flatten(), weights)
    return counts


def _log_likelihood(codes: torch.Tensor, log_theta: torch.Tensor) -> torch.Tensor:
    """``(N, C)``: sum over a clip's regions of log P(code | class) (= histogram @ log_theta)."""
    flat = codes.reshape(len(codes), -1).long()
    return F.embedding_bag(flat, log_theta, mode="sum")


def naive_bayes_log_theta(counts: torch.Tensor, alpha: float) -> torch.Tensor:
    return torch.log((counts + alpha) / (counts.sum(0, keepdim=True) + alpha * len(counts)))


def probe_accuracy(
    train_codes: torch.Tensor,
    train_labels: Sequence[str],
    test_codes: torch.Tensor,
    test_labels: Sequence[str],
    codebook_size: int,
    alpha: float = 1.0,
) -> dict[str, float]:
    """Held-out accuracy of naive Bayes on the bag of codes, and the majority-class accuracy (chance)."""
    classes = sorted(set(train_labels))
    index = {c: i for i, c in enumerate(classes)}
    y_train = torch.tensor([index[c] for c in train_labels])
    y_test = torch.tensor([index.get(c, -1) for c in test_labels])  # a class unseen in training is a miss
    onehot = F.one_hot(y_train, len(classes))
    log_theta = naive_bayes_log_theta(_counts_per_class(train_codes, onehot, codebook_size), alpha)
    log_prior = torch.log(onehot.sum(0).float() / len(y_train))
    pred = (_log_likelihood(test_codes, log_theta) + log_prior).argmax(dim=1)
    majority = int(torch.bincount(y_train).argmax())
    return {"accuracy": float((pred == y_test).float().mean()), "chance": float((y_test == majority).float().mean())}


def average_precision(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """AP of each column of ``scores`` (N, K) against binary ``targets`` (N, K); NaN where a column has no positive."""
    order = scores.argsort(dim=0, descending=True, stable=True)
    hits = targets.float().gather(0, order)
    ranks = torch.arange(1, len(scores) + 1, dtype=torch.float32)[:, None]
    precision = hits.cumsum(0) / ranks
    positives = hits.sum(0)
    return (precision * hits).sum(0) / positives.where(positives > 0, torch.tensor(float("nan")))


def probe_words(
    train_codes: torch.Tensor,
    train_words: torch.Tensor,
    test_codes: torch.Tensor,
    test_words: torch.Tensor,
    codebook_size: int,
    alpha: float = 1.0,
) -> dict[str, float]:
    """Held-out mAP of caption words ranked by naive-Bayes log-odds, and the mAP of a code-blind ranking."""
    present = train_words.float()
    n = len(present)
    log_present = naive_bayes_log_theta(_counts_per_class(train_codes, present, codebook_size), alpha)
    log_absent = naive_bayes_log_theta(_counts_per_class(train_codes, 1 - present, codebook_size), alpha)
    frequency = (present.sum(0) + 1) / (n + 2)
    scores = _log_likelihood(test_codes, log_present - log_absent) + torch.log(frequency / (1 - frequency))
    ap = average_precision(scores, test_words)
    occurs = ~ap.isnan()
    if not occurs.any():
        raise ValueError("no caption word occurs in the held-out clips; the word probe is undefined")
    # Chance: the same clips ranked without looking at codes (ties keep clip order).
    chance = average_precision(torch.zeros_like(scores), test_words)[occurs].mean()
    return {"map": float(ap[occurs].mean()), "chance": float(chance)}


def semantic_probe(
    train_codes: torch.Tensor,
    test_codes: torch.Tensor,
    codebook_size: int,
    train_fields: dict[str, Sequence[str]] | None = None,
    test_fields: dict[str, Sequence[str]] | None = None,
    train_words: torch.Tensor | None = None,
    test_words: torch.Tensor | None = None,
) -> dict[str, float]:
    """All probes on one tokenizer's codes: ``probe_<field>_acc`` / ``_chance``, ``probe_words_map`` / ``_chance``."""
    out: dict[str, float] = {}
    for name, train_labels in (train_fields or {}).items():
        if test_fields is None or name not in test_fields:
            raise KeyError(f"probe field '{name}' has training labels but no held-out labels")
        if len(train_labels) != len(train_codes) or len(test_fields[name]) != len(test_codes):
            raise ValueError(f"probe field '{name}': one label per clip expected")
        res = probe_accuracy(train_codes, train_labels, test_codes, test_fields[name], codebook_size)
        out[f"probe_{name}_acc"] = res["accuracy"]
        out[f"probe_{name}_chance"] = res["chance"]
    if train_words is not None and test_words is not None:
        res = probe_words(train_codes, train_words, test_codes, test_words, codebook_size)
        out["probe_words_map"] = res["map"]
        out["probe_words_chance"] = res["chance"]
    return out
