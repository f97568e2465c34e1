import json
import math

import pytest
import torch

from evilm.tasks import task_config
from evilm.tasks.retrieval import contrastive_loss, rerank
from evilm.tasks.retrieval import run as run_retrieval


def test_contrastive_loss_hand_computed():
    video = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    text = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    same = torch.eye(2, dtype=torch.bool)
    # logits = 2 * I: each row's matched pair has softmax e^2 / (e^2 + 1), in both directions
    expected = -math.log(math.exp(2) / (math.exp(2) + 1))
    assert contrastive_loss(video, text, same, torch.tensor(2.0)).item() == pytest.approx(expected, abs=1e-6)


def test_contrastive_loss_counts_every_caption_of_a_video_as_a_match():
    video = torch.tensor([[1.0, 0.0], [1.0, 0.0]])  # the same video twice (two captions of it)
    text = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    same = torch.ones(2, 2, dtype=torch.bool)
    assert contrastive_loss(video, text, same, torch.tensor(5.0)).item() == pytest.approx(0.0, abs=1e-6)


def test_rerank_reorders_only_the_top_k():
    sim = torch.tensor([[0.9, 0.8, 0.7, 0.1]])
    # the scorer prefers column 2, then 1, then 0; column 3 is outside the top 3
    scores = {0: -1.0, 1: 0.5, 2: 3.0}
    out = rerank(sim, 3, lambda pairs: torch.tensor([scores[int(v)] for v in pairs[:, 1]]))
    assert out[0].argsort(descending=True).tolist() == [2, 1, 0, 3]


def test_finetuned_and_zero_shot_retrieval_on_the_smoke_world(smoke_world, smoke_model_file, tmp_path):
    cfg = task_config("retrieval", "smoke", {"mc_benchmark": "msrvtt_mc", "train": {"progress": False, "train_items": 8}})
    result = run_retrieval(cfg, {"data": smoke_world, "pretrained": smoke_model_file}, tmp_path / "ft")
    m = result.metrics
    assert m["msrvtt_ret/queries"] == 6 and m["msrvtt_ret/videos"] == 6
    assert 0 <= m["msrvtt_ret/R@1"] <= m["msrvtt_ret/R@5"] <= m["msrvtt_ret/R@10"] == 100.0
    per_item = json.loads(result.artifacts["per_item"].read_text())
    ranks = [item["rank"] for item in per_item["items"]]
    assert per_item["ties"] == "random" and len(ranks) == 6
    # R@1 gives a tie its expected share: 1 / (the tied videos) when none scores higher
    credit = [1 / (i["tied"] + 1) if i["higher"] == 0 else 0.0 for i in per_item["items"]]
    assert m["msrvtt_ret/R@1"] == pytest.approx(100 * sum(credit) / 6)
    assert m["msrvtt_ret/tied_queries"] == sum(i["tied"] > 0 for i in per_item["items"])
    mc = json.loads(result.artifacts["per_item_mc"].read_text())["items"]
    assert len(mc) == 6
    assert m["msrvtt_ret/msrvtt_mc_acc"] == pytest.approx(100 * sum(i["correct"] for i in mc) / 6)

    zs = task_config("retrieval", "smoke", {"mode": "zero_shot", "train": {"progress": False}})
    m = run_retrieval(zs, {"data": smoke_world, "pretrained": smoke_model_file}, tmp_path / "zs").metrics
    assert "msrvtt_ret_zs/R@1" in m and "msrvtt_ret_zs/train_loss" not in m


def test_zero_shot_without_a_pretrained_model_is_refused(smoke_world, tmp_path):
    cfg = task_config("retrieval", "smoke", {"mode": "zero_shot"})
    with pytest.raises(ValueError, match="no pretrained model"):
        run_retrieval(cfg, {"data": smoke_world}, tmp_path)
