"""Task heads. Each is its own module, so "parameters without task heads" is well defined."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MLMHead(nn.Module):
    """Masked language modelling over the truncated vocabulary (BERT-style transform + decoder)."""

    def __init__(self, width: int, vocab_size: int):
        super().__init__()
        self.transform = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.LayerNorm(width))
        self.decoder = nn.Linear(width, vocab_size)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.transform(h))


class VTMHead(nn.Module):
    """Video-text matching on CLS: 2 logits (mismatch, match)."""

    def __init__(self, width: int):
        super().__init__()
        self.fc = nn.Linear(width, 2)

    def forward(self, cls: torch.Tensor) -> torch.Tensor:
        return self.fc(cls)

    def match_score(self, cls: torch.Tensor) -> torch.Tensor:
        """log p(match) - log p(mismatch): the zero-shot MC / re-ranking score."""
        logits = self.fc(cls)
        return logits[..., 1] - logits[..., 0]


class MVMHead(nn.Module):
    """Masked video modelling: classify each masked region into the tokenizer's codes."""

    def __init__(self, width: int, codebook_size: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.LayerNorm(width), nn.Linear(width, codebook_size))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.mlp(h)


class QAHead(nn.Module):
    """Open-ended QA as classification over the answer vocabulary, on CLS."""

    def __init__(self, width: int, num_answers: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.LayerNorm(2 * width), nn.Linear(2 * width, num_answers))

    def forward(self, cls: torch.Tensor) -> torch.Tensor:
        return self.mlp(cls)


class MCHead(nn.Module):
    """One score per (video, option) pair, fine-tuned with a softmax over the options."""

    def __init__(self, width: int):
        super().__init__()
        self.fc = nn.Linear(width, 1)

    def forward(self, cls: torch.Tensor) -> torch.Tensor:
        return self.fc(cls).squeeze(-1)


class RetrievalHead(nn.Module):
    """Unimodal embeddings for retrieval: video-alone and text-alone CLS, projected and l2-normalised."""

    def __init__(self, width: int, embed_dim: int = 256):
        super().__init__()
        self.video_proj = nn.Linear(width, embed_dim)
        self.text_proj = nn.Linear(width, embed_dim)

    def video(self, cls: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.video_proj(cls), dim=-1)

    def text(self, cls: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text_proj(cls), dim=-1)


class LinearProbe(nn.Module):
    """The only trainable part of a linear-probe evaluation."""

    def __init__(self, in_dim: int, num_classes: int):
        super().__init__()
        self.fc = nn.Linear(in_dim, num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(features)
