"""Linear-probe action recognition (HMDB51, K400; paper Table 3).

The model is frozen: each clip goes through it once, alone (``fuse(video=...)``),
and its video tokens are pooled into one feature vector (``pool_video``: by default
each frame's tokens averaged, the frames kept in time order). Only a linear
classifier (``LinearProbe``) is trained, by AdamW on the stored features; the
result is top-1 accuracy on the test clips.

``mode: finetune`` trains the model and the layer end to end on the training clips instead
(the fine-tuning loop of ``evilm.tasks.finetune``): not the paper's protocol, but what this model
reaches with the labels themselves. (The calibration report's ceiling is another model:
``evilm.tasks.supervised``.)
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from evilm.data.catalog import load_benchmark
from evilm.models.evilm import EViLM
from evilm.models.heads import LinearProbe
from evilm.stage import MetricsCallback, StageResult, report
from evilm.tasks.config import FinetuneSettings, LinearProbeConfig
from evilm.tasks.finetune import eval_batches, finetune, finish, load_start, make_dataset
from evilm.train import distributed as D
from evilm.train.checkpoint import derived_seed, generator_for
from evilm.train.engine import Engine, check_finite
from evilm.train.runtime import resolve_device


def pool_video(out: Any, pool: str, num_frames: int) -> torch.Tensor:
    """One feature per clip from ``fuse``'s output: ``(B, T * D)`` for "frames", ``(B, D)`` otherwise."""
    if pool == "cls":
        return out.cls
    if pool == "mean":
        return out.video.mean(1)
    b, n, d = out.video.shape  # tokens are frame-major: T frames of n / T regions
    return out.video.reshape(b, num_frames, n // num_frames, d).mean(2).flatten(1)


def feature_dim(backbone: EViLM, pool: str) -> int:
    return backbone.width * (backbone.config.num_frames if pool == "frames" else 1)


@torch.no_grad()
def extract_features(backbone: EViLM, dataset: Any, settings: FinetuneSettings, device: torch.device,
                     pool: str, description: str) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Frozen features ``(N, D)``, labels ``(N,)`` and the data-set rows they came from.

    Under torch.distributed each rank extracts its part of the data set, and every rank gets all of them.
    """
    backbone.to(device).eval()
    feats, labels, rows = [], [], []
    for batch in eval_batches(dataset, settings, device, description):
        out = backbone.fuse(video=backbone.encode_video(batch["frames"]))
        feats.append(pool_video(out, pool, backbone.config.num_frames).float().cpu())
        labels.append(batch["label"].cpu())
        rows.extend(batch["index"].tolist())
    if D.is_distributed():  # (a rank's part may be empty or unreadable)
        feats = [D.gather_rows(torch.cat(feats) if feats else torch.zeros(0, feature_dim(backbone, pool)))]
        labels = [D.gather_rows(torch.cat(labels) if labels else torch.zeros(0, dtype=torch.long))]
        rows = D.gather_rows(torch.tensor(rows, dtype=torch.long)).tolist()
        feats, labels = [f for f in feats if len(f)], [y for y in labels if len(y)]
    if not feats:
        raise ValueError(f"{description}: no clip could be read")
    return torch.cat(feats), torch.cat(labels), rows


def train_probe(features: torch.Tensor, labels: torch.Tensor, num_classes: int, cfg: LinearProbeConfig,
                seed: int) -> LinearProbe:
    """A linear classifier on standardised features (the mean/std are folded into the layer)."""
    mean, std = features.mean(0), features.std(0).clamp(min=1e-6)
    x = (features - mean) / std
    torch.manual_seed(derived_seed(seed, "probe init"))
    probe = LinearProbe(features.shape[1], num_classes)
    steps_per_epoch = math.ceil(len(x) / cfg.probe_batch_size)
    engine = Engine(probe, cfg.probe_optim, cfg.probe_epochs * steps_per_epoch)
    for epoch in range(cfg.probe_epochs):
        order = torch.randperm(len(x), generator=generator_for(seed, "probe order", epoch))
        for idx in order.split(cfg.probe_batch_size):
            loss = F.cross_entropy(probe(x[idx]), labels[idx])
            check_finite(epoch + 1, {"linear probe loss": loss.item()})
            engine.zero_grad()
            engine.backward(loss)
            engine.step()
    with torch.no_grad():  # fold the standardisation in: probe(features) works on raw features
        probe.fc.weight.div_(std)
        probe.fc.bias.sub_(probe.fc.weight @ mean)
    return probe


class _EndToEnd(torch.nn.Module):
    def __init__(self, backbone: EViLM, probe: LinearProbe, pool: str):
        super().__init__()
        self.backbone, self.probe, self.pool = backbone, probe, pool

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        out = self.backbone.fuse(video=self.backbone.encode_video(frames))
        return self.probe(pool_video(out, self.pool, self.backbone.config.num_frames))


def fine_tune_classifier(backbone: EViLM, probe: LinearProbe, dataset: Any, settings: FinetuneSettings, pool: str,
                         on_metrics: MetricsCallback | None, prefix: str) -> dict[str, float]:
    """Train ``backbone`` and ``probe`` end to end on the labelled clips."""
    model = _EndToEnd(backbone, probe, pool)

    def loss_fn(batch):
        logits = model(batch["frames"])
        return F.cross_entropy(logits.float(), batch["label"]), {
            "acc": (logits.detach().argmax(-1) == batch["label"]).float().mean()}

    return finetune(model, dataset, settings, loss_fn, on_metrics, prefix)


def run(config: LinearProbeConfig, inputs: dict[str, Any], out_dir: str | Path,
        on_metrics: MetricsCallback | None = None) -> StageResult:
    """Stage: frozen features of the train and test clips, a linear classifier, top-1 accuracy.

    Inputs: ``data`` (root), ``pretrained`` (model.pt; absent = a random frozen model, a floor).
    Under torch.distributed the ranks share the feature extraction; every rank trains the same probe
    on all the features (cheap, deterministic); rank 0 writes the files and reports the metrics.
    """
    settings = config.train
    bench = load_benchmark(config.benchmark, inputs["data"])
    classes = bench.classes
    start = load_start(inputs, settings)
    device = resolve_device(settings.device)
    prefix = f"{config.benchmark}_probe"
    metrics: dict[str, float] = {}
    if config.mode == "finetune":
        probe = LinearProbe(feature_dim(start.backbone, config.pool), len(classes))
        train_set = make_dataset("class", bench.train, start, settings, train=True, classes=classes)
        metrics.update(fine_tune_classifier(start.backbone, probe, train_set, settings, config.pool, on_metrics, prefix))
    train_set = make_dataset("class", bench.train, start, settings, train=False, classes=classes)
    test_set = make_dataset("class", bench.test, start, settings, train=False, classes=classes)
    x_train, y_train, _ = extract_features(start.backbone, train_set, settings, device, config.pool, f"{prefix} train")
    x_test, y_test, rows = extract_features(start.backbone, test_set, settings, device, config.pool, f"{prefix} test")
    if config.mode == "linear":
        probe = train_probe(x_train, y_train, len(classes), config, settings.seed)
    with torch.no_grad():
        train_acc = (probe(x_train).argmax(-1) == y_train).float().mean().item() * 100
        predicted = probe(x_test).argmax(-1)
    correct = (predicted == y_test).tolist()
    metrics |= {
        f"{prefix}/top1": 100.0 * sum(correct) / len(correct),
        f"{prefix}/train_top1": train_acc,
        f"{prefix}/chance": 100.0 / len(classes),
        f"{prefix}/majority": 100.0 * (y_test == torch.bincount(y_train).argmax()).float().mean().item(),
        f"{prefix}/test_items": float(len(correct)),
        f"{prefix}/test_skipped": float(len(bench.test) - len(correct)),
        f"{prefix}/pretrained": float(start.pretrained),
    }
    if D.on_main():
        report(on_metrics, metrics, 0)
    items = [{"index": r, "correct": int(c), "predicted": classes[int(p)], "label": classes[int(y)]}
             for r, c, p, y in zip(rows, correct, predicted.tolist(), y_test.tolist())]
    artifacts = finish(out_dir, metrics, {"metric": "correct", "items": items})
    return StageResult(metrics=metrics, artifacts=artifacts)
