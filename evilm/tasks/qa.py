"""Open-ended video QA (MSRVTT-QA, MSVD-QA, TGIF-FrameQA): a classifier over the answer vocabulary.

The question and the video are fused; ``QAHead`` on CLS classifies into the
benchmark's top-K answers plus an out-of-vocabulary class. A test question whose
answer is outside the vocabulary counts as wrong whatever is predicted (the
field's convention); predicting the out-of-vocabulary class is always wrong.
Accuracy is reported overall and per answer type (the question word for
MSRVTT/MSVD-QA, the TGIF-FrameQA type).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from evilm.data.loading import records_of
from evilm.data.text_rules import qa_rules
from evilm.models.evilm import EViLM
from evilm.models.heads import QAHead
from evilm.stage import MetricsCallback, StageResult, report
from evilm.tasks.config import QAConfig
from evilm.tasks.finetune import eval_batches, finetune, finish, load_start, make_dataset
from evilm.tasks.metrics import accuracy_by_type
from evilm.train import distributed as D
from evilm.train.runtime import resolve_device


class QAModel(nn.Module):
    def __init__(self, backbone: EViLM, num_answers: int, blind: bool = False):
        super().__init__()
        self.backbone = backbone
        self.head = QAHead(backbone.width, num_answers)
        self.blind = blind  # the question alone (the video-blind floor)

    def forward(self, frames: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                video_ids: list[str] | None = None) -> torch.Tensor:
        """Answer logits; with ``video_ids``, each distinct video of the batch is encoded once."""
        if self.blind:
            video = None
        elif video_ids is None:
            video = self.backbone.encode_video(frames)
        else:
            first = {vid: i for i, vid in reversed(list(enumerate(video_ids)))}
            order = list(first)
            video = self.backbone.encode_video(frames[[first[v] for v in order]])
            video = video[[order.index(v) for v in video_ids]]
        text = self.backbone.encode_text(input_ids, attention_mask)
        return self.head(self.backbone.fuse(video=video, text=text, text_mask=attention_mask).cls)


def qa_floors(prefix: str, train: list, test: list) -> dict[str, float]:
    """What the text alone gets on this test set (``evilm.data.text_rules``): chance within each question's
    template (the question-type prior), the majority answer, and the best answer per template."""
    scores = {r.name: r.accuracy for r in qa_rules(train, test)}
    return {f"{prefix}/chance": scores["uniform within template (chance)"],
            f"{prefix}/majority": scores["majority answer"],
            f"{prefix}/text_prior": scores["best answer per template"]}


def run(config: QAConfig, inputs: dict[str, Any], out_dir: str | Path, on_metrics: MetricsCallback | None = None) -> StageResult:
    """Stage: fine-tune on the benchmark's training questions, evaluate on its test questions.

    Under torch.distributed every rank runs it (``evilm.tasks.finetune``): the accuracy is over
    every rank's test questions; rank 0 writes the files and reports the metrics.

    Inputs: ``data`` (root), ``pretrained`` (model.pt; absent = no pretraining), ``text_tokenizer`` (optional).
    """
    settings = config.train
    options = {} if config.top_k is None else {"top_k": config.top_k}
    bench, train_records = records_of(config.benchmark, inputs["data"], "train", **options)
    test_records = bench.test
    answers = bench.answers
    start = load_start(inputs, settings)
    model = QAModel(start.backbone, answers.num_classes, blind=settings.video == "blind")
    train_set = make_dataset("qa", train_records, start, settings, train=True, answers=answers)
    test_set = make_dataset("qa", test_records, start, settings, train=False, answers=answers)

    def loss_fn(batch):
        logits = model(batch["frames"], batch["input_ids"], batch["attention_mask"])
        targets = batch["answer_id"]
        acc = (logits.detach().argmax(-1) == targets).float().mean()
        return F.cross_entropy(logits.float(), targets), {"acc": acc}

    prefix = config.benchmark
    metrics = finetune(model, train_set, settings, loss_fn, on_metrics, prefix)

    device = resolve_device(settings.device)
    model.eval()
    rows = []
    with torch.no_grad():
        for batch in eval_batches(test_set, settings, device, f"{prefix} test"):
            logits = model(batch["frames"], batch["input_ids"], batch["attention_mask"], batch["video_id"])
            predicted = logits.argmax(-1).cpu()
            for i, index in enumerate(batch["index"].tolist()):
                record = test_records[index]
                target = answers.encode(record.answer)
                correct = int(predicted[i]) == target and target != answers.oov_id
                rows.append({"index": index, "correct": int(correct), "type": record.answer_type or "all",
                             "predicted": answers.decode(int(predicted[i])), "answer": record.answer})
    rows = D.gather_items(rows)  # every rank's questions, in the test set's order
    if not rows:
        raise ValueError(f"{prefix}: no test question could be evaluated (all clips unreadable)")
    correct = [r["correct"] for r in rows]
    metrics[f"{prefix}/acc"] = 100.0 * sum(correct) / len(correct)
    for kind, acc in accuracy_by_type(correct, [r["type"] for r in rows]).items():
        metrics[f"{prefix}/acc_{kind}"] = acc
    metrics.update(qa_floors(prefix, train_records, test_records))
    metrics[f"{prefix}/answer_coverage"] = 100.0 * answers.coverage([r.answer for r in test_records])
    metrics[f"{prefix}/test_items"] = float(len(rows))
    metrics[f"{prefix}/test_skipped"] = float(len(test_records) - len(rows))
    metrics[f"{prefix}/pretrained"] = float(start.pretrained)
    if D.on_main():
        report(on_metrics, metrics, int(metrics[f"{prefix}/train_steps"]))
    artifacts = finish(out_dir, metrics, {"metric": "correct", "items": rows})
    return StageResult(metrics=metrics, artifacts=artifacts)
