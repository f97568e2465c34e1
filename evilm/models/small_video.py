"""A small video model trained on one task's labels: the calibration report's supervised ceiling.

It answers "can a model learn this task from these clips?", apart from E-ViLM and its video-language
pre-training. Two streams read the clip:

- motion: the frames stacked as channels (so the first convolution sees how things move) through a
  few conv blocks trained from scratch; with ``tubelet`` a stack holds that many consecutive frames
  and each stack's cells carry its time, so a question can attend to what happens early or late;
- appearance (optional): each frame through a frozen image backbone, the image prior (the ImageNet
  analogue) as supervised video models start from ImageNet weights. Frozen, its features of a fixed
  clip never change, so they are computed once per clip (``appearance_cache``).

The text: a word embedding per token, then (``text_layers``) self-attention, which reads the word
order a bag loses (which action a question names and which its option offers), and a mean over the
words. The question attends over both streams' cells, then an MLP fuses the clip, the attended cells
and the text.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from evilm.models.config import SmallVideoConfig
from evilm.models.video_encoder import IMAGENET_MEAN, IMAGENET_STD, channels_last, create_backbone


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                         nn.MaxPool2d(2))


class SmallVideoModel(nn.Module):
    """Clip encoder (frames stacked as channels), a small text encoder, attention and fusion.

    ``encode_video`` gives ``(B, cells, width)``; ``encode_text`` ``(B, width)``; ``fuse`` one vector per
    (clip, text) pair; ``clip_vector`` the clip alone (its cells averaged).
    """

    def __init__(self, config: SmallVideoConfig, vocab_size: int):
        super().__init__()
        self.config = config
        self.width = config.width
        self.tubelet = config.tubelet or config.num_frames
        widths = (3 * self.tubelet, *config.channels)
        self.convs = nn.Sequential(*[_block(a, b) for a, b in zip(widths[:-1], widths[1:])])
        self.cell_proj = nn.Linear(config.channels[-1], config.width)
        self.tubelet_pos = None  # each stack's time, when there are several
        if self.tubelet < config.num_frames:
            self.tubelet_pos = nn.Parameter(torch.zeros(1, config.num_frames // self.tubelet, 1, config.width))
            nn.init.trunc_normal_(self.tubelet_pos, std=0.02)
        self.appearance = None
        if config.appearance:
            self.appearance = create_backbone(config.appearance, key="model.appearance").eval().requires_grad_(False)
            self.appearance_proj = nn.Linear(self.appearance.num_features, config.width)
            self.frame_pos = nn.Parameter(torch.zeros(1, config.num_frames, 1, config.width))
            nn.init.trunc_normal_(self.frame_pos, std=0.02)
            self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
            self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        # video id -> its frozen appearance features; None: computed every time (augmented clips change)
        self.appearance_cache: dict[str, torch.Tensor] | None = None
        self.words = nn.Embedding(vocab_size, config.width, padding_idx=0)
        self.text_layers = None
        if config.text_layers:
            self.word_pos = nn.Parameter(torch.zeros(1, config.max_text_len, config.width))
            nn.init.trunc_normal_(self.word_pos, std=0.02)
            layer = nn.TransformerEncoderLayer(config.width, nhead=4, dim_feedforward=2 * config.width,
                                               dropout=config.dropout, batch_first=True, norm_first=True)
            self.text_layers = nn.TransformerEncoder(layer, config.text_layers, enable_nested_tensor=False)
        self.text_norm = nn.LayerNorm(config.width)
        self.query = nn.Linear(config.width, config.width)
        self.fusion = nn.Sequential(nn.Linear(4 * config.width, config.width), nn.GELU(), nn.Dropout(config.dropout),
                                    nn.Linear(config.width, config.width), nn.GELU())

    def train(self, mode: bool = True) -> SmallVideoModel:
        super().train(mode)
        if self.appearance is not None:
            self.appearance.eval()  # frozen: its batch norms keep the prior's statistics
        return self

    def encode_video(self, frames: torch.Tensor, video_ids: list[str] | None = None) -> torch.Tensor:
        """``(B, T, 3, H, W)`` in [0, 1] -> cells ``(B, N, width)``: the motion stream's grid, then each
        frame's appearance grid when there is one (``video_ids`` key the appearance cache)."""
        b, t, c, h, w = frames.shape
        if t != self.config.num_frames:
            raise ValueError(f"expected {self.config.num_frames} frames per clip, got {t}")
        x = frames.reshape(b * t, c, h, w)
        if h != self.config.input_size or w != self.config.input_size:
            x = F.interpolate(x, size=(self.config.input_size,) * 2, mode="area")
        stacks = t // self.tubelet
        x = self.convs(x.reshape(b * stacks, self.tubelet * c, *x.shape[-2:]))
        cells = self.cell_proj(x.flatten(2).transpose(1, 2)).view(b, stacks, -1, self.width)
        if self.tubelet_pos is not None:
            cells = cells + self.tubelet_pos
        cells = cells.flatten(1, 2)
        if self.appearance is None:
            return cells
        feats = self.appearance_proj(self._appearance_features(frames, video_ids)) + self.frame_pos
        return torch.cat([cells, feats.flatten(1, 2)], dim=1)

    def _appearance_features(self, frames: torch.Tensor, video_ids: list[str] | None) -> torch.Tensor:
        """The frozen backbone's grid of every frame: ``(B, T, cells, C)``."""
        cache = self.appearance_cache if video_ids is not None else None
        todo = list(range(len(frames))) if cache is None else [i for i, v in enumerate(video_ids) if v not in cache]
        fresh = None
        if todo:
            with torch.no_grad():
                x = (frames[todo].flatten(0, 1) - self.mean) / self.std
                grid = self.appearance.forward_features(channels_last(x))
                fresh = grid.flatten(2).transpose(1, 2).reshape(len(todo), frames.shape[1], -1, grid.shape[1])
        if cache is None:
            return fresh
        for j, i in enumerate(todo):
            cache[video_ids[i]] = fresh[j]
        return torch.stack([cache[v] for v in video_ids])

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Mean of the unmasked tokens' vectors (word embeddings, then self-attention when
        ``text_layers``): ``(B, L)`` -> ``(B, width)``."""
        x = self.words(input_ids)
        if self.text_layers is not None:
            padding = (attention_mask == 0) & attention_mask.any(-1, keepdim=True)  # (an empty text attends to all)
            x = self.text_layers(x + self.word_pos[:, : x.shape[1]], src_key_padding_mask=padding)
        mask = attention_mask.unsqueeze(-1).float()
        return self.text_norm((x * mask).sum(-2) / mask.sum(-2).clamp(min=1.0))

    @staticmethod
    def clip_vector(cells: torch.Tensor) -> torch.Tensor:
        return cells.mean(1)

    def fuse(self, cells: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """One vector per pair from cells ``(B, N, D)`` and text ``(B, D)``: the text attends over the cells."""
        weights = torch.einsum("bnd,bd->bn", cells, self.query(text)) / cells.shape[-1] ** 0.5
        attended = torch.einsum("bn,bnd->bd", weights.softmax(-1), cells)
        return self.fusion(torch.cat([self.clip_vector(cells), attended, text, attended * text], dim=-1))
