"""The pretraining stage on 2 gloo ranks under real torchrun (experiments/torchrun_pretrain.py) trains
exactly like 1 process with the same global batch; only rank 0 writes; its checkpoint resumes on 1.

All three losses are on: each rank draws the step's masks and VTM pairs for the global batch and
keeps its rows, and weighs its loss means by its share of the targets (evilm/pretrain/objectives.py), so
even VTM's mismatched captions and MLM's per-word mean match the 1-process run. Text dropout is off
(each rank draws its own dropout masks by design) and the smoke model's EdgeNeXt has LayerNorm only
(BatchNorm statistics would be per rank).
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from evilm.config import ConfigError
from evilm.train import distributed as D

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).resolve().parent / "ddp_pretrain_worker.py"
PRETRAIN = importlib.import_module("evilm.pretrain")  # (pretrain_config, run, pretrain, EViLMForPretraining)

# 3 optimizer steps of 4 clips (2 per rank), 2 micro-batches each; the 2-rank run stops after step 2
SETTINGS = {
    "max_steps": 3,
    "batch_size": 4,
    "accum_steps": 2,
    "log_every": 1,
    "progress": False,
    "device": "cpu",
    "model_overrides": {"text": {"dropout": 0.0}},
    # eps above float-summation noise: Adam divides by |grad|, and on parameters whose true gradient is 0
    # (attention key biases) it would turn noise of 1e-10 into full-size steps that differ between runs
    "optim": {"lr": 1e-3, "warmup_ratio": 0.0, "eps": 1e-6},
}
COMPARED = ("loss", "mlm", "mlm_acc", "vtm", "vtm_acc", "mvm", "mvm_acc", "grad_norm", "lr")


@pytest.fixture(scope="module")
def smoke_inputs(tmp_path_factory) -> dict[str, Path]:
    from evilm.data.synthetic import WorldConfig, generate_world
    from evilm.tokenizers import create_tokenizer, save_tokenizer
    from evilm.tokenizers import preset_config as tokenizer_preset

    root = tmp_path_factory.mktemp("ddp_inputs")
    world, _ = generate_world(WorldConfig(profile="smoke", seed=0, progress=False), root / "worlds")
    torch.manual_seed(0)
    tokenizer = create_tokenizer("semantic", tokenizer_preset("smoke", {"semantic": {"vocab_size": 50}}))
    return {"data": world, "tokenizer": save_tokenizer(tokenizer, root / "tokenizer.pt")}


def _one_process(out: Path, inputs: dict, **extra) -> tuple[dict, dict]:
    """The stage in this process, 1 thread; returns (final metrics, {step: logged metrics})."""
    cfg = PRETRAIN.pretrain_config("smoke", {**SETTINGS, **extra})
    seen: dict[int, dict] = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = PRETRAIN.run(cfg, inputs, out, on_metrics=lambda m, s: seen.update({s: m}))
    finally:
        torch.set_num_threads(threads)
    return result.metrics, seen


def _assert_close(got: dict, want: dict, keys, what: str) -> None:
    for k in keys:
        assert abs(got[k] - want[k]) <= 1e-5 * max(1.0, abs(want[k])), (what, k, got[k], want[k])


def test_two_torchrun_ranks_match_one_process_and_resume_on_one(tmp_path, smoke_inputs):
    config = tmp_path / "cfg.json"
    config.write_text(json.dumps({**SETTINGS, "stop_after": 2}))
    two, spies = tmp_path / "two", tmp_path / "spies"
    log = open(tmp_path / "torchrun.log", "w")
    torchrun = subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         str(WORKER), str(spies), "--profile", "smoke", "--config", str(config), "--backend", "gloo",
         "--data", str(smoke_inputs["data"]), "--tokenizer", str(smoke_inputs["tokenizer"]), "--out", str(two)],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
    )
    try:  # the reference, here while the ranks start
        straight, straight_steps = _one_process(tmp_path / "one", smoke_inputs)
        assert torchrun.wait(timeout=180) == 0, (tmp_path / "torchrun.log").read_text()[-4000:]
    finally:
        if torchrun.poll() is None:
            torchrun.kill()

    # rank 0 wrote the checkpoint, metrics.json and the vocabulary, and reported; rank 1 nothing
    rank0 = json.loads((spies / "rank0.json").read_text())
    rank1 = json.loads((spies / "rank1.json").read_text())
    assert rank0["exit"] == rank1["exit"] == 0
    assert sorted(set(rank0["calls"])) == ["atomic_write_json", "report", "save_checkpoint", "text_tokenizer.save"]
    assert rank0["calls"].count("report") == 2
    assert rank1["calls"] == []
    assert not (two / "model.pt").exists()  # stopped after 2 of 3 steps: not complete
    assert torch.load(two / "checkpoints" / "last.pt", weights_only=True)["step"] == 2

    # the 2-rank steps are the 1-process steps (train_log.jsonl: the entry point's metrics callback)
    logged = {row["step"]: row for row in map(json.loads, (two / "train_log.jsonl").read_text().splitlines())}
    assert sorted(logged) == [1, 2]
    for step in (1, 2):
        _assert_close(logged[step], straight_steps[step], [f"train/{k}" for k in COMPARED], f"step {step}")

    # the 2-rank checkpoint continues on 1 process and ends where the straight run ended
    at_step2 = torch.load(two / "checkpoints" / "last.pt", weights_only=True)["model"]
    resumed, resumed_steps = _one_process(two, smoke_inputs, resume=True)
    assert sorted(resumed_steps) == [3]
    _assert_close(resumed_steps[3], straight_steps[3], [f"train/{k}" for k in COMPARED], "step 3")
    _assert_close(resumed, straight, [f"pretrain/{k}" for k in COMPARED], "final metrics")
    got = torch.load(two / "model.pt", weights_only=True)["backbone"]
    want = torch.load(tmp_path / "one" / "model.pt", weights_only=True)["backbone"]
    assert got.keys() == want.keys()
    assert any(not torch.equal(got[k], at_step2[f"backbone.{k}"]) for k in got)  # step 3 moved the weights
    worst = max((got[k].float() - want[k].float()).abs().max().item() for k in want)
    print(f"largest weight difference, 2 ranks then 1 vs 1 process: {worst:.3g}")
    assert worst < 1e-5


def test_global_batch_must_split_over_the_ranks(monkeypatch, tmp_path):
    from evilm.models import create_model

    monkeypatch.setattr(D, "rank_and_world", lambda: (0, 3))  # as if 3 ranks had joined
    cfg = PRETRAIN.pretrain_config("smoke", {"batch_size": 4, "progress": False, "device": "cpu"})
    model = PRETRAIN.EViLMForPretraining(create_model("smoke"), cfg.losses)
    with pytest.raises(ConfigError, match="batch_size.*4 clips.*3 ranks: use a multiple of 3"):
        PRETRAIN.pretrain(cfg, model, [], tmp_path)


def test_entry_point_reads_torchrun_environment():
    from experiments.torchrun_pretrain import dist_config_from_env

    cfg = dist_config_from_env(
        {"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "MASTER_ADDR": "node0", "MASTER_PORT": "29500"}, "gloo"
    )
    assert (cfg.rank, cfg.world_size, cfg.local_rank, cfg.backend, cfg.init_method) == (3, 8, 1, "gloo", "env://")
    assert dist_config_from_env({}, "gloo").world_size == 1  # plain `python -m`: one process
    with pytest.raises(SystemExit, match="MASTER_ADDR, MASTER_PORT not set: start with torchrun"):
        dist_config_from_env({"RANK": "0", "WORLD_SIZE": "2"}, "gloo")
    with pytest.raises(SystemExit, match="RANK='x' is not an integer"):
        dist_config_from_env({"RANK": "x", "WORLD_SIZE": "2", "MASTER_ADDR": "a", "MASTER_PORT": "1"}, "gloo")
