"""The supervised ceiling's stage on the smoke world: every kind of benchmark, named as the task stages name it."""

import json

import pytest
import torch
import torch.nn.functional as F

from evilm.config import ConfigError
from evilm.data.catalog import load_benchmark
from evilm.models.config import SmallVideoConfig
from evilm.models.small_video import SmallVideoModel
from evilm.models.video_encoder import create_backbone
from evilm.models.weights import save_backbone
from evilm.tasks.config import supervised_config
from evilm.tasks.supervised import _ChoiceHead, _mc_scores, _Task, run

# one benchmark of each kind, and MSRVTT-MC (trained on retrieval captions); its metric as a report reads it
CASES = [("msrvtt_qa", "msrvtt_qa/acc", "correct"), ("tgif_action", "tgif_action/acc", "correct"),
         ("msrvtt_mc", "msrvtt_mc/acc", "correct"), ("msrvtt_ret", "msrvtt_ret/R@10", "rank"),
         ("hmdb51", "hmdb51_probe/top1", "correct")]


@pytest.fixture(scope="module")
def image_prior(tmp_path_factory):
    """A backbone file as the image prior writes it (the smoke profile's backbone, untrained)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("prior") / "backbone.pt"
    return save_backbone(path, "edgenext_xx_small", create_backbone("edgenext_xx_small"))


@pytest.mark.parametrize("name,metric,per_item", CASES)
def test_each_benchmark_trains_and_scores_every_test_item(smoke_world, image_prior, tmp_path, name, metric, per_item):
    config = supervised_config("smoke", {"benchmark": name, "train": {"progress": False}})
    result = run(config, {"data": smoke_world, "video_init": image_prior}, tmp_path)
    assert 0.0 <= result.metrics[metric] <= 100.0
    assert result.metrics[f"{metric.split('/')[0]}/train_steps"] > 0
    items = json.loads((tmp_path / "per_item.json").read_text())
    assert items["metric"] == per_item
    test_set = load_benchmark(name, smoke_world).test
    assert sorted(item["index"] for item in items["items"]) == list(range(len(test_set)))


def test_the_same_seed_gives_the_same_numbers(smoke_world, image_prior, tmp_path):
    config = supervised_config("smoke", {"benchmark": "tgif_action", "train": {"progress": False}})
    first = run(config, {"data": smoke_world, "video_init": image_prior}, tmp_path / "a").metrics
    again = run(config, {"data": smoke_world, "video_init": image_prior}, tmp_path / "b").metrics
    timing = {"tgif_action/train_clips_per_s"}
    assert {k: v for k, v in first.items() if k not in timing} == {k: v for k, v in again.items() if k not in timing}


def test_the_appearance_stream_needs_the_image_prior_and_runs_without_one_when_switched_off(smoke_world, tmp_path):
    config = supervised_config("smoke", {"benchmark": "hmdb51", "train": {"progress": False}})
    with pytest.raises(ConfigError, match="model.appearance"):
        run(config, {"data": smoke_world}, tmp_path / "a")
    config = supervised_config("smoke", {"benchmark": "hmdb51", "model": {"appearance": None},
                                         "train": {"progress": False}})
    assert 0.0 <= run(config, {"data": smoke_world}, tmp_path / "b").metrics["hmdb51_probe/top1"] <= 100.0


def _shown_colours(n: int, seed: int) -> dict:
    """Multiple choice in miniature, batched as the data sets batch it: a clip shows two colours (of
    four); the question names one of them, the answer is the other, and two options are absent colours
    (words 1-4 are the colours; a question is its one word)."""
    g = torch.Generator().manual_seed(seed)
    palette = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [1.0, 1.0, 1.0]])
    frames, named, options, answers = torch.zeros(n, 4, 3, 32, 32), [], [], []
    for i in range(n):
        asked, shown, *absent = torch.randperm(4, generator=g).tolist()
        for colour, x in ((asked, 4), (shown, 20)):
            frames[i, :, :, 8:16, x:x + 8] = palette[colour].view(1, 3, 1, 1)
        order = torch.randperm(3, generator=g).tolist()
        options.append([[shown, *absent][j] + 1 for j in order])
        named.append(asked + 1)
        answers.append(order.index(0))
    alone = torch.tensor(options).unsqueeze(-1)
    whole = torch.cat([torch.tensor(named).view(n, 1, 1).expand(n, 3, 1), alone], dim=-1)
    return {"frames": frames, "video_id": [f"v{seed}_{i}" for i in range(n)], "option_ids": whole,
            "option_mask": torch.ones_like(whole), "choice_ids": alone, "choice_mask": torch.ones_like(alone),
            "answer": torch.tensor(answers)}


def test_a_choice_is_scored_on_its_option_alone_too_and_learnt():
    torch.manual_seed(0)
    model = SmallVideoModel(SmallVideoConfig(num_frames=4, image_size=32, input_size=16, channels=(8, 16), width=32,
                                             dropout=0.0), vocab_size=5)
    task = _Task(model, _ChoiceHead(model.width), _mc_scores)
    train = _shown_colours(256, seed=1)
    with torch.no_grad():  # the same "question option" texts, other options alone: other scores
        swapped = {**train, "choice_ids": train["choice_ids"].roll(1, dims=1)}
        assert not torch.allclose(task(train), task(swapped))
    opt = torch.optim.AdamW(task.parameters(), lr=3e-3)
    for _ in range(100):
        idx = torch.randperm(256)[:32].tolist()
        batch = {k: [v[i] for i in idx] if isinstance(v, list) else v[idx] for k, v in train.items()}
        loss = F.cross_entropy(task(batch), batch["answer"])
        opt.zero_grad()
        loss.backward()
        opt.step()
    test = _shown_colours(256, seed=2)
    with torch.no_grad():
        accuracy = (task.eval()(test).argmax(-1) == test["answer"]).float().mean()
    assert accuracy > 0.9  # chance is 1/3
