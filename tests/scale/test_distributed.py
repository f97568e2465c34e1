"""2 gloo processes (DDP) give the same weights, losses and gathered retrieval as 1 process with the
same global batch; a checkpoint written by 2 ranks resumes on 1."""

from __future__ import annotations

import torch
import torch.multiprocessing as mp
from ddp_worker import run_rank

from evilm.train import distributed as D


def _close(a: dict, b: dict) -> None:
    worst = max((a["model"][n] - b["model"][n]).abs().max().item() for n in a["model"])
    print(f"largest weight difference, 2 ranks vs 1 process: {worst:.3g}")
    assert worst < 1e-5
    assert torch.allclose(torch.tensor(a["losses"]), torch.tensor(b["losses"]), atol=1e-6)
    assert torch.allclose(a["video"], b["video"], atol=1e-5) and torch.allclose(
        a["text"], b["text"], atol=1e-5
    )
    assert a["r1"] == b["r1"]


def test_two_gloo_ranks_match_one_process(tmp_path):
    init = f"file://{tmp_path / 'rendezvous'}"
    out = tmp_path / "ddp.pt"
    mp.spawn(run_rank, args=(2, init, str(out), 2, 4, "", 1), nprocs=2, join=True)
    ddp = torch.load(out, weights_only=True)
    single = run_rank(0, 1, "", str(tmp_path / "single.pt"), steps=2, global_batch=4)
    assert not D.is_distributed()
    assert len(ddp["losses"]) == 2 and ddp["losses"][1] != ddp["losses"][0]
    start = torch.load(tmp_path / "step1.pt", weights_only=True)  # written once, by rank 0
    moved = [n for n in single["model"] if not torch.equal(start["model"][n], single["model"][n])]
    assert moved, "training changed no weight"
    _close(ddp, single)
    # the 2-rank checkpoint after step 1, resumed on 1 process for step 2
    resumed = run_rank(
        0, 1, "", str(tmp_path / "resumed.pt"), steps=2, global_batch=4, resume=str(tmp_path / "step1.pt")
    )
    for name in single["model"]:
        assert torch.allclose(resumed["model"][name], single["model"][name], rtol=1e-4, atol=1e-6), name
    assert abs(resumed["losses"][0] - single["losses"][1]) < 1e-6


def test_gather_rows_single_process_is_identity():
    x = torch.arange(6.0).reshape(3, 2)
    assert torch.equal(D.gather_rows(x), x)
    assert D.mean_over_ranks({"a": 1.5}) == {"a": 1.5} and D.rank_and_world() == (0, 1)


def test_average_buffers_gives_every_rank_the_mean_batchnorm_statistics(tmp_path):
    from buffers_worker import run_rank as buffers_rank

    out = tmp_path / "buffers.pt"
    mp.spawn(buffers_rank, args=(2, f"file://{tmp_path / 'rendezvous'}", str(out)), nprocs=2, join=True)
    got = torch.load(out, weights_only=True)
    # rank r saw rows r+1 .. r+4: running mean 0.9 * 0 + 0.1 * (r + 2.5), averaged over r = 0, 1
    assert torch.allclose(got["mean"], torch.full((3,), 0.1 * 3.0))
    # batch variance 5/3 on both ranks (unbiased, of 4 consecutive numbers): 0.9 * 1 + 0.1 * 5/3
    assert torch.allclose(got["var"], torch.full((3,), 0.9 + 0.1 * 5 / 3))
    assert got["batches"].item() == 1  # integer buffers are left alone
