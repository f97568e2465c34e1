import numpy as np
import pytest

from evilm.data import captions as lang
from evilm.data.scenes import sample_scene
from evilm.data.text import count_words


def _scenes(n=300, seed=0, **kw):
    rng = np.random.default_rng(seed)
    return [sample_scene(rng, f"v{i}", "test", 16, num_objects=1 + i % 3, two_actions_prob=0.3, **kw).info()
            for i in range(n)]


def test_captions_are_webvid_length_varied_and_long_tailed():
    scenes = _scenes()
    caps = [lang.caption(s, np.random.default_rng(i)) for i, s in enumerate(scenes)]
    lengths = np.array([len(c.split()) for c in caps])
    assert 13 <= lengths.mean() <= 18
    assert np.mean((lengths >= 10) & (lengths <= 22)) > 0.9
    assert len(set(caps)) == len(caps)
    counts = count_words(caps)
    freq = np.array(sorted(counts.values(), reverse=True))
    assert freq[0] > 20 * np.median(freq)  # a few very frequent words, a long tail
    assert (freq <= 3).sum() >= 10
    # the caption names the main object's shape (some synonym) in nearly every case
    named = [any(w in c.lower() for w in lang.SHAPE_WORDS[s.main_object.shape]) for s, c in zip(scenes, caps)]
    assert np.mean(named) > 0.95


def test_questions_need_the_video():
    for i, scene in enumerate(_scenes(200, seed=1)):
        for question, answer in lang.open_questions(scene, (0.5, 0.5), np.random.default_rng(i)):
            assert answer not in question.replace("?", " ").split(), (question, answer)
        for question, answer, kind in lang.frame_questions(scene, (0.2, 0.5), np.random.default_rng(i)):
            assert answer not in question.split() and kind in (0, 1, 2, 3)


def test_action_and_transition_options_hold_the_answer_among_same_kind_distractors():
    rng = np.random.default_rng(2)
    scene = sample_scene(rng, "v", "test", 16, 1, ["move_left"], repeats=3).info()
    question, options, answer = lang.action_question(scene, rng)
    assert "three times" in question and len(set(options)) == 5
    assert options[answer] == lang.ACTION_BASE["move_left"]
    assert set(options) <= {lang.ACTION_BASE[a] for a in lang.REPEATABLE}
    scene = sample_scene(rng, "v", "test", 16, 1, ["grow", "blink"]).info()
    for _ in range(20):
        (q1, o1, a1), (q2, o2, a2) = lang.transition_questions(scene, rng)
        assert "before blink" in q1 and o1[a1] == "grow bigger" and "blink" not in o1
        assert "after grow bigger" in q2 and o2[a2] == "blink" and "grow bigger" not in o2
        # a first action is never "leave", a second never "enter": neither may stand out as a distractor
        assert lang.ACTION_BASE["leave"] not in o1 and lang.ACTION_BASE["enter"] not in o2


def test_transition_distractors_are_not_done_by_the_clips_other_objects():
    """A wrong option another object performs would make the item ask which object did it."""
    rng, checked = np.random.default_rng(5), 0
    for i in range(200):
        info = sample_scene(rng, f"v{i}", "test", 16, 3, two_actions_prob=1.0).info()
        elsewhere = {lang.ACTION_BASE[a] for j, o in enumerate(info.objects) if j != info.main for a in o.actions}
        for _, options, answer in lang.transition_questions(info, rng):
            if len(elsewhere - {options[answer]}) <= 6:  # enough actions left to avoid them all
                assert not (set(options) - {options[answer]}) & elsewhere, (options, elsewhere)
                checked += 1
    assert checked > 300


def test_choice_set_draws_distractors_from_the_pool_and_places_the_answer_evenly():
    pool = [f"caption {i}" for i in range(30)]
    positions = []
    for seed in range(200):
        options, answer = lang.choice_set("caption 3", pool, np.random.default_rng(seed))
        assert len(set(options)) == 5 and options[answer] == "caption 3" and set(options) <= set(pool)
        positions.append(answer)
    assert np.bincount(positions, minlength=5).min() > 25  # each position about 1/5 of the time
    assert lang.choice_set("caption 3", pool, np.random.default_rng(1)) == lang.choice_set(
        "caption 3", pool, np.random.default_rng(1))
    with pytest.raises(ValueError, match="distractors"):
        lang.choice_set("a", ["a", "b", "c"], np.random.default_rng(0))


def test_full_captions_name_every_attribute_of_the_main_object():
    for i, scene in enumerate(_scenes(100, seed=4)):
        text = lang.caption(scene, np.random.default_rng(i), full=True).lower()
        obj = scene.main_object
        for words in (lang.SIZE_WORDS[obj.size], lang.COLOUR_WORDS[obj.colour], lang.TEXTURE_WORDS[obj.texture],
                      lang.SHAPE_WORDS[obj.shape]):
            assert any(w in text for w in words), (text, obj)
