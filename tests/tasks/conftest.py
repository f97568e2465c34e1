"""Shared fixtures for the task tests: one untrained `smoke` model file (the world: tests/conftest.py)."""

from __future__ import annotations

import pytest
import torch

from evilm.data import TextTokenizer, text_corpus
from evilm.models import create_model
from evilm.pretrain.objectives import EViLMForPretraining
from evilm.pretrain.pretrained import save_pretrained


@pytest.fixture(scope="session")
def smoke_model_file(smoke_world, tmp_path_factory):
    """A `model.pt` as pretraining writes it (MLM + VTM heads), without the training."""
    tokenizer = TextTokenizer.build(text_corpus(smoke_world), keep_fraction=1.0)
    torch.manual_seed(0)
    model = EViLMForPretraining(create_model("smoke", text={"vocab_size": tokenizer.vocab_size}), ["mlm", "vtm"])
    path = tmp_path_factory.mktemp("pretrained") / "model.pt"
    return save_pretrained(path, model, meta={"text_vocab": tokenizer.vocab})
