import pytest
import torch
from timm.models.vision_transformer import VisionTransformer

from evilm.config import ConfigError
from evilm.tokenizers import create_tokenizer, preset_config
from evilm.tokenizers.pretrained import load_encoder_init

VOCAB = 12


def test_training_step_combines_word_loss_and_vq_terms(smoke_config, make_batch):
    tok = create_tokenizer("semantic", smoke_config)
    step = tok.training_step(make_batch(smoke_config))
    terms = step.terms
    assert torch.allclose(step.loss, terms["token_loss"] + terms["codebook_loss"] + terms["commit_loss"])
    assert step.codes.shape == (3, smoke_config.num_frames, 2, 2)
    step.loss.backward()
    # Encoder, codebook, decoder and HEAD^S all learn from eq. 7.
    for name in ("encoder.vit.patch_embed.proj.weight", "quantizer.codebook", "decoder.proj.weight", "head.weight"):
        assert dict(tok.named_parameters())[name].grad.abs().sum() > 0, name


def test_word_loss_reaches_the_encoder_only_through_the_straight_through_path(smoke_config, make_batch):
    tok = create_tokenizer("semantic", smoke_config)
    batch = make_batch(smoke_config)
    quant = tok.quantizer(tok.embed(batch["frames"]))
    logits = tok.word_logits(quant.z_q)
    torch.nn.functional.binary_cross_entropy_with_logits(logits, batch["word_targets"]).backward()
    assert tok.encoder.vit.patch_embed.proj.weight.grad.abs().sum() > 0
    assert tok.quantizer.codebook.grad is None


def test_word_loss_follows_the_config(make_batch):
    batch = make_batch(preset_config("smoke"))
    losses = {}
    for word_loss in ("focal", "bce"):
        torch.manual_seed(0)
        cfg = preset_config("smoke", {"semantic": {"vocab_size": VOCAB, "word_loss": word_loss}})
        losses[word_loss] = create_tokenizer("semantic", cfg).training_step(batch).terms["token_loss"]
    assert losses["focal"] < losses["bce"]  # focal down-weights the many negatives
    torch.manual_seed(0)
    plain = preset_config("smoke", {"semantic": {"vocab_size": VOCAB, "gamma_neg": 0.0}})
    assert create_tokenizer("semantic", plain).training_step(batch).terms["token_loss"] == pytest.approx(
        losses["bce"].item(), rel=1e-5)  # eq. 6 without its focusing term is BCE
    summed = preset_config("smoke", {"semantic": {"vocab_size": VOCAB, "word_loss": "bce", "word_reduction": "sum"}})
    torch.manual_seed(0)
    total = create_tokenizer("semantic", summed).training_step(batch).terms["token_loss"]
    assert total == pytest.approx(losses["bce"].item() * VOCAB, rel=1e-5)


@pytest.mark.parametrize("key, value", [("gamma_neg", 2.0), ("gamma_pos", 1.0), ("clip", 0.05)])
def test_bce_with_a_focusing_setting_is_a_config_error(key, value):
    from evilm.config import ConfigError

    with pytest.raises(ConfigError, match=f"semantic.{key}: word_loss 'bce' has no focusing terms"):
        preset_config("smoke", {"semantic": {"word_loss": "bce", key: value}})
    preset_config("smoke", {"semantic": {"word_loss": "focal", key: value}})


def test_a_few_steps_fit_a_fixed_batch(smoke_config, make_batch):
    tok = create_tokenizer("semantic", smoke_config)
    batch = make_batch(smoke_config, batch=4)
    opt = torch.optim.Adam([p for p in tok.parameters() if p.requires_grad], lr=3e-3)
    first = None
    for _ in range(8):
        step = tok.training_step(batch)
        opt.zero_grad()
        step.loss.backward()
        opt.step()
        first = first if first is not None else step.terms["token_loss"].item()
    assert step.terms["token_loss"].item() < 0.7 * first


def test_plain_vit_encoder_starts_from_a_local_file(smoke_config, tmp_path):
    cfg = smoke_config
    reference = VisionTransformer(
        img_size=cfg.image_size, patch_size=cfg.stride, embed_dim=cfg.semantic.encoder_width,
        depth=cfg.semantic.encoder_depth, num_heads=cfg.semantic.encoder_heads, num_classes=10,
        global_pool="", class_token=False,
    )
    path = tmp_path / "vit.pth"
    torch.save({"model": reference.state_dict()}, path)  # a classifier checkpoint: its head is set aside
    tok = create_tokenizer("semantic", cfg)
    load_encoder_init(tok, path)
    for key, value in reference.state_dict().items():
        if not key.startswith("head."):
            assert torch.equal(tok.encoder.vit.state_dict()[key], value), key
    torch.save({"something": torch.zeros(3)}, tmp_path / "bad.pth")
    with pytest.raises(ConfigError, match=r"inputs.encoder_init: .*bad.pth does not fit the ViT encoder: missing"):
        load_encoder_init(tok, tmp_path / "bad.pth")


def test_video_swin_option_keeps_every_frame_on_the_stride_32_grid():
    cfg = preset_config("smoke", {"semantic": {"vocab_size": VOCAB, "encoder": "video_swin_t"}})
    tok = create_tokenizer("semantic", cfg).eval()
    codes = tok.encode(torch.rand(1, 2, 3, 64, 96))
    assert codes.shape == (1, 2, 2, 3)


def test_training_at_another_size_than_configured_is_a_clear_error(smoke_config, make_batch):
    tok = create_tokenizer("semantic", smoke_config)
    with pytest.raises(ValueError, match="configured num_frames and image_size"):
        tok.training_step(make_batch(smoke_config, height=96, width=96))


def test_cnn_encoder_option_lands_on_the_grid_and_learns(make_batch):
    cfg = preset_config("smoke", {"semantic": {"vocab_size": VOCAB, "encoder": "cnn",
                                               "encoder_backbone": "mobilenetv3_small_050"}})
    tok = create_tokenizer("semantic", cfg)
    assert tok.encode(torch.rand(1, 2, 3, 64, 96)).shape == (1, 2, 2, 3)
    step = tok.training_step(make_batch(cfg))
    step.loss.backward()
    assert tok.encoder.backbone.conv_stem.weight.grad.abs().sum() > 0
    # nothing after forward_features is kept (no parameter without a gradient)
    assert all(p.grad is not None for p in tok.encoder.parameters())


def test_cnn_encoder_with_the_wrong_stride_is_a_clear_error():
    cfg = preset_config("smoke", {"stride": 16, "semantic": {"vocab_size": VOCAB, "encoder": "cnn"}})
    with pytest.raises(ConfigError, match="output stride 32, the grid needs 16"):
        create_tokenizer("semantic", cfg)
    # a timm name is checked when the tokenizer is built (configs read without timm)
    typo = preset_config("smoke", {"semantic": {"vocab_size": VOCAB, "encoder": "cnn",
                                                "encoder_backbone": "mobilenetv3_smal_050"}})
    with pytest.raises(ConfigError, match="semantic.encoder_backbone: unknown timm model 'mobilenetv3_smal_050' "
                                          r"\(did you mean 'mobilenetv3_small_050'\?\)"):
        create_tokenizer("semantic", typo)
