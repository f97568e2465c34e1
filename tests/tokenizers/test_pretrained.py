"""The tokenizers' pretrained parts load from files of the released formats, strictly.

Every file here is generated with random weights in the structure of the real one: an OpenCLIP
ViT-B/32 state dict (written by open-clip-torch), the same keys as OpenAI's CLIP state dict, a timm
EdgeNeXt-small classifier checkpoint, a prior stage's backbone file and torchvision's VGG-16 keys.
(The DALL-E encoder's pickle is in test_pixel.py.)
"""

import pytest
import timm
import torch

from evilm.config import ConfigError
from evilm.models.video_encoder import create_backbone
from evilm.tokenizers import create_tokenizer, preset_config
from evilm.tokenizers.perceptual import BackboneFeatures, VGG16Features
from evilm.tokenizers.pretrained import load_encoder_init, load_perceptual_features, load_pretrained_parts
from evilm.tokenizers.weights import BACKBONE_FORMAT

VOCAB = 12


@pytest.fixture(scope="module")
def open_clip_vit_b32(tmp_path_factory):
    """OpenCLIP's ViT-B-32 with random weights (nothing fetched), its whole state dict saved to a file."""
    open_clip = pytest.importorskip("open_clip")
    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-32", pretrained=None).eval()
    path = tmp_path_factory.mktemp("clip") / "open_clip_vit_b32.pt"
    torch.save(model.state_dict(), path)
    return model, path


def clip_tokenizer(image_size, proj_dim=512):
    cfg = preset_config("paper", {"image_size": image_size, "num_frames": 1,
                                  "semantic": {"vocab_size": VOCAB, "decoder_width": 32, "decoder_depth": 1,
                                               "decoder_heads": 2, "encoder_proj_dim": proj_dim}})
    return create_tokenizer("semantic", cfg).eval()


def test_open_clip_vit_b32_loads_whole_and_computes_what_open_clip_computes(open_clip_vit_b32):
    model, path = open_clip_vit_b32
    tok = clip_tokenizer(224)
    vit = tok.encoder.vit
    assert vit.patch_embed.proj.bias is None and vit.cls_token is not None  # CLIP's layout: no bias, ln_pre
    load_encoder_init(tok, path)  # strict: any unused image-tower key or missing weight raises
    visual = model.visual
    assert torch.equal(vit.patch_embed.proj.weight, visual.conv1.weight)
    assert torch.equal(vit.norm_pre.weight, visual.ln_pre.weight)
    assert torch.equal(vit.head.weight, visual.proj.t())
    assert torch.equal(vit.blocks[11].mlp.fc2.weight, visual.transformer.resblocks[11].mlp.c_proj.weight)
    # the same numbers as OpenCLIP's own tower: each region's token after ln_post, projected by proj
    image = tok.normalize(torch.rand(1, 3, 224, 224))
    with torch.no_grad():
        visual.output_tokens = True
        _, tokens = visual(image)
        ours = tok.encoder(image.unsqueeze(1))  # (1, 1, 7, 7, 512)
    assert torch.allclose(ours.reshape(49, 512), tokens[0] @ visual.proj, atol=1e-4)


def test_open_clip_vit_b32_resamples_to_the_paper_grid_and_wants_its_projection(open_clip_vit_b32, tmp_path):
    _, path = open_clip_vit_b32
    tok = clip_tokenizer(256)  # the paper's 256 px frames: CLIP's 7x7 (+1) positions resampled to 8x8 (+1)
    load_encoder_init(tok, path)
    assert tok.encoder.vit.pos_embed.shape == (1, 65, 768)
    assert tok.encode(torch.rand(1, 1, 3, 256, 256)).shape == (1, 1, 8, 8)
    with pytest.raises(ConfigError, match=r"unused \(2\): \['head.bias', 'head.weight'\]"):
        load_encoder_init(clip_tokenizer(224, proj_dim=0), path)  # CLIP's proj has no place


def test_openai_and_open_clip_training_checkpoints_load_too(open_clip_vit_b32, tmp_path):
    model, _ = open_clip_vit_b32
    visual = {k: v for k, v in model.state_dict().items() if k.startswith("visual.")}
    # OpenAI's state dict: the same key names, with its extra entries beside the towers
    openai = tmp_path / "openai.pt"
    torch.save({**visual, "input_resolution": torch.tensor(224), "logit_scale": torch.tensor(4.6)}, openai)
    # an OpenCLIP training checkpoint: wrapped, with DDP's "module." prefixes
    training = tmp_path / "epoch_32.pt"
    torch.save({"epoch": 32, "state_dict": {f"module.{k}": v for k, v in visual.items()}}, training)
    for path in (openai, training):
        tok = clip_tokenizer(224)
        load_encoder_init(tok, path)
        assert torch.equal(tok.encoder.vit.cls_token.flatten(), visual["visual.class_embedding"])


@pytest.fixture(scope="module")
def edgenext_small_checkpoint(tmp_path_factory):
    """timm's EdgeNeXt-small classifier checkpoint (random weights): a bare state dict with its head."""
    torch.manual_seed(0)
    model = timm.create_model("edgenext_small", pretrained=False, num_classes=1000)
    path = tmp_path_factory.mktemp("edgenext") / "edgenext_small.pth"
    torch.save(model.state_dict(), path)
    return model.state_dict(), path


def test_edgenext_small_checkpoint_starts_the_cnn_encoder_without_its_head(edgenext_small_checkpoint):
    state, path = edgenext_small_checkpoint
    cfg = preset_config("smoke", {"semantic": {"vocab_size": VOCAB, "encoder": "cnn",
                                               "encoder_backbone": "edgenext_small"}})
    tok = create_tokenizer("semantic", cfg)
    load_encoder_init(tok, path)
    loaded = tok.encoder.backbone.state_dict()
    assert set(state) - set(loaded) == {"head.norm.weight", "head.norm.bias", "head.fc.weight", "head.fc.bias"}
    assert all(torch.equal(loaded[k], v) for k, v in state.items() if not k.startswith("head."))


def test_edgenext_small_checkpoint_is_a_perceptual_feature_network(edgenext_small_checkpoint, smoke_config):
    state, path = edgenext_small_checkpoint
    cfg = preset_config("smoke", {"perceptual": {"feature_net": "pretrained", "feature_backbone": "edgenext_small",
                                                 "feature_size": 64}})
    tok = create_tokenizer("perceptual_vq", cfg)
    load_perceptual_features(tok, path)
    assert isinstance(tok.features, BackboneFeatures)
    assert torch.equal(tok.features.backbone.stem[0].weight, state["stem.0.weight"])
    feats = tok.features(torch.rand(2, 3, 64, 64))
    assert [f.shape[1] for f in feats] == [48, 96, 160, 304]  # one map per stage
    step = tok.training_step({"frames": torch.rand(2, cfg.num_frames, 3, 64, 64)})
    step.loss.backward()
    assert step.terms["perceptual_loss"] > 0 and tok.encoder.net[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in tok.features.parameters())  # the loss network stays fixed


def backbone_file(path, name, state):
    torch.save({"format": BACKBONE_FORMAT, "backbone": name, "state_dict": state}, path)
    return path


def test_a_prior_backbone_file_starts_the_cnn_encoder_strictly(tmp_path):
    cfg = preset_config("smoke", {"semantic": {"vocab_size": VOCAB, "encoder": "cnn",
                                               "encoder_backbone": "mobilenetv3_small_050"}})
    torch.manual_seed(1)
    state = create_backbone("mobilenetv3_small_050").state_dict()
    tok = create_tokenizer("semantic", cfg)
    load_encoder_init(tok, backbone_file(tmp_path / "prior.pt", "mobilenetv3_small_050", state))
    assert all(torch.equal(tok.encoder.backbone.state_dict()[k], v) for k, v in state.items())

    with pytest.raises(ConfigError, match="holds a 'resnet18' backbone, the config builds 'mobilenetv3_small_050'"):
        load_encoder_init(tok, backbone_file(tmp_path / "other.pt", "resnet18", state))
    short = {k: v for k, v in state.items() if k != "conv_stem.weight"}
    with pytest.raises(ConfigError, match=r"short.pt does not fit .* missing \(1\): \['conv_stem.weight'\]"):
        load_encoder_init(tok, backbone_file(tmp_path / "short.pt", "mobilenetv3_small_050", short))
    extra = {**state, "text_proj.weight": torch.zeros(2, 2)}
    with pytest.raises(ConfigError, match=r"unused \(1\): \['text_proj.weight'\]"):
        load_encoder_init(tok, backbone_file(tmp_path / "extra.pt", "mobilenetv3_small_050", extra))


def test_vgg16_keys_load_as_the_lpips_taps(tmp_path):
    features = {f"features.{k}": v for k, v in VGG16Features().features.state_dict().items()}
    # torchvision's VGG-16 file also holds the classifier (120M weights): set aside, so small stand-ins here
    head = {"classifier.0.weight": torch.zeros(4, 4), "classifier.6.bias": torch.zeros(4)}
    torch.save({**features, **head}, tmp_path / "vgg16.pth")
    cfg = preset_config("smoke", {"perceptual": {"feature_net": "pretrained", "feature_backbone": "vgg16"}})
    tok = create_tokenizer("perceptual_vq", cfg)
    load_perceptual_features(tok, tmp_path / "vgg16.pth")
    assert len(tok.features(torch.rand(1, 3, 224, 224))) == 5  # relu1_2 .. relu5_3


def test_stage_inputs_are_needed_when_the_config_asks_and_left_aside_otherwise(tmp_path):
    state = create_backbone("mobilenetv3_small_050").state_dict()
    prior = backbone_file(tmp_path / "prior.pt", "mobilenetv3_small_050", state)
    pretrained = preset_config("smoke", {"perceptual": {"feature_net": "pretrained"}})
    with pytest.raises(ConfigError, match="perceptual.feature_net: needs the stage input 'perceptual_features'"):
        load_pretrained_parts(create_tokenizer("perceptual_vq", pretrained), {"data": "x"})
    tok = create_tokenizer("perceptual_vq", pretrained)
    assert load_pretrained_parts(tok, {"encoder_init": prior, "perceptual_features": prior}) == ["encoder_init"]
    assert tok.features.name == "mobilenetv3_small_050"
    semantic = preset_config("smoke", {"semantic": {"vocab_size": VOCAB, "pretrained": True}})
    with pytest.raises(ConfigError, match="semantic.pretrained: needs the stage input 'encoder_init'"):
        load_pretrained_parts(create_tokenizer("semantic", semantic), {})
    pixel = create_tokenizer("pixel_dvae", preset_config("smoke"))
    assert load_pretrained_parts(pixel, {"encoder_init": prior}) == ["encoder_init"]
    with pytest.raises(ConfigError, match="no pretrained encoder"):
        load_encoder_init(pixel, prior)
