"""One rank of a data-parallel run of the smoke E-ViLM (a retrieval alignment loss), through
evilm.train.distributed; the 1-process run is the same function with world_size=1."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from evilm.models import create_model
from evilm.models.heads import RetrievalHead
from evilm.train import distributed as D


class ToyPairs(torch.utils.data.Dataset):
    def __init__(self, n=8, frames=2, size=64, length=8):
        g = torch.Generator().manual_seed(0)
        self.items = []
        for i in range(n):
            clip = torch.rand(frames, 3, size, size, generator=g)
            ids = torch.zeros(length, dtype=torch.long)
            ids[:5] = torch.tensor([2, 10 + i % 3, 20 + i, 30, 3])
            self.items.append(
                {"index": i, "frames": clip, "input_ids": ids, "attention_mask": (ids != 0).long()}
            )

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


class DualEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = create_model("smoke")
        self.head = RetrievalHead(self.backbone.width, 16)

    def forward(self, frames, ids, mask):
        v = self.backbone.fuse(video=self.backbone.encode_video(frames)).cls
        t = self.backbone.fuse(text=self.backbone.encode_text(ids, mask), text_mask=mask).cls
        return self.head.video(v), self.head.text(t)


def run_rank(
    rank: int,
    world: int,
    init: str,
    out: str,
    steps: int = 2,
    global_batch: int = 4,
    resume: str = "",
    save_after: int = 0,
) -> dict | None:
    """``steps`` optimizer steps on the global batch; rank 0 saves weights, losses and gathered R@1 to ``out``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same summation order in every process
    try:
        D.init_distributed(D.DistConfig(rank=rank, world_size=world, backend="gloo", init_method=init))
        torch.manual_seed(0)
        model = DualEncoder().eval()  # eval: no dropout, whose masks would differ between ranks
        net = D.wrap(model)
        # SGD: linear in the gradient. (Adam divides by |grad|, so on parameters whose true gradient is 0,
        # e.g. attention key biases, it turns float-summation noise into full-size steps.)
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        start = 0
        if resume:
            state = torch.load(resume, map_location="cpu", weights_only=True)
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            start = state["step"]
        data = ToyPairs()
        sampler = D.shard_sampler(data, shuffle=True, seed=0)
        sampler.set_epoch(0)
        loader = DataLoader(data, batch_size=global_batch // world, sampler=sampler)
        losses = []
        for step, batch in enumerate(loader):
            if step < start:
                continue  # the batches the checkpoint already trained on
            if step >= steps:
                break
            v, t = net(batch["frames"], batch["input_ids"], batch["attention_mask"])
            loss = (1 - (v * t).sum(-1)).mean()  # per pair, so the ranks' mean is the global batch's
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(D.mean_over_ranks({"loss": loss.item()})["loss"])
            if save_after and step + 1 == save_after:
                ckpt = {"model": D.unwrap(net).state_dict(), "optimizer": opt.state_dict(), "step": step + 1}
                D.save_on_main(ckpt, Path(out).with_name("step1.pt"))
        # gathered evaluation: every rank embeds its shard; R@1 over all the ranks' embeddings
        eval_sampler = D.shard_sampler(data, shuffle=False, seed=0, drop_last=False)
        with torch.no_grad():
            idx, vs, ts = [], [], []
            for batch in DataLoader(data, batch_size=2, sampler=eval_sampler):
                v, t = model(batch["frames"], batch["input_ids"], batch["attention_mask"])
                idx.append(batch["index"]), vs.append(v), ts.append(t)
            order = D.gather_rows(torch.cat(idx)).argsort()
            v, t = D.gather_rows(torch.cat(vs))[order], D.gather_rows(torch.cat(ts))[order]
        r1 = float(((t @ v.T).argmax(1) == torch.arange(len(v))).float().mean())
        result = {"model": D.unwrap(net).state_dict(), "losses": losses, "video": v, "text": t, "r1": r1}
        D.save_on_main(result, out)
        return result
    finally:
        D.shutdown()
        torch.set_num_threads(threads)
