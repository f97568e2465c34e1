import torch

from evilm.tokenizers import create_tokenizer
from evilm.tokenizers.perceptual import RandomConvFeatures, perceptual_distance


def test_feature_network_is_fixed_and_seeded():
    a, b = RandomConvFeatures((8, 16), seed=3), RandomConvFeatures((8, 16), seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not any(p.requires_grad for p in a.parameters())
    c = RandomConvFeatures((8, 16), seed=4)
    assert not torch.equal(next(a.parameters()), next(c.parameters()))
    feats = a(torch.rand(2, 3, 32, 32))
    assert [f.shape[-1] for f in feats] == [16, 8]


def test_perceptual_distance_is_zero_for_equal_images_and_grows_with_noise():
    net = RandomConvFeatures((8, 16), seed=0)
    x = torch.rand(2, 3, 32, 32)
    assert perceptual_distance(net(x), net(x)).item() == 0.0
    small = perceptual_distance(net(x), net(x + 0.05 * torch.randn_like(x))).item()
    large = perceptual_distance(net(x), net(x + 0.5 * torch.randn_like(x))).item()
    assert 0 < small < large


def test_perceptual_vq_trains_encoder_codes_and_decoder_but_not_the_loss_net(smoke_config, make_batch):
    tok = create_tokenizer("perceptual_vq", smoke_config)
    step = tok.training_step(make_batch(smoke_config))
    expected = (
        step.terms["recon_loss"]
        + smoke_config.perceptual.perceptual_weight * step.terms["perceptual_loss"]
        + step.terms["codebook_loss"]
        + smoke_config.quantizer.beta * step.terms["commit_loss"]
    )
    assert torch.allclose(step.loss, expected)
    step.loss.backward()
    assert tok.encoder.net[0].weight.grad.abs().sum() > 0
    assert tok.quantizer.codebook.grad.abs().sum() > 0
    assert all(p.grad is None for p in tok.features.parameters())
    tok.train()
    assert not tok.features.training  # stays in eval mode
