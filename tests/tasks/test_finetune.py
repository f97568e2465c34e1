import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from evilm.tasks.config import FinetuneSettings
from evilm.tasks.finetune import finetune


class ConstantItems(Dataset):
    """19 steps of 2 items per epoch: log windows of 10 steps then cross the epoch boundary."""

    def __len__(self) -> int:
        return 38

    def __getitem__(self, index: int) -> dict:
        return {"frames": torch.zeros(1)}

    def collate(self, items: list) -> dict:
        return {"frames": torch.stack([item["frames"] for item in items])}


def test_logged_training_loss_is_the_mean_over_its_window_across_epochs():
    module = nn.Linear(1, 1)
    settings = FinetuneSettings(model="smoke", epochs=2, batch_size=2, log_every=10, device="cpu",
                                progress=False, cache_clips=False)
    logged = []

    def loss_fn(batch):  # the same loss at every step: every logged mean must be it
        return module.weight.sum() * 0 + 3.0, {"acc": torch.tensor(0.5)}

    out = finetune(module, ConstantItems(), settings, loss_fn, lambda m, s: logged.append((s, m)), "fake")
    steps = [s for s, _ in logged]
    assert steps == [10, 20, 30, 38]
    for _, metrics in logged:
        assert metrics["fake/train_loss"] == pytest.approx(3.0)
        assert metrics["fake/train_acc"] == pytest.approx(0.5)
    assert out["fake/train_loss"] == pytest.approx(3.0) and out["fake/train_steps"] == 38
