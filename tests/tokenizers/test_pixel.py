import pytest
import torch
from torch import nn

from evilm.tokenizers import create_tokenizer
from evilm.tokenizers.pixel import OpenAIDVAETokenizer, openai_dvae_tokenizer


def test_dvae_learns_from_pixels_only(smoke_config, make_batch):
    tok = create_tokenizer("pixel_dvae", smoke_config)
    batch = make_batch(smoke_config)
    step = tok.training_step(batch, progress=0.5)
    other = dict(batch, word_targets=torch.ones_like(batch["word_targets"]))
    torch.manual_seed(0)
    a = tok.training_step(batch, progress=0.5).loss
    torch.manual_seed(0)
    b = tok.training_step(other, progress=0.5).loss
    assert torch.equal(a, b)  # captions do not matter
    step.loss.backward()
    assert tok.encoder.net[0].weight.grad.abs().sum() > 0 and tok.code_embed.grad.abs().sum() > 0


def test_dvae_schedules_and_encode_are_deterministic(smoke_config, make_batch):
    tok = create_tokenizer("pixel_dvae", smoke_config)
    assert tok.temperature(0.0) == pytest.approx(1.0)
    assert tok.temperature(1.0) == pytest.approx(1 / 16)
    assert tok.kl_weight(0.0) == 0.0 and tok.kl_weight(1.0) == pytest.approx(smoke_config.pixel.kl_weight)
    frames = make_batch(smoke_config)["frames"]
    tok.train()  # encode never samples, whatever the mode
    assert torch.equal(tok.encode(frames), tok.encode(frames))


def test_kl_to_uniform_is_zero_for_uniform_logits(smoke_config, make_batch):
    tok = create_tokenizer("pixel_dvae", smoke_config)
    last = tok.encoder.net[-1]
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    step = tok.training_step(make_batch(smoke_config), progress=1.0)
    assert step.terms["kl_per_code"].abs().item() < 1e-6


class FakeDalleEncoder(nn.Module):
    """Stands in for OpenAI's encoder: 8x downsampling to 16 code logits; records its input."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 8, stride=8)
        self.seen = None

    def forward(self, x):
        self.seen = x
        return self.conv(x)


def test_openai_dvae_wrapper_resizes_onto_the_mvm_grid():
    fake = FakeDalleEncoder()
    tok = OpenAIDVAETokenizer(fake, stride=32, codebook_size=16)
    codes = tok.encode(torch.rand(2, 3, 3, 128, 96))
    assert codes.shape == (2, 3, 4, 3)
    assert fake.seen.shape == (6, 3, 32, 24)  # 8x the grid
    assert fake.seen.min() >= 0.1 - 1e-6 and fake.seen.max() <= 0.9 + 1e-6  # DALL-E's map_pixels
    with pytest.raises(RuntimeError, match="frozen"):
        tok.training_step({})


def test_openai_dvae_file_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="encoder.pkl"):
        openai_dvae_tokenizer(tmp_path / "encoder.pkl")
