import pytest
from pretrain_toys import config

from evilm.config import ConfigError
from evilm.pretrain.config import MaskConfig, pretrain_config


def test_bad_config_named():
    with pytest.raises(ConfigError, match="losses"):
        config(losses=["mlm", "itc"])
    with pytest.raises(ConfigError, match="loss_weights.mvn"):
        config(loss_weights={"mvn": 1.0})
    with pytest.raises(ConfigError, match="batch_size"):
        config(batch_size=1)


def test_presets_and_their_errors():
    assert pretrain_config("smoke").batch_size == 4
    cfg = pretrain_config("quick", {"mask.ratio": 0.5, "optim": {"lr": 2e-3}})  # the preset's warm-up stays
    assert cfg.mask == MaskConfig(ratio=0.5) and cfg.optim.lr == 2e-3 and cfg.optim.warmup_ratio == 0.05
    with pytest.raises(ConfigError, match="unknown profile 'quik' \\(did you mean 'quick'\\?\\)"):
        pretrain_config("quik")
    with pytest.raises(ConfigError, match="mask.ratio"):
        pretrain_config("smoke", {"mask": {"ratio": 1.0}})
