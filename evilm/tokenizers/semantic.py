"""Semantic vector-quantized video tokenizer (Section 3.3, Figure 4).

frames -> encoder E (one embedding per S x S region of each frame) -> linear to the
code space -> l2-normalised nearest-code look-up (eq. 4) -> decoder D (transformer
blocks over all T x gh x gw codes) -> mean over positions -> HEAD^S -> one logit per
caption word (eq. 5). Trained with L_TOKEN (eq. 6, ``word_loss: focal``) or plain BCE
(``word_loss: bce``) plus the VQ terms of eq. 7. After training, ``encode`` uses only
E and the quantizer; the decoder and head are not saved.
"""

from __future__ import annotations

import torch
from timm.models.vision_transformer import Block, VisionTransformer
from torch import nn

from evilm.config import ConfigError, close_match
from evilm.tokenizers.base import Normalize, TokenizerStep, VideoTokenizer
from evilm.tokenizers.config import TokenizerConfig
from evilm.tokenizers.losses import asymmetric_loss, bce_loss
from evilm.tokenizers.quantizer import VectorQuantizer
from evilm.tokenizers.weights import (
    WeightsFile,
    check_backbone_name,
    clip_image_tower,
    fit_strictly,
    is_clip,
    without_head,
)


class ViTFrameEncoder(nn.Module):
    """A timm ViT applied to each frame; patch size = stride, so one token per MVM region.

    ``semantic.encoder_arch`` names a timm ViT (CLIP's ViT-B/32 image tower: a class token, ln_pre and
    no patch-embedding bias); without it, a plain ViT of ``encoder_width/depth/heads``. Tokens after
    the last norm (class token dropped), through ``encoder_proj_dim``'s projection when set (CLIP's ``proj``).
    """

    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        sem = cfg.semantic
        common = dict(img_size=cfg.image_size, num_classes=sem.encoder_proj_dim, global_pool="",
                      dynamic_img_size=True)  # other resolutions: timm resamples the position embedding
        if sem.encoder_arch:
            import timm

            if sem.encoder_arch not in timm.list_models("vit_*"):
                raise ConfigError("semantic.encoder_arch",
                                  f"unknown timm ViT '{sem.encoder_arch}'{close_match(sem.encoder_arch, timm.list_models('vit_*'))}")
            self.vit = timm.create_model(sem.encoder_arch, pretrained=False, **common)
            if self.vit.patch_embed.patch_size[0] != cfg.stride:
                raise ConfigError("semantic.encoder_arch", f"'{sem.encoder_arch}' has {self.vit.patch_embed.patch_size[0]}px "
                                  f"patches; the MVM grid needs {cfg.stride}px (stride)")
        else:
            self.vit = VisionTransformer(patch_size=cfg.stride, embed_dim=sem.encoder_width, depth=sem.encoder_depth,
                                         num_heads=sem.encoder_heads, class_token=False, **common)
        self.out_dim = sem.encoder_proj_dim or self.vit.embed_dim

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W), normalised -> (B, T, H/S, W/S, C)."""
        b, t, _, h, w = frames.shape
        tokens = self.vit.forward_features(frames.flatten(0, 1))[:, self.vit.num_prefix_tokens:]  # B*T, gh*gw, C
        tokens = self.vit.head(tokens)  # the projection, or Identity
        gh, gw = h // self.vit.patch_embed.patch_size[0], w // self.vit.patch_embed.patch_size[1]
        return tokens.view(b, t, gh, gw, -1)

    def load_pretrained(self, weights: WeightsFile, key: str) -> None:
        # timm's filter converts CLIP keys and resamples the position embedding to this grid.
        from timm.models.vision_transformer import checkpoint_filter_fn

        if is_clip(weights.state):
            state = clip_image_tower(weights.state, self.vit)
        else:
            state = checkpoint_filter_fn(weights.state if self.vit.num_classes else without_head(weights), self.vit)
        fit_strictly(self.vit, state, weights.path, key, "ViT encoder")


class CNNFrameEncoder(nn.Module):
    """A timm convolutional backbone applied to each frame; its final feature map is the MVM grid."""

    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        from evilm.models.video_encoder import create_backbone

        self.name = cfg.semantic.encoder_backbone
        self.backbone = create_backbone(self.name, key="semantic.encoder_backbone")
        reduction = self.backbone.feature_info[-1]["reduction"]
        if reduction != cfg.stride:
            raise ConfigError("semantic.encoder_backbone",
                              f"'{cfg.semantic.encoder_backbone}' has output stride {reduction}, the grid needs {cfg.stride}")
        self.out_dim = self.backbone.num_features

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W), normalised -> (B, T, H/S, W/S, C)."""
        b, t = frames.shape[:2]
        from evilm.models.video_encoder import channels_last

        grid = self.backbone.forward_features(channels_last(frames.flatten(0, 1)))  # B*T, C, gh, gw
        return grid.permute(0, 2, 3, 1).reshape(b, t, *grid.shape[2:], grid.shape[1])

    def load_pretrained(self, weights: WeightsFile, key: str) -> None:
        check_backbone_name(weights, self.name, key)
        fit_strictly(self.backbone, without_head(weights), weights.path, key, f"'{self.name}' encoder")


class SwinVideoEncoder(nn.Module):
    """torchvision's Video Swin-Tiny with a (1, 4, 4) patch: stride 32 in space, none in time."""

    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        from torchvision.models.video.swin_transformer import SwinTransformer3d

        # Swin-T's sizes (torchvision swin3d_t), except the temporal patch of 1 so that
        # each frame keeps its own codes.
        self.swin = SwinTransformer3d(
            patch_size=[1, 4, 4],
            embed_dim=96,
            depths=[2, 2, 6, 2],
            num_heads=[3, 6, 12, 24],
            window_size=[8, 7, 7],
            stochastic_depth_prob=0.1,
        )
        self.swin.head = nn.Identity()  # forward below ends at the last norm
        self.out_dim = self.swin.num_features

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = self.swin.patch_embed(frames.transpose(1, 2))  # B, T, H/4, W/4, C
        x = self.swin.features(self.swin.pos_drop(x))
        return self.swin.norm(x)  # B, T, H/32, W/32, C

    def load_pretrained(self, weights: WeightsFile, key: str) -> None:
        state = without_head(weights)
        patch = state.get("patch_embed.proj.weight")
        if patch is not None and patch.shape[2] > 1:
            # Kinetics checkpoints use a temporal patch of 2; summing over it gives the same
            # response on a static pair of frames, the usual way to change a patch's depth.
            state = {**state, "patch_embed.proj.weight": patch.sum(dim=2, keepdim=True)}
        fit_strictly(self.swin, state, weights.path, key, "Video Swin encoder")


class SemanticDecoder(nn.Module):
    """Transformer blocks over the quantized codes of a clip, with spatial + temporal positions."""

    def __init__(self, code_dim: int, width: int, depth: int, heads: int, frames: int, grid: tuple[int, int]):
        super().__init__()
        self.grid = grid
        self.frames = frames
        self.proj = nn.Linear(code_dim, width)
        self.spatial_pos = nn.Parameter(torch.zeros(1, 1, grid[0] * grid[1], width))
        self.temporal_pos = nn.Parameter(torch.zeros(1, frames, 1, width))
        nn.init.trunc_normal_(self.spatial_pos, std=0.02)
        nn.init.trunc_normal_(self.temporal_pos, std=0.02)
        self.blocks = nn.Sequential(*[Block(width, heads, qkv_bias=True) for _ in range(depth)])
        self.norm = nn.LayerNorm(width)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        """Quantized vectors (B, T, gh, gw, D) -> decoder outputs (B, T*gh*gw, width)."""
        b, t, gh, gw, _ = codes.shape
        if (t, gh, gw) != (self.frames, *self.grid):
            raise ValueError(
                f"the decoder was built for {self.frames} frames of a {self.grid} grid, got {t} x {(gh, gw)}; "
                "train at the configured num_frames and image_size"
            )
        x = self.proj(codes).flatten(2, 3) + self.spatial_pos + self.temporal_pos  # B, T, gh*gw, width
        return self.norm(self.blocks(x.flatten(1, 2)))


class SemanticTokenizer(VideoTokenizer):
    training_only = ("decoder.", "head.")

    def __init__(self, cfg: TokenizerConfig):
        sem = cfg.semantic
        if sem.vocab_size is None:
            raise ConfigError("semantic.vocab_size", "not set; it is the caption vocabulary's size (word_targets width)")
        super().__init__(cfg.quantizer.codebook_size, cfg.stride)
        self.cfg = cfg
        self.normalize = Normalize()
        encoders = {"vit": ViTFrameEncoder, "cnn": CNNFrameEncoder, "video_swin_t": SwinVideoEncoder}
        self.encoder = encoders[sem.encoder](cfg)
        self.to_code = nn.Linear(self.encoder.out_dim, cfg.quantizer.code_dim)
        self.quantizer = VectorQuantizer(cfg.quantizer)
        grid = (cfg.image_size // cfg.stride,) * 2
        self.decoder = SemanticDecoder(
            cfg.quantizer.code_dim, sem.decoder_width, sem.decoder_depth, sem.decoder_heads, cfg.num_frames, grid
        )
        self.head = nn.Linear(sem.decoder_width, sem.vocab_size)  # HEAD^S

    def embed(self, frames: torch.Tensor) -> torch.Tensor:
        """Continuous region embeddings E(x) in the code space, (B, T, gh, gw, D)."""
        images = self.normalize(frames.flatten(0, 1)).view_as(frames)
        return self.to_code(self.encoder(images))

    def _codes(self, frames: torch.Tensor) -> torch.Tensor:
        return self.quantizer.nearest(self.embed(frames))

    def word_logits(self, z_q: torch.Tensor) -> torch.Tensor:
        """eq. 5: HEAD^S of the mean decoder output."""
        return self.head(self.decoder(z_q).mean(dim=1))

    def training_step(self, batch: dict[str, torch.Tensor], progress: float = 0.0) -> TokenizerStep:
        frames = self.fit_to_grid(batch["frames"])
        quant = self.quantizer(self.embed(frames))
        logits = self.word_logits(quant.z_q)
        targets = batch["word_targets"]
        sem = self.cfg.semantic
        if sem.word_loss == "focal":
            token_loss = asymmetric_loss(logits, targets, sem.gamma_pos, sem.gamma_neg, sem.clip, sem.word_reduction)
        else:
            token_loss = bce_loss(logits, targets, sem.word_reduction)
        return TokenizerStep(
            loss=token_loss + quant.loss,  # eq. 7
            codes=quant.codes,
            terms={
                "token_loss": token_loss.detach(),
                "codebook_loss": quant.codebook_loss.detach(),
                "commit_loss": quant.commit_loss.detach(),
            },
        )
