"""One torchrun rank of the entry point running downstream tasks, with its file writes recorded.

``torchrun ... ddp_tasks_worker.py SPY_DIR ARGS [--then ARGS ...]``: runs
``experiments.torchrun_pretrain.main(ARGS)`` for each group of arguments in turn, in one process
group (joining a second time in one process is not reliable with gloo), after wrapping the
functions through which a task writes files or reports metrics so that each call is recorded, and
``finetune`` so that the weights it ends with are saved. At the end the calls go to
SPY_DIR/rank<RANK>.json and the weights to SPY_DIR/<prefix>_rank<RANK>.pt.

Then, in the same group, ``toy_finetune``: ``evilm.tasks.finetune.finetune`` on a toy data set and
model, with a gathered contrastive loss (as retrieval's) and a per-item loss (as QA's), the last
batch of each epoch on rank 0 alone; its result goes to SPY_DIR/toy_rank<RANK>.pt.
"""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import evilm.tasks.finetune as tuning  # noqa: E402
from evilm.tasks import linear_probe, multiple_choice, qa, retrieval  # noqa: E402
from evilm.train import distributed as D  # noqa: E402
from experiments.torchrun_pretrain import main  # noqa: E402

calls: list[str] = []
RANK = os.environ.get("RANK", "0")


def _record_writes() -> None:
    real = tuning.atomic_write_json

    def recorded(path, data, *args, **kwargs):
        calls.append(f"write_json:{Path(path).name}")
        return real(path, data, *args, **kwargs)

    tuning.atomic_write_json = recorded


def _record_reports() -> None:
    for module in (tuning, qa, multiple_choice, retrieval, linear_probe):
        real = module.report

        def recorded(callback, metrics, step, real=real):
            calls.append("report")
            return real(callback, metrics, step)

        module.report = recorded


def _keep_weights(spy_dir: Path) -> None:
    for module in (qa, multiple_choice, retrieval):
        real = module.finetune

        def kept(model, dataset, settings, loss_fn, on_metrics, prefix, *args, real=real, **kwargs):
            out = real(model, dataset, settings, loss_fn, on_metrics, prefix, *args, **kwargs)
            state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            torch.save(state, spy_dir / f"{prefix}_rank{RANK}.pt")
            return out

        module.finetune = kept


class ToyPairs(torch.utils.data.Dataset):
    """``n`` items: a 4-number "clip" each; items 2k and 2k+1 share a video."""

    def __init__(self, n: int):
        self.frames = torch.randn(n, 4, generator=torch.Generator().manual_seed(0))

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i: int) -> dict:
        return {"index": i, "frames": self.frames[i], "video_id": f"v{i // 2}"}

    def collate(self, items: list[dict]) -> dict:
        if not items:
            return {"skipped": []}
        return {"skipped": [], "frames": torch.stack([i["frames"] for i in items]),
                "index": torch.tensor([i["index"] for i in items]), "video_id": [i["video_id"] for i in items]}


class ToyModel(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.video, self.text, self.classify = nn.Linear(4, 3), nn.Linear(4, 3), nn.Linear(4, 5)
        self.log_scale = nn.Parameter(torch.tensor(2.0))
        self.unused = nn.Parameter(torch.ones(2))  # no gradient anywhere: AdamW must leave it alone


def toy_finetune(n_items: int, batch_size: int) -> dict:
    """Both toy losses, 2 epochs each: the weights they end with and the metrics reported (rank 0)."""
    from evilm.tasks import task_config
    from evilm.tasks.finetune import finetune
    from evilm.tasks.retrieval import contrastive_loss
    from evilm.train.distributed import gather_with_grad

    settings = task_config("qa", "smoke", {"train": {"progress": False, "device": "cpu", "epochs": 2,
                                                     "batch_size": batch_size, "optim": {"eps": 1e-6}}}).train
    model, data = ToyModel(), ToyPairs(n_items)

    def gathered(batch):  # retrieval's: every rank's pairs, this rank's rows scored against them all
        if batch is None:
            pairs, vids = torch.zeros(0, 2, 3, requires_grad=True), torch.zeros(0, dtype=torch.long)
        else:
            x = batch["frames"]
            pairs = torch.stack([F.normalize(model.video(x), dim=-1), F.normalize(model.text(x.flip(-1)), dim=-1)], 1)
            vids = torch.tensor([int(v[1:]) for v in batch["video_id"]])
        pairs, rows = gather_with_grad(pairs)
        vids = D.gather_rows(vids)
        return contrastive_loss(pairs[:, 0], pairs[:, 1], vids[:, None] == vids[None, :], model.log_scale.exp(), rows), {}

    def per_item(batch):  # QA's: a mean over this rank's items
        logits = model.classify(batch["frames"])
        target = batch["index"] % 5
        return F.cross_entropy(logits, target), {"acc": (logits.argmax(-1) == target).float().mean()}

    reports: list[dict] = []
    finetune(model, data, settings, gathered, lambda m, s: reports.append(m), "gathered", exchanges=True)
    finetune(model, data, settings, per_item, lambda m, s: reports.append(m), "per_item")
    return {"model": {k: v.detach().clone() for k, v in model.state_dict().items()}, "reports": reports}


TOY = (5, 4)  # items, global batch: batches of 2+2 and 1+0 rows


if __name__ == "__main__":
    torch.set_num_threads(1)  # the same float summation order as the 1-process run
    spy_dir = Path(sys.argv[1])
    spy_dir.mkdir(parents=True, exist_ok=True)
    runs: list[list[str]] = [[]]
    for arg in sys.argv[2:]:
        if arg == "--then":
            runs.append([])
        else:
            runs[-1].append(arg)
    _record_writes()
    _record_reports()
    _keep_weights(spy_dir)
    join, leave = D.init_distributed, D.shutdown
    D.init_distributed = lambda cfg: D.is_distributed() or join(cfg)  # the first run joins,
    D.shutdown = lambda: None  # and the group stays for the next
    code = 0
    try:
        for argv in runs:
            code = main(argv)
            if code:
                break
        (spy_dir / f"rank{RANK}.json").write_text(json.dumps({"calls": calls, "exit": code}))
        if not code:
            torch.save(toy_finetune(*TOY), spy_dir / f"toy_rank{RANK}.pt")
    finally:
        leave()
    sys.exit(code)
