import json

import pytest
import torch

from evilm.config import ConfigError
from evilm.tasks import task_config
from evilm.tasks.qa import run as run_qa


def test_qa_from_scratch_reports_overall_and_per_type_accuracy(smoke_world, tmp_path):
    cfg = task_config("qa", "smoke", {"benchmark": "tgif_frame", "train": {"progress": False, "train_items": 8}})
    result = run_qa(cfg, {"data": smoke_world}, tmp_path)
    m = result.metrics
    assert m["tgif_frame/pretrained"] == 0.0
    items = json.loads(result.artifacts["per_item"].read_text())["items"]
    assert len(items) == m["tgif_frame/test_items"] == 12
    assert m["tgif_frame/acc"] == pytest.approx(100 * sum(i["correct"] for i in items) / len(items))
    for kind in {i["type"] for i in items}:
        of_kind = [i["correct"] for i in items if i["type"] == kind]
        assert m[f"tgif_frame/acc_{kind}"] == pytest.approx(100 * sum(of_kind) / len(of_kind))
    assert m["tgif_frame/train_steps"] == 2  # train_items=8 at batch 4, one epoch

    torch.manual_seed(123)  # the global RNG state before a stage must not matter
    again = run_qa(cfg, {"data": smoke_world}, tmp_path / "again")
    timing = {"tgif_frame/train_clips_per_s"}
    assert {k: v for k, v in again.metrics.items() if k not in timing} == {k: v for k, v in m.items() if k not in timing}
    assert json.loads(again.artifacts["per_item"].read_text())["items"] == items


def test_qa_refuses_a_benchmark_of_another_task():
    with pytest.raises(ConfigError, match="benchmark"):
        task_config("qa", "smoke", {"benchmark": "msrvtt_ret"})
