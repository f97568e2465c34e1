"""The models Table 1 compares and the dummy inputs their costs are quoted for.

Shared by the cost table, the memory probe and the latency comparison, so that
none of them imports another.
"""

from __future__ import annotations

import torch
from torch import nn

from evilm.models import FusedOutput, create_baseline, create_model

MODEL_LABELS = {
    "evilm": "E-ViLM",
    "all_in_one_t": "all-in-one-T",
    "all_in_one_s": "all-in-one-S",
    "all_in_one_b": "all-in-one-B",
}


class TupleOutput(nn.Module):
    """A model whose outputs are a tuple of tensors (tracing and exporting need that; E-ViLM returns a dataclass)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, *inputs):
        out = self.model(*inputs)
        if isinstance(out, FusedOutput):
            return tuple(t for t in (out.cls, out.text, out.video) if t is not None)
        return out


def dummy_inputs(
    num_frames: int, image_size: int, text_len: int, vocab_size: int, batch_size: int = 1, seed: int = 0
) -> tuple[torch.Tensor, ...]:
    """Clips and captions of full length (no padding): the inputs the paper's FLOPs are quoted for."""
    g = torch.Generator().manual_seed(seed)
    frames = torch.rand(batch_size, num_frames, 3, image_size, image_size, generator=g)
    ids = torch.randint(5, vocab_size, (batch_size, text_len), generator=g)
    return frames, ids, torch.ones_like(ids)


def inputs_for(model: nn.Module, batch_size: int = 1, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """``dummy_inputs`` at the sizes an E-ViLM or all-in-one model was built for."""
    c = model.config
    vocab = c.text.vocab_size if hasattr(c, "text") else c.vocab_size
    return dummy_inputs(c.num_frames, c.image_size, c.max_text_len, vocab, batch_size, seed)


def build_model(key: str, evilm_preset: str = "paper") -> nn.Module:
    """A model in eval mode by key: ``evilm`` (at ``evilm_preset``) or an all-in-one name."""
    model = create_model(evilm_preset) if key == "evilm" else create_baseline(key)
    return model.eval()


def build_with_inputs(key: str, evilm_preset: str = "paper") -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """A model by key and the batch-1 inputs its costs are quoted for."""
    model = build_model(key, evilm_preset)
    return model, inputs_for(model)
