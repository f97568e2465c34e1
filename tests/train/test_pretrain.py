import json

import pytest
import torch

from evilm.config import ConfigError
from evilm.models import create_model
from evilm.train.pretrain import (
    EpochBatchSampler,
    EViLMForPretraining,
    NonFiniteLossError,
    PretrainConfig,
    load_pretrained,
    pretrain,
)


class ToyClips(torch.utils.data.Dataset):
    """Clips whose captions name their colour, codes from the region's mean colour (cached labels)."""

    def __init__(self, n=12, frames=2, size=64, length=8, nan_index=None):
        g = torch.Generator().manual_seed(0)
        self.items = []
        for i in range(n):
            colour = i % 3
            clip = torch.rand(frames, 3, size, size, generator=g) * 0.2
            clip[:, colour] += 0.7
            if i == nan_index:
                clip[0, 0, 0, 0] = float("nan")
            words = [10 + colour, 20 + (i % 5), 30]
            ids = torch.zeros(length, dtype=torch.long)
            ids[: len(words) + 2] = torch.tensor([2, *words, 3])
            mask = (ids != 0).long()
            codes = torch.full((frames, 2, 2), colour, dtype=torch.long)
            self.items.append({"frames": clip, "input_ids": ids, "attention_mask": mask, "codes": codes})

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def smoke_model(losses, seed=0):
    torch.manual_seed(seed)
    return EViLMForPretraining(create_model("smoke"), losses)


def config(**kw):
    base = dict(model="smoke", batch_size=4, epochs=2, log_every=1, progress=False, device="cpu",
                optim={"lr": 1e-3, "warmup_ratio": 0.25})
    base.update(kw)
    from evilm.config import from_dict

    return from_dict(PretrainConfig, base)


def test_prepare_batch_draws_masks_targets_and_negatives():
    from torch.utils.data import default_collate

    from evilm.train.checkpoint import generator_for
    from evilm.train.losses import IGNORE
    from evilm.train.pretrain import prepare_batch

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


def test_sampler_is_a_permutation_and_resumes_mid_epoch():
    full = list(EpochBatchSampler(10, 3, seed=5, epoch=1))
    assert len(full) == 3 and len({i for b in full for i in b}) == 9
    assert list(EpochBatchSampler(10, 3, seed=5, epoch=1, start=2)) == full[2:]
    assert list(EpochBatchSampler(10, 3, seed=5, epoch=2)) != full


def test_every_loss_reaches_its_head_and_the_encoders():
    from torch.utils.data import default_collate

    from evilm.train.checkpoint import generator_for
    from evilm.train.pretrain import prepare_batch

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


def run_steps(tmp_path, stop_after, resume=False, losses=("mlm", "vtm", "mvm")):
    cfg = config(losses=list(losses), epochs=1, stop_after=stop_after, resume=resume, batch_size=2)
    model = smoke_model(cfg.losses, seed=0 if not resume else 123)  # resumed weights come from the checkpoint
    seen = {}
    result = pretrain(cfg, model, ToyClips(n=8), tmp_path, on_metrics=lambda m, s: seen.update({s: m}))
    return model, result, seen


def test_resume_gives_the_same_weights_and_metrics(tmp_path):
    # ToyClips(8) / batch 2 = one epoch of 4 steps: the stop at step 2 is mid-epoch.
    straight, res_a, seen_a = run_steps(tmp_path / "a", stop_after=4)
    assert res_a.metrics["pretrain/complete"] == 1.0 and res_a.metrics["pretrain/steps"] == 4
    assert set(load_pretrained(res_a.artifacts["model"]).heads) == {"mlm", "vtm", "mvm"}
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["pretrain/steps"] == 4
    _, res_b, _ = run_steps(tmp_path / "b", stop_after=2)
    assert res_b.metrics["pretrain/complete"] == 0.0 and "model" not in res_b.artifacts
    torch.manual_seed(999)  # whatever happens in between must not matter
    resumed, res_c, seen_c = run_steps(tmp_path / "b", stop_after=4, resume=True)
    assert sorted(seen_c) == [3, 4]
    for step in (3, 4):
        for k, v in seen_a[step].items():
            if k not in ("train/clips_per_s", "train/data_fraction"):
                assert seen_c[step][k] == v, (step, k)
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert res_a.metrics == res_c.metrics


def test_resume_refuses_other_settings(tmp_path):
    run_steps(tmp_path, stop_after=1, losses=("vtm",))
    cfg = config(losses=["vtm"], epochs=2, resume=True, batch_size=2)
    with pytest.raises(ValueError, match="other settings"):
        pretrain(cfg, smoke_model(cfg.losses), ToyClips(n=8), tmp_path)


def test_nan_loss_stops_the_run_naming_step_and_term(tmp_path):
    # 2 micro-batches of 2 clips per step: the third micro-batch belongs to step 2
    cfg = config(losses=["vtm"], epochs=1, batch_size=2, accum_steps=2)
    order = list(EpochBatchSampler(8, 2, seed=cfg.seed, epoch=0))
    bad_clip = order[2][0]  # a NaN pixel in a clip of the third micro-batch
    seen = []
    with pytest.raises(NonFiniteLossError, match="step 2: vtm = nan") as err:
        pretrain(cfg, smoke_model(cfg.losses), ToyClips(n=8, nan_index=bad_clip), tmp_path,
                 on_metrics=lambda m, s: seen.append(s))
    assert err.value.step == 2 and err.value.term == "vtm"
    assert seen == [1]  # step 1 (4 clips, 2 accumulated micro-batches) completed
    assert not (tmp_path / "model.pt").exists()


def test_bad_config_named():
    with pytest.raises(ConfigError, match="losses"):
        config(losses=["mlm", "itc"])
    with pytest.raises(ConfigError, match="loss_weights.mvn"):
        config(loss_weights={"mvn": 1.0})
    with pytest.raises(ConfigError, match="batch_size"):
        config(batch_size=1)


def test_stage_on_the_smoke_world_with_a_video_tokenizer(smoke_world, tmp_path):
    from evilm.tokenizers import create_tokenizer, save_tokenizer
    from evilm.tokenizers import preset_config as tokenizer_preset
    from evilm.train.pretrain import pretrain_config, run

    tokenizer = create_tokenizer("semantic_focal", tokenizer_preset("smoke", {"semantic": {"vocab_size": 50}}))
    path = save_tokenizer(tokenizer, tmp_path / "tokenizer.pt")
    cfg = pretrain_config("smoke", {"max_steps": 1, "batch_size": 2, "progress": False})
    result = run(cfg, {"data": smoke_world, "tokenizer": path}, tmp_path / "out")
    assert result.metrics["pretrain/complete"] == 1.0 and result.metrics["pretrain/steps"] == 1
    loaded = load_pretrained(result.artifacts["model"])
    assert loaded.backbone.config.codebook_size == tokenizer.codebook_size
    assert loaded.meta["text_vocab"][:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert result.artifacts["text_tokenizer"].is_file()


def test_stage_refuses_mvm_without_targets(smoke_world, tmp_path):
    from evilm.train.pretrain import pretrain_config, run

    with pytest.raises(ConfigError, match="inputs.tokenizer"):
        run(pretrain_config("smoke"), {"data": smoke_world}, tmp_path)
