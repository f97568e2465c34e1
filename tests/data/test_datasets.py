import shutil

import pytest
import torch

from evilm.data.catalog import load_benchmark, text_corpus
from evilm.data.datasets import DataConfig, build_dataset, make_loader
from evilm.data.records import DataError, VideoText
from evilm.data.synthetic import load_scenes, scene_labels
from evilm.data.text import TextTokenizer
from evilm.data.video import FrameConfig

FRAMES = FrameConfig(num_frames=4, image_size=32)


@pytest.fixture(scope="module")
def tokenizer(smoke_world):
    return TextTokenizer.build(text_corpus(smoke_world, ["webvid", "msrvtt_qa", "tgif_transition"]), 0.5)


def _config(**kw):
    return DataConfig(frames=FRAMES, batch_size=4, num_workers=0, **kw)


def test_batches_of_every_kind(smoke_world, tokenizer):
    cases = {"webvid": "train", "msrvtt_qa": "test", "tgif_transition": "train", "hmdb51": "test"}
    for name, split in cases.items():
        bench = load_benchmark(name, smoke_world)
        ds = build_dataset(bench.kind, bench.split(split), tokenizer, FRAMES, train=False, answers=bench.answers,
                           classes=bench.classes)
        batch = next(iter(make_loader(ds, _config())))
        b = len(batch["index"])
        assert batch["frames"].shape == (b, 4, 3, 32, 32) and batch["frames"].dtype == torch.float32
        if bench.kind in ("video_text", "qa"):
            assert batch["input_ids"].shape == batch["attention_mask"].shape and batch["input_ids"][:, 0].eq(2).all()
        if bench.kind == "qa":
            records = [bench.test[i] for i in batch["index"].tolist()]
            assert batch["answer_id"].tolist() == [bench.answers.encode(r.answer) for r in records]
        if bench.kind == "mc":
            assert batch["option_ids"].shape[:2] == (b, 5) and batch["answer"].max() < 5
            records = [bench.split(split)[i] for i in batch["index"].tolist()]
            alone = tokenizer.encode_batch([o for r in records for o in r.options], ds.max_text_len)
            assert torch.equal(batch["choice_ids"].flatten(0, 1), alone["input_ids"])  # each option without its question
        if bench.kind == "class":
            assert batch["label"].tolist() == [bench.classes.index(bench.test[i].label) for i in batch["index"]]


def test_loading_is_deterministic_across_worker_counts(smoke_world, tokenizer):
    bench = load_benchmark("webvid", smoke_world)
    ds = build_dataset("video_text", bench.train[:8], tokenizer, FRAMES, train=True, seed=5)
    runs = []
    for workers in (0, 2):
        cfg = DataConfig(frames=FRAMES, batch_size=4, num_workers=workers, seed=5)
        runs.append([b for b in make_loader(ds, cfg)])
    for a, b in zip(*runs):
        assert torch.equal(a["index"], b["index"]) and torch.equal(a["frames"], b["frames"])
    order = torch.cat([b["index"] for b in runs[0]])
    assert sorted(order.tolist()) == list(range(8)) and order.tolist() != list(range(8))  # shuffled in training


def test_epochs_draw_different_frames(smoke_world, tokenizer):
    bench = load_benchmark("webvid", smoke_world)
    ds = build_dataset("video_text", bench.train[:4], tokenizer, FRAMES, train=True)
    loader = make_loader(ds, _config(), shuffle=False)
    first, second = next(iter(loader)), next(iter(loader))
    assert torch.equal(first["index"], second["index"]) and not torch.equal(first["frames"], second["frames"])


def test_corrupt_and_missing_clips_are_skipped_and_counted(smoke_world, tokenizer, tmp_path, caplog):
    good = load_benchmark("webvid", smoke_world).train[:18]
    corrupt = tmp_path / "corrupt.mp4"
    shutil.copy(good[0].video_path, corrupt)
    corrupt.write_bytes(corrupt.read_bytes()[:300])  # truncated: header only
    records = good + [VideoText("bad", str(corrupt), "a broken clip", source="fixture.csv, row 20"),
                      VideoText("gone", str(tmp_path / "gone.mp4"), "a missing clip", source="fixture.csv, row 21")]
    ds = build_dataset("video_text", records, tokenizer, FRAMES, train=False)
    loader = make_loader(ds, _config(max_skip_fraction=0.1))  # 2 of 20 allowed
    seen = sum(len(b["index"]) for b in loader)
    assert seen == 18 and len(loader.skipped) == 2
    assert {s.path for s in loader.skipped} == {str(corrupt), str(tmp_path / "gone.mp4")}
    assert loader.stats()["clips_skipped"] == 2.0
    assert "skipped 2 of 20 clips" in caplog.text
    strict = make_loader(ds, _config(max_skip_fraction=0.05))  # 1 of 20 allowed
    with pytest.raises(DataError, match=r"2 of 20 clips could not be read.*corrupt\.mp4.*fixture\.csv, row 20"):
        list(strict)


def test_scene_labels_in_batches(smoke_world, tokenizer):
    scenes = load_scenes(smoke_world)
    labels = {vid: scene_labels(s) for vid, s in scenes.items()}
    bench = load_benchmark("msrvtt_qa", smoke_world)
    ds = build_dataset("qa", bench.test[:4], tokenizer, FRAMES, train=False, answers=bench.answers,
                       scene_labels=labels)
    batch = next(iter(make_loader(ds, _config())))
    record = bench.test[batch["index"][0]]
    assert batch["scene_action"][0].item() == labels[record.video_id]["action"]


def test_wrong_records_or_missing_parts_fail_clearly(smoke_world, tokenizer):
    bench = load_benchmark("msrvtt_qa", smoke_world)
    with pytest.raises(DataError, match="needs VideoText records"):
        build_dataset("video_text", bench.test, tokenizer, FRAMES, train=False)
    with pytest.raises(DataError, match="answer vocabulary"):
        build_dataset("qa", bench.test, tokenizer, FRAMES, train=False)
    with pytest.raises(DataError, match="unknown dataset kind"):
        build_dataset("caption", bench.test, tokenizer, FRAMES, train=False)
