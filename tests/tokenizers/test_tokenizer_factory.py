import pytest
import torch

from evilm.config import ConfigError
from evilm.models import create_model
from evilm.tokenizers import (
    TOKENIZER_NAMES,
    TOKENIZERS,
    create_tokenizer,
    load_tokenizer,
    preset_config,
    save_tokenizer,
)


def test_the_registry_holds_every_configurable_name():
    assert set(TOKENIZERS) == set(TOKENIZER_NAMES) == {"semantic", "pixel_dvae", "perceptual_vq"}


@pytest.mark.parametrize("name", TOKENIZER_NAMES)
def test_encode_lands_on_the_mvm_grid_at_several_resolutions(name, smoke_config):
    model = create_model("smoke")
    tok = create_tokenizer(name, smoke_config).eval()
    for h, w in [(64, 64), (96, 128), (128, 64), (100, 70)]:
        frames = torch.rand(2, smoke_config.num_frames, 3, h, w)
        codes = tok.encode(frames)
        assert codes.dtype == torch.long
        assert tuple(codes.shape) == (2, smoke_config.num_frames, *model.video_grid(h, w))
        assert int(codes.min()) >= 0 and int(codes.max()) < tok.codebook_size


@pytest.mark.parametrize("name", TOKENIZER_NAMES)
def test_save_load_round_trip_gives_identical_codes(name, smoke_config, tmp_path, make_batch):
    torch.manual_seed(0)
    tok = create_tokenizer(name, smoke_config)
    opt = torch.optim.SGD([p for p in tok.parameters() if p.requires_grad], lr=0.5)
    tok.training_step(make_batch(smoke_config), progress=0.5).loss.backward()
    opt.step()  # trained weights, not the init, must survive the round trip
    path = save_tokenizer(tok, tmp_path / "tok.pt")
    torch.manual_seed(123)  # a different init must not matter
    loaded = load_tokenizer(path)
    assert not loaded.training and loaded.codebook_size == tok.codebook_size and loaded.stride == tok.stride
    frames = make_batch(smoke_config, seed=1)["frames"]
    assert torch.equal(tok.eval().encode(frames), loaded.encode(frames))
    saved = torch.load(path, weights_only=True)
    assert saved["name"] == name
    assert tok.training_only and not any(k.startswith(tok.training_only) for k in saved["state_dict"])


def test_saved_file_keeps_only_what_encode_needs(smoke_config, tmp_path):
    tok = create_tokenizer("semantic", smoke_config)
    keys = torch.load(save_tokenizer(tok, tmp_path / "t.pt"), weights_only=True)["state_dict"].keys()
    assert any(k.startswith("encoder.") for k in keys) and "quantizer.codebook" in keys
    assert not any(k.startswith(("decoder.", "head.")) for k in keys)


def test_the_name_picks_the_tokenizer_and_is_saved_with_the_word_loss(tmp_path):
    cfg = preset_config("smoke", {"semantic": {"vocab_size": 12, "word_loss": "bce"}})
    assert type(create_tokenizer("pixel_dvae", cfg)).__name__ == "DVAETokenizer"
    tok = create_tokenizer("semantic", cfg)
    assert tok.cfg.name == "semantic" and tok.cfg.semantic.word_loss == "bce"
    loaded = load_tokenizer(save_tokenizer(tok, tmp_path / "t.pt"))
    assert type(loaded).__name__ == "SemanticTokenizer" and loaded.cfg.semantic.word_loss == "bce"


def test_bad_names_files_and_configs_are_clear_errors(smoke_config, tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'pixel_dvae'"):
        create_tokenizer("pixel_dvea", smoke_config)
    with pytest.raises(ConfigError, match="semantic.vocab_size"):
        create_tokenizer("semantic", preset_config("smoke"))
    with pytest.raises(ConfigError, match="image_size"):
        preset_config("smoke", {"image_size": 70})
    with pytest.raises(ConfigError, match="semantic.decoder_width"):
        preset_config("smoke", {"semantic": {"decoder_width": 33}})
    with pytest.raises(ConfigError, match="profile"):
        preset_config("quik")
    with pytest.raises(ConfigError, match="name: 'semantic_focal' is not one of"):
        preset_config("smoke", {"name": "semantic_focal"})
    (tmp_path / "junk.pt").write_bytes(b"not a tokenizer")
    with pytest.raises(Exception, match="junk.pt|pickle|load"):
        load_tokenizer(tmp_path / "junk.pt")
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="other.pt: not a video tokenizer"):
        load_tokenizer(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_tokenizer(tmp_path / "missing.pt")


def test_frames_with_a_wrong_layout_are_rejected(smoke_config):
    tok = create_tokenizer("pixel_dvae", smoke_config)
    with pytest.raises(ValueError, match=r"\(B, T, 3, H, W\)"):
        tok.encode(torch.rand(2, 3, 64, 64))
    with pytest.raises(ValueError, match="smaller than one 32px region"):
        tok.encode(torch.rand(1, 2, 3, 16, 64))


def test_same_seed_same_tokenizer(smoke_config, make_batch):
    frames = make_batch(smoke_config)["frames"]
    codes = []
    for _ in range(2):
        torch.manual_seed(7)
        codes.append(create_tokenizer("perceptual_vq", smoke_config).eval().encode(frames))
    assert torch.equal(*codes)
