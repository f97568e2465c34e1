import pytest
import torch
from torch import nn

from evilm.config import ConfigError, merge
from evilm.tokenizers import create_tokenizer, load_tokenizer, save_tokenizer
from evilm.tokenizers.pixel import DallETokenizer
from evilm.tokenizers.pretrained import load_encoder_init


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


def test_dvae_has_dalle_codebook_and_reconstructs_from_its_codes(smoke_config, make_batch):
    from evilm.tokenizers import preset_config

    assert preset_config("quick").pixel.codebook_size == 8192  # DALL-E's vocabulary
    tok = create_tokenizer("pixel_dvae", smoke_config)
    assert tok.codebook_size == smoke_config.pixel.codebook_size
    target, recon = tok.reconstruct(make_batch(smoke_config)["frames"])
    assert target.shape == recon.shape == (3 * smoke_config.num_frames, 3, 16, 16)  # 2x2 grid, 8x


def test_temperature_anneal_ends_early_and_holds(smoke_config):
    cfg = merge(smoke_config, {"pixel": {"temperature_anneal": 0.5}})
    tok = create_tokenizer("pixel_dvae", cfg)
    assert tok.temperature(0.25) == pytest.approx(0.25)  # half way: 1 * (1/16)^0.5
    assert tok.temperature(0.5) == pytest.approx(1 / 16) == tok.temperature(0.9)


@pytest.fixture(scope="module")
def released_encoder_file(tmp_path_factory):
    """A file of the released encoder.pkl's structure: a pickled, randomly initialised dall_e.Encoder."""
    dall_e = pytest.importorskip("dall_e")
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("dall_e") / "encoder.pkl"
    torch.save(dall_e.Encoder(), path)
    return path


def dall_e_config(smoke_config, path, trust=True):
    return merge(smoke_config, {"pixel": {"encoder": "dall_e", "dall_e_encoder": str(path), "trust_pickle": trust,
                                          "codebook_size": 8192}})


def test_released_dall_e_encoder_loads_only_when_trusted(smoke_config, released_encoder_file, make_batch, tmp_path):
    tok = create_tokenizer("pixel_dvae", dall_e_config(smoke_config, released_encoder_file, trust=False))
    assert isinstance(tok, DallETokenizer) and not tok.trainable
    with pytest.raises(ConfigError, match="trust_pickle"):
        load_encoder_init(tok, released_encoder_file)

    tok = create_tokenizer("pixel_dvae", dall_e_config(smoke_config, released_encoder_file))
    load_encoder_init(tok, released_encoder_file)
    released = torch.load(released_encoder_file, weights_only=False)
    for name, value in released.state_dict().items():  # every weight came from the file
        assert torch.equal(tok.dalle_encoder.state_dict()[name], value)
    frames = make_batch(smoke_config)["frames"]
    codes = tok.encode(frames)
    assert codes.shape == (3, 2, 2, 2) and int(codes.max()) < 8192
    # the saved tokenizer is a plain weights file: it loads back without unpickling code
    again = load_tokenizer(save_tokenizer(tok, tmp_path / "tok.pt"))
    assert torch.equal(again.encode(frames), codes)


def test_released_dall_e_encoder_rejects_other_pickles(smoke_config, released_encoder_file, tmp_path):
    other = tmp_path / "other.pkl"
    torch.save(nn.Conv2d(3, 8, 1), other)
    tok = create_tokenizer("pixel_dvae", dall_e_config(smoke_config, released_encoder_file))
    with pytest.raises(ConfigError, match="expected a pickled dall_e.Encoder"):
        load_encoder_init(tok, other)
    with pytest.raises(ConfigError, match="not found"):
        load_encoder_init(tok, tmp_path / "missing.pkl")


class FakeDalleEncoder(nn.Module):
    """Stands in for OpenAI's encoder: 8x downsampling to 16 code logits; records its input."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 8, stride=8)
        self.seen = None

    def forward(self, x):
        self.seen = x
        return self.conv(x)


def test_dall_e_tokenizer_resizes_onto_the_mvm_grid(smoke_config, released_encoder_file):
    tok = create_tokenizer("pixel_dvae", dall_e_config(smoke_config, released_encoder_file))
    tok._codebook_size = 16
    tok.dalle_encoder = fake = FakeDalleEncoder()
    tok._stride = 32
    codes = tok.encode(torch.rand(2, 3, 3, 128, 96))
    assert codes.shape == (2, 3, 4, 3)
    assert fake.seen.shape == (6, 3, 32, 24)  # 8x the grid
    assert fake.seen.min() >= 0.1 - 1e-6 and fake.seen.max() <= 0.9 + 1e-6  # DALL-E's map_pixels
    with pytest.raises(RuntimeError, match="frozen"):
        tok.training_step({})
