import os

import pytest

from evilm.data.catalog import BENCHMARKS, TASKS, load_benchmark, text_corpus
from evilm.data.records import ClassItem, DataError, MCItem, QAItem, VideoText

TYPES = {"video_text": VideoText, "qa": QAItem, "mc": MCItem, "class": ClassItem}


def test_every_benchmark_reads_back_from_the_generated_world(smoke_world):
    assert set(BENCHMARKS) == {"webvid", "msrvtt_ret", "msrvtt_qa", "msvd_qa", "tgif_action", "tgif_transition",
                               "tgif_frame", "msrvtt_mc", "didemo_ret", "hmdb51", "k400"}
    for name in BENCHMARKS:
        bench = load_benchmark(name, smoke_world)
        assert bench.kind == TASKS[name]
        assert bench.test and (bench.train or name == "msrvtt_mc"), name
        for record in bench.train + bench.val + bench.test:
            assert isinstance(record, TYPES[bench.kind])
            assert record.video_path.endswith(".mp4")
        missing = [r.video_path for r in bench.train + bench.test if not os.path.isfile(r.video_path)]
        assert not missing, (name, missing[:2])


def test_splits_are_disjoint_and_shaped_like_the_benchmarks(smoke_world):
    ret = load_benchmark("msrvtt_ret", smoke_world)
    assert len({r.video_id for r in ret.test}) == len(ret.test)  # 1k-A: one caption per test video
    assert len(ret.train) > len({r.video_id for r in ret.train})  # several captions per training video
    assert not {r.video_id for r in ret.train} & {r.video_id for r in ret.test}
    seven = load_benchmark("msrvtt_ret", smoke_world, train_split="7k")
    assert len({r.video_id for r in seven.train}) < len({r.video_id for r in ret.train})
    qa = load_benchmark("msrvtt_qa", smoke_world)
    assert qa.answers.num_classes == len(qa.answers.answers) + 1
    assert {r.video_id for r in qa.test} == {r.video_id for r in ret.test}  # QA shares the MSRVTT videos
    mc = load_benchmark("msrvtt_mc", smoke_world)
    assert all(len(r.options) == 5 and 0 <= r.answer < 5 for r in mc.test)
    for name in ("tgif_action", "tgif_transition"):
        bench = load_benchmark(name, smoke_world)
        assert all(len(r.options) == 5 and r.question for r in bench.train + bench.test)
    hmdb, k400 = load_benchmark("hmdb51", smoke_world), load_benchmark("k400", smoke_world)
    assert len(hmdb.classes) == 13 and len(k400.classes) == 20
    assert {r.label for r in hmdb.test} == set(hmdb.classes)


def test_options_and_errors(smoke_world, tmp_path):
    small = load_benchmark("tgif_frame", smoke_world, top_k=3)
    assert small.answers.num_classes == 4
    with pytest.raises(DataError, match="unknown benchmark 'msrvtt_q'"):
        load_benchmark("msrvtt_q", smoke_world)
    with pytest.raises(DataError, match="unknown option"):
        load_benchmark("hmdb51", smoke_world, videos="x")
    with pytest.raises(DataError, match="train_split"):
        load_benchmark("msrvtt_ret", smoke_world, train_split="8k")
    with pytest.raises(DataError, match="annotation file not found"):
        load_benchmark("webvid", tmp_path)


def test_text_corpus_has_captions_and_questions(smoke_world):
    corpus = text_corpus(smoke_world, ["webvid", "msrvtt_qa", "tgif_action"])
    assert any(t.endswith("?") for t in corpus) and len(corpus) > 30
