"""The generated world as a benchmark: its tasks need the video and its test sets are large.

The quick world's annotations are written without rendering a pixel (a few seconds) and read back
through the real readers; video-blind rules must stay near chance. A template that starts to give
its answer away fails here.
"""

from collections import Counter

import pytest

from evilm.data.catalog import load_benchmark
from evilm.data.synthetic import WorldConfig, plan_world
from evilm.data.text_rules import mc_rules, qa_rules
from evilm.data.world_annotations import Context, write_annotations


@pytest.fixture(scope="module")
def quick_annotations(tmp_path_factory):
    config = WorldConfig(profile="quick")
    clips = plan_world(config)
    root = tmp_path_factory.mktemp("quick-annotations")
    write_annotations(clips, root, Context(config.seed, config.frames, config.fps))
    return root, clips


@pytest.mark.parametrize("name", ["msrvtt_qa", "msvd_qa", "tgif_frame"])
def test_qa_text_alone_gets_the_template_prior_and_no_more(quick_annotations, name):
    bench = load_benchmark(name, quick_annotations[0])
    assert len(bench.test) >= 1000
    scores = {r.name: r.accuracy for r in qa_rules(bench.train, bench.test)}
    chance = scores["uniform within template (chance)"]
    assert chance < 30
    for rule in ("majority answer", "best answer per template", "best answer per question"):
        assert scores[rule] <= chance + 5, (rule, scores)


@pytest.mark.parametrize("name", ["msrvtt_mc", "tgif_action", "tgif_transition"])
def test_multiple_choice_options_do_not_give_the_answer_away(quick_annotations, name):
    bench = load_benchmark(name, quick_annotations[0])
    assert len(bench.test) >= 500
    for rule in mc_rules(bench.train, bench.test):
        assert rule.accuracy <= 20 + 5, rule


def test_retrieval_test_sets_have_one_right_video_per_caption(quick_annotations):
    root, clips = quick_annotations
    for name, fields in (("msrvtt_ret", ("size", "colour", "texture", "shape", "actions")),
                         ("didemo_ret", ("colour", "shape", "actions"))):
        test = load_benchmark(name, root).test
        assert len(test) >= 500 and len({r.video_id for r in test}) == len(test)
        ids = {r.video_id for r in test}
        said = [tuple(str(getattr(c.scene.main_object, f)) for f in fields) for c in clips if c.video_id in ids]
        assert len(said) == len(test) and len(set(said)) == len(said), name


def test_probe_classes_are_balanced_and_test_splits_large(quick_annotations):
    for name in ("hmdb51", "k400"):
        bench = load_benchmark(name, quick_annotations[0])
        assert len(bench.test) >= 500
        for split in (bench.train, bench.test):
            counts = Counter(r.label for r in split)
            assert len(counts) == len(bench.classes) and len(set(counts.values())) == 1, (name, counts)


def test_counts_and_locations_asked_about_are_balanced(quick_annotations):
    clips = quick_annotations[1]
    for pool in ("msrvtt", "msvd", "tgif"):
        counts = Counter(len(c.scene.objects) for c in clips if c.pool == pool)
        assert max(counts.values()) / min(counts.values()) < 1.25, (pool, counts)
    frame = load_benchmark("tgif_frame", quick_annotations[0]).test
    where = Counter(r.answer for r in frame if r.answer_type == "location")
    assert len(where) == 5 and max(where.values()) / min(where.values()) < 1.5, where
