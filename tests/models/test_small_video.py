"""The supervised ceiling's small video model: shapes, padding, and that it learns motion from stacked frames."""

from dataclasses import replace

import torch
import torch.nn.functional as F

from evilm.models.config import SmallVideoConfig
from evilm.models.small_video import SmallVideoModel

TINY = SmallVideoConfig(num_frames=4, image_size=32, input_size=16, channels=(8, 16), width=32, dropout=0.0)


def test_shapes_and_padding():
    model = SmallVideoModel(TINY, vocab_size=20).eval()
    cells = model.encode_video(torch.rand(3, 4, 3, 32, 32))
    assert cells.shape == (3, 4 * 4, 32)  # 16 px halved twice: a 4x4 grid of cells
    pairs = SmallVideoModel(replace(TINY, tubelet=2), vocab_size=20).eval()
    assert pairs.encode_video(torch.rand(3, 4, 3, 32, 32)).shape == (3, 2 * 4 * 4, 32)  # a grid per two frames
    ids = torch.tensor([[5, 6, 0, 0], [5, 6, 7, 8]])
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 0, 0]])
    text = model.encode_text(ids, mask)
    assert torch.allclose(text[0], text[1])  # padded positions are ignored, whatever they hold
    assert model.fuse(cells[:2], text).shape == (2, 32)


def test_the_text_encoder_reads_word_order_and_a_bag_does_not():
    """"before X ? Y" and "before Y ? X" hold the same words; only their order says which action is asked."""
    ids, mask = torch.tensor([[5, 6, 7, 8], [5, 8, 7, 6]]), torch.ones(2, 4, dtype=torch.long)
    ordered = SmallVideoModel(replace(TINY, text_layers=1), vocab_size=20).eval()
    ordered = ordered.encode_text(ids, mask)
    assert not torch.allclose(ordered[0], ordered[1], atol=1e-4)
    bag = SmallVideoModel(replace(TINY, text_layers=0), vocab_size=20).eval()
    assert torch.allclose(*bag.encode_text(ids, mask), atol=1e-6)


def _moving_squares(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Clips of a square moving left (label 0) or right (1), from a random start: no single frame tells."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=g)
    clips = torch.zeros(n, 4, 3, 32, 32)
    for i in range(n):
        x0, y = int(torch.randint(10, 18, (1,), generator=g)), int(torch.randint(4, 24, (1,), generator=g))
        step = 3 if labels[i] else -3
        for t in range(4):
            x = x0 + step * t
            clips[i, t, :, y:y + 5, x:x + 5] = 1.0
    return clips, labels


def test_it_learns_the_direction_of_motion_that_no_single_frame_shows():
    torch.manual_seed(0)
    model = SmallVideoModel(TINY, vocab_size=4)
    head = torch.nn.Linear(32, 2)
    params = [*model.parameters(), *head.parameters()]
    opt = torch.optim.AdamW(params, lr=3e-3)
    clips, labels = _moving_squares(128, seed=1)
    for _ in range(60):
        idx = torch.randperm(128)[:32]
        loss = F.cross_entropy(head(model.clip_vector(model.encode_video(clips[idx]))), labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    test_clips, test_labels = _moving_squares(128, seed=2)
    with torch.no_grad():
        accuracy = (head(model.clip_vector(model.encode_video(test_clips))).argmax(-1) == test_labels).float().mean()
    assert accuracy > 0.9  # chance is 0.5


def _two_moves(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A square moves one way over frames 1-2 and another way over frames 3-4; the question (word 1:
    "early", word 2: "late") asks for one of the two directions (0: left, 1: right)."""
    g = torch.Generator().manual_seed(seed)
    moves = torch.randint(0, 2, (n, 2), generator=g)
    asked = torch.randint(0, 2, (n,), generator=g)
    clips = torch.zeros(n, 4, 3, 32, 32)
    for i in range(n):
        x, y = int(torch.randint(10, 18, (1,), generator=g)), int(torch.randint(4, 24, (1,), generator=g))
        for t in range(4):
            clips[i, t, :, y:y + 5, x:x + 5] = 1.0
            if t % 2 == 0:
                x += 3 if moves[i, t // 2] else -3
    return clips, asked + 1, moves[torch.arange(n), asked]


def test_a_question_picks_what_happens_early_or_late():
    """Transition's skill: the same clip answers "before" and "after" differently."""
    torch.manual_seed(0)
    model = SmallVideoModel(replace(TINY, tubelet=2, text_layers=1), vocab_size=4)
    head = torch.nn.Linear(32, 2)
    opt = torch.optim.AdamW([*model.parameters(), *head.parameters()], lr=3e-3)
    clips, words, labels = _two_moves(256, seed=1)

    def logits(c, w):
        return head(model.fuse(model.encode_video(c), model.encode_text(w[:, None], torch.ones_like(w)[:, None])))

    for _ in range(120):
        idx = torch.randperm(256)[:32]
        loss = F.cross_entropy(logits(clips[idx], words[idx]), labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    test_clips, test_words, test_labels = _two_moves(256, seed=2)
    with torch.no_grad():
        accuracy = (logits(test_clips, test_words).argmax(-1) == test_labels).float().mean()
    assert accuracy > 0.85  # chance is 0.5; a model blind to when gets 0.75 at best


def test_the_frozen_appearance_stream_is_computed_once_per_clip_and_never_trained():
    config = SmallVideoConfig(num_frames=2, image_size=64, input_size=32, channels=(8, 16), width=32,
                              appearance="edgenext_xx_small")
    model = SmallVideoModel(config, vocab_size=4).train()
    assert not model.appearance.training and not any(p.requires_grad for p in model.appearance.parameters())
    clips = torch.rand(2, 2, 3, 64, 64)
    uncached = model.encode_video(clips, ["a", "b"])
    assert uncached.shape == (2, 8 * 8 + 2 * 2 * 2, 32)  # motion: 8x8 cells; then 2 frames of 2x2 appearance cells
    model.appearance_cache = {}
    first = model.encode_video(clips, ["a", "b"])
    assert set(model.appearance_cache) == {"a", "b"}
    # a cached clip's appearance is not recomputed: other pixels under the same id keep its features
    again = model.encode_video(torch.stack([clips[0], torch.zeros_like(clips[1])]), ["a", "b"])
    assert torch.allclose(first[:, 64:], again[:, 64:]) and torch.allclose(first, uncached)
