"""Retrieval's unimodal path at deployment: videos and texts encoded per second, then the ranking.

Retrieval (``evilm.tasks.retrieval``) encodes each video alone
(``fuse(video=...)``) and each text alone (``fuse(text=...)``), projects each
CLS with a ``RetrievalHead`` to an l2-normalised embedding, and ranks every video
for every text with one matrix product. ``VideoEmbedder`` / ``TextEmbedder`` are
those two encoders as modules, so that each inference path of
``evilm.profiling.paths`` can run them (random weights: only speed matters here).

The ranking function is passed in (the retrieval task's ``retrieval_ranks`` with
its tie rule) rather than imported, since this package sits below ``evilm.tasks``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from evilm.models import EViLM, RetrievalHead
from evilm.profiling.latency import interleaved_latency
from evilm.profiling.paths import PATH_LABELS, TOLERANCES, compare_outputs, prepare


class VideoEmbedder(nn.Module):
    """Clips (B, T, 3, H, W) -> l2-normalised video embeddings (B, E), encoded without text."""

    def __init__(self, model: EViLM, head: RetrievalHead):
        super().__init__()
        self.model, self.head = model, head

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.head.video(self.model.fuse(video=self.model.encode_video(frames)).cls)


class TextEmbedder(nn.Module):
    """Captions (B, L) ids and mask -> l2-normalised text embeddings (B, E), encoded without video."""

    def __init__(self, model: EViLM, head: RetrievalHead):
        super().__init__()
        self.model, self.head = model, head

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        text = self.model.encode_text(input_ids, attention_mask)
        return self.head.text(self.model.fuse(text=text, text_mask=attention_mask).cls)


def caption_batch(
    batch_size: int, max_len: int, vocab_size: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Captions of random lengths (8 tokens to ``max_len``), padded to ``max_len`` as the tokenizer pads them."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(min(8, max_len), max_len + 1, (batch_size,), generator=g)
    mask = (torch.arange(max_len)[None, :] < lengths[:, None]).long()
    ids = torch.randint(5, vocab_size, (batch_size, max_len), generator=g) * mask
    return ids, mask


@dataclass
class EncodeResult:
    path: str
    modality: str  # "video" or "text"
    batch_size: int
    times_ms: list[float]
    setup_s: float
    max_abs: float
    rel_rms: float
    within_tolerance: bool

    @property
    def items_per_s(self) -> float:
        return 1e3 * self.batch_size / statistics.median(self.times_ms)


def encode_throughput(
    model: EViLM,
    paths: list[str],
    video_batch: int = 8,
    text_batch: int = 64,
    embed_dim: int = 256,
    repeats: int = 5,
    seed: int = 0,
) -> list[EncodeResult]:
    """Videos/s and texts/s of the unimodal encoders through each path (interleaved timing)."""
    torch.manual_seed(seed)
    head = RetrievalHead(model.width, embed_dim)
    c = model.config
    g = torch.Generator().manual_seed(seed)
    frames = torch.rand(video_batch, c.num_frames, 3, c.image_size, c.image_size, generator=g)
    captions = caption_batch(text_batch, c.max_text_len, c.text.vocab_size, seed)
    jobs = {
        "video": (VideoEmbedder(model, head).eval(), (frames,), None),
        "text": (TextEmbedder(model, head).eval(), captions, 1),
    }
    torch._dynamo.reset()
    calls, rows = {}, {}
    with torch._dynamo.config.patch(recompile_limit=64):
        for modality, (module, inputs, mask_input) in jobs.items():
            reference = None
            for path in ["fp32_eager", *[p for p in paths if p != "fp32_eager"]]:
                prepared = prepare(path, module, inputs, mask_input=mask_input)
                reference = prepared.outputs if reference is None else reference
                agreement = compare_outputs(prepared.outputs, reference)
                rows[(modality, path)] = (prepared.setup_s, agreement)
                calls[(modality, path)] = lambda run=prepared.run, inputs=inputs: run(*inputs)
        times = interleaved_latency(calls, repeats=repeats, warmup=1)
    sizes = {"video": video_batch, "text": text_batch}
    return [
        EncodeResult(
            path=path,
            modality=modality,
            batch_size=sizes[modality],
            times_ms=times[(modality, path)],
            setup_s=rows[(modality, path)][0],
            max_abs=rows[(modality, path)][1].max_abs,
            rel_rms=rows[(modality, path)][1].rel_rms,
            within_tolerance=rows[(modality, path)][1].within(TOLERANCES[path]),
        )
        for modality, path in calls
    ]


def ranking_seconds(
    rank: Callable[[torch.Tensor], torch.Tensor],
    n_texts: int = 1000,
    n_videos: int = 1000,
    embed_dim: int = 256,
    repeats: int = 5,
    seed: int = 0,
) -> dict[str, float]:
    """Wall time of ranking every video for every text from their embeddings: one matrix product + ``rank``.

    ``rank(similarity)`` returns the 1-based rank of each text's correct video (the diagonal).
    """
    g = torch.Generator().manual_seed(seed)
    texts = F.normalize(torch.randn(n_texts, embed_dim, generator=g), dim=-1)
    videos = F.normalize(torch.randn(n_videos, embed_dim, generator=g), dim=-1)
    times = []
    for _ in range(repeats + 1):  # the first is a warm-up
        start = time.perf_counter()
        ranks = rank(texts @ videos.t())
        times.append(time.perf_counter() - start)
    if ranks.shape != (n_texts,):
        raise ValueError(f"rank returned shape {tuple(ranks.shape)}, expected ({n_texts},)")
    return {"median_s": statistics.median(times[1:]), "max_s": max(times[1:])}


def markdown(
    results: list[EncodeResult], ranking: dict[str, float], n: int = 1000, tie_rule: str = ""
) -> str:
    lines = [
        "| encoder | path | batch | items/s | median ms per batch | max abs diff | rel. RMS diff | within tol. | setup s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | :---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r.modality} | {PATH_LABELS[r.path]} | {r.batch_size} | {r.items_per_s:.1f} | "
            f"{statistics.median(r.times_ms):.1f} | {r.max_abs:.1e} | {r.rel_rms:.1e} | "
            f"{'yes' if r.within_tolerance else 'NO'} | {r.setup_s:.1f} |"
        )
    rule = f" (ties: {tie_rule})" if tie_rule else ""
    lines += [
        "",
        f"Ranking {n} texts × {n} videos after encoding (similarity matrix product + ranks{rule}): "
        f"{1e3 * ranking['median_s']:.1f} ms median, {1e3 * ranking['max_s']:.1f} ms max "
        f"({'< 1 s' if ranking['max_s'] < 1 else 'NOT < 1 s'}).",
    ]
    return "\n".join(lines) + "\n"
