"""Perceptual tokenizer, the ``T_BEVT/PeCo`` row of Table 6.

A VQ-VAE on the stride-S grid (conv encoder -> the same l2-normalised quantizer as
the semantic tokenizer -> conv decoder), trained by pixel reconstruction plus a
perceptual loss: the distance between deep features of a *fixed, trained* network on
the frame and on its reconstruction (PeCo, Dong et al. 2021). PeCo also adds an
adversarial loss; it is left out here.

The fixed network (``perceptual.feature_net``):

* ``pretrained`` (the paper's): a trained network from the stage input ``perceptual_features``,
  e.g. the image-analogue prior (``evilm.priors``) on the quick profile, a local VGG-16 (LPIPS's
  taps relu1_2 .. relu5_3) or timm checkpoint on the paper profile. A timm backbone gives one
  feature map per stage of its ``feature_info``. Its meaning comes from its training: matching
  its features asks the reconstruction to keep what that network recognises.
* ``random_conv``: a fixed, randomly initialised multi-scale conv net (seeded, never trained): an
  ablation. Random conv + ReLU features pool local colour/edge/texture statistics, a structural
  prior, but nothing semantic.

Features are compared LPIPS-style: unit-normalised over channels at each position,
squared difference averaged, summed over stages. The network sees the images resized to
``feature_size``, the resolution it was trained at.

Input: like the pixel tokenizer, frames are resized so that an ``input_stride``
(default 8) downsampling lands on the MVM grid; the two pixel-trained rows then
differ only in their losses (and in VQ versus Gumbel-softmax quantization).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from evilm.config import ConfigError
from evilm.tokenizers.base import IMAGENET_MEAN, IMAGENET_STD, Normalize, TokenizerStep, VideoTokenizer
from evilm.tokenizers.config import PerceptualConfig, TokenizerConfig
from evilm.tokenizers.conv import ConvDecoder, ConvEncoder, resize_for_grid
from evilm.tokenizers.quantizer import VectorQuantizer
from evilm.tokenizers.weights import (
    WeightsFile,
    check_backbone_name,
    clip_image_tower,
    fit_strictly,
    is_clip,
    without_head,
)


class RandomConvFeatures(nn.Module):
    """Fixed random conv net; returns one feature map per stage (each stage halves the size)."""

    def __init__(self, channels: tuple[int, ...], seed: int):
        super().__init__()
        self.normalize = Normalize()
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

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Images in [0, 1] -> one feature map per stage."""
        x = self.normalize(images)
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


class VGG16Features(nn.Module):
    """torchvision VGG-16 features at relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3 (LPIPS's taps)."""

    TAPS = (3, 8, 15, 22, 29)

    def __init__(self):
        super().__init__()
        from torchvision.models import vgg16

        self.normalize = Normalize()
        self.features = vgg16(weights=None).features[: self.TAPS[-1] + 1]
        self.requires_grad_(False)

    def load_pretrained(self, weights: WeightsFile, key: str) -> None:
        # torchvision's file: ``features.*`` and the classifier (set aside)
        fit_strictly(self, without_head(weights), weights.path, key, "VGG-16 features")

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Images in [0, 1] -> the five taps."""
        x = self.normalize(images)
        feats = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.TAPS:
                feats.append(x)
        return feats


class BackboneFeatures(nn.Module):
    """A timm backbone (as ``evilm.models.video_encoder.create_backbone`` builds it) whose stage outputs
    (``feature_info``) are the features; ViT token sequences are laid out as (N, C, tokens)."""

    def __init__(self, name: str, key: str):
        super().__init__()
        from evilm.models.video_encoder import create_backbone

        self.name = name
        self.backbone = create_backbone(name, key=key).eval()
        self.requires_grad_(False)
        self.taps = [info["module"] for info in self.backbone.feature_info]
        self._outputs: list[torch.Tensor] = []
        for tap in self.taps:
            self.backbone.get_submodule(tap).register_forward_hook(self._keep)
        cfg = getattr(self.backbone, "pretrained_cfg", {}) or {}
        self.register_buffer("mean", torch.tensor(cfg.get("mean", IMAGENET_MEAN)).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(cfg.get("std", IMAGENET_STD)).view(1, 3, 1, 1), persistent=False)

    def _keep(self, module, args, output):
        self._outputs.append(output)

    def load_pretrained(self, weights: WeightsFile, key: str) -> None:
        from timm.models.vision_transformer import VisionTransformer, checkpoint_filter_fn

        check_backbone_name(weights, self.name, key)
        state = without_head(weights)
        if isinstance(self.backbone, VisionTransformer):
            state = clip_image_tower(weights.state, self.backbone) if is_clip(weights.state) else state
            state = {k: v for k, v in checkpoint_filter_fn(state, self.backbone).items() if not k.startswith("head.")}
        fit_strictly(self.backbone, state, weights.path, key, f"'{self.name}' feature network")

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Images in [0, 1], normalised with the backbone's own statistics -> one tensor per tap."""
        self._outputs = []
        self.backbone.forward_features((images - self.mean) / self.std)
        feats, self._outputs = self._outputs, []
        return [f.transpose(1, 2) if f.dim() == 3 else f for f in feats]


def feature_network(cfg: PerceptualConfig, weights: WeightsFile | None, key: str) -> nn.Module:
    """The fixed network of the perceptual loss: from ``weights`` (feature_net "pretrained") or random."""
    if cfg.feature_net == "random_conv":
        return RandomConvFeatures(tuple(cfg.feature_channels), cfg.feature_seed)
    if weights is None:
        raise ConfigError("perceptual.feature_net", "'pretrained' needs the stage input 'perceptual_features' "
                          "(a trained network's weights file); 'random_conv' is the untrained ablation")
    name = weights.backbone or cfg.feature_backbone
    if name is None:
        raise ConfigError("perceptual.feature_backbone", f"{weights.path} does not name its architecture: "
                          "set feature_backbone ('vgg16' or a timm model name)")
    if cfg.feature_backbone is not None and weights.backbone is not None and cfg.feature_backbone != weights.backbone:
        raise ConfigError("perceptual.feature_backbone", f"'{cfg.feature_backbone}', but {weights.path} holds a "
                          f"'{weights.backbone}'")
    net = VGG16Features() if name == "vgg16" else BackboneFeatures(name, "perceptual.feature_backbone")
    net.load_pretrained(weights, key)
    return net.eval()


def perceptual_distance(feats_a: list[torch.Tensor], feats_b: list[torch.Tensor]) -> torch.Tensor:
    """LPIPS-style distance without learned weights: channel-normalised MSE summed over stages."""
    total = feats_a[0].new_zeros(())
    for a, b in zip(feats_a, feats_b):
        total = total + (F.normalize(a, dim=1) - F.normalize(b, dim=1)).pow(2).sum(dim=1).mean()
    return total


class PerceptualVQTokenizer(VideoTokenizer):
    training_only = ("decoder.", "features.")

    def __init__(self, cfg: TokenizerConfig):
        super().__init__(cfg.quantizer.codebook_size, cfg.stride)
        self.cfg = cfg
        per = cfg.perceptual
        self.normalize = Normalize()
        self.encoder = ConvEncoder(per.input_stride, per.hidden, per.max_hidden, out_dim=cfg.quantizer.code_dim)
        self.quantizer = VectorQuantizer(cfg.quantizer)
        self.decoder = ConvDecoder(per.input_stride, per.hidden, per.max_hidden, in_dim=cfg.quantizer.code_dim)
        # The loss network, needed only to train: a trained one comes from a file (``set_feature_network``,
        # the stage's ``perceptual_features``); a loaded tokenizer goes without it.
        self.features: nn.Module | None = None
        if per.feature_net == "random_conv":
            self.set_feature_network(feature_network(per, None, "perceptual.feature_net"))

    def set_feature_network(self, net: nn.Module) -> None:
        self.features = net.eval().requires_grad_(False)

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

    @torch.no_grad()
    def reconstruct(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(target images, their reconstruction from the eval-mode codes), both (B*T, 3, gh*s, gw*s)."""
        frames = self.fit_to_grid(frames)
        target = self.images(frames)
        z_q = self.quantizer.lookup(self._codes(frames))  # B, T, gh, gw, D
        return target, self.decoder(z_q.flatten(0, 1).permute(0, 3, 1, 2))

    def feature_input(self, images: torch.Tensor) -> torch.Tensor:
        """Images at the feature network's resolution (``feature_size``; differentiable)."""
        size = self.cfg.perceptual.feature_size
        if not size or images.shape[-1] == size:
            return images
        return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)

    def training_step(self, batch: dict[str, torch.Tensor], progress: float = 0.0) -> TokenizerStep:
        if self.features is None:
            raise RuntimeError("no perceptual loss network: give the stage input 'perceptual_features' "
                               "(or feature_net 'random_conv'); a loaded tokenizer cannot be trained")
        frames = self.fit_to_grid(batch["frames"])
        target = self.images(frames)
        quant = self.quantizer(self.embed(target, frames.shape[1]))
        recon = self.decoder(quant.z_q.flatten(0, 1).permute(0, 3, 1, 2))
        recon_loss = F.mse_loss(recon, target) if self.cfg.perceptual.recon == "mse" else F.l1_loss(recon, target)
        with torch.no_grad():
            target_features = self.features(self.feature_input(target))
        percept = perceptual_distance(self.features(self.feature_input(recon)), target_features)
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
