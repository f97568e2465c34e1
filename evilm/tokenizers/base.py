"""What every video tokenizer offers: the interface pretraining relies on.

* ``encode(frames)``: ``(B, T, 3, H, W)`` in [0, 1] -> code ids ``long (B, T, H // S, W // S)``,
  one code per S x S region of each frame: exactly the video encoder's MVM grid.
  It never updates the tokenizer (no EMA, no re-seeding) and never samples.
* ``training_step(batch, progress)``: the stage-1 loss on a batch dict, plus the codes
  it assigned (for codebook usage) and named loss terms for logging.
* ``codebook_size``, ``stride``, ``grid(H, W)``.

Pretraining calls ``encode`` on a tokenizer in eval mode, online or through the
per-clip cache of ``evilm.tokenizers.cache``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class TokenizerStep:
    loss: torch.Tensor  # scalar to minimise
    codes: torch.Tensor  # long (B, T, gh, gw) codes assigned in this step
    terms: dict[str, torch.Tensor] = field(default_factory=dict)  # detached loss terms for logging


class VideoTokenizer(nn.Module):
    """Shared plumbing; subclasses implement ``_codes`` and ``training_step``."""

    # Parameter-name prefixes needed only to train (decoders, heads, loss networks). The saved
    # tokenizer keeps only what ``encode`` needs, as the paper keeps "only the encoder and the
    # vector-quantized module".
    training_only: tuple[str, ...] = ()
    # False for a released encoder used as it is (no ``training_step``): the stage only labels clips.
    trainable: bool = True

    def __init__(self, codebook_size: int, stride: int):
        super().__init__()
        self._codebook_size = codebook_size
        self._stride = stride

    @property
    def codebook_size(self) -> int:
        return self._codebook_size

    @property
    def stride(self) -> int:
        return self._stride

    def grid(self, height: int, width: int) -> tuple[int, int]:
        """The MVM grid of a frame: ``(H // S, W // S)``, as ``EViLM.video_grid``."""
        return height // self.stride, width // self.stride

    @torch.no_grad()
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """Code ids ``long (B, T, H // S, W // S)`` of clips ``(B, T, 3, H, W)`` in [0, 1]."""
        frames = self.fit_to_grid(frames)
        return self._codes(frames)

    def fit_to_grid(self, frames: torch.Tensor) -> torch.Tensor:
        """Check the layout and drop the right/bottom remainder that is not a whole region.

        A strided patchify convolution (the video encoder's stem) drops the same pixels,
        so regions here and there cover the same pixels.
        """
        if frames.dim() != 5 or frames.shape[2] != 3:
            raise ValueError(f"frames must be (B, T, 3, H, W), got shape {tuple(frames.shape)}")
        gh, gw = self.grid(frames.shape[-2], frames.shape[-1])
        if gh < 1 or gw < 1:
            raise ValueError(f"frames of {tuple(frames.shape[-2:])} are smaller than one {self.stride}px region")
        return frames[..., : gh * self.stride, : gw * self.stride]

    def _codes(self, frames: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def training_step(self, batch: dict[str, torch.Tensor], progress: float = 0.0) -> TokenizerStep:
        """The stage-1 loss. ``progress`` in [0, 1] drives schedules (the dVAE's temperature)."""
        raise NotImplementedError

    def encoding_state(self) -> dict[str, torch.Tensor]:
        """The state dict without the training-only parts."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith(self.training_only)}

    def load_encoding_state(self, state: dict[str, torch.Tensor], source: str = "state") -> None:
        """Load what ``encoding_state`` saved; any other difference is an error naming ``source``."""
        missing, unexpected = self.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith(self.training_only)]
        if missing or unexpected:
            raise ValueError(f"{source}: tokenizer weights do not match; missing {missing}, unexpected {unexpected}")


class Normalize(nn.Module):
    """ImageNet mean/std normalisation inside the encoder (frames stay plain pixels outside)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.mean) / self.std
