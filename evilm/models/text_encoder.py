"""Language encoder: a small BERT from `transformers` over a truncated vocabulary."""

from __future__ import annotations

import torch
from torch import nn
from transformers import BertConfig, BertModel

from evilm.models.config import EViLMConfig


class TextEncoder(nn.Module):
    def __init__(self, cfg: EViLMConfig):
        super().__init__()
        t = cfg.text
        bert_cfg = BertConfig(
            vocab_size=t.vocab_size,
            hidden_size=t.hidden_size,
            num_hidden_layers=t.num_layers,
            num_attention_heads=t.num_heads,
            intermediate_size=t.intermediate_size,
            max_position_embeddings=cfg.max_text_len,
            hidden_dropout_prob=t.dropout,
            attention_probs_dropout_prob=t.dropout,
            pad_token_id=0,
        )
        bert_cfg._attn_implementation = "sdpa"
        self.bert = BertModel(bert_cfg, add_pooling_layer=False)
        self.proj = nn.Linear(t.hidden_size, cfg.decoder.width)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, L) ids -> (B, L, D)."""
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.proj(hidden)
