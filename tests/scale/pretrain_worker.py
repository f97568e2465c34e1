"""A pretraining run in a process of its own (for the kill-and-resume test).

``python pretrain_worker.py OUT_DIR [--block-at STEP]``: pretrain the smoke E-ViLM on toy clips for
4 optimizer steps with a checkpoint after every step and ``resume=True``; with ``--block-at``, hang
in the metrics callback of that step (before its checkpoint) after writing OUT_DIR/blocked, until
the test kills the process. At the end the final weights go to OUT_DIR/final.pt.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402

from evilm.config import from_dict  # noqa: E402
from evilm.files import atomic_torch_save  # noqa: E402
from evilm.models import create_model  # noqa: E402
from evilm.pretrain.config import PretrainConfig  # noqa: E402
from evilm.pretrain.loop import pretrain  # noqa: E402
from evilm.pretrain.objectives import EViLMForPretraining  # noqa: E402


class ToyClips(torch.utils.data.Dataset):
    """Coloured noise clips, a caption naming the colour, MVM codes = the colour."""

    def __init__(self, n=6, frames=2, size=64, length=8):
        g = torch.Generator().manual_seed(0)
        self.items = []
        for i in range(n):
            colour = i % 3
            clip = torch.rand(frames, 3, size, size, generator=g) * 0.2
            clip[:, colour] += 0.7
            ids = torch.zeros(length, dtype=torch.long)
            ids[:5] = torch.tensor([2, 10 + colour, 20 + i % 5, 30, 3])
            codes = torch.full((frames, 2, 2), colour, dtype=torch.long)
            self.items.append(
                {"frames": clip, "input_ids": ids, "attention_mask": (ids != 0).long(), "codes": codes}
            )

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def train(out_dir: Path, block_at: int = 0) -> dict[str, torch.Tensor]:
    """4 optimizer steps (2 epochs of 2), a checkpoint after each; returns the final weights."""
    cfg = from_dict(
        PretrainConfig,
        dict(
            model="smoke",
            losses=["mlm", "vtm", "mvm"],
            batch_size=2,
            epochs=2,
            log_every=1,
            progress=False,
            device="cpu",
            checkpoint_every=1,
            resume=True,
            optim={"lr": 1e-3, "warmup_ratio": 0.25},
        ),
    )

    def on_metrics(metrics, step):
        if step == block_at:
            (out_dir / "blocked").write_text(str(step))
            while True:  # killed here, after step-1's checkpoint, before this step's
                time.sleep(0.1)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same float summation order in every process
    try:
        torch.manual_seed(0)
        model = EViLMForPretraining(create_model("smoke"), cfg.losses)
        out_dir.mkdir(parents=True, exist_ok=True)
        result = pretrain(cfg, model, ToyClips(), out_dir, on_metrics=on_metrics)
    finally:
        torch.set_num_threads(threads)
    assert result.metrics["pretrain/complete"] == 1.0, result.metrics
    atomic_torch_save(model.state_dict(), out_dir / "final.pt")
    return model.state_dict()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--block-at", type=int, default=0)
    args = parser.parse_args()
    train(args.out_dir, args.block_at)


if __name__ == "__main__":
    main()
