"""Text: a squeezed word vocabulary, its tokenizer, and MLM masking.

The paper keeps only the top 30% most frequent words of a caption corpus to
shrink the language encoder's embedding table; everything else becomes
``[UNK]``. The tokenizer is a ``tokenizers`` WordLevel model (lowercase,
split on whitespace and punctuation) and is saved as one JSON file with every
run that uses it.

Special ids are fixed: ``[PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3, [MASK]=4``; a
caption encodes as ``[CLS] w1 .. wn [SEP] [PAD] ..``.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

from evilm.data.records import DataError
from evilm.files import atomic_write

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID = range(5)
NUM_SPECIAL = len(SPECIAL_TOKENS)


def _normalizer():
    return normalizers.Sequence([normalizers.NFD(), normalizers.StripAccents(), normalizers.Lowercase()])


def _pre_tokenizer():
    # Whitespace splits on \w+|[^\w\s]+, i.e. on spaces and around punctuation
    return pre_tokenizers.Whitespace()


def count_words(corpus: Iterable[str]) -> Counter:
    """Word counts under exactly the tokenizer's normalisation and splitting."""
    norm, pre = _normalizer(), _pre_tokenizer()
    counts: Counter = Counter()
    for text in corpus:
        words = pre.pre_tokenize_str(norm.normalize_str(text))
        counts.update(word for word, _ in words)
    return counts


def build_vocab(corpus: Iterable[str], keep_fraction: float = 0.3, min_count: int = 1) -> list[str]:
    """Specials, then the top ``keep_fraction`` of distinct words by frequency.

    Ties are broken alphabetically, so the vocabulary is a pure function of the corpus.
    """
    if not 0 < keep_fraction <= 1:
        raise DataError(f"keep_fraction must be in (0, 1], got {keep_fraction}")
    counts = count_words(corpus)
    words = sorted((w for w, c in counts.items() if c >= min_count and w not in SPECIAL_TOKENS),
                   key=lambda w: (-counts[w], w))
    if not words:
        raise DataError("cannot build a vocabulary from an empty corpus")
    keep = max(1, math.ceil(keep_fraction * len(words)))
    return SPECIAL_TOKENS + words[:keep]


class TextTokenizer:
    """Word-level tokenizer over a fixed vocabulary; batches come back as LongTensors."""

    def __init__(self, vocab: Sequence[str]):
        vocab = list(vocab)
        if vocab[:NUM_SPECIAL] != SPECIAL_TOKENS:
            raise DataError(f"a vocabulary must start with {SPECIAL_TOKENS}, got {vocab[:NUM_SPECIAL]}")
        if len(set(vocab)) != len(vocab):
            raise DataError("the vocabulary has duplicate words")
        self.vocab = vocab
        tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
        tok.normalizer = _normalizer()
        tok.pre_tokenizer = _pre_tokenizer()
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", special_tokens=[("[CLS]", CLS_ID), ("[SEP]", SEP_ID)]
        )
        self._tok = tok

    # --- construction and persistence ---
    @classmethod
    def build(cls, corpus: Iterable[str], keep_fraction: float = 0.3, min_count: int = 1) -> TextTokenizer:
        return cls(build_vocab(corpus, keep_fraction, min_count))

    def save(self, path: str | Path) -> Path:
        """Write the tokenizer (the ``tokenizers`` JSON) atomically."""
        return atomic_write(path, lambda tmp: self._tok.save(str(tmp)))

    @classmethod
    def load(cls, path: str | Path) -> TextTokenizer:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
            vocab_map = data["model"]["vocab"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise DataError(f"{path}: not a saved TextTokenizer ({err})") from None
        vocab = [w for w, _ in sorted(vocab_map.items(), key=lambda kv: kv[1])]
        return cls(vocab)

    # --- sizes ---
    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def num_words(self) -> int:
        """Columns of ``word_targets``: the vocabulary without the specials."""
        return len(self.vocab) - NUM_SPECIAL

    def __getstate__(self):  # DataLoader workers get a copy: rebuild from the word list
        return {"vocab": self.vocab}

    def __setstate__(self, state):
        self.__init__(state["vocab"])

    # --- encoding ---
    def tokenize(self, text: str) -> list[str]:
        """The words of ``text`` as the tokenizer sees them (before the vocabulary lookup)."""
        return [w for w, _ in self._tok.pre_tokenizer.pre_tokenize_str(self._tok.normalizer.normalize_str(text))]

    def encode_batch(self, texts: Sequence[str], max_len: int = 32, pad_to_max: bool = False) -> dict[str, torch.Tensor]:
        """``input_ids``/``attention_mask``: ``long (B, L)``, L = the longest (capped at ``max_len``).

        Texts longer than ``max_len`` are cut, keeping ``[CLS]`` and ``[SEP]``.
        """
        if max_len < 3:
            raise DataError(f"max_len must be >= 3 ([CLS] word [SEP]), got {max_len}")
        # one text at a time: the batch call starts a thread pool that a DataLoader fork then warns about
        encodings = [self._tok.encode(str(t)) for t in texts]
        rows = []
        for enc in encodings:
            ids = enc.ids
            if len(ids) > max_len:
                ids = ids[: max_len - 1] + [SEP_ID]
            rows.append(ids)
        length = max_len if pad_to_max else max((len(r) for r in rows), default=2)
        input_ids = torch.full((len(rows), length), PAD_ID, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), length), dtype=torch.long)
        for i, ids in enumerate(rows):
            input_ids[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            attention_mask[i, : len(ids)] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    def decode(self, ids: Iterable[int], skip_special: bool = True) -> str:
        words = [self.vocab[i] for i in ids if 0 <= i < len(self.vocab)]
        if skip_special:
            words = [w for w in words if w not in SPECIAL_TOKENS]
        return " ".join(words)

    def word_targets(self, texts: Sequence[str]) -> torch.Tensor:
        """Multi-hot caption words: ``float (B, num_words)``; column j is token id ``j + NUM_SPECIAL``.

        Specials (``[UNK]`` included) have no column: they say nothing about the video.
        """
        targets = torch.zeros((len(texts), self.num_words), dtype=torch.float32)
        for i, text in enumerate(texts):
            enc = self._tok.encode(str(text), add_special_tokens=False)
            cols = [t - NUM_SPECIAL for t in enc.ids if t >= NUM_SPECIAL]
            if cols:
                targets[i, cols] = 1.0
        return targets


def mask_tokens(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    vocab_size: int,
    prob: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking: pick ``prob`` of the word tokens; of those 80% -> [MASK], 10% -> a random word, 10% kept.

    Returns ``(masked_ids, labels)`` with ``labels = -100`` where nothing is predicted.
    Every sequence with at least one word gets at least one prediction, so short
    captions (~12 words) never contribute an empty MLM target.
    """
    candidates = (input_ids >= NUM_SPECIAL) & attention_mask.bool()
    draw = torch.rand(input_ids.shape, generator=generator)
    chosen = candidates & (draw < prob)
    # force one pick in rows that got none: the candidate with the smallest draw
    empty = candidates.any(dim=1) & ~chosen.any(dim=1)
    if empty.any():
        scores = torch.where(candidates, draw, torch.full_like(draw, 2.0))
        first = scores.argmin(dim=1)
        rows = torch.nonzero(empty, as_tuple=True)[0]
        chosen[rows, first[rows]] = True
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    action = torch.rand(input_ids.shape, generator=generator)
    to_mask = chosen & (action < 0.8)
    to_random = chosen & (action >= 0.8) & (action < 0.9)
    masked = input_ids.clone()
    masked[to_mask] = MASK_ID
    if vocab_size > NUM_SPECIAL and to_random.any():
        random_words = torch.randint(NUM_SPECIAL, vocab_size, input_ids.shape, generator=generator)
        masked[to_random] = random_words[to_random]
    return masked, labels
