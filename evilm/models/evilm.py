"""E-ViLM: video encoder + language encoder + cross-modal decoder (eq. 1-2), no task heads."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from evilm.models.config import EViLMConfig
from evilm.models.decoder import CrossModalDecoder
from evilm.models.text_encoder import TextEncoder
from evilm.models.video_encoder import VideoEncoder


@dataclass
class FusedOutput:
    cls: torch.Tensor  # (B, D)
    text: torch.Tensor | None  # (B, L, D)
    video: torch.Tensor | None  # (B, Nv, D)


class EViLM(nn.Module):
    def __init__(self, config: EViLMConfig):
        super().__init__()
        self.config = config
        self.width = config.decoder.width
        self.video_encoder = VideoEncoder(config)
        self.text_encoder = TextEncoder(config)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, self.width))
        self.text_type = nn.Parameter(torch.zeros(1, 1, self.width))  # t^L
        self.video_type = nn.Parameter(torch.zeros(1, 1, self.width))  # t^V
        for p in (self.cls_token, self.text_type, self.video_type):
            nn.init.trunc_normal_(p, std=0.02)
        self.decoder = CrossModalDecoder(config.decoder)

    @property
    def stride(self) -> int:
        return self.video_encoder.stride

    def video_grid(self, height: int, width: int) -> tuple[int, int]:
        return self.video_encoder.video_grid(height, width)

    def encode_video(self, frames: torch.Tensor) -> torch.Tensor:
        return self.video_encoder(frames)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.text_encoder(input_ids, attention_mask)

    def fuse(
        self,
        video: torch.Tensor | None = None,
        text: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
    ) -> FusedOutput:
        """DEC_VL([e^CLS, e^L + t^L, e^V + t^V]); either modality may be left out."""
        if video is None and text is None:
            raise ValueError("fuse needs video, text or both")
        ref = video if video is not None else text
        b = ref.shape[0]
        parts = [self.cls_token.expand(b, -1, -1)]
        keep = [torch.ones(b, 1, dtype=torch.bool, device=ref.device)]
        if text is not None:
            parts.append(text + self.text_type)
            if text_mask is None:
                text_mask = torch.ones(text.shape[:2], dtype=torch.bool, device=ref.device)
            keep.append(text_mask.bool())
        if video is not None:
            parts.append(video + self.video_type)
            keep.append(torch.ones(video.shape[:2], dtype=torch.bool, device=ref.device))
        padding = torch.cat(keep, dim=1)
        h = self.decoder(torch.cat(parts, dim=1), None if bool(padding.all()) else padding)
        n_text = 0 if text is None else text.shape[1]
        return FusedOutput(
            cls=h[:, 0],
            text=None if text is None else h[:, 1 : 1 + n_text],
            video=None if video is None else h[:, 1 + n_text :],
        )

    def forward(self, frames: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> FusedOutput:
        video = self.encode_video(frames)
        text = self.encode_text(input_ids, attention_mask)
        return self.fuse(video=video, text=text, text_mask=attention_mask)
