import json
import math

import pytest
import torch

from evilm.tasks import task_config
from evilm.tasks.metrics import rank_queries, retrieval_metrics
from evilm.tasks.retrieval import contrastive_loss, rerank, vtm_scores
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


def test_vtm_scores_pad_texts_of_any_length_and_agree_under_bf16():
    from evilm.models import create_model
    from evilm.models.heads import VTMHead

    torch.manual_seed(0)
    backbone = create_model("smoke", text={"vocab_size": 50}).eval()
    head = VTMHead(backbone.width).eval()
    w = backbone.width
    # texts encoded in batches of different padded lengths, as encode_test_set stores them
    enc = {"text_tokens": [torch.randn(5, w), torch.randn(9, w), torch.randn(7, w)],
           "text_masks": [torch.tensor([1, 1, 1, 0, 0]), torch.ones(9, dtype=torch.long), torch.ones(7, dtype=torch.long)],
           "video_tokens": [torch.randn(8, w) for _ in range(4)]}
    pairs = torch.stack(torch.meshgrid(torch.arange(3), torch.arange(4), indexing="ij"), -1).reshape(-1, 2)
    cpu = torch.device("cpu")
    scores = vtm_scores(backbone, head, enc, pairs, cpu, batch_size=5)
    with torch.no_grad():  # one pair at a time, at its own length: padding must change nothing
        alone = torch.stack([head.match_score(backbone.fuse(
            video=enc["video_tokens"][v][None], text=enc["text_tokens"][q][None],
            text_mask=enc["text_masks"][q][None]).cls)[0] for q, v in pairs.tolist()])
    assert torch.allclose(scores, alone, atol=1e-4)
    bf16 = vtm_scores(backbone, head, enc, pairs, cpu, batch_size=5, amp_dtype=torch.bfloat16)
    assert bf16.dtype == torch.float32 and torch.allclose(bf16, scores, atol=0.1)


def test_recall_at_10_of_a_hand_made_ranking_of_more_than_10_videos():
    """The stage's ranking (texts @ videos.T, then rank_queries) on hand-made embeddings: with 12
    videos, R@10 can and here does fall short of 100."""
    n = 12
    videos = torch.eye(n)
    # text i matches video i with similarity 1 and scores i other videos higher (similarity 2):
    # its correct video is at rank i + 1
    texts = torch.eye(n)
    for i in range(n):
        others = [j for j in range(n) if j != i][:i]
        texts[i, others] = 2.0
    ranking = rank_queries(texts @ videos.T)
    assert ranking.ranks().tolist() == [float(i + 1) for i in range(n)]
    m = retrieval_metrics(ranking)
    assert m["R@1"] == pytest.approx(100 / 12) and m["R@5"] == pytest.approx(500 / 12)
    assert m["R@10"] == pytest.approx(1000 / 12) and m["MdR"] == 6.5 and m["tied_queries"] == 0


def test_finetuned_and_zero_shot_retrieval_on_the_smoke_world(smoke_world, smoke_model_file, tmp_path):
    cfg = task_config("retrieval", "smoke", {"mc_benchmark": "msrvtt_mc", "train": {"progress": False, "train_items": 8}})
    result = run_retrieval(cfg, {"data": smoke_world, "pretrained": smoke_model_file}, tmp_path / "ft")
    m = result.metrics
    assert m["msrvtt_ret/queries"] == 6 and m["msrvtt_ret/videos"] == 6
    # 6 candidates: every rank is <= 6, so R@10 = 100 whatever the model does (it is its chance level)
    assert m["msrvtt_ret/chance_R@10"] == 100.0 and m["msrvtt_ret/chance_R@5"] == pytest.approx(500 / 6)
    per_item = json.loads(result.artifacts["per_item"].read_text())
    items = per_item["items"]
    assert per_item["ties"] == "random" and len(items) == 6
    # each query's place among the 6 videos: h strictly higher, t others tied, 1 + h + t <= 6
    assert all(i["higher"] + i["tied"] <= 5 and i["rank"] == 1 + i["higher"] + i["tied"] / 2 for i in items)
    # every R@k and rank statistic recomputed by hand from those places: a random tie-break puts the
    # correct video at each of its t + 1 tied places with equal chance
    for k in (1, 5, 10):
        credit = [max(0, min(k - i["higher"], i["tied"] + 1)) / (i["tied"] + 1) for i in items]
        assert m[f"msrvtt_ret/R@{k}"] == pytest.approx(100 * sum(credit) / 6), k
    ranks = sorted(i["rank"] for i in items)
    assert m["msrvtt_ret/MnR"] == pytest.approx(sum(ranks) / 6)
    assert m["msrvtt_ret/MdR"] == pytest.approx((ranks[2] + ranks[3]) / 2)
    assert m["msrvtt_ret/tied_queries"] == sum(i["tied"] > 0 for i in items)
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
