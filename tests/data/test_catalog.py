import os
import shutil

import pytest

from evilm.data.catalog import (
    BENCHMARKS,
    TASKS,
    annotation_fingerprint,
    check_benchmark,
    load_benchmark,
    text_corpus,
)
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


def test_every_benchmark_of_the_generated_world_passes_the_check(smoke_world):
    for name in BENCHMARKS:
        check = check_benchmark(name, smoke_world, sample=3)
        assert check.ok and check.counts["test"] > 0 and check.videos_sampled > 0, check.summary()
    assert len(annotation_fingerprint(BENCHMARKS, smoke_world)) == 64


def test_text_corpus_has_captions_and_questions(smoke_world):
    corpus = text_corpus(smoke_world, ["webvid", "msrvtt_qa", "tgif_action"])
    assert any(t.endswith("?") for t in corpus) and len(corpus) > 30


# --- real data roots as downloaded ----------------------------------------------------------------


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"video")
    return path


def _hmdb_root(root):
    splits = root / "hmdb51/testTrainMulti_7030_splits"
    splits.mkdir(parents=True)
    for label in ("brush_hair", "cartwheel"):
        (splits / f"{label}_test_split1.txt").write_text(f"{label}_a.avi 1 \n{label}_b.avi 2 \n{label}_c.avi 0 \n")
        (splits / f"{label}_test_split2.txt").write_text(f"{label}_a.avi 2 \n{label}_b.avi 1 \n")
        for name in "ab":
            _touch(root / f"hmdb51/videos/{label}/{label}_{name}.avi")
    return root


def test_kinetics_annotation_names_of_other_releases(tmp_path):
    ann = tmp_path / "k400/annotations"
    ann.mkdir(parents=True)
    header = "label,youtube_id,time_start,time_end,split\n"
    (ann / "kinetics_train.csv").write_text(header + "abseiling,0wR5jVB-WPk,417,427,train\n")
    (ann / "val.csv").write_text(header + "air drumming,--nQbRBEz2s,104,114,val\n")
    clip = _touch(tmp_path / "k400/videos/validate/air_drumming/--nQbRBEz2s_000104_000114.mp4")
    bench = load_benchmark("k400", tmp_path)
    assert [r.label for r in bench.train] == ["abseiling"] and [r.video_path for r in bench.test] == [str(clip)]
    (ann / "val.csv").unlink()
    with pytest.raises(DataError, match=r"validate\.csv: annotation file not found \(also looked for: .*val\.csv, "
                                        r".*kinetics_val\.csv\)"):
        load_benchmark("k400", tmp_path)


def test_msrvtt_mc_from_jsfusions_csv(tmp_path):
    mc = tmp_path / "msrvtt/mc"
    mc.mkdir(parents=True)
    (mc / "MSR_MC_test.csv").write_text("key\tvid_key\tvideo_id\ta1\ta2\ta3\ta4\ta5\tanswer\n"
                                        "mc0\tmsr7010\tvideo7010\ta\tb\tc\td\te\t3\n")
    [item] = load_benchmark("msrvtt_mc", tmp_path).test
    assert (item.video_id, item.answer, item.video_path) == ("video7010", 3, str(tmp_path / "msrvtt/videos/all/video7010.mp4"))


def test_annotation_fingerprint_follows_the_annotation_files_only(tmp_path):
    root = _hmdb_root(tmp_path / "a")
    first = annotation_fingerprint("hmdb51", root)
    assert first == annotation_fingerprint("hmdb51", root) and len(first) == 64
    _touch(root / "hmdb51/videos/brush_hair/new.avi")  # videos are not annotations
    assert annotation_fingerprint("hmdb51", root) == first
    # the same bytes elsewhere: the same fingerprint (paths are taken relative to the root)
    copy = tmp_path / "b"
    shutil.copytree(root, copy)
    assert annotation_fingerprint("hmdb51", copy) == first
    # an edit that keeps size and modification time still shows (small files are hashed by content)
    split = root / "hmdb51/testTrainMulti_7030_splits/cartwheel_test_split1.txt"
    stat = split.stat()
    split.write_text(split.read_text().replace("_a.avi 1", "_a.avi 2"))
    os.utime(split, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert annotation_fingerprint("hmdb51", root) != first
    # big files (here: all of them) are taken by size and modification time
    big = annotation_fingerprint("hmdb51", copy, hash_limit=0)
    os.utime(copy / "hmdb51/testTrainMulti_7030_splits/cartwheel_test_split1.txt", ns=(1, 10**18))
    assert annotation_fingerprint("hmdb51", copy, hash_limit=0) != big


def test_annotation_fingerprint_counts_absent_optional_files_and_takes_sets_of_benchmarks(smoke_world, tmp_path):
    root = tmp_path / "world"
    shutil.copytree(smoke_world / "msrvtt/qa", root / "msrvtt/qa")
    shutil.copytree(smoke_world / "tgif/dataset", root / "tgif/dataset")
    before = annotation_fingerprint("msrvtt_qa", root)
    (root / "msrvtt/qa/val_qa.json").unlink()  # optional: loading still works, but reads less
    assert annotation_fingerprint("msrvtt_qa", root) != before
    both = annotation_fingerprint(["tgif_frame", "msrvtt_qa"], root)
    assert both == annotation_fingerprint(["msrvtt_qa", "tgif_frame"], root)
    assert both != annotation_fingerprint("msrvtt_qa", root)
    # path options are honoured: the files are read from qa_dir, not from the (empty) default place
    moved = annotation_fingerprint("msrvtt_qa", tmp_path, options={"msrvtt_qa": {"qa_dir": root / "msrvtt/qa"}})
    assert moved != annotation_fingerprint("msrvtt_qa", tmp_path)


def test_check_benchmark_counts_splits_and_samples_videos(tmp_path):
    root = _hmdb_root(tmp_path)
    check = check_benchmark("hmdb51", root, sample=10)
    assert check.ok and check.counts == {"train": 2, "val": 0, "test": 2}
    assert (check.videos_sampled, check.missing) == (4, [])
    (root / "hmdb51/videos/cartwheel/cartwheel_b.avi").unlink()
    check = check_benchmark("hmdb51", root, sample=10)
    assert not check.ok and len(check.missing) == 1
    assert check.problems == [f"hmdb51 test: 1 of 2 sampled videos are missing or empty (more than 5%), "
                              f"e.g. {root / 'hmdb51/videos/cartwheel/cartwheel_b.avi'}"]
    assert check_benchmark("hmdb51", root, sample=10, split=2).counts == {"train": 2, "val": 0, "test": 2}
    assert "hmdb51: train 2, val 0, test 2; 1 of 4 sampled videos missing\n  - hmdb51 test" in check.summary()


def test_check_benchmark_samples_the_same_videos_for_a_seed(tmp_path, smoke_world):
    splits = tmp_path / "hmdb51/testTrainMulti_7030_splits"
    splits.mkdir(parents=True)
    (splits / "run_test_split1.txt").write_text("".join(f"v{i}.avi {1 + i % 2}\n" for i in range(40)))
    for i in range(0, 40, 2):  # half the clips are there
        _touch(tmp_path / f"hmdb51/videos/run/v{i}.avi")
    missing = [check_benchmark("hmdb51", tmp_path, sample=5, seed=seed, max_missing=1.0).missing
               for seed in (0, 0, 1, 2, 3)]
    assert missing[0] == missing[1] and len({tuple(m) for m in missing}) > 1
    assert all(m.endswith(tuple(f"v{i}.avi" for i in range(1, 40, 2))) for m in missing[0])
    webvid = check_benchmark("webvid", smoke_world, sample=5)
    # train and val are sampled; the test split is val, sampled once
    assert webvid.ok and webvid.videos_sampled == min(5, webvid.counts["train"]) + min(5, webvid.counts["val"]) == 9


def test_check_benchmark_reports_bad_data_instead_of_raising(tmp_path):
    root = _hmdb_root(tmp_path)
    (root / "hmdb51/testTrainMulti_7030_splits/cartwheel_test_split1.txt").write_bytes(b"caf\xe9.avi 1\n")
    check = check_benchmark("hmdb51", root)
    assert not check.ok and check.counts == {}
    assert check.problems[0].endswith("line 1: not UTF-8 text (byte 0xe9 at offset 3); "
                                      "convert it to UTF-8, e.g. `iconv -f latin1 -t utf-8 OLD > NEW` (if it is Latin-1)")
    assert "cartwheel_test_split1.txt" in check.problems[0]
    assert check_benchmark("didemo_ret", tmp_path / "nowhere").problems == [f"{tmp_path / 'nowhere'}: data root not found"]
    with pytest.raises(DataError, match="unknown benchmark 'hmdb'"):
        check_benchmark("hmdb", root)
    with pytest.raises(DataError, match="unknown option"):
        check_benchmark("hmdb51", root, videos="x")
