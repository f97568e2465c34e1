import pickle

import pytest
import torch

from evilm.data.catalog import load_benchmark
from evilm.data.loading import build_text_tokenizer
from evilm.data.records import DataError
from evilm.data.text import (
    CLS_ID,
    MASK_ID,
    NUM_SPECIAL,
    PAD_ID,
    SEP_ID,
    UNK_ID,
    TextTokenizer,
    build_vocab,
    count_words,
    mask_tokens,
)

CORPUS = ["A red star spins.", "a red square moves left", "The red circle, a star", "a blue star"]


def test_vocab_keeps_top_fraction_of_words_after_specials():
    counts = count_words(CORPUS)
    assert counts["a"] == 4 and counts["red"] == 3 and counts["star"] == 3 and counts["."] == 1
    vocab = build_vocab(CORPUS, keep_fraction=0.3)
    distinct = len(counts)
    assert vocab[:NUM_SPECIAL] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert len(vocab) - NUM_SPECIAL == -(-3 * distinct // 10)  # ceil(0.3 * distinct)
    assert vocab[NUM_SPECIAL:NUM_SPECIAL + 3] == ["a", "red", "star"]  # by count, ties alphabetical
    with pytest.raises(DataError):
        build_vocab([""], 0.3)


def test_encode_layout_cls_words_sep_pad_and_unknown_words():
    tok = TextTokenizer.build(CORPUS, keep_fraction=1.0)
    batch = tok.encode_batch(["A RED star", "a zebra"], max_len=8)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert ids.dtype == torch.long and ids.shape == (2, 5)
    a, red, star = (tok.vocab.index(w) for w in ("a", "red", "star"))
    assert ids[0].tolist() == [CLS_ID, a, red, star, SEP_ID]
    assert ids[1].tolist() == [CLS_ID, a, UNK_ID, SEP_ID, PAD_ID]
    assert mask[1].tolist() == [1, 1, 1, 1, 0]
    cut = tok.encode_batch(["a red star a red star"], max_len=4)["input_ids"]
    assert cut[0].tolist() == [CLS_ID, a, red, SEP_ID]
    fixed = tok.encode_batch(["a"], max_len=6, pad_to_max=True)["input_ids"]
    assert fixed.shape == (1, 6)


def test_word_targets_are_multi_hot_without_specials():
    tok = TextTokenizer.build(CORPUS, keep_fraction=1.0)
    targets = tok.word_targets(["a red red star", "zebra"])
    assert targets.shape == (2, tok.vocab_size - NUM_SPECIAL) == (2, tok.num_words)
    cols = {tok.vocab[j + NUM_SPECIAL] for j in torch.nonzero(targets[0]).flatten().tolist()}
    assert cols == {"a", "red", "star"}
    assert targets[1].sum() == 0  # only an unknown word


def test_save_load_and_pickle_roundtrip(tmp_path):
    tok = TextTokenizer.build(CORPUS, keep_fraction=0.5)
    path = tok.save(tmp_path / "tok" / "tokenizer.json")
    again = TextTokenizer.load(path)
    assert again.vocab == tok.vocab
    texts = ["a red star spins", "blue zebra"]
    assert torch.equal(again.encode_batch(texts)["input_ids"], tok.encode_batch(texts)["input_ids"])
    copy = pickle.loads(pickle.dumps(tok))
    assert torch.equal(copy.encode_batch(texts)["input_ids"], tok.encode_batch(texts)["input_ids"])
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(DataError, match="bad.json"):
        TextTokenizer.load(tmp_path / "bad.json")


def test_mask_tokens_rates_and_labels():
    vocab_size = 50
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(NUM_SPECIAL, vocab_size, (400, 30), generator=g)
    ids[:, 0], ids[:, -1] = CLS_ID, SEP_ID
    mask = torch.ones_like(ids)
    mask[:, 25:] = 0
    ids[:, 25:] = PAD_ID
    masked, labels = mask_tokens(ids, mask, vocab_size, prob=0.15, generator=torch.Generator().manual_seed(1))
    chosen = labels != -100
    # only real words are ever chosen; labels hold the original ids
    assert not chosen[:, 0].any() and not chosen[:, 25:].any()
    assert torch.equal(labels[chosen], ids[chosen])
    rate = chosen.sum().item() / (400 * 24)
    assert 0.13 < rate < 0.17
    n = chosen.sum().item()
    to_mask = (masked[chosen] == MASK_ID).sum().item() / n
    kept = (masked[chosen] == ids[chosen]).sum().item() / n
    assert 0.75 < to_mask < 0.85
    assert 0.07 < kept < 0.14  # 10% kept, plus random draws that hit the same word
    assert torch.equal(masked[~chosen], ids[~chosen])
    assert masked.min() >= 0 and masked.max() < vocab_size


def test_mask_tokens_is_seeded_and_never_leaves_a_row_empty():
    ids = torch.tensor([[CLS_ID, 7, SEP_ID, PAD_ID], [CLS_ID, 8, 9, SEP_ID]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    a = mask_tokens(ids, mask, 20, generator=torch.Generator().manual_seed(3))
    b = mask_tokens(ids, mask, 20, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert ((a[1] != -100).sum(dim=1) >= 1).all()


def test_the_training_text_vocabulary_holds_every_word_of_the_tgif_options(smoke_world):
    """Built from the captions alone, the world's vocabulary misses words that only options use, so
    TGIF Action's options "blink", "bounce" and "shrink" all encode as [UNK] and cannot be told apart."""
    options = [o for name in ("tgif_action", "tgif_transition") for r in load_benchmark(name, smoke_world).test
               for o in r.options]
    words = {w for o in options for w in o.split()}
    captions = build_text_tokenizer(smoke_world, 1.0, "captions")
    everything = build_text_tokenizer(smoke_world, 1.0, "training_text")
    assert words - set(captions.vocab)  # the failure this guards against
    assert words <= set(everything.vocab)
    assert set(captions.vocab) <= set(everything.vocab)
    with pytest.raises(DataError, match="unknown vocabulary text 'all'"):
        build_text_tokenizer(smoke_world, 1.0, "all")
