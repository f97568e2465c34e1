import pytest

from evilm.config import ConfigError
from evilm.pretrain.config import pretrain_config
from evilm.pretrain.pretrained import load_pretrained
from evilm.pretrain.stage import run
from evilm.tokenizers.config import preset_config as tokenizer_preset
from evilm.tokenizers.factory import create_tokenizer, save_tokenizer


def test_stage_on_the_smoke_world_with_a_video_tokenizer(smoke_world, tmp_path):
    tokenizer = create_tokenizer("semantic", tokenizer_preset("smoke", {"semantic": {"vocab_size": 50}}))
    path = save_tokenizer(tokenizer, tmp_path / "tokenizer.pt")
    cfg = pretrain_config("smoke", {"max_steps": 1, "batch_size": 2, "progress": False})
    result = run(cfg, {"data": smoke_world, "tokenizer": path}, tmp_path / "out")
    assert result.metrics["pretrain/complete"] == 1.0 and result.metrics["pretrain/steps"] == 1
    loaded = load_pretrained(result.artifacts["model"])
    assert loaded.backbone.config.codebook_size == tokenizer.codebook_size
    assert loaded.meta["text_vocab"][:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert result.artifacts["text_tokenizer"].is_file()


def test_stage_refuses_mvm_without_targets(smoke_world, tmp_path):
    with pytest.raises(ConfigError, match="inputs.tokenizer"):
        run(pretrain_config("smoke"), {"data": smoke_world}, tmp_path)
