"""Perceptual tokenizer, the ``T_BEVT/PeCo`` row of Table 6.

A VQ-VAE on the stride-S grid (conv encoder -> the same l2-normalised quantizer as
the semantic tokenizer -> conv decoder), trained by pixel reconstruction plus a
perceptual loss: the distance between deep features of a *fixed* network on the
frame and on its reconstruction (PeCo, Dong et al. 2021). PeCo also adds an
adversarial loss; it is left out here.

The fixed network. PeCo uses a trained network's features, which cannot be
downloaded here, so the default is a fixed, randomly initialised multi-scale conv
net (seeded, never trained). Random conv + ReLU features are still a useful
perceptual prior: each stage pools local colour/edge/texture statistics over a
wider window, so matching them penalises wrong structure and texture that a
per-pixel loss averages away (random-weight networks are known to support texture
synthesis and image priors). They are *not* semantic: with the random net this
tokenizer is "pixels + multi-scale structure", which is the honest reading of its
row here. Given a local file, ``feature_net="vgg16"`` uses torchvision's VGG-16
(LPIPS's taps relu1_2 .. relu4_3) instead, which is closer to PeCo.

Features are compared LPIPS-style: unit-normalised over channels at each position,
squared difference averaged, summed over stages.

Input: like the pixel tokenizer, frames are resized so that an ``input_stride``
(default 8) downsampling lands on the MVM grid; the two pixel-trained rows then
differ only in their losses (and in VQ versus Gumbel-softmax quantization).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from evilm.tokenizers.base import Normalize, TokenizerStep, VideoTokenizer
from evilm.tokenizers.config import PerceptualConfig, TokenizerConfig
from evilm.tokenizers.conv import ConvDecoder, ConvEncoder, resize_for_grid
from evilm.tokenizers.quantizer import VectorQuantizer
from evilm.tokenizers.semantic import load_state_file


class RandomConvFeatures(nn.Module):
    """Fixed random conv net; returns one feature map per stage (each stage halves the size)."""

    def __init__(self, channels: tuple[int, ...], seed: int):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)  # the same net for the same seed, whatever else ran
        stages = []
        in_ch = 3
        for ch in channels:
            conv_a = nn.Conv2d(in_ch, ch, 3, padding=1)
            conv_b = nn.Conv2d(ch, ch, 3, stride=2, padding=1)
            for conv in (conv_a, conv_b):
                nn.init.kaiming_normal_(conv.weight, nonlinearity="relu", generator=generator)
                nn.init.zeros_(conv.bias)
            stages.append(nn.Sequential(conv_a, nn.ReLU(), conv_b, nn.ReLU()))
            in_ch = ch
        self.stages = nn.ModuleList(stages)
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


class VGG16Features(nn.Module):
    """torchvision VGG-16 features at relu1_2, relu2_2, relu3_3, relu4_3, weights from a local file."""

    TAPS = (3, 8, 15, 22)

    def __init__(self, weights_path: str):
        super().__init__()
        from torchvision.models import vgg16

        state = load_state_file(weights_path)
        features = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
        self.features = vgg16(weights=None).features[: self.TAPS[-1] + 1]
        missing, _ = self.features.load_state_dict(features, strict=False)
        if missing:
            raise ValueError(f"{weights_path}: not VGG-16 weights; missing {missing[:4]}")
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.TAPS:
                feats.append(x)
        return feats


def create_feature_net(cfg: PerceptualConfig) -> nn.Module:
    if cfg.feature_net == "vgg16":
        return VGG16Features(cfg.feature_weights)
    return RandomConvFeatures(tuple(cfg.feature_channels), cfg.feature_seed)


def perceptual_distance(feats_a: list[torch.Tensor], feats_b: list[torch.Tensor]) -> torch.Tensor:
    """LPIPS-style distance without learned weights: channel-normalised MSE summed over stages."""
    total = feats_a[0].new_zeros(())
    for a, b in zip(feats_a, feats_b):
        total = total + (F.normalize(a, dim=1) - F.normalize(b, dim=1)).pow(2).sum(dim=1).mean()
    return total


class PerceptualVQTokenizer(VideoTokenizer):
    training_only = ("decoder.", "features.")

    def __init__(self, cfg: TokenizerConfig, load_weights: bool = True):
        super().__init__(cfg.quantizer.codebook_size, cfg.stride)
        self.cfg = cfg
        per = cfg.perceptual
        self.normalize = Normalize()
        self.encoder = ConvEncoder(per.input_stride, per.hidden, per.max_hidden, out_dim=cfg.quantizer.code_dim)
        self.quantizer = VectorQuantizer(cfg.quantizer)
        self.decoder = ConvDecoder(per.input_stride, per.hidden, per.max_hidden, in_dim=cfg.quantizer.code_dim)
        # The loss network is needed only to train; a loaded tokenizer (load_weights=False) may lack
        # its weights file, and goes without it.
        self.features = create_feature_net(per).eval() if load_weights else None

    def train(self, mode: bool = True):
        super().train(mode)
        if self.features is not None:
            self.features.eval()  # the loss network stays fixed
        return self

    def images(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) -> the frames the conv net sees and reconstructs, (B*T, 3, gh*s, gw*s)."""
        grid = self.grid(*frames.shape[-2:])
        return resize_for_grid(frames.flatten(0, 1), grid, self.cfg.perceptual.input_stride)

    def embed(self, images: torch.Tensor, frames: int) -> torch.Tensor:
        """``images()`` of B clips of T frames -> continuous region embeddings (B, T, gh, gw, D)."""
        z = self.encoder(self.normalize(images))  # B*T, D, gh, gw
        return z.permute(0, 2, 3, 1).reshape(-1, frames, *z.shape[2:], z.shape[1])

    def _codes(self, frames: torch.Tensor) -> torch.Tensor:
        return self.quantizer.nearest(self.embed(self.images(frames), frames.shape[1]))

    def training_step(self, batch: dict[str, torch.Tensor], progress: float = 0.0) -> TokenizerStep:
        if self.features is None:
            raise RuntimeError("built without its perceptual loss network (a loaded tokenizer); it cannot be trained")
        frames = self.fit_to_grid(batch["frames"])
        target = self.images(frames)
        quant = self.quantizer(self.embed(target, frames.shape[1]))
        recon = self.decoder(quant.z_q.flatten(0, 1).permute(0, 3, 1, 2))
        recon_loss = F.mse_loss(recon, target) if self.cfg.perceptual.recon == "mse" else F.l1_loss(recon, target)
        with torch.no_grad():
            target_features = self.features(self.normalize(target))
        percept = perceptual_distance(self.features(self.normalize(recon)), target_features)
        loss = recon_loss + self.cfg.perceptual.perceptual_weight * percept + quant.loss
        return TokenizerStep(
            loss=loss,
            codes=quant.codes,
            terms={
                "recon_loss": recon_loss.detach(),
                "perceptual_loss": percept.detach(),
                "codebook_loss": quant.codebook_loss.detach(),
                "commit_loss": quant.commit_loss.detach(),
            },
        )
