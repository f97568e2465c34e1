"""Video encoder: a 2D timm backbone applied per frame (Section 3.1).

Each of T frames becomes its final feature grid (H/S x W/S x C); the grids are
flattened over frames and projected linearly to the decoder width, with learnable
spatial and temporal position embeddings.
"""

from __future__ import annotations

import timm
import torch
import torch.nn.functional as F
from torch import nn

from evilm.config import ConfigError, close_match
from evilm.models import backbones  # noqa: F401 (registers the world's backbones in timm)
from evilm.models.config import EViLMConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def create_backbone(name: str, checkpoint: str | None = None, drop_path_rate: float = 0.0,
                    key: str = "video.backbone") -> nn.Module:
    """A randomly initialised timm backbone; weights come only from a local file.

    An unknown name fails with a ``ConfigError`` at ``key`` (the config key that named it).
    """
    known = timm.list_models()
    if name not in known:
        raise ConfigError(key, f"unknown timm model '{name}'{close_match(name, known)}")
    model = timm.create_model(name, pretrained=False, num_classes=0, drop_path_rate=drop_path_rate)
    if checkpoint:
        # timm's loader understands the usual wrappers ('state_dict', 'model', EMA...).
        timm.models.load_checkpoint(model, checkpoint, strict=False, weights_only=True)
    # Only forward_features is used: drop the top-level modules it never calls (a ConvNeXt-style
    # norm + fc head, MobileNetV3's 1x1 conv head; EfficientNet's conv_head stays, it is a feature
    # layer there), so that no unused parameter is counted, trained or left without a gradient under DDP.
    for child in unused_children(model):
        setattr(model, child, nn.Identity())
    return model.to(memory_format=torch.channels_last)


def unused_children(model: nn.Module) -> list[str]:
    """The names of ``model``'s top-level modules that ``forward_features`` does not call (one probe pass)."""
    called: set[str] = set()
    hooks = [module.register_forward_hook(lambda *_, name=name: called.add(name))
             for name, module in model.named_children()]
    size = timm.data.resolve_model_data_config(model)["input_size"]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval().forward_features(torch.zeros(1, *size))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return [name for name, module in model.named_children()
            if name not in called and next(module.parameters(), None) is not None]


def channels_last(frames: torch.Tensor) -> torch.Tensor:
    """A batch of images (N, 3, H, W) in the backbones' memory layout."""
    return frames.contiguous(memory_format=torch.channels_last)


class VideoEncoder(nn.Module):
    def __init__(self, cfg: EViLMConfig):
        super().__init__()
        self.backbone = create_backbone(cfg.video.backbone, cfg.video.checkpoint, cfg.video.drop_path_rate)
        self.stride = self.backbone.feature_info[-1]["reduction"]
        self.feature_dim = self.backbone.num_features
        self.proj = nn.Linear(self.feature_dim, cfg.decoder.width)
        gh = gw = cfg.image_size // self.stride
        self.grid = (gh, gw)
        self.spatial_pos = nn.Parameter(torch.zeros(1, 1, gh * gw, cfg.decoder.width))
        self.temporal_pos = nn.Parameter(torch.zeros(1, cfg.num_frames, 1, cfg.decoder.width))
        nn.init.trunc_normal_(self.spatial_pos, std=0.02)
        nn.init.trunc_normal_(self.temporal_pos, std=0.02)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def video_grid(self, height: int, width: int) -> tuple[int, int]:
        return height // self.stride, width // self.stride

    def frame_features(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) in [0, 1] -> backbone grids (B, T, C, H/S, W/S)."""
        b, t = frames.shape[:2]
        x = (frames.flatten(0, 1) - self.mean) / self.std
        feats = self.backbone.forward_features(channels_last(x))
        return feats.view(b, t, *feats.shape[1:])

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) -> (B, T * H/S * W/S, D)."""
        feats = self.frame_features(frames)  # B, T, C, gh, gw
        b, t, _, gh, gw = feats.shape
        x = self.proj(feats.flatten(3).transpose(2, 3))  # B, T, gh*gw, D
        x = x + self._spatial_pos(gh, gw) + self._temporal_pos(t)
        return x.flatten(1, 2)

    def _spatial_pos(self, gh: int, gw: int) -> torch.Tensor:
        if (gh, gw) == self.grid:
            return self.spatial_pos
        # Another resolution: resample the learned grid rather than fail.
        d = self.spatial_pos.shape[-1]
        pos = self.spatial_pos.view(1, *self.grid, d).permute(0, 3, 1, 2)
        pos = F.interpolate(pos, size=(gh, gw), mode="bilinear", align_corners=False)
        return pos.permute(0, 2, 3, 1).reshape(1, 1, gh * gw, d)

    def _temporal_pos(self, t: int) -> torch.Tensor:
        if t == self.temporal_pos.shape[1]:
            return self.temporal_pos
        pos = self.temporal_pos.squeeze(2).transpose(1, 2)  # 1, D, T
        pos = F.interpolate(pos, size=t, mode="linear", align_corners=False)
        return pos.transpose(1, 2).unsqueeze(2)
