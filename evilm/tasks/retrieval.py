"""Text-to-video retrieval (MSRVTT, DiDeMo) with unimodal encoding (paper Section 4.2, refs [76, 78]).

Fine-tuning: a video goes through the model alone (``fuse(video=...)``), a text
alone (``fuse(text=...)``); ``RetrievalHead`` projects each CLS to an l2-normalised
embedding and a symmetric contrastive loss pulls matched pairs together against
the batch's other pairs (captions of the same video count as matches).

Evaluation encodes each test video and each test text once and ranks all videos
for every text by one matrix product. Optionally the top ``rerank_k`` videos of
each text are re-ordered by the pretrained VTM head (one fused pass per pair).
With ``mc_benchmark`` the same model also answers a multiple-choice benchmark
(MSRVTT-MC, as the field does with its retrieval model): each option's text
embedding against the video's.

Zero-shot (no fine-tuning): the pretrained model has no retrieval projection, so
pairs are scored by the VTM head: all pairs when ``rerank_k`` is 0, else the top
``rerank_k`` of a first ranking by the cosine of the unimodal CLS vectors.

Ranks use ``evilm.tasks.metrics.rank_queries`` with the configured tie rule (default
``"random"``: a tie gets a random tie-break's expected credit, so a model that scores every video
alike sits at chance; ``<prefix>/tied_queries`` counts the queries with a tie). ``per_item.json``
keeps, per text, how many videos score higher and how many tie, so any rule can be recomputed.

Under torch.distributed (``evilm.tasks.finetune``) the contrastive loss is the one-process loss: each
rank embeds its rows of the batch, the embeddings of every rank are gathered (gradients flow back to
their rank), and each rank scores its own rows against the whole batch. At evaluation each rank
encodes its part of the test texts and videos, and every rank ranks over all of them (VTM scoring
of pairs is shared out in the same way); rank 0 writes the files.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from evilm.data.catalog import load_benchmark
from evilm.data.loading import records_of
from evilm.models.evilm import EViLM
from evilm.models.heads import RetrievalHead, VTMHead
from evilm.stage import MetricsCallback, StageResult, report
from evilm.tasks.config import FinetuneSettings, RetrievalConfig
from evilm.tasks.finetune import eval_batches, finetune, finish, load_start, make_dataset
from evilm.tasks.metrics import choice_credit, rank_queries, retrieval_metrics
from evilm.tasks.multiple_choice import MCModel
from evilm.train import distributed as D
from evilm.train.runtime import autocast_dtype, mixed_precision, resolve_device


class RetrievalModel(nn.Module):
    def __init__(self, backbone: EViLM, embed_dim: int, temperature: float):
        super().__init__()
        self.backbone = backbone
        self.head = RetrievalHead(backbone.width, embed_dim)
        self.log_scale = nn.Parameter(torch.tensor(-torch.log(torch.tensor(temperature)).item()))

    def video_cls(self, frames: torch.Tensor) -> torch.Tensor:
        return self.backbone.fuse(video=self.backbone.encode_video(frames)).cls

    def text_cls(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.backbone.fuse(text=self.backbone.encode_text(input_ids, attention_mask), text_mask=attention_mask).cls

    def embed_videos(self, frames: torch.Tensor) -> torch.Tensor:
        return self.head.video(self.video_cls(frames))

    def embed_texts(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head.text(self.text_cls(input_ids, attention_mask))


def contrastive_loss(video: torch.Tensor, text: torch.Tensor, same_video: torch.Tensor, scale: torch.Tensor,
                     rows: slice | None = None) -> torch.Tensor:
    """Symmetric InfoNCE over a batch of pairs; ``same_video (B, B)`` marks every matching pair.

    Each row's loss is -log of the softmax mass on its matches, so a video's other
    captions in the batch are not pushed away as negatives. ``rows``: only these pairs' rows
    (a rank's own pairs of a gathered batch), each still against the whole batch.
    """
    logits = scale * text.float() @ video.float().t()  # (texts, videos)
    by_video, same_t = logits.t(), same_video.t()
    if rows is not None:
        if rows.start == rows.stop:  # no pairs of its own: nothing to score, but the gradient exchange needs a loss
            return logits.sum() * 0.0
        logits, same_video, by_video, same_t = logits[rows], same_video[rows], by_video[rows], same_t[rows]
    log_t2v = logits.log_softmax(1).masked_fill(~same_video, float("-inf")).logsumexp(1)
    log_v2t = by_video.log_softmax(1).masked_fill(~same_t, float("-inf")).logsumexp(1)
    return -(log_t2v.mean() + log_v2t.mean()) / 2


@torch.no_grad()
def encode_test_set(model: RetrievalModel, dataset: Any, settings: FinetuneSettings, device: torch.device,
                    unimodal_heads: bool, keep_tokens: bool) -> dict[str, Any]:
    """Each video and each text of the test set through the model once.

    Returns embeddings (or plain unimodal CLS vectors when ``unimodal_heads`` is False), the
    encoder outputs (when ``keep_tokens``, for VTM scoring), the query -> video targets, and
    the throughput.
    """
    records = dataset.records
    video_index: dict[str, int] = {}
    for r in records:
        video_index.setdefault(r.video_id, len(video_index))
    video_emb, text_emb, video_tokens, text_tokens, text_masks = {}, [], {}, [], []
    targets, query_rows = [], []
    video_seconds = text_seconds = 0.0
    for batch in eval_batches(dataset, settings, device, "encode test set"):
        # texts: every record is a query
        t0 = time.perf_counter()
        t = model.backbone.encode_text(batch["input_ids"], batch["attention_mask"])
        cls = model.backbone.fuse(text=t, text_mask=batch["attention_mask"]).cls
        text_emb.append(model.head.text(cls) if unimodal_heads else F.normalize(cls, dim=-1))
        if keep_tokens:
            text_tokens.extend(t.cpu().unbind(0))
            text_masks.extend(batch["attention_mask"].cpu().unbind(0))
        text_seconds += time.perf_counter() - t0
        # videos: once each, however many captions they have
        fresh = [i for i, vid in enumerate(batch["video_id"]) if video_index[vid] not in video_emb
                 and vid not in batch["video_id"][:i]]
        if fresh:
            t0 = time.perf_counter()
            v = model.backbone.encode_video(batch["frames"][fresh])
            cls = model.backbone.fuse(video=v).cls
            emb = model.head.video(cls) if unimodal_heads else F.normalize(cls, dim=-1)
            for j, i in enumerate(fresh):
                video_emb[video_index[batch["video_id"][i]]] = emb[j]
                if keep_tokens:
                    video_tokens[video_index[batch["video_id"][i]]] = v[j].cpu()
            video_seconds += time.perf_counter() - t0
        targets.extend(video_index[vid] for vid in batch["video_id"])
        query_rows.extend(batch["index"].tolist())
    if D.is_distributed():  # every rank's part: texts in rank order (the test set's), each video once
        dim = model.head.text_proj.out_features if unimodal_heads else model.backbone.width
        text_emb = [D.gather_rows(torch.cat(text_emb) if text_emb else torch.zeros(0, dim, device=device))]
        targets = D.gather_rows(torch.tensor(targets, dtype=torch.long)).tolist()
        query_rows = D.gather_rows(torch.tensor(query_rows, dtype=torch.long)).tolist()
        video_emb, video_tokens, text_tokens, text_masks = _gather_encodings(
            model.backbone, video_emb, video_tokens, text_tokens, text_masks, dim, keep_tokens, device)
        video_seconds, text_seconds = D.gather_rows(torch.tensor([[video_seconds, text_seconds]])).max(0).values.tolist()
    missing = [vid for vid, i in video_index.items() if i not in video_emb]
    if missing:
        raise ValueError(f"test videos could not be read: {missing[:5]} ({len(missing)} in all)")
    return {
        "video_ids": list(video_index),
        "videos": torch.stack([video_emb[i] for i in range(len(video_index))]),
        "texts": torch.cat(text_emb),
        "video_tokens": [video_tokens[i] for i in range(len(video_index))] if keep_tokens else [],
        "text_tokens": text_tokens,
        "text_masks": text_masks,
        "targets": torch.tensor(targets),
        "query_rows": query_rows,
        "videos_per_s": len(video_index) / max(video_seconds, 1e-9),
        "texts_per_s": len(targets) / max(text_seconds, 1e-9),
    }


def _gather_encodings(backbone: EViLM, video_emb: dict[int, torch.Tensor], video_tokens: dict[int, torch.Tensor],
                      text_tokens: list[torch.Tensor], text_masks: list[torch.Tensor], dim: int, keep_tokens: bool,
                      device: torch.device) -> tuple[dict, dict, list, list]:
    """Under torch.distributed: the videos every rank encoded (a video whose captions two ranks hold is
    kept once) and, with ``keep_tokens``, every rank's encoder outputs (texts padded to one length)."""
    mine = sorted(video_emb)
    ids = D.gather_rows(torch.tensor(mine, dtype=torch.long)).tolist()
    embs = D.gather_rows(torch.stack([video_emb[i] for i in mine]) if mine else torch.zeros(0, dim, device=device))
    first = {i: n for n, i in reversed(list(enumerate(ids)))}
    video_emb = {i: embs[n] for i, n in first.items()}
    if not keep_tokens:
        return video_emb, {}, text_tokens, text_masks
    cfg = backbone.config
    shape = (cfg.num_frames * math.prod(backbone.video_grid(cfg.image_size, cfg.image_size)), backbone.width)
    tokens = D.gather_rows(torch.stack([video_tokens[i] for i in mine]) if mine else torch.zeros(0, *shape))
    video_tokens = {i: tokens[n] for i, n in first.items()}
    length = int(D.gather_rows(torch.tensor([max((len(t) for t in text_tokens), default=0)])).max())
    padded = [F.pad(t, (0, 0, 0, length - len(t))) for t in text_tokens]
    text = D.gather_rows(torch.stack(padded) if padded else torch.zeros(0, length, backbone.width))
    masks = [F.pad(m, (0, length - len(m))) for m in text_masks]
    mask = D.gather_rows(torch.stack(masks) if masks else torch.zeros(0, length, dtype=torch.long))
    return video_emb, video_tokens, list(text.unbind(0)), list(mask.unbind(0))


@torch.no_grad()
def vtm_scores(backbone: EViLM, head: VTMHead, enc: dict[str, Any], pairs: torch.Tensor, device: torch.device,
               batch_size: int = 64, amp_dtype: torch.dtype | None = None) -> torch.Tensor:
    """VTM match scores of (text, video) index pairs ``(P, 2)``, fusing the stored encoder outputs.

    ``amp_dtype``: autocast the fused passes (zero-shot scores every pair: most of its time is here).
    Under torch.distributed each rank scores its contiguous part of the pairs; every rank gets all scores.
    """
    scores = []
    part = D.rank_part(len(pairs))
    # every text padded to one length once (texts of different batches may differ in padding), so that a
    # chunk of pairs is two index lookups
    length = max((len(t) for t in enc["text_tokens"]), default=0)
    texts = torch.stack([F.pad(t, (0, 0, 0, length - len(t))) for t in enc["text_tokens"]])
    masks = torch.stack([F.pad(m, (0, length - len(m))) for m in enc["text_masks"]])
    videos = torch.stack(enc["video_tokens"])
    with mixed_precision(device.type, amp_dtype):
        for chunk in pairs[part.start : part.stop].split(batch_size):
            text, mask = texts[chunk[:, 0]].to(device), masks[chunk[:, 0]].to(device)
            video = videos[chunk[:, 1]].to(device)
            scores.append(head.match_score(backbone.fuse(video=video, text=text, text_mask=mask).cls).float().cpu())
    return D.gather_rows(torch.cat(scores) if scores else torch.zeros(0))


def rerank(similarity: torch.Tensor, k: int, score_fn) -> torch.Tensor:
    """Each row's top ``k`` by ``similarity`` (cosines, <= 1) re-ordered by ``score_fn``, kept above the rest."""
    k = min(k, similarity.shape[1])
    top = similarity.topk(k, dim=1).indices  # (Q, k)
    pairs = torch.stack([torch.arange(len(similarity)).repeat_interleave(k), top.reshape(-1)], dim=1)
    new = score_fn(pairs).view(-1, k)
    out = similarity.clone()
    out.scatter_(1, top, 2.0 + new - new.min(dim=1, keepdim=True).values)  # >= 2 > any cosine
    return out


def run(config: RetrievalConfig, inputs: dict[str, Any], out_dir: str | Path, on_metrics: MetricsCallback | None = None) -> StageResult:
    """Stage: fine-tuned (unimodal, contrastive) or zero-shot (VTM) text-to-video retrieval.

    Inputs: ``data`` (root), ``pretrained`` (model.pt; required for zero-shot and re-ranking),
    ``text_tokenizer`` (optional). Metrics: R@1/5/10, median and mean rank, encoding throughput
    and ranking time. ``per_item.json`` has the rank of the correct video for each text.
    """
    settings = config.train
    bench, train_records = records_of(config.benchmark, inputs["data"], "train")
    test_records = bench.test
    start = load_start(inputs, settings)
    needs_vtm = config.mode == "zero_shot" or config.rerank_k > 0
    vtm_head = None
    if needs_vtm:
        if "vtm" not in start.heads:
            raise ValueError(f"{config.mode} retrieval{' with re-ranking' if config.rerank_k else ''} needs the "
                             "pretrained VTM head; " + ("the pretrained model has none" if start.pretrained
                                                         else "no pretrained model was given"))
        vtm_head = VTMHead(start.backbone.width)
        vtm_head.load_state_dict(start.heads["vtm"])
    model = RetrievalModel(start.backbone, config.embed_dim, config.temperature)
    prefix = config.benchmark + ("_zs" if config.mode == "zero_shot" else "")
    metrics: dict[str, float] = {}
    if config.mode == "finetune":
        train_set = make_dataset("video_text", train_records, start, settings, train=True)
        video_number = {vid: n for n, vid in enumerate(dict.fromkeys(r.video_id for r in train_records))}

        def loss_fn(batch):
            scale = model.log_scale.exp().clamp(max=100.0)
            if not D.is_distributed():
                vids = batch["video_id"]
                same = torch.tensor([[a == b for b in vids] for a in vids], device=batch["frames"].device)
                video = model.embed_videos(batch["frames"])
                text = model.embed_texts(batch["input_ids"], batch["attention_mask"])
                return contrastive_loss(video, text, same, scale), {}
            # the global batch's pairs: every rank's embeddings (gradients flow back), this rank's rows of them
            device = model.log_scale.device
            if batch is None:  # no rows here in this step
                pairs = torch.zeros(0, 2, config.embed_dim, device=device, requires_grad=True)
                vids = torch.zeros(0, dtype=torch.long, device=device)
            else:
                video = model.embed_videos(batch["frames"])
                text = model.embed_texts(batch["input_ids"], batch["attention_mask"])
                pairs = torch.stack([video.float(), text.float()], dim=1)
                vids = torch.tensor([video_number[v] for v in batch["video_id"]], device=device)
            pairs, rows = D.gather_with_grad(pairs)
            vids = D.gather_rows(vids)
            return contrastive_loss(pairs[:, 0], pairs[:, 1], vids[:, None] == vids[None, :], scale, rows), {}

        metrics.update(finetune(model, train_set, settings, loss_fn, on_metrics, prefix, exchanges=True))

    device = resolve_device(settings.device)
    model.to(device).eval()
    if vtm_head is not None:
        vtm_head.to(device).eval()
    test_set = make_dataset("video_text", test_records, start, settings, train=False)
    enc = encode_test_set(model, test_set, settings, device, unimodal_heads=config.mode == "finetune",
                          keep_tokens=needs_vtm)
    t0 = time.perf_counter()
    similarity = (enc["texts"].float() @ enc["videos"].float().t()).cpu()
    rank_seconds = time.perf_counter() - t0

    def score_fn(pairs):
        return vtm_scores(start.backbone, vtm_head, enc, pairs, device, settings.eval_batch_size,
                          autocast_dtype(settings.amp, device))

    if config.mode == "zero_shot" and config.rerank_k == 0:
        q, v = similarity.shape
        pairs = torch.stack(torch.meshgrid(torch.arange(q), torch.arange(v), indexing="ij"), -1).reshape(-1, 2)
        similarity = score_fn(pairs).view(q, v)
    elif config.rerank_k > 0:
        similarity = rerank(similarity, config.rerank_k, score_fn)
    ranking = rank_queries(similarity, enc["targets"])
    metrics.update({f"{prefix}/{k}": v for k, v in retrieval_metrics(ranking, ties=config.ties).items()})
    ranks = ranking.ranks(config.ties)
    metrics[f"{prefix}/queries"] = float(len(ranks))
    metrics[f"{prefix}/videos"] = float(similarity.shape[1])
    metrics[f"{prefix}/videos_encoded_per_s"] = enc["videos_per_s"]
    metrics[f"{prefix}/texts_encoded_per_s"] = enc["texts_per_s"]
    metrics[f"{prefix}/ranking_seconds"] = rank_seconds
    metrics[f"{prefix}/pretrained"] = float(start.pretrained)
    for k in (1, 5, 10):  # a random ranking's expected recall (ties broken at random score the same)
        metrics[f"{prefix}/chance_R@{k}"] = 100.0 * min(k, similarity.shape[1]) / similarity.shape[1]
    mc_items = None
    if config.mc_benchmark is not None:
        known = dict(zip(enc["video_ids"], enc["videos"])) if config.mode == "finetune" else {}
        mc_items = answer_choices(model, vtm_head if config.mode == "zero_shot" else None, config.mc_benchmark,
                                  inputs["data"], start, settings, device, known)
        metrics[f"{prefix}/{config.mc_benchmark}_acc"] = 100.0 * sum(i["correct"] for i in mc_items) / len(mc_items)
        metrics[f"{prefix}/{config.mc_benchmark}_tied_items"] = float(sum(i["tied"] > 1 for i in mc_items))
    if D.on_main():
        report(on_metrics, metrics, int(metrics.get(f"{prefix}/train_steps", 0)))
    items = [{"index": row, "rank": float(r), "higher": h, "tied": t} for row, r, h, t
             in zip(enc["query_rows"], ranks.tolist(), ranking.higher.tolist(), ranking.tied.tolist())]
    extra = {}
    if mc_items is not None:
        extra["per_item_mc"] = ("per_item_mc.json", {"metric": "correct", "benchmark": config.mc_benchmark,
                                                     "items": mc_items})
    artifacts = finish(out_dir, metrics, {"metric": "rank", "ties": config.ties, "items": items}, extra)
    return StageResult(metrics=metrics, artifacts=artifacts)


@torch.no_grad()
def answer_choices(model: RetrievalModel, vtm_head: VTMHead | None, benchmark: str, data_root: Any, start: Any,
                   settings: FinetuneSettings, device: torch.device,
                   known_videos: dict[str, torch.Tensor] | None = None) -> list[dict[str, Any]]:
    """Multiple choice with the retrieval model: the option whose embedding is closest to the video's
    (or, given ``vtm_head``, the option the VTM head matches best). A tie at the top gets a random
    tie-break's expected credit (``choice_credit``); ``tied`` is how many options share the top score.

    ``known_videos`` (video id -> embedding) saves encoding the videos the retrieval test already did.
    """
    known_videos = known_videos or {}
    records = load_benchmark(benchmark, data_root).test
    dataset = make_dataset("mc", records, start, settings, train=False)
    scorer = MCModel(model.backbone, vtm_head) if vtm_head is not None else None
    rows = []
    for batch in eval_batches(dataset, settings, device, f"{benchmark} with the retrieval model"):
        ids, mask = batch["option_ids"], batch["option_mask"]
        b, k, length = ids.shape
        if scorer is not None:
            scores = scorer(batch["frames"], ids, mask)
        else:
            vids = batch["video_id"]
            if all(v in known_videos for v in vids):
                video = torch.stack([known_videos[v] for v in vids]).to(device)
            else:
                video = model.embed_videos(batch["frames"])  # (B, E)
            text = model.embed_texts(ids.reshape(b * k, length), mask.reshape(b * k, length)).view(b, k, -1)
            scores = (text @ video[:, :, None]).squeeze(-1)
        scores = scores.float().cpu()
        for i, index in enumerate(batch["index"].tolist()):
            answer = records[index].answer
            credit, tied = choice_credit(scores[i], answer)
            rows.append({"index": index, "correct": credit, "tied": tied,
                         "predicted": int(scores[i].argmax()), "answer": answer,
                         "scores": [round(float(x), 5) for x in scores[i]]})
    rows = D.gather_items(rows)  # every rank's items, in the test set's order
    if not rows:
        raise ValueError(f"{benchmark}: no test item could be evaluated (all clips unreadable)")
    return rows
