import pytest
import torch
from torch import nn

from evilm.train.checkpoint import derived_seed, generator_for, load_checkpoint, restore, save_checkpoint
from evilm.train.config import OptimConfig
from evilm.train.optim import create_optimizer, create_scheduler


def make(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 1))
    cfg = OptimConfig(lr=1e-2, warmup_ratio=0.25)
    opt = create_optimizer(model, cfg)
    return model, opt, create_scheduler(opt, 8, cfg)


def train(model, opt, sched, steps):
    for _ in range(steps):
        x = torch.randn(5, 4)  # global RNG: restored from the checkpoint
        loss = model(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()


def test_save_restore_continues_identically(tmp_path):
    straight = make()
    train(*straight, 4)

    first = make()
    train(*first, 2)
    path = save_checkpoint(tmp_path / "ck.pt", model=first[0], optimizer=first[1], scheduler=first[2], scaler=None,
                           step=2, epoch=0, batch_in_epoch=2, extra={"loss_sum": 1.5})
    torch.manual_seed(123)  # anything in between must not matter
    resumed = make(seed=99)
    state = load_checkpoint(path)
    restore(state, model=resumed[0], optimizer=resumed[1], scheduler=resumed[2], scaler=None)
    assert state["step"] == 2 and state["extra"] == {"loss_sum": 1.5}
    train(*resumed, 2)
    for a, b in zip(straight[0].state_dict().values(), resumed[0].state_dict().values()):
        assert torch.equal(a, b)
    assert resumed[1].param_groups[0]["lr"] == straight[1].param_groups[0]["lr"]
    assert not list(tmp_path.glob(".*tmp*"))  # the temporary file was renamed


def test_load_rejects_missing_and_foreign_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="other.pt"):
        load_checkpoint(tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt"):
        load_checkpoint(tmp_path / "junk.pt")


def test_derived_generators():
    assert derived_seed(0, 5, "mask") == derived_seed(0, 5, "mask")
    assert derived_seed(0, 5, "mask") != derived_seed(1, 5, "mask")
    assert derived_seed(0, 5, "mask") != derived_seed(0, 6, "mask")
    a = torch.rand(3, generator=generator_for(0, 1))
    b = torch.rand(3, generator=generator_for(0, 1))
    assert torch.equal(a, b)
