import pytest
import torch

from evilm.tokenizers import preset_config

VOCAB = 12


@pytest.fixture
def smoke_config():
    return preset_config("smoke", {"semantic": {"vocab_size": VOCAB}})


@pytest.fixture
def make_batch():
    """``make_batch(cfg, batch=3, seed=0)``: random clips and word targets for a config."""
    return random_batch


def random_batch(cfg, batch=3, seed=0, height=None, width=None):
    g = torch.Generator().manual_seed(seed)
    h = height or cfg.image_size
    w = width or cfg.image_size
    frames = torch.rand(batch, cfg.num_frames, 3, h, w, generator=g)
    words = (torch.rand(batch, VOCAB, generator=g) < 0.3).float()
    return {"frames": frames, "word_targets": words, "video_id": [f"v{seed}_{i}" for i in range(batch)]}
