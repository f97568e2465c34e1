"""Multiple choice (MSRVTT-MC, TGIF-Action, TGIF-Transition): score each (video, option) pair.

Each option (for TGIF: "question option") is fused with the video and scored
from CLS; the highest score is the answer. A tie at the top gets a random tie-break's
expected credit (``evilm.tasks.metrics.choice_credit``: 1/k for a k-way tie holding the
answer), so a model that cannot tell the options apart scores at chance;
``<prefix>/tied_items`` counts the items tied at the top.

- ``zero_shot``: the pretrained VTM head scores each pair (log p(match) - log p(mismatch)).
- ``finetune``: ``MCHead`` is trained with a softmax over the options. MSRVTT-MC has no
  training split; as in the field, it is trained on MSRVTT retrieval's training
  captions, each with ``num_options - 1`` captions of other videos as wrong options.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from evilm.data.catalog import load_benchmark
from evilm.data.records import MCItem
from evilm.data.text_rules import mc_rules
from evilm.models.evilm import EViLM
from evilm.models.heads import MCHead, VTMHead
from evilm.stage import MetricsCallback, StageResult, report
from evilm.tasks.config import MCConfig
from evilm.tasks.finetune import eval_batches, finetune, finish, load_start, make_dataset
from evilm.tasks.metrics import choice_credit
from evilm.train import distributed as D
from evilm.train.checkpoint import derived_seed
from evilm.train.runtime import resolve_device

TRAIN_FROM = {"msrvtt_mc": "msrvtt_ret"}  # benchmarks without a training split


class MCModel(nn.Module):
    """Backbone + a scorer on CLS (``MCHead`` or the pretrained ``VTMHead``)."""

    def __init__(self, backbone: EViLM, scorer: nn.Module, blind: bool = False):
        super().__init__()
        self.backbone = backbone
        self.scorer = scorer
        self.blind = blind  # the options alone (the video-blind floor)

    def forward(self, frames: torch.Tensor, option_ids: torch.Tensor, option_mask: torch.Tensor) -> torch.Tensor:
        """Scores ``(B, K)`` of clips ``(B, T, 3, H, W)`` against options ``(B, K, L)``; each clip is encoded once."""
        b, k, length = option_ids.shape
        video = None if self.blind else self.backbone.encode_video(frames).repeat_interleave(k, dim=0)
        ids, mask = option_ids.reshape(b * k, length), option_mask.reshape(b * k, length)
        fused = self.backbone.fuse(video=video, text=self.backbone.encode_text(ids, mask), text_mask=mask)
        if isinstance(self.scorer, VTMHead):
            return self.scorer.match_score(fused.cls).view(b, k)
        return self.scorer(fused.cls).view(b, k)


def caption_choices(records: list, num_options: int, seed: int) -> list[MCItem]:
    """Multiple-choice items from video-caption records: the caption among captions of other videos."""
    if len({r.caption for r in records}) < num_options:
        raise ValueError(f"{len(records)} captions hold fewer than {num_options} distinct ones: cannot make options")
    rng = random.Random(derived_seed(seed, "caption choices"))
    items = []
    for record in records:
        others = []
        while len(others) < num_options - 1:
            other = records[rng.randrange(len(records))]
            if other.video_id != record.video_id and other.caption != record.caption and other.caption not in others:
                others.append(other.caption)
        answer = rng.randrange(num_options)
        options = others[:answer] + [record.caption] + others[answer:]
        items.append(MCItem(record.video_id, record.video_path, options, answer, source=record.source))
    return items


def run(config: MCConfig, inputs: dict[str, Any], out_dir: str | Path, on_metrics: MetricsCallback | None = None) -> StageResult:
    """Stage: zero-shot (VTM head) or fine-tuned multiple choice; accuracy on the test items.

    Inputs: ``data`` (root), ``pretrained`` (model.pt; required for zero-shot), ``text_tokenizer`` (optional).
    Under torch.distributed every rank runs it (``evilm.tasks.finetune``): the accuracy is over every
    rank's test items; rank 0 writes the files and reports the metrics.
    """
    settings = config.train
    start = load_start(inputs, settings)
    bench = load_benchmark(config.benchmark, inputs["data"])
    test_records = bench.test
    prefix = config.benchmark + ("_zs" if config.mode == "zero_shot" else "")
    if config.mode == "zero_shot":
        if "vtm" not in start.heads:
            raise ValueError("zero-shot multiple choice scores pairs with the pretrained VTM head; "
                             f"{'the pretrained model has none (pretrained without VTM)' if start.pretrained else 'no pretrained model was given'}")
        scorer = VTMHead(start.backbone.width)
        scorer.load_state_dict(start.heads["vtm"])
        model = MCModel(start.backbone, scorer)
        metrics: dict[str, float] = {}
    else:
        model = MCModel(start.backbone, MCHead(start.backbone.width), blind=settings.video == "blind")
        if config.benchmark in TRAIN_FROM:
            source = load_benchmark(TRAIN_FROM[config.benchmark], inputs["data"]).train
            train_records = caption_choices(source, config.num_options, settings.seed)
        else:
            train_records = bench.train
        if not train_records:
            raise ValueError(f"{config.benchmark}: no training items under {inputs['data']}")
        train_set = make_dataset("mc", train_records, start, settings, train=True)

        def loss_fn(batch):
            scores = model(batch["frames"], batch["option_ids"], batch["option_mask"])
            acc = (scores.detach().argmax(-1) == batch["answer"]).float().mean()
            return F.cross_entropy(scores.float(), batch["answer"]), {"acc": acc}

        metrics = finetune(model, train_set, settings, loss_fn, on_metrics, prefix)

    device = resolve_device(settings.device)
    model.to(device).eval()
    test_set = make_dataset("mc", test_records, start, settings, train=False)
    rows = []
    with torch.no_grad():
        for batch in eval_batches(test_set, settings, device, f"{prefix} test"):
            scores = model(batch["frames"], batch["option_ids"], batch["option_mask"]).float().cpu()
            for i, index in enumerate(batch["index"].tolist()):
                answer = test_records[index].answer
                predicted = int(scores[i].argmax())
                credit, tied = choice_credit(scores[i], answer)
                rows.append({"index": index, "correct": credit, "tied": tied,
                             "predicted": predicted, "answer": test_records[index].answer,
                             "scores": [round(float(s), 5) for s in scores[i]]})
    rows = D.gather_items(rows)  # every rank's items, in the test set's order
    if not rows:
        raise ValueError(f"{prefix}: no test item could be evaluated (all clips unreadable)")
    metrics[f"{prefix}/acc"] = 100.0 * sum(r["correct"] for r in rows) / len(rows)
    metrics[f"{prefix}/chance"] = 100.0 * sum(1.0 / len(r.options) for r in test_records) / len(test_records)
    # the best rule that reads only the options (fitted on the training items, where there are any)
    metrics[f"{prefix}/text_prior"] = max(r.accuracy for r in mc_rules(bench.train, test_records))
    metrics[f"{prefix}/tied_items"] = float(sum(r["tied"] > 1 for r in rows))
    metrics[f"{prefix}/test_items"] = float(len(rows))
    metrics[f"{prefix}/test_skipped"] = float(len(test_records) - len(rows))
    metrics[f"{prefix}/pretrained"] = float(start.pretrained)
    if D.on_main():
        report(on_metrics, metrics, int(metrics.get(f"{prefix}/train_steps", 0)))
    artifacts = finish(out_dir, metrics, {"metric": "correct", "items": rows})
    return StageResult(metrics=metrics, artifacts=artifacts)
