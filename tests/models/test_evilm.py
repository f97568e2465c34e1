import pytest
import torch

from evilm.config import ConfigError
from evilm.models import (
    LinearProbe,
    MCHead,
    MLMHead,
    MVMHead,
    QAHead,
    RetrievalHead,
    VTMHead,
    create_baseline,
    create_model,
    preset_config,
)


def _batch(model, b=2):
    c = model.config
    frames = torch.rand(b, c.num_frames, 3, c.image_size, c.image_size)
    ids = torch.randint(5, c.text.vocab_size, (b, c.max_text_len))
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    return frames, ids, mask


def test_smoke_forward_shapes():
    model = create_model("smoke")
    c = model.config
    frames, ids, mask = _batch(model)
    out = model(frames, ids, mask)
    gh, gw = model.video_grid(c.image_size, c.image_size)
    assert (gh, gw) == (c.image_size // 32, c.image_size // 32)
    assert out.cls.shape == (2, model.width)
    assert out.text.shape == (2, c.max_text_len, model.width)
    assert out.video.shape == (2, c.num_frames * gh * gw, model.width)


def test_unimodal_fuse():
    model = create_model("smoke").eval()
    frames, ids, mask = _batch(model)
    v = model.fuse(video=model.encode_video(frames))
    t = model.fuse(text=model.encode_text(ids, mask), text_mask=mask)
    assert v.text is None and v.video is not None and t.video is None
    with pytest.raises(ValueError):
        model.fuse()


def test_padding_does_not_leak():
    # Changing the ids at padded positions must not change the output.
    model = create_model("smoke").eval()
    frames, ids, mask = _batch(model)
    ids2 = ids.clone()
    ids2[1, 5:] = 7
    with torch.no_grad():
        a, b = model(frames, ids, mask), model(frames, ids2, mask)
    torch.testing.assert_close(a.cls, b.cls)


def test_every_head_forward_backward():
    model = create_model("smoke")
    c, d = model.config, model.width
    frames, ids, mask = _batch(model)
    out = model(frames, ids, mask)
    heads = {
        "mlm": (MLMHead(d, c.text.vocab_size), out.text, c.text.vocab_size),
        "vtm": (VTMHead(d), out.cls, 2),
        "mvm": (MVMHead(d, c.codebook_size), out.video, c.codebook_size),
        "qa": (QAHead(d, 11), out.cls, 11),
        "probe": (LinearProbe(d, 5), out.cls, 5),
    }
    loss = 0
    for name, (head, h, n) in heads.items():
        logits = head(h)
        assert logits.shape[-1] == n, name
        loss = loss + logits.float().pow(2).mean()
    mc = MCHead(d)(out.cls)
    assert mc.shape == (2,)
    ret = RetrievalHead(d, 16)
    ev, et = ret.video(out.cls), ret.text(out.cls)
    torch.testing.assert_close(ev.norm(dim=-1), torch.ones(2))
    score = VTMHead(d).match_score(out.cls)
    loss = loss + mc.sum() + (ev * et).sum() + score.sum()
    loss.backward()
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, f"no gradient reaches {name}"


def test_deterministic_under_seed():
    torch.manual_seed(1)
    a = create_model("smoke")
    torch.manual_seed(1)
    b = create_model("smoke")
    frames, ids, mask = _batch(a)
    with torch.no_grad():
        torch.testing.assert_close(a.eval()(frames, ids, mask).cls, b.eval()(frames, ids, mask).cls)


def test_other_resolution_interpolates_positions():
    model = create_model("smoke").eval()
    out = model.encode_video(torch.rand(1, 3, 3, 96, 96))  # 3 frames of a 3x3 grid
    assert out.shape == (1, 27, model.width)


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"decoder": {"width": 100, "num_heads": 3}}, "decoder.width"),
        ({"text": {"vocab_size": 4}}, "text.vocab_size"),
        ({"text": {"hidden_size": 30, "num_heads": 4}}, "text.hidden_size"),
        ({"decoder": {"widht": 64}}, "decoder.widht"),
        ({"num_frames": "four"}, "num_frames"),
    ],
)
def test_bad_config_names_the_field(overrides, field):
    with pytest.raises(ConfigError) as err:
        preset_config("smoke", overrides)
    assert err.value.path == field
    assert field in str(err.value)


def test_an_unknown_backbone_is_named_when_the_model_is_built():
    typo = preset_config("smoke", {"video.backbone": "edgenext_smal"})  # configs read without timm
    with pytest.raises(ConfigError, match="did you mean 'edgenext_small'") as err:
        create_model(typo)
    assert err.value.path == "video.backbone"


def test_typo_suggests_close_match():
    with pytest.raises(ConfigError, match="did you mean 'width'"):
        preset_config("smoke", {"decoder": {"widht": 64}})
    with pytest.raises(ConfigError, match="unknown preset"):
        preset_config("papr")


def test_paper_preset_parameters():
    # Deterministic architecture counts (random init does not change them).
    model = create_model("paper")
    counts = {name: sum(p.numel() for p in child.parameters()) for name, child in model.named_children()}
    assert counts["video_encoder"] == 5_281_224 + 304 * 384 + 384 + 64 * 384 + 4 * 384
    assert counts["text_encoder"] == 2_416_896
    assert sum(p.numel() for p in model.parameters()) == 14_941_128


def test_local_backbone_checkpoint(tmp_path):
    src = create_model("smoke")
    path = tmp_path / "backbone.pth"
    torch.save(src.video_encoder.backbone.state_dict(), path)
    dst = create_model("smoke", video={"checkpoint": str(path)})
    for (n, a), (_, b) in zip(src.video_encoder.backbone.state_dict().items(), dst.video_encoder.backbone.state_dict().items()):
        torch.testing.assert_close(a, b, msg=n)


def test_all_in_one_t_forward():
    model = create_baseline("all_in_one_t").eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 3, 224, 224), torch.randint(0, 30522, (1, 40)), torch.ones(1, 40, dtype=torch.long))
    assert out.shape == (1, 192)
    with pytest.raises(ConfigError):
        create_baseline("all_in_one_xl")


@pytest.mark.parametrize("backbone", ["mobilenetv2_050", "efficientnet_b0", "mobilenetv3_small_050"])
def test_backbones_whose_feature_layers_end_in_a_conv_head_still_encode(backbone):
    """EfficientNet's and MobileNetV2's conv_head belongs to forward_features (MobileNetV3's does not):
    only the modules forward_features never calls are dropped."""
    model = create_model("smoke", video={"backbone": backbone})
    frames = torch.rand(2, model.config.num_frames, 3, 64, 64)
    video = model.encode_video(frames)
    assert video.shape == (2, model.config.num_frames * 2 * 2, model.width)
    kept = next(model.video_encoder.backbone.conv_head.parameters(), None) is not None
    assert kept == (not backbone.startswith("mobilenetv3"))
