"""Downstream tasks on 2 gloo ranks under real torchrun (experiments/torchrun_pretrain.py --stage) fine-tune
exactly like 1 process with the same global batch, and evaluate over the whole test set: the same
metrics, each test item once in rank 0's per_item.json, in the test set's order; rank 1 writes nothing.

Retrieval (fine-tuned): its contrastive loss gathers the embeddings of every rank, and the ranks
hold 2 and 1 pairs of the last batch. QA: the last batch (1 question) leaves rank 1 idle. A toy
model (ddp_tasks_worker.py): a rank without rows in a step still takes part in a gathered loss, and a
parameter no rank reaches keeps no gradient. The model file has text dropout off (each rank
draws its own dropout masks by design) and the smoke model's EdgeNeXt has LayerNorm only.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from ddp_tasks_worker import TOY, ToyModel, toy_finetune

import evilm.tasks.finetune as tuning
from evilm.config import ConfigError
from evilm.tasks import qa, retrieval, task_config
from evilm.train import distributed as D

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).resolve().parent / "ddp_tasks_worker.py"

# eps above float-summation noise: Adam divides by |grad|, and on parameters whose true gradient is 0
# it would turn noise of 1e-10 into full-size steps that differ between runs
TRAIN = {"progress": False, "device": "cpu", "optim": {"lr": 1e-3, "warmup_ratio": 0.0, "eps": 1e-6}}
# 11 pairs at a global batch of 4: batches of 2+2, 2+2, 2+1 rows on the two ranks
RETRIEVAL = {"benchmark": "msrvtt_ret", "mc_benchmark": "msrvtt_mc", "train": {**TRAIN, "train_items": 11}}
# 5 questions: batches of 2+2, 1+0
QA = {"benchmark": "tgif_frame", "train": {**TRAIN, "train_items": 5}}


@pytest.fixture(scope="module")
def smoke_inputs(tmp_path_factory) -> dict[str, Path]:
    """The smoke world and a pretraining's model.pt (MLM + VTM heads, text dropout off), untrained."""
    from evilm.data import TextTokenizer, text_corpus
    from evilm.data.synthetic import WorldConfig, generate_world
    from evilm.models import create_model
    from evilm.pretrain.objectives import EViLMForPretraining
    from evilm.pretrain.pretrained import save_pretrained

    root = tmp_path_factory.mktemp("ddp_tasks")
    world, _ = generate_world(WorldConfig(profile="smoke", seed=0, progress=False), root / "worlds")
    tokenizer = TextTokenizer.build(text_corpus(world), keep_fraction=1.0)
    torch.manual_seed(0)
    backbone = create_model("smoke", text={"vocab_size": tokenizer.vocab_size, "dropout": 0.0})
    model = save_pretrained(root / "model.pt", EViLMForPretraining(backbone, ["mlm", "vtm"]),
                            meta={"text_vocab": tokenizer.vocab})
    return {"data": world, "pretrained": model}


def _one_process(monkeypatch, out: Path, inputs: dict, task: str, overrides: dict) -> tuple[dict, dict, dict]:
    """The stage in this process, 1 thread: (metrics, {step: logged metrics}, the fine-tuned weights)."""
    module = {"qa": qa, "retrieval": retrieval}[task]
    weights: dict = {}

    def kept(model, *args, **kwargs):
        result = tuning.finetune(model, *args, **kwargs)
        weights.update({k: v.detach().clone() for k, v in model.state_dict().items()})
        return result

    monkeypatch.setattr(module, "finetune", kept)
    seen: dict[int, dict] = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = module.run(task_config(task, "smoke", overrides), inputs, out,
                            on_metrics=lambda m, s: seen.setdefault(s, m))
    finally:
        torch.set_num_threads(threads)
    return result.metrics, seen, weights


def _close(got: float, want: float) -> bool:
    return abs(got - want) <= 1e-5 * max(1.0, abs(want))


def _check_task(out: Path, spies: Path, prefix: str, reference: tuple, exact: list[str], item_keys: list[str]) -> float:
    """The 2-rank outputs against the 1-process ones; returns the largest weight difference."""
    metrics, steps, weights = reference
    got = json.loads((out / "metrics.json").read_text())
    for k in exact:  # evaluation over the whole test set: the same numbers
        assert got[f"{prefix}/{k}"] == metrics[f"{prefix}/{k}"], (k, got, metrics)
    assert got[f"{prefix}/train_steps"] == metrics[f"{prefix}/train_steps"]
    logged: dict[int, dict] = {}  # (the last step's line comes before the test metrics' line)
    for row in map(json.loads, (out / "train_log.jsonl").read_text().splitlines()):
        logged.setdefault(row["step"], row)
    train_steps = [s for s in steps if f"{prefix}/train_loss" in steps[s]]
    assert train_steps and all(_close(logged[s][f"{prefix}/train_loss"], steps[s][f"{prefix}/train_loss"])
                               for s in train_steps), (logged, steps)
    # rank 0's per_item.json: every test item once, in order, with the 1-process results
    items = json.loads((out / "per_item.json").read_text())["items"]
    want = json.loads((out.parent.parent / "one" / prefix / "per_item.json").read_text())["items"]
    assert [i["index"] for i in items] == [i["index"] for i in want] == sorted({i["index"] for i in want})
    assert [[i[k] for k in item_keys] for i in items] == [[i[k] for k in item_keys] for i in want]
    # both ranks end with the same weights (the averaged gradients), which are the 1-process ones
    rank0 = torch.load(spies / f"{prefix}_rank0.pt", weights_only=True)
    rank1 = torch.load(spies / f"{prefix}_rank1.pt", weights_only=True)
    assert rank0.keys() == rank1.keys() == weights.keys()
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    worst = max(weights, key=lambda k: (rank0[k].float() - weights[k].float()).abs().max().item())
    print(f"{prefix}: largest weight difference in {worst}")
    return (rank0[worst].float() - weights[worst].float()).abs().max().item()


def test_two_torchrun_ranks_fine_tune_and_evaluate_like_one_process(tmp_path, smoke_inputs, monkeypatch):
    spies = tmp_path / "spies"
    common_args = ["--profile", "smoke", "--backend", "gloo", "--data", str(smoke_inputs["data"]),
                   "--pretrained", str(smoke_inputs["pretrained"])]
    runs = []
    for stage, overrides, prefix in (("retrieval", RETRIEVAL, "msrvtt_ret"), ("qa", QA, "tgif_frame")):
        config = tmp_path / f"{stage}.json"
        config.write_text(json.dumps(overrides))
        runs += ["--then"] * bool(runs) + ["--stage", stage, "--config", str(config), *common_args,
                                           "--out", str(tmp_path / "two" / prefix)]
    log = open(tmp_path / "torchrun.log", "w")
    torchrun = subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         str(WORKER), str(spies), *runs],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
    )
    try:  # the references, here while the ranks run
        one = tmp_path / "one"
        ret_ref = _one_process(monkeypatch, one / "msrvtt_ret", smoke_inputs, "retrieval", RETRIEVAL)
        qa_ref = _one_process(monkeypatch, one / "tgif_frame", smoke_inputs, "qa", QA)
        toy_ref = _toy_one_process()
        assert torchrun.wait(timeout=240) == 0, (tmp_path / "torchrun.log").read_text()[-4000:]
    finally:
        if torchrun.poll() is None:
            torchrun.kill()

    rank0 = json.loads((spies / "rank0.json").read_text())
    rank1 = json.loads((spies / "rank1.json").read_text())
    assert rank0["exit"] == rank1["exit"] == 0
    assert rank1["calls"] == []  # rank 1 neither writes nor reports
    writes = [c for c in rank0["calls"] if c.startswith("write_json")]
    assert writes == ["write_json:metrics.json", "write_json:per_item.json", "write_json:per_item_mc.json"] + \
        ["write_json:metrics.json", "write_json:per_item.json"]
    assert rank0["calls"].count("report") == 3 + 1 + 2 + 1  # each fine-tuning step, then the test metrics

    two = tmp_path / "two"
    worst = _check_task(two / "msrvtt_ret", spies, "msrvtt_ret", ret_ref,
                        ["R@1", "R@5", "R@10", "MdR", "MnR", "queries", "videos", "msrvtt_mc_acc"], ["rank"])
    mc = json.loads((two / "msrvtt_ret" / "per_item_mc.json").read_text())["items"]
    mc_want = json.loads((tmp_path / "one" / "msrvtt_ret" / "per_item_mc.json").read_text())["items"]
    assert [(i["index"], i["correct"], i["predicted"]) for i in mc] == \
        [(i["index"], i["correct"], i["predicted"]) for i in mc_want]
    worst_qa = _check_task(two / "tgif_frame", spies, "tgif_frame", qa_ref, ["acc", "test_items", "test_skipped"],
                           ["correct", "predicted", "answer", "type"])
    worst_toy = _check_toy(spies, toy_ref)
    print(f"largest weight difference, 2 ranks vs 1 process: retrieval {worst:.3g}, QA {worst_qa:.3g}, "
          f"toy {worst_toy:.3g}")
    assert worst < 1e-5 and worst_qa < 1e-5 and worst_toy < 1e-5


def _toy_one_process() -> dict:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return toy_finetune(*TOY)
    finally:
        torch.set_num_threads(threads)


def _check_toy(spies: Path, one: dict) -> float:
    ranks = [torch.load(spies / f"toy_rank{r}.pt", weights_only=True) for r in range(2)]
    assert ranks[1]["reports"] == [] and len(ranks[0]["reports"]) == len(one["reports"]) == 8  # 2 x 2 epochs x 2
    for got, want in zip(ranks[0]["reports"], one["reports"]):
        assert got.keys() == want.keys() and all(_close(got[k], want[k]) for k in want), (got, want)
    start = ToyModel().state_dict()
    assert torch.equal(one["model"]["unused"], start["unused"]) and torch.equal(ranks[0]["model"]["unused"],
                                                                               start["unused"])
    assert all(not torch.equal(one["model"][k], start[k]) for k in start if k != "unused")
    assert all(torch.equal(ranks[1]["model"][k], ranks[0]["model"][k]) for k in start)
    return max((ranks[0]["model"][k] - one["model"][k]).abs().max().item() for k in start)


def test_each_global_batch_is_split_over_the_ranks(monkeypatch):
    one = D.shard_batches(10, 4, seed=0, epoch=1)
    parts = []
    for rank in range(3):  # as if 3 ranks had joined
        monkeypatch.setattr(D, "rank_and_world", lambda rank=rank: (rank, 3))
        parts.append(D.shard_batches(10, 4, seed=0, epoch=1))
    assert [sum((p[i] for p in parts), []) for i in range(len(one))] == one  # side by side: the 1-process batch
    assert [len(p[-1]) for p in parts] == [1, 1, 0]  # the short last batch (2 items): rank 2 gets none
    assert list(D.rank_part(7)) == [5, 6]  # rank 2's part of a test set of 7: 3 + 2 + 2

    settings = task_config("qa", "smoke", {"train": {"progress": False, "batch_size": 4}}).train
    with pytest.raises(ConfigError, match="train.batch_size.*4 items.*3 ranks: use a multiple of 3"):
        tuning.finetune(torch.nn.Linear(2, 2), list(range(8)), settings, None, None, "qa")


def test_entry_point_refuses_inputs_of_another_stage(capsys, tmp_path):
    from experiments.torchrun_pretrain import main

    code = main(["--stage", "qa", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--tokenizer", "t.pt"], env={})
    assert code == 2 and "--tokenizer does not apply to --stage qa" in capsys.readouterr().err
    code = main(["--stage", "qa", "--set", "benchmark=msrvtt_ret", "--data", str(tmp_path), "--out", str(tmp_path)],
                env={})
    assert code == 2 and "benchmark" in capsys.readouterr().err
