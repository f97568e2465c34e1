"""All-in-one-T/S/B as architectures, for the cost columns of Table 1.

A ViLT-style unified transformer: each frame is its own sequence of
``text + [CLS] + 16x16 patches`` through a DeiT/ViT from timm; BERT-vocabulary
text embeddings; 3 frames of 224x224 and 40 text tokens. Frames exchange
information by temporal token rolling (parameter-free): before every block a
quarter of the patch tokens moves one frame forward and another quarter one
frame back. Random init: only sizes and compute matter here.
"""

from __future__ import annotations

from dataclasses import dataclass

import timm
import torch
from torch import nn
from transformers import BertConfig
from transformers.models.bert.modeling_bert import BertEmbeddings

from evilm.config import from_preset


@dataclass
class AllInOneConfig:
    vit: str = "vit_base_patch16_224"
    num_frames: int = 3
    image_size: int = 224
    max_text_len: int = 40
    vocab_size: int = 30522  # BERT's word pieces
    roll_fraction: float = 0.25  # of patch tokens rolled each way


ALL_IN_ONE_PRESETS = {
    "all_in_one_t": {"vit": "deit_tiny_patch16_224"},
    "all_in_one_s": {"vit": "deit_small_patch16_224"},
    "all_in_one_b": {"vit": "vit_base_patch16_224"},
}


def all_in_one_config(name: str) -> AllInOneConfig:
    return from_preset(AllInOneConfig, ALL_IN_ONE_PRESETS, name, key="baseline")


class AllInOne(nn.Module):
    def __init__(self, cfg: AllInOneConfig):
        super().__init__()
        self.config = cfg
        vit = timm.create_model(cfg.vit, pretrained=False, num_classes=0, img_size=cfg.image_size)
        width = vit.embed_dim
        self.width = width
        self.patch_embed, self.cls_token, self.pos_embed = vit.patch_embed, vit.cls_token, vit.pos_embed
        self.blocks, self.norm = vit.blocks, vit.norm
        self.text_embeddings = BertEmbeddings(
            BertConfig(vocab_size=cfg.vocab_size, hidden_size=width, max_position_embeddings=cfg.max_text_len)
        )
        self.modality_type = nn.Embedding(2, width)  # ViLT's text/image type embedding

    def roll(self, x: torch.Tensor, b: int, t: int, n_text: int) -> torch.Tensor:
        """Temporal token rolling over the patch tokens of (B*T, N, D)."""
        if t == 1:
            return x
        x = x.view(b, t, *x.shape[1:])
        patches = x[:, :, n_text + 1 :]
        k = int(patches.shape[2] * self.config.roll_fraction)
        rolled = torch.cat(
            [patches[:, :, :k].roll(1, dims=1), patches[:, :, k : 2 * k].roll(-1, dims=1), patches[:, :, 2 * k :]], dim=2
        )
        return torch.cat([x[:, :, : n_text + 1], rolled], dim=2).flatten(0, 1)

    def forward(self, frames: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W), (B, L) -> pooled CLS (B, D), averaged over frames."""
        b, t = frames.shape[:2]
        img = self.patch_embed(frames.flatten(0, 1))
        img = torch.cat([self.cls_token.expand(img.shape[0], -1, -1), img], dim=1) + self.pos_embed
        img = img + self.modality_type.weight[1]
        text = self.text_embeddings(input_ids=input_ids) + self.modality_type.weight[0]
        n_text = text.shape[1]
        text = text.repeat_interleave(t, dim=0)
        x = torch.cat([text, img], dim=1)
        for block in self.blocks:
            x = block(self.roll(x, b, t, n_text))
        x = self.norm(x)
        return x[:, n_text].view(b, t, -1).mean(1)
