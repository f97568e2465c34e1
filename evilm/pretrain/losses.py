"""The pretraining losses: MLM, VTM and MVM (paper eqs. 3 and 8).

Each takes logits and targets and returns a scalar mean. Positions that carry no
target (unmasked words, unmasked regions) do not count in the mean; a batch with
no target at all gives a zero loss that still depends on the logits (so the
backward pass and the gradient-accumulation arithmetic stay uniform).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE = -100  # label of a position with no target


def _masked_ce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over positions whose target is not IGNORE."""
    logits = logits.reshape(-1, logits.shape[-1]).float()
    targets = targets.reshape(-1)
    if not bool((targets != IGNORE).any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits, targets, ignore_index=IGNORE)


def mlm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Masked language modelling: logits ``(B, L, V)``, labels ``(B, L)`` with IGNORE at unmasked words."""
    if logits.shape[:-1] != labels.shape:
        raise ValueError(f"mlm_loss: logits {tuple(logits.shape)} do not match labels {tuple(labels.shape)}")
    return _masked_ce(logits, labels)


def vtm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Video-text matching: logits ``(N, 2)``, labels ``(N,)`` with 1 = matched pair, 0 = mismatched."""
    if logits.ndim != 2 or logits.shape[1] != 2 or logits.shape[0] != labels.shape[0]:
        raise ValueError(f"vtm_loss: expected logits (N, 2) and labels (N,), got {tuple(logits.shape)}, {tuple(labels.shape)}")
    return F.cross_entropy(logits.float(), labels.long())


def mvm_loss(logits: torch.Tensor, codes: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked video modelling, eq. 3: the mean over the N masked regions of CE(prediction, tokenizer code).

    ``codes`` (long code ids) and ``mask`` (bool, True = masked) are ``(B, T, gh, gw)``. ``logits``
    are either for every region, ``(B, T*gh*gw, K)`` in the order of ``mask.flatten(1)``, or only
    for the masked ones, ``(N, K)`` in the order of ``codes[mask]`` (cheaper with a large codebook).
    """
    if codes.shape != mask.shape:
        raise ValueError(f"mvm_loss: codes {tuple(codes.shape)} and mask {tuple(mask.shape)} differ")
    if logits.ndim == 2:
        targets = codes[mask].long()
    else:
        targets = codes.reshape(codes.shape[0], -1).long().masked_fill(~mask.reshape(mask.shape[0], -1), IGNORE)
    if logits.shape[:-1] != targets.shape:
        raise ValueError(f"mvm_loss: logits {tuple(logits.shape)} do not match the mask's {tuple(targets.shape)} regions")
    return _masked_ce(logits, targets)


def vtm_pairs(batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """For each clip, the index of another caption in the batch (a random derangement).

    Clip ``i`` paired with caption ``perm[i]`` is a mismatched pair (``perm[i] != i`` for B > 1).
    """
    if batch_size < 2:
        raise ValueError("VTM needs at least 2 pairs per batch to draw mismatched captions")
    # A random cyclic shift of a random order never maps an item to itself.
    order = torch.randperm(batch_size, generator=generator)
    shift = int(torch.randint(1, batch_size, (1,), generator=generator).item())
    perm = torch.empty(batch_size, dtype=torch.long)
    perm[order] = order.roll(-shift)
    return perm


ALIGN_TEMPERATURE = 0.07  # CLIP's initial temperature, kept fixed


def align_loss(text: torch.Tensor, text_mask: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
    """Contrastive alignment of matched pairs (symmetric InfoNCE over the batch): the mean of the text
    encoder's tokens ``(B, L, D)`` (``text_mask`` True at words) against the mean of the video encoder's
    tokens ``(B, N, D)``; pair ``i`` is the positive of row and column ``i``."""
    weights = text_mask.to(text.dtype).unsqueeze(-1)
    t = F.normalize((text * weights).sum(1) / weights.sum(1).clamp_min(1.0), dim=-1).float()
    v = F.normalize(video.mean(1), dim=-1).float()
    logits = t @ v.T / ALIGN_TEMPERATURE
    targets = torch.arange(len(t), device=t.device)
    return 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets))
