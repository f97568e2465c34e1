"""Pixel-level tokenizer, the ``T_DALL-E`` row of Table 6.

A discrete VAE as in DALL-E (Ramesh et al. 2021), chosen over a VQ-VAE because it
is what that row names and what VIOLET used as its MVM target: the encoder gives
logits over the M codes at each region of the stride-S grid; during training a
Gumbel-softmax relaxation (temperature annealed from ``temperature_start`` to
``temperature_end``) mixes code embeddings that a conv decoder turns back into
pixels; a KL term to the uniform prior keeps the posterior from collapsing onto a
few codes. It sees no text: the only training signal is RGB reconstruction.
``encode`` takes the argmax of the logits (no sampling).

Differences from DALL-E, for a CPU-sized stage: MSE (or L1) reconstruction
instead of the logit-Laplace likelihood; a smaller conv net; the codebook size and
grid are this suite's (M codes on the video encoder's stride), so all tokenizers
compare on equal terms.

OpenAI's released dVAE encoder can label clips too, from a local file:
``openai_dvae_tokenizer(path, stride)`` (see its docstring).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from evilm.tokenizers.base import Normalize, TokenizerStep, VideoTokenizer
from evilm.tokenizers.config import TokenizerConfig
from evilm.tokenizers.conv import ConvDecoder, ConvEncoder, resize_for_grid


def gumbel_softmax(logits: torch.Tensor, tau: float) -> torch.Tensor:
    """The relaxed one-hot sample of ``F.gumbel_softmax`` over the last dim, with the Gumbel noise drawn as
    -log(-log U): on a CPU, ``exponential_`` (what torch draws it with) took a quarter of a dVAE step."""
    uniform = torch.rand_like(logits).clamp_(min=torch.finfo(logits.dtype).tiny)
    gumbel = uniform.log_().neg_().log_().neg_()
    return ((logits + gumbel) / tau).softmax(dim=-1)


class DVAETokenizer(VideoTokenizer):
    training_only = ("decoder.", "code_embed")

    def __init__(self, cfg: TokenizerConfig, load_weights: bool = True):  # (no weight files to load)
        super().__init__(cfg.quantizer.codebook_size, cfg.stride)
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

    def temperature(self, progress: float) -> float:
        """Exponential anneal from temperature_start to temperature_end over training."""
        start, end = self.cfg.pixel.temperature_start, self.cfg.pixel.temperature_end
        return start * (end / start) ** min(max(progress, 0.0), 1.0)

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


class OpenAIDVAETokenizer(VideoTokenizer):
    """OpenAI's DALL-E dVAE encoder (8x downsampling, 8,192 codes) on the stride-S grid.

    Frames are resized so that the 8x downsampling lands on the video encoder's
    grid (VIOLET's recipe: for S = 32, a 128x128 frame becomes 32x32 before the
    encoder, which gives the 4x4 grid), then mapped into [0.1, 0.9] as DALL-E expects.
    Frozen: it has no ``training_step``.
    """

    def __init__(self, encoder: nn.Module, stride: int, codebook_size: int = 8192, downsample: int = 8):
        super().__init__(codebook_size, stride)
        self.dalle_encoder = encoder.eval().requires_grad_(False)
        self.downsample = downsample

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
        raise RuntimeError("OpenAI's dVAE encoder is used frozen; it is not trained here")


def openai_dvae_tokenizer(encoder_path: str | Path, stride: int = 32) -> OpenAIDVAETokenizer:
    """A tokenizer from OpenAI's released dVAE ``encoder.pkl`` in a local file.

    Steps for a user who has the file: ``pip install DALL-E`` (its classes are needed
    to unpickle the module), download ``encoder.pkl`` yourself, then::

        tok = openai_dvae_tokenizer("/data/dalle/encoder.pkl", stride=32)
        cache_codes(tok, eval_loader, "codes_dalle.pt")   # labels for pretraining

    The file is a pickled module, so loading it runs code from the file: only load a
    file you trust. Nothing is downloaded.
    """
    path = Path(encoder_path)
    if not path.is_file():
        raise FileNotFoundError(f"dVAE encoder file not found: {path}")
    try:
        import dall_e  # noqa: F401  (defines the pickled classes)
    except ImportError as err:
        raise ImportError(f"{path}: loading OpenAI's dVAE needs its package: pip install DALL-E") from err
    encoder = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(encoder, nn.Module):
        raise ValueError(f"{path}: expected a pickled torch module, got {type(encoder).__name__}")
    return OpenAIDVAETokenizer(encoder, stride)
