"""Small pre-training inputs the pre-training tests share: toy clips, the smoke model, a config."""

import torch

from evilm.config import from_dict
from evilm.models import create_model
from evilm.pretrain.config import PretrainConfig
from evilm.pretrain.objectives import EViLMForPretraining


class ToyClips(torch.utils.data.Dataset):
    """Clips whose captions name their colour, codes from the region's mean colour (cached labels)."""

    def __init__(self, n=12, frames=2, size=64, length=8, nan_index=None, only_colour=False):
        # only_colour: the caption is the colour word alone, so every mismatched pair is visible
        g = torch.Generator().manual_seed(0)
        self.items = []
        for i in range(n):
            colour = i % 3
            clip = torch.rand(frames, 3, size, size, generator=g) * 0.2
            clip[:, colour] += 0.7
            if i == nan_index:
                clip[0, 0, 0, 0] = float("nan")
            words = [10 + colour, 30] if only_colour else [10 + colour, 20 + (i % 5), 30]
            ids = torch.zeros(length, dtype=torch.long)
            ids[: len(words) + 2] = torch.tensor([2, *words, 3])
            mask = (ids != 0).long()
            codes = torch.full((frames, 2, 2), colour, dtype=torch.long)
            self.items.append({"frames": clip, "input_ids": ids, "attention_mask": mask, "codes": codes})

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


class SquareClips(torch.utils.data.Dataset):
    """Clips of a square of one of 3 colours on a background of a random tint; the caption names the
    square's colour, which is also each item's ``label`` (a probe target). The clip's mean colour says
    little about the label (the tint outweighs the square), so an encoder at its random initialisation
    reads it poorly; one pre-trained on the captions learns to. ``collate`` serves
    ``evilm.tasks.linear_probe.extract_features``."""

    def __init__(self, n=60, seed=0, frames=2, size=64, square=32, length=8):
        g = torch.Generator().manual_seed(seed)
        self.items = []
        for i in range(n):
            colour = i % 3
            clip = torch.rand(frames, 3, size, size, generator=g) * 0.2 + torch.rand(1, 3, 1, 1, generator=g) * 0.7
            y, x = torch.randint(size - square + 1, (2,), generator=g).tolist()
            clip[:, :, y : y + square, x : x + square] = torch.rand(frames, 3, square, square, generator=g) * 0.2
            clip[:, colour, y : y + square, x : x + square] += 0.7
            ids = torch.zeros(length, dtype=torch.long)
            ids[:4] = torch.tensor([2, 10 + colour, 30, 3])
            self.items.append({"frames": clip, "input_ids": ids, "attention_mask": (ids != 0).long(),
                               "codes": torch.full((frames, 2, 2), colour, dtype=torch.long),
                               "label": colour, "index": i})

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]

    def collate(self, items):
        return {"skipped": [], **torch.utils.data.default_collate(items)}


def smoke_model(losses, seed=0):
    torch.manual_seed(seed)
    return EViLMForPretraining(create_model("smoke"), losses)


def config(**kw):
    base = dict(model="smoke", batch_size=4, epochs=2, log_every=1, progress=False, device="cpu",
                optim={"lr": 1e-3, "warmup_ratio": 0.25})
    base.update(kw)
    return from_dict(PretrainConfig, base)
