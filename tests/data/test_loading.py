import torch

from evilm.data import FrameConfig, TextTokenizer, build_dataset, load_benchmark, text_corpus
from evilm.data.loading import CachedClips


def test_cached_clips_decode_each_video_once_and_match_a_fresh_read(smoke_world, monkeypatch):
    bench = load_benchmark("msrvtt_qa", smoke_world)
    records = bench.test
    assert len({r.video_path for r in records}) < len(records)  # several questions per video
    words = TextTokenizer.build(text_corpus(smoke_world), keep_fraction=1.0)
    make = lambda: build_dataset("qa", records, words, FrameConfig(num_frames=2, image_size=64),  # noqa: E731
                                 train=False, answers=bench.answers)
    fresh, cached = make(), CachedClips(make())
    import evilm.data.datasets as datasets

    decoded = []
    real_load = datasets.load_clip
    monkeypatch.setattr(datasets, "load_clip", lambda path, *a, **k: decoded.append(path) or real_load(path, *a, **k))
    items = [cached[i] for i in range(len(records))]
    assert sorted(decoded) == sorted({r.video_path for r in records})
    for i, item in enumerate(items):
        reference = fresh[i]
        assert item["text"] == reference["text"] and item["answer_id"] == reference["answer_id"]
        assert torch.allclose(item["frames"], reference["frames"], atol=1 / 510)
