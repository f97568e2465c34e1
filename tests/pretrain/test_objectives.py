import torch
from pretrain_toys import ToyClips, config, smoke_model
from torch.utils.data import default_collate

from evilm.pretrain.losses import IGNORE
from evilm.pretrain.objectives import prepare_batch
from evilm.train.checkpoint import generator_for


def test_prepare_batch_draws_masks_targets_and_negatives():
    cfg = config(losses=["mlm", "vtm", "mvm"])
    model = smoke_model(cfg.losses)
    data = ToyClips(n=4)
    raw = default_collate([data[i] for i in range(4)])
    raw["input_ids"][3] = raw["input_ids"][0]  # clip 3 has clip 0's caption: never a "mismatch"
    b = prepare_batch(raw, cfg, model, generator_for(0, 1), None, torch.device("cpu"))
    assert b["region_mask"].shape == (4, 2, 2, 2) and (b["region_mask"].flatten(2).sum(-1) == 2).all()
    chosen = b["mlm_labels"] != IGNORE
    assert chosen.any(1).all()  # every caption has a target
    assert torch.equal(b["mlm_labels"][chosen], raw["input_ids"][chosen])
    assert torch.equal(b["mlm_input_ids"][~chosen], raw["input_ids"][~chosen])
    neg = b["vtm_negatives"]
    assert (neg != torch.arange(4)).all()
    same = [bool((raw["input_ids"][i] == raw["input_ids"][neg[i]]).all()) for i in range(4)]
    assert b["vtm_labels"].tolist() == [1, 1, 1, 1] + [int(x) for x in same]
    again = prepare_batch(raw, cfg, model, generator_for(0, 1), None, torch.device("cpu"))
    assert all(torch.equal(b[k], again[k]) for k in b)
    raw["input_ids"][:] = raw["input_ids"][0]  # one caption for every clip: no pair is a mismatch
    same_caption = prepare_batch(raw, cfg, model, generator_for(0, 2), None, torch.device("cpu"))
    assert same_caption["vtm_labels"].tolist() == [1] * 8


def test_every_loss_reaches_its_head_and_the_encoders():
    cfg = config(losses=["mlm", "vtm", "mvm"])
    model = smoke_model(cfg.losses)
    data = ToyClips(n=2)
    batch = prepare_batch(default_collate([data[0], data[1]]), cfg, model, generator_for(0, 0), None,
                          torch.device("cpu"))
    out = model(batch)
    assert set(out) == {"mlm", "mlm_acc", "vtm", "vtm_acc", "mvm", "mvm_acc"}
    for name in ("mlm", "vtm", "mvm"):
        model.zero_grad()
        out = model(batch)
        out[name].backward()
        head = getattr(model, f"{name}_head")
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters()), name
        for part in (model.backbone.video_encoder, model.backbone.text_encoder.proj, model.backbone.decoder):
            assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters()), (name, part)
