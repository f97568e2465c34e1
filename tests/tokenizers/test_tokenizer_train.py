import pytest
import torch

from evilm.config import ConfigError
from evilm.data.synthetic import WorldConfig, generate_world
from evilm.tokenizers import CachedCodes, load_tokenizer, preset_config
from evilm.tokenizers.train import bank_loader, build_tokenizer, run, train_tokenizer
from evilm.train.optim import lr_factor
from evilm.train.runtime import NonFiniteLossError


@pytest.fixture(scope="module")
def small_world(tmp_path_factory):
    path, _ = generate_world(
        WorldConfig(profile="smoke", scale=0.5, workers=1, progress=False), tmp_path_factory.mktemp("world")
    )
    return path


def random_loader(cfg, make_batch, batches=2):
    return [make_batch(cfg, batch=4, seed=s) for s in range(batches)]


def test_loop_reports_losses_and_usage_per_epoch_and_is_deterministic(smoke_config, make_batch):
    cfg = preset_config("smoke", {"semantic": {"vocab_size": 12, "word_loss": "bce"}, "train": {"epochs": 2}})
    runs = []
    for _ in range(2):
        seen: list = []
        tok = build_tokenizer(cfg)
        loader = random_loader(cfg, make_batch)
        metrics = train_tokenizer(tok, loader, loader, cfg.train, on_metrics=lambda m, s, seen=seen: seen.append((s, m)),
                                  progress=False)
        runs.append((metrics, tok.eval().encode(loader[0]["frames"])))
        assert [s for s, _ in seen] == [1, 2]
        for key in ("loss", "token_loss", "commit_loss", "train_usage_rate", "val_usage_rate", "val_perplexity"):
            assert key in metrics
    assert runs[0][0] == runs[1][0]
    assert torch.equal(runs[0][1], runs[1][1])


def test_loop_stops_on_a_non_finite_loss(smoke_config, make_batch):
    tok = build_tokenizer(smoke_config)
    batch = make_batch(smoke_config)
    batch["frames"][0, 0, 0, 0, 0] = float("nan")
    with pytest.raises(NonFiniteLossError, match="step 1: tokenizer loss = nan"):
        train_tokenizer(tok, [batch], None, smoke_config.train, progress=False)


def test_loop_uses_the_shared_optimizer_and_schedule(make_batch, monkeypatch):
    cfg = preset_config("smoke", {"semantic": {"vocab_size": 12},
                                  "train": {"epochs": 2, "optim": {"lr": 1e-3, "warmup_ratio": 0.25}}})
    tok = build_tokenizer(cfg)
    lrs = []
    real_step = torch.optim.AdamW.step

    def spy(self, *args, **kwargs):
        lrs.append([(group["lr"], group["weight_decay"]) for group in self.param_groups])
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", spy)
    train_tokenizer(tok, random_loader(cfg, make_batch), None, cfg.train, progress=False)
    total = 4  # 2 epochs of 2 batches
    assert [group[0][0] for group in lrs] == pytest.approx([1e-3 * lr_factor(s, total, cfg.train.optim) for s in range(total)])
    assert lrs[0][1][1] == 0.0 and lrs[0][0][1] == 0.01  # biases and norm weights: no weight decay


@pytest.mark.parametrize("name", ["semantic", "pixel_dvae"])
def test_stage_trains_saves_and_labels_a_generated_world(name, small_world, tmp_path):
    cfg = preset_config("smoke", {"name": name})
    reported = []
    result = run(cfg, {"data": small_world}, tmp_path, on_metrics=lambda m, s: reported.append(s), progress=False)
    assert set(result.artifacts) == {"tokenizer", "words", "codes"}
    assert not list(tmp_path.glob("*.tmp"))
    tok = load_tokenizer(result.artifacts["tokenizer"])
    cached = CachedCodes(result.artifacts["codes"])
    assert cached.codebook_size == tok.codebook_size == 64
    for key in ("val_usage_rate", "val_perplexity", "train_eval_usage_rate", "probe_colour_acc", "probe_words_map"):
        assert key in result.metrics
    assert 0 < result.metrics["val_usage_rate"] <= 1
    assert reported[-1] == cfg.train.epochs + 1
    # PSNR where the tokenizer reconstructs pixels
    assert ("val_psnr" in result.metrics) == (name != "semantic")
    if name != "semantic":
        assert 5 < result.metrics["val_psnr"] < 60


def test_stage_starts_from_the_pretrained_inputs_the_config_asks_for(small_world, tmp_path):
    from evilm.models.video_encoder import create_backbone
    from evilm.tokenizers.weights import BACKBONE_FORMAT

    torch.manual_seed(5)
    state = create_backbone("mobilenetv3_small_050").state_dict()
    prior = tmp_path / "prior.pt"
    torch.save({"format": BACKBONE_FORMAT, "backbone": "mobilenetv3_small_050", "state_dict": state}, prior)
    inputs = {"data": small_world, "encoder_init": prior, "perceptual_features": prior}
    # lr ~ 0: the saved encoder's weights are the file's (its BatchNorm statistics move in training)
    semantic = preset_config("smoke", {"semantic": {"encoder": "cnn", "encoder_backbone": "mobilenetv3_small_050",
                                                    "pretrained": True},
                                       "train": {"optim": {"lr": 1e-30}}, "data": {"cache_codes": False}})
    result = run(semantic, inputs, tmp_path / "semantic", progress=False)
    weights = dict(load_tokenizer(result.artifacts["tokenizer"]).encoder.backbone.named_parameters())
    assert weights and all(torch.allclose(w, state[k], rtol=0, atol=1e-20) for k, w in weights.items())
    perceptual = preset_config("smoke", {"name": "perceptual_vq", "perceptual": {"feature_net": "pretrained",
                                                                                 "feature_size": 64},
                                         "data": {"cache_codes": False}})
    result = run(perceptual, inputs, tmp_path / "perceptual", progress=False)
    assert result.metrics["perceptual_loss"] > 0 and "val_psnr" in result.metrics
    with pytest.raises(ConfigError, match="perceptual_features"):
        run(perceptual, {"data": small_world}, tmp_path / "none", progress=False)


def test_stage_input_errors(small_world, tmp_path):
    cfg = preset_config("smoke")
    with pytest.raises(KeyError, match="data"):
        run(cfg, {}, tmp_path, progress=False)
    with pytest.raises(ConfigError, match="data.benchmark"):
        run(preset_config("smoke", {"data": {"benchmark": "hmdb51"}}), {"data": small_world}, tmp_path, progress=False)
    with pytest.raises(ConfigError, match="semantic.vocab_size"):
        run(preset_config("smoke", {"semantic": {"vocab_size": 3}}), {"data": small_world}, tmp_path, progress=False)


def test_bank_loader_shuffles_deterministically(smoke_config):
    data = list(range(10))
    first = [b.tolist() for b in bank_loader(data, smoke_config.train, shuffle=True)]
    again = [b.tolist() for b in bank_loader(data, smoke_config.train, shuffle=True)]
    assert first == again and sorted(sum(first, [])) == data
