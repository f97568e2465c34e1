"""The vector quantizer of the semantic and perceptual tokenizers (Section 3.3, eq. 4 and 7).

Inputs and codes are l2-normalised before the look-up (Section 4.1), so the
squared Euclidean distance ``|z|^2 + |c|^2 - 2 z.c = 2 - 2 cos(z, c)`` picks the
code of highest cosine similarity. The look-up is not differentiable; the
straight-through estimator ``z + (z_q - z).detach()`` copies the gradient of the
quantized vector onto the encoder output.

By default the codebook is trained by gradient, with the two terms of eq. 7:
``|sg[z] - z_q|^2`` (moves codes) + ``beta * |z - sg[z_q]|^2`` (commits the
encoder). Three common remedies for codebook collapse are options, off by default,
so that turning them on is an explicit ablation:

* ``init: data``: the codes start at the encoder outputs of the first training
  batch (BEiT v2's quantizer does this with k-means), so that every code starts
  where inputs can reach it.

* ``ema``: codes follow an exponential moving average of the (normalised)
  encoder outputs assigned to them, as in VQ-VAE-2 / BEiT v2; the codebook term
  is then dropped.
* ``reseed_dead``: every ``reseed_every`` training steps, codes that no input
  chose since the last check are moved onto randomly drawn encoder outputs of the
  current batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from evilm.tokenizers.config import QuantizerConfig


@dataclass
class QuantizerOutput:
    z_q: torch.Tensor  # (..., D) quantized vectors carrying straight-through gradients to z
    codes: torch.Tensor  # (...) long code ids
    loss: torch.Tensor  # codebook term + beta * commitment term
    codebook_loss: torch.Tensor
    commit_loss: torch.Tensor


class VectorQuantizer(nn.Module):
    def __init__(self, cfg: QuantizerConfig):
        super().__init__()
        self.cfg = cfg
        weight = F.normalize(torch.randn(cfg.codebook_size, cfg.code_dim), dim=-1)
        # With EMA the codebook is a running average, not a parameter the optimizer touches.
        self.codebook = nn.Parameter(weight, requires_grad=not cfg.ema)
        if cfg.ema:
            self.register_buffer("ema_count", torch.ones(cfg.codebook_size))
            self.register_buffer("ema_sum", weight.clone())
        if cfg.init == "data":
            self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))
        if cfg.reseed_dead:
            self.register_buffer("hits_since_check", torch.zeros(cfg.codebook_size))
            self.register_buffer("steps_since_check", torch.zeros((), dtype=torch.long))

    @property
    def codebook_size(self) -> int:
        return self.cfg.codebook_size

    def normalized_codebook(self) -> torch.Tensor:
        return F.normalize(self.codebook, dim=-1)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """Code ids (...) -> their l2-normalised vectors (..., D)."""
        return F.embedding(codes, self.normalized_codebook())

    @torch.no_grad()
    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """Code ids (...) of the nearest l2-normalised code for each vector in z (..., D)."""
        flat = F.normalize(z.reshape(-1, z.shape[-1]), dim=-1)
        return self._assign(flat, self.normalized_codebook()).view(z.shape[:-1])

    @staticmethod
    def _assign(flat: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
        # Squared distance, written out so the argmin is the one eq. 4 asks for.
        dist = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ codebook.t() + codebook.pow(2).sum(1)[None]
        return dist.argmin(dim=1)

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        if z.shape[-1] != self.cfg.code_dim:
            raise ValueError(f"quantizer expects vectors of size {self.cfg.code_dim}, got shape {tuple(z.shape)}")
        z = F.normalize(z, dim=-1)
        flat = z.reshape(-1, z.shape[-1])
        if self.cfg.init == "data" and self.training and not bool(self.initialised):
            self._init_from(flat.detach())
        codebook = self.normalized_codebook()
        with torch.no_grad():
            codes = self._assign(flat.detach(), codebook.detach())
        z_q = F.embedding(codes, codebook).view_as(z)

        commit_loss = (z - z_q.detach()).pow(2).sum(-1).mean()
        if self.cfg.ema:
            codebook_loss = torch.zeros((), device=z.device)
        else:
            codebook_loss = (z.detach() - z_q).pow(2).sum(-1).mean()
        if self.training and torch.is_grad_enabled():
            self._update(flat.detach(), codes)

        z_q = z + (z_q - z).detach()  # straight-through: forward z_q, backward identity onto z
        return QuantizerOutput(
            z_q=z_q,
            codes=codes.view(z.shape[:-1]),
            loss=codebook_loss + self.cfg.beta * commit_loss,
            codebook_loss=codebook_loss,
            commit_loss=commit_loss,
        )

    @torch.no_grad()
    def _init_from(self, flat: torch.Tensor) -> None:
        """Codes := distinct inputs of this batch where there are enough, the rest drawn again with a
        small perturbation (so that no two codes coincide)."""
        n, size = len(flat), self.cfg.codebook_size
        codes = flat[torch.randperm(n, device=flat.device)[:size]]
        if n < size:
            again = flat[torch.randint(n, (size - n,), device=flat.device)]
            codes = torch.cat([codes, again + torch.randn_like(again) * (0.5 / flat.shape[1] ** 0.5)])
        codes = F.normalize(codes, dim=-1)
        self.codebook.data.copy_(codes)
        if self.cfg.ema:
            self.ema_sum.copy_(codes)
        self.initialised.fill_(True)

    @torch.no_grad()
    def _update(self, flat: torch.Tensor, codes: torch.Tensor) -> None:
        """EMA and dead-code bookkeeping; only during training steps."""
        hits = torch.bincount(codes, minlength=self.cfg.codebook_size).to(flat.dtype)
        if self.cfg.ema:
            decay = self.cfg.ema_decay
            sums = torch.zeros_like(self.ema_sum).index_add_(0, codes, flat)
            self.ema_count.mul_(decay).add_(hits, alpha=1 - decay)
            self.ema_sum.mul_(decay).add_(sums, alpha=1 - decay)
            # The mean direction of the assigned inputs; l2-normalised at use anyway.
            self.codebook.data.copy_(F.normalize(self.ema_sum / self.ema_count.clamp(min=1e-5)[:, None], dim=-1))
        if self.cfg.reseed_dead:
            self.hits_since_check.add_(hits)
            self.steps_since_check.add_(1)
            if int(self.steps_since_check) >= self.cfg.reseed_every:
                self._reseed(flat)

    @torch.no_grad()
    def _reseed(self, flat: torch.Tensor) -> None:
        dead = (self.hits_since_check == 0).nonzero().flatten()
        if len(dead):
            picks = torch.randint(len(flat), (len(dead),), device=flat.device)
            self.codebook.data[dead] = flat[picks]
            if self.cfg.ema:
                self.ema_sum[dead] = flat[picks]
                self.ema_count[dead] = 1.0
        self.hits_since_check.zero_()
        self.steps_since_check.zero_()
