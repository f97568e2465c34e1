"""The supervised ceiling's stage on the smoke world: every kind of benchmark, named as the task stages name it."""

import json

import pytest
import torch

from evilm.config import ConfigError
from evilm.data.catalog import load_benchmark
from evilm.models.video_encoder import create_backbone
from evilm.models.weights import save_backbone
from evilm.tasks.config import supervised_config
from evilm.tasks.supervised import run

# one benchmark of each kind, and MSRVTT-MC (trained on retrieval captions); its metric as a report reads it
CASES = [("msrvtt_qa", "msrvtt_qa/acc", "correct"), ("tgif_action", "tgif_action/acc", "correct"),
         ("msrvtt_mc", "msrvtt_mc/acc", "correct"), ("msrvtt_ret", "msrvtt_ret/R@10", "rank"),
         ("hmdb51", "hmdb51_probe/top1", "correct")]


@pytest.fixture(scope="module")
def image_prior(tmp_path_factory):
    """A backbone file as the image prior writes it (the smoke profile's backbone, untrained)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("prior") / "backbone.pt"
    return save_backbone(path, "edgenext_xx_small", create_backbone("edgenext_xx_small"))


@pytest.mark.parametrize("name,metric,per_item", CASES)
def test_each_benchmark_trains_and_scores_every_test_item(smoke_world, image_prior, tmp_path, name, metric, per_item):
    config = supervised_config("smoke", {"benchmark": name, "train": {"progress": False}})
    result = run(config, {"data": smoke_world, "video_init": image_prior}, tmp_path)
    assert 0.0 <= result.metrics[metric] <= 100.0
    assert result.metrics[f"{metric.split('/')[0]}/train_steps"] > 0
    items = json.loads((tmp_path / "per_item.json").read_text())
    assert items["metric"] == per_item
    test_set = load_benchmark(name, smoke_world).test
    assert sorted(item["index"] for item in items["items"]) == list(range(len(test_set)))


def test_the_same_seed_gives_the_same_numbers(smoke_world, image_prior, tmp_path):
    config = supervised_config("smoke", {"benchmark": "tgif_action", "train": {"progress": False}})
    first = run(config, {"data": smoke_world, "video_init": image_prior}, tmp_path / "a").metrics
    again = run(config, {"data": smoke_world, "video_init": image_prior}, tmp_path / "b").metrics
    timing = {"tgif_action/train_clips_per_s"}
    assert {k: v for k, v in first.items() if k not in timing} == {k: v for k, v in again.items() if k not in timing}


def test_the_appearance_stream_needs_the_image_prior_and_runs_without_one_when_switched_off(smoke_world, tmp_path):
    config = supervised_config("smoke", {"benchmark": "hmdb51", "train": {"progress": False}})
    with pytest.raises(ConfigError, match="model.appearance"):
        run(config, {"data": smoke_world}, tmp_path / "a")
    config = supervised_config("smoke", {"benchmark": "hmdb51", "model": {"appearance": None},
                                         "train": {"progress": False}})
    assert 0.0 <= run(config, {"data": smoke_world}, tmp_path / "b").metrics["hmdb51_probe/top1"] <= 100.0
