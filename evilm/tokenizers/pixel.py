"""Pixel-level tokenizers, the ``T_DALL-E`` row of Table 6.

``DVAETokenizer`` (``pixel.encoder: conv``) is a discrete VAE trained the way DALL-E's
(Ramesh et al. 2021) is, and what VIOLET used as its MVM target: the encoder gives logits over
``pixel.codebook_size`` codes (DALL-E's 8,192) at each region of the stride-S grid; during
training a Gumbel-softmax relaxation, its temperature annealed from ``temperature_start`` to
``temperature_end``, mixes code embeddings that a conv decoder turns back into pixels; a KL
term to the uniform prior, its weight raised from 0, keeps the posterior spread over the codes.
It sees no text: the only training signal is RGB reconstruction. ``encode`` takes the argmax
of the logits (no sampling); ``reconstruct`` decodes those codes (the stage's PSNR).

Differences from DALL-E, for a CPU-sized stage: MSE (or L1) reconstruction instead of the
logit-Laplace likelihood, so the KL weight is on another scale (``PixelConfig``); a smaller
conv net; the grid is the video encoder's.

``DallETokenizer`` (``pixel.encoder: dall_e``) is OpenAI's released dVAE encoder, frozen, read
from a local ``encoder.pkl`` through the dall-e package's classes. That file is a pickled
module, and unpickling runs code from it: it loads only with ``pixel.trust_pickle: true``. Its
weights are copied into a freshly built ``dall_e.Encoder``, so the saved tokenizer is a plain
weights file again.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from evilm.config import ConfigError
from evilm.tokenizers.base import Normalize, TokenizerStep, VideoTokenizer
from evilm.tokenizers.config import TokenizerConfig
from evilm.tokenizers.conv import ConvDecoder, ConvEncoder, resize_for_grid
from evilm.tokenizers.weights import fit_strictly


def gumbel_softmax(logits: torch.Tensor, tau: float) -> torch.Tensor:
    """The relaxed one-hot sample of ``F.gumbel_softmax`` over the last dim, with the Gumbel noise drawn as
    -log(-log U): on a CPU, ``exponential_`` (what torch draws it with) took a quarter of a dVAE step."""
    uniform = torch.rand_like(logits).clamp_(min=torch.finfo(logits.dtype).tiny)
    gumbel = uniform.log_().neg_().log_().neg_()
    return ((logits + gumbel) / tau).softmax(dim=-1)


class DVAETokenizer(VideoTokenizer):
    training_only = ("decoder.", "code_embed")

    def __init__(self, cfg: TokenizerConfig):
        super().__init__(cfg.pixel.codebook_size, cfg.stride)
        self.cfg = cfg
        pix = cfg.pixel
        self.normalize = Normalize()
        self.encoder = ConvEncoder(pix.input_stride, pix.hidden, pix.max_hidden, out_dim=self.codebook_size)
        # Decoder input = soft one-hot (N, M, gh, gw) times this table: DALL-E's 1x1 conv on one-hots.
        self.code_embed = nn.Parameter(torch.randn(self.codebook_size, pix.code_embed_dim) / math.sqrt(pix.code_embed_dim))
        self.decoder = ConvDecoder(pix.input_stride, pix.hidden, pix.max_hidden, in_dim=pix.code_embed_dim)

    def images(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) -> the frames the conv net sees and reconstructs, (B*T, 3, gh*s, gw*s)."""
        grid = self.grid(*frames.shape[-2:])
        return resize_for_grid(frames.flatten(0, 1), grid, self.cfg.pixel.input_stride)

    def _codes(self, frames: torch.Tensor) -> torch.Tensor:
        b, t = frames.shape[:2]
        codes = self.encoder(self.normalize(self.images(frames))).argmax(dim=1)
        return codes.view(b, t, *codes.shape[1:])

    @torch.no_grad()
    def reconstruct(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(target images, their reconstruction from the eval-mode codes), both (B*T, 3, gh*s, gw*s)."""
        target = self.images(self.fit_to_grid(frames))
        codes = self.encoder(self.normalize(target)).argmax(dim=1)
        return target, self.decoder(self.code_embed[codes].permute(0, 3, 1, 2))

    def temperature(self, progress: float) -> float:
        """Exponential anneal from temperature_start to temperature_end over the first temperature_anneal
        of training, then held."""
        pix = self.cfg.pixel
        fraction = min(max(progress / pix.temperature_anneal, 0.0), 1.0)
        return pix.temperature_start * (pix.temperature_end / pix.temperature_start) ** fraction

    def kl_weight(self, progress: float) -> float:
        pix = self.cfg.pixel
        if pix.kl_warmup <= 0:
            return pix.kl_weight
        return pix.kl_weight * min(progress / pix.kl_warmup, 1.0)

    def training_step(self, batch: dict[str, torch.Tensor], progress: float = 0.0) -> TokenizerStep:
        frames = self.fit_to_grid(batch["frames"])
        b, t = frames.shape[:2]
        target = self.images(frames)
        # N, gh, gw, M: the M-way softmaxes then run over contiguous memory (3x faster on a CPU than over dim 1)
        logits = self.encoder(self.normalize(target)).permute(0, 2, 3, 1).contiguous()
        soft = gumbel_softmax(logits, tau=self.temperature(progress))
        recon = self.decoder(torch.einsum("nhwm,me->nehw", soft, self.code_embed))
        if self.cfg.pixel.recon == "mse":
            recon_loss = F.mse_loss(recon, target)
        else:
            recon_loss = F.l1_loss(recon, target)
        # KL(q(z|x) || uniform) in nats per code; in the loss it is summed over the grid and
        # divided by the pixel values, the same normalisation as the reconstruction term.
        log_q = F.log_softmax(logits, dim=-1)
        kl = (log_q.exp() * (log_q + math.log(self.codebook_size))).sum(dim=-1).mean()
        kl_per_value = kl * logits[0, ..., 0].numel() / target[0].numel()
        codes = logits.detach().argmax(dim=-1)
        return TokenizerStep(
            loss=recon_loss + self.kl_weight(progress) * kl_per_value,
            codes=codes.view(b, t, *codes.shape[1:]),
            terms={"recon_loss": recon_loss.detach(), "kl_per_code": kl.detach()},
        )


class DallETokenizer(VideoTokenizer):
    """OpenAI's DALL-E dVAE encoder (8x downsampling, 8,192 codes) on the stride-S grid, frozen.

    Frames are resized so that the 8x downsampling lands on the video encoder's grid (VIOLET's
    recipe: for S = 32, a 128x128 frame becomes 32x32 before the encoder, which gives the 4x4
    grid), then mapped into [0.1, 0.9] as DALL-E expects (its ``map_pixels``).
    """

    trainable = False
    downsample = 8

    def __init__(self, cfg: TokenizerConfig):
        super().__init__(cfg.pixel.codebook_size, cfg.stride)
        self.cfg = cfg
        self.dalle_encoder = _dall_e().Encoder(vocab_size=cfg.pixel.codebook_size).eval().requires_grad_(False)

    def load_released(self, path: str | Path, key: str) -> None:
        """Copy the weights of a released ``encoder.pkl`` in; every weight must fit (``fit_strictly``)."""
        if not self.cfg.pixel.trust_pickle:
            raise ConfigError("pixel.trust_pickle", f"{path} is a pickle (loading it runs code from the file); set "
                              "pixel.trust_pickle: true to load it, for a file you trust")
        path = Path(path)
        if not path.is_file():
            raise ConfigError(key, f"DALL-E encoder file not found: {path}")
        dall_e = _dall_e()
        released = torch.load(path, map_location="cpu", weights_only=False)
        if not isinstance(released, dall_e.Encoder):
            raise ConfigError(key, f"{path}: expected a pickled dall_e.Encoder, got {type(released).__name__}")
        fit_strictly(self.dalle_encoder, released.state_dict(), path, key, "DALL-E encoder")

    def _codes(self, frames: torch.Tensor) -> torch.Tensor:
        b, t, _, h, w = frames.shape
        gh, gw = self.grid(h, w)
        images = resize_for_grid(frames.flatten(0, 1), (gh, gw), self.downsample)
        eps = 0.1  # DALL-E's map_pixels
        logits = self.dalle_encoder((1 - 2 * eps) * images + eps)
        if logits.shape[1:] != (self.codebook_size, gh, gw):
            raise ValueError(f"dVAE encoder gave logits {tuple(logits.shape)}, expected (N, {self.codebook_size}, {gh}, {gw})")
        return logits.argmax(dim=1).view(b, t, gh, gw)

    def training_step(self, batch, progress=0.0):
        raise RuntimeError("the released DALL-E encoder is used frozen; it is not trained here")


def _dall_e():
    try:
        import dall_e
    except ImportError as err:
        raise ImportError("pixel.encoder 'dall_e' needs OpenAI's package: pip install --no-deps dall-e==0.1 "
                          "(its listed dependencies are not needed to run the encoder)") from err
    return dall_e
