"""The supervised ceiling: a small video model trained on one benchmark's labels alone.

The calibration report's ceiling row asks whether a task can be learnt from its clips at all, apart
from E-ViLM and its pre-training: ``evilm.models.small_video`` (a motion stream on frames stacked as
channels, trained from scratch; a frozen appearance stream from the image prior; a bag of words;
question-guided attention) trained with a generous budget on the benchmark's training
split, scored on its test split with the metrics and per-item files of the E-ViLM task stages:

- open-ended QA: a classifier over the answer vocabulary (``evilm.tasks.qa``'s counting);
- multiple choice: a score per (clip, option), softmax over the options (MSRVTT-MC trains on MSRVTT
  retrieval's captions, as ``evilm.tasks.multiple_choice`` does): the fused (clip, question and
  option) pair, plus the option alone matched against the clip (``_ChoiceHead``);
- retrieval: clip and text embeddings trained contrastively, every caption ranked against every test clip;
- probes (HMDB51, K400): a classifier on the clip alone, trained end to end.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from evilm.config import ConfigError
from evilm.data.catalog import load_benchmark
from evilm.data.datasets import build_dataset
from evilm.data.frame_cache import frame_cache_dir
from evilm.data.loading import CachedClips, resolve_text_tokenizer
from evilm.data.video import FrameConfig
from evilm.models.small_video import SmallVideoModel
from evilm.models.weights import load_backbone
from evilm.stage import MetricsCallback, StageResult, report
from evilm.tasks.config import MC_BENCHMARKS, PROBE_BENCHMARKS, QA_BENCHMARKS, SupervisedConfig
from evilm.tasks.finetune import eval_batches, finetune, finish
from evilm.tasks.metrics import choice_credit, rank_queries, retrieval_metrics
from evilm.tasks.multiple_choice import TRAIN_FROM, caption_choices
from evilm.tasks.retrieval import contrastive_loss
from evilm.train.checkpoint import derived_seed
from evilm.train.runtime import resolve_device


class _Task(nn.Module):
    """The small model and one task's head; ``score`` maps a batch to the task's outputs."""

    def __init__(self, model: SmallVideoModel, head: nn.Module, score: Callable):
        super().__init__()
        self.model, self.head, self._score = model, head, score

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        return self._score(self.model, self.head, batch)


def _qa_logits(model, head, batch):
    cells = model.encode_video(batch["frames"], batch["video_id"])
    return head(model.fuse(cells, model.encode_text(batch["input_ids"], batch["attention_mask"])))


class _ChoiceHead(nn.Module):
    """A (clip, option) pair's score: the fused pair through a linear layer, plus the option read alone
    matched against the clip (a bilinear form). The match makes each option's words the weights of a
    classifier over the clip's features, so "does this clip show what the option says?" is learnt as a
    classifier learns its classes; through the fusion alone the option is one part of a mixed text."""

    def __init__(self, width: int):
        super().__init__()
        self.fused, self.match = nn.Linear(width, 1), nn.Linear(width, width)

    def forward(self, fused: torch.Tensor, clip: torch.Tensor, option: torch.Tensor) -> torch.Tensor:
        return self.fused(fused).squeeze(-1) + (self.match(clip) * option).sum(-1) / clip.shape[-1] ** 0.5


def _mc_scores(model, head, batch):
    b, k, length = batch["option_ids"].shape
    cells = model.encode_video(batch["frames"], batch["video_id"]).repeat_interleave(k, dim=0)
    text = model.encode_text(batch["option_ids"].reshape(b * k, length), batch["option_mask"].reshape(b * k, length))
    alone, alone_mask = batch["choice_ids"], batch["choice_mask"]
    option = model.encode_text(alone.reshape(b * k, alone.shape[-1]), alone_mask.reshape(b * k, alone.shape[-1]))
    return head(model.fuse(cells, text), model.clip_vector(cells), option).view(b, k)


def _class_logits(model, head, batch):
    return head(model.clip_vector(model.encode_video(batch["frames"], batch["video_id"])))


class _Embeddings(nn.Module):
    """Retrieval's projections of clip and text into one normalised space, and the learned scale."""

    def __init__(self, width: int, temperature: float = 0.05):
        super().__init__()
        self.video, self.text = nn.Linear(width, width), nn.Linear(width, width)
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))

    def embed_videos(self, model: SmallVideoModel, frames: torch.Tensor, video_ids: list[str]) -> torch.Tensor:
        return F.normalize(self.video(model.clip_vector(model.encode_video(frames, video_ids))), dim=-1)

    def embed_texts(self, model: SmallVideoModel, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text(model.encode_text(ids, mask)), dim=-1)


def task_type(benchmark: str) -> str:
    if benchmark in QA_BENCHMARKS:
        return "qa"
    if benchmark in MC_BENCHMARKS:
        return "multiple_choice"
    return "linear_probe" if benchmark in PROBE_BENCHMARKS else "retrieval"


def run(config: SupervisedConfig, inputs: dict[str, Any], out_dir: str | Path,
        on_metrics: MetricsCallback | None = None) -> StageResult:
    """Stage: train the small video model on the benchmark's training split, evaluate on its test split.

    Inputs: ``data`` (root), ``video_init`` (the image prior: the appearance stream's weights).
    Metrics are named as the E-ViLM task stages name them (``<benchmark>/acc``, ``<benchmark>/R@k``, ``<benchmark>_probe/top1``), so a report's columns read either.
    """
    settings, data = config.train, inputs["data"]
    tokenizer = resolve_text_tokenizer(inputs, data, settings.vocab_keep_fraction, settings.vocab_text)
    torch.manual_seed(derived_seed(settings.seed, "init"))
    model = SmallVideoModel(config.model, tokenizer.vocab_size)
    if config.model.appearance:
        if not inputs.get("video_init"):
            raise ConfigError("model.appearance", "the appearance stream starts from the image prior: give the "
                                                  "stage a video_init input (or set model.appearance: null)")
        load_backbone(model.appearance, inputs["video_init"], config.model.appearance)
        if not settings.augment:  # fixed clips: each clip's frozen features are computed once
            model.appearance_cache = {}
    frames = FrameConfig(num_frames=config.model.num_frames, image_size=config.model.image_size,
                         cache_dir=frame_cache_dir(settings.frame_cache, data))

    def dataset(kind: str, records: list, train: bool = False, **kwargs) -> Any:
        augment = train and settings.augment
        built = build_dataset(kind, records, tokenizer, frames, train=augment, max_text_len=config.model.max_text_len,
                              seed=settings.seed, **kwargs)
        return CachedClips(built) if settings.cache_clips and not augment else built

    bench = load_benchmark(config.benchmark, data)
    kind = task_type(config.benchmark)
    torch.manual_seed(derived_seed(settings.seed, "task heads"))
    run_task = {"qa": _qa, "multiple_choice": _multiple_choice, "retrieval": _retrieval,
                "linear_probe": _probe}[kind]
    metrics, per_item = run_task(config, bench, model, dataset, on_metrics, data)
    metrics[f"{_prefix(config.benchmark)}/params_m"] = sum(p.numel() for p in model.parameters()) / 1e6
    report(on_metrics, metrics, int(metrics.get(f"{_prefix(config.benchmark)}/train_steps", 0)))
    artifacts = finish(out_dir, metrics, per_item)
    return StageResult(metrics=metrics, artifacts=artifacts)


def _prefix(benchmark: str) -> str:
    return f"{benchmark}_probe" if benchmark in PROBE_BENCHMARKS else benchmark


def _trained(config: SupervisedConfig, module: nn.Module, train_set: Any, loss_fn: Callable,
             on_metrics: MetricsCallback | None, prefix: str) -> tuple[dict[str, float], torch.device]:
    metrics = finetune(module, train_set, config.train, loss_fn, on_metrics, prefix)
    module.eval()
    return metrics, resolve_device(config.train.device)


def _qa(config, bench, model, dataset, on_metrics, data):
    prefix, answers = config.benchmark, bench.answers
    task = _Task(model, nn.Linear(model.width, answers.num_classes), _qa_logits)

    def loss_fn(batch):
        logits = task(batch)
        return F.cross_entropy(logits.float(), batch["answer_id"]), {
            "acc": (logits.detach().argmax(-1) == batch["answer_id"]).float().mean()}

    metrics, device = _trained(config, task, dataset("qa", bench.train, train=True, answers=answers), loss_fn, on_metrics, prefix)
    test_set, rows = dataset("qa", bench.test, answers=answers), []
    with torch.no_grad():
        for batch in eval_batches(test_set, config.train, device, f"{prefix} test"):
            predicted = task(batch).argmax(-1).cpu()
            for i, index in enumerate(batch["index"].tolist()):
                record = bench.test[index]
                target = answers.encode(record.answer)
                rows.append({"index": index, "correct": int(int(predicted[i]) == target and target != answers.oov_id),
                             "predicted": answers.decode(int(predicted[i])), "answer": record.answer})
    return _accuracy(prefix, metrics, rows, len(bench.test)), {"metric": "correct", "items": rows}


def _multiple_choice(config, bench, model, dataset, on_metrics, data):
    prefix = config.benchmark
    task = _Task(model, _ChoiceHead(model.width), _mc_scores)
    train_records = bench.train
    if config.benchmark in TRAIN_FROM:
        source = load_benchmark(TRAIN_FROM[config.benchmark], data).train
        train_records = caption_choices(source, config.num_options, config.train.seed)

    def loss_fn(batch):
        scores = task(batch)
        return F.cross_entropy(scores.float(), batch["answer"]), {
            "acc": (scores.detach().argmax(-1) == batch["answer"]).float().mean()}

    metrics, device = _trained(config, task, dataset("mc", train_records, train=True), loss_fn, on_metrics, prefix)
    rows = []
    with torch.no_grad():
        for batch in eval_batches(dataset("mc", bench.test), config.train, device, f"{prefix} test"):
            scores = task(batch).float().cpu()
            for i, index in enumerate(batch["index"].tolist()):
                answer = bench.test[index].answer
                credit, tied = choice_credit(scores[i], answer)
                rows.append({"index": index, "correct": credit, "tied": tied, "predicted": int(scores[i].argmax()),
                             "answer": answer})
    return _accuracy(prefix, metrics, rows, len(bench.test)), {"metric": "correct", "items": rows}


def _retrieval(config, bench, model, dataset, on_metrics, data):
    prefix = config.benchmark
    heads = _Embeddings(model.width)
    task = nn.ModuleDict({"model": model, "heads": heads})

    def loss_fn(batch):
        vids = batch["video_id"]
        same = torch.tensor([[a == b for b in vids] for a in vids], device=batch["frames"].device)
        video = heads.embed_videos(model, batch["frames"], vids)
        text = heads.embed_texts(model, batch["input_ids"], batch["attention_mask"])
        return contrastive_loss(video, text, same, heads.log_scale.exp().clamp(max=100.0)), {}

    metrics, device = _trained(config, task, dataset("video_text", bench.train, train=True), loss_fn, on_metrics, prefix)
    videos: dict[str, torch.Tensor] = {}
    texts, targets, query_rows = [], [], []
    with torch.no_grad():
        for batch in eval_batches(dataset("video_text", bench.test), config.train, device, f"{prefix} test"):
            texts.append(heads.embed_texts(model, batch["input_ids"], batch["attention_mask"]).cpu())
            fresh = [i for i, vid in enumerate(batch["video_id"]) if vid not in videos]
            if fresh:
                emb = heads.embed_videos(model, batch["frames"][fresh], [batch["video_id"][i] for i in fresh]).cpu()
                for j, i in enumerate(fresh):
                    videos.setdefault(batch["video_id"][i], emb[j])
            targets.extend(batch["video_id"])
            query_rows.extend(batch["index"].tolist())
    order = {vid: n for n, vid in enumerate(videos)}
    similarity = torch.cat(texts) @ torch.stack(list(videos.values())).t()
    ranking = rank_queries(similarity, torch.tensor([order[v] for v in targets]))
    metrics.update({f"{prefix}/{k}": v for k, v in retrieval_metrics(ranking, ties="random").items()})
    metrics[f"{prefix}/queries"], metrics[f"{prefix}/videos"] = float(len(targets)), float(len(videos))
    items = [{"index": row, "rank": float(r), "higher": h, "tied": t} for row, r, h, t
             in zip(query_rows, ranking.ranks("random").tolist(), ranking.higher.tolist(), ranking.tied.tolist())]
    return metrics, {"metric": "rank", "ties": "random", "items": items}


def _probe(config, bench, model, dataset, on_metrics, data):
    prefix, classes = f"{config.benchmark}_probe", bench.classes
    head = nn.Sequential(nn.Dropout(config.model.dropout), nn.Linear(model.width, len(classes)))
    task = _Task(model, head, _class_logits)

    def loss_fn(batch):
        logits = task(batch)
        return F.cross_entropy(logits.float(), batch["label"]), {
            "acc": (logits.detach().argmax(-1) == batch["label"]).float().mean()}

    metrics, device = _trained(config, task, dataset("class", bench.train, train=True, classes=classes), loss_fn, on_metrics,
                               prefix)
    rows = []
    with torch.no_grad():
        for batch in eval_batches(dataset("class", bench.test, classes=classes), config.train, device, f"{prefix} test"):
            predicted = task(batch).argmax(-1).cpu()
            for i, index in enumerate(batch["index"].tolist()):
                label = int(batch["label"][i])
                rows.append({"index": index, "correct": int(int(predicted[i]) == label),
                             "predicted": classes[int(predicted[i])], "label": classes[label]})
    metrics = _accuracy(prefix, metrics, rows, len(bench.test), name="top1")
    metrics[f"{prefix}/chance"] = 100.0 / len(classes)
    return metrics, {"metric": "correct", "items": rows}


def _accuracy(prefix: str, metrics: dict[str, float], rows: list[dict], total: int, name: str = "acc") -> dict[str, float]:
    if not rows:
        raise ValueError(f"{prefix}: no test item could be evaluated (all clips unreadable)")
    metrics[f"{prefix}/{name}"] = 100.0 * sum(r["correct"] for r in rows) / len(rows)
    metrics[f"{prefix}/test_items"] = float(len(rows))
    metrics[f"{prefix}/test_skipped"] = float(total - len(rows))
    return metrics
