import pytest
import torch

from evilm.models import create_model
from evilm.profiling.paths import PATH_LABELS
from evilm.profiling.retrieval_speed import (
    TextEmbedder,
    VideoEmbedder,
    caption_batch,
    encode_throughput,
    markdown,
    ranking_seconds,
)
from evilm.tasks.metrics import retrieval_ranks
from evilm.tasks.retrieval import RetrievalModel


def test_embedders_are_the_retrieval_models_unimodal_encoders():
    torch.manual_seed(0)
    retrieval = RetrievalModel(create_model("smoke"), embed_dim=16, temperature=0.05).eval()
    c = retrieval.backbone.config
    frames = torch.rand(2, c.num_frames, 3, c.image_size, c.image_size)
    ids, mask = caption_batch(3, c.max_text_len, c.text.vocab_size)
    assert bool((mask == 0).any())  # some captions are padded
    with torch.no_grad():
        v = VideoEmbedder(retrieval.backbone, retrieval.head)(frames)
        t = TextEmbedder(retrieval.backbone, retrieval.head)(ids, mask)
        assert torch.equal(v, retrieval.embed_videos(frames))
        assert torch.equal(t, retrieval.embed_texts(ids, mask))
    assert torch.allclose(v.norm(dim=-1), torch.ones(2))


def test_encode_throughput_checks_each_path():
    torch.manual_seed(0)
    results = encode_throughput(
        create_model("smoke").eval(),
        ["fp32_eager", "onnxruntime"],
        video_batch=2,
        text_batch=4,
        embed_dim=16,
        repeats=1,
    )
    assert [(r.modality, r.path) for r in results] == [
        ("video", "fp32_eager"),
        ("video", "onnxruntime"),
        ("text", "fp32_eager"),
        ("text", "onnxruntime"),
    ]
    for r in results:
        assert r.within_tolerance and r.items_per_s > 0 and len(r.times_ms) == 1
    text = markdown(results, {"median_s": 0.01, "max_s": 0.02}, tie_rule="pessimistic")
    assert PATH_LABELS["onnxruntime"] in text and "(< 1 s)" in text


def test_ranking_runs_the_given_rank_function():
    calls = []

    def rank(similarity):
        calls.append(similarity.shape)
        return retrieval_ranks(similarity, ties="pessimistic")

    out = ranking_seconds(rank, n_texts=50, n_videos=50, embed_dim=8, repeats=2)
    assert calls == [(50, 50)] * 3  # a warm-up and two timed rounds
    assert 0 < out["median_s"] <= out["max_s"]
    with pytest.raises(ValueError, match="shape"):
        ranking_seconds(lambda s: s, n_texts=4, n_videos=4, repeats=1)
