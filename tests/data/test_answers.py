import pytest

from evilm.data.answers import OOV, TOP_K, AnswerVocab
from evilm.data.records import DataError


def test_top_k_answers_plus_one_oov_class(tmp_path):
    answers = ["man"] * 5 + ["dog"] * 3 + ["cat"] * 3 + ["Tree"] * 1
    vocab = AnswerVocab.build(answers, top_k=3)
    assert vocab.answers == ["man", "cat", "dog"]  # by count, ties alphabetical
    assert vocab.num_classes == 4 and vocab.oov_id == 3
    assert vocab.encode("Man ") == 0 and vocab.encode("tree") == vocab.oov_id
    assert vocab.is_oov("tree") and not vocab.is_oov("dog")
    assert vocab.decode(3) == OOV
    assert vocab.coverage(["man", "tree"]) == 0.5
    again = AnswerVocab.load(vocab.save(tmp_path / "answers.json"))
    assert again.answers == vocab.answers
    with pytest.raises(DataError):
        AnswerVocab.build([], 10)


def test_field_sizes():
    assert TOP_K == {"msrvtt_qa": 1500, "msvd_qa": 1000, "tgif_frame": 1540}
