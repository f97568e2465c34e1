"""One torchrun rank of the pretraining entry point, with its file writes recorded.

``torchrun ... ddp_pretrain_worker.py SPY_DIR [experiments.torchrun_pretrain arguments]``: runs
``experiments.torchrun_pretrain.main`` unchanged, after wrapping the functions through which the
pretraining stage writes files or reports metrics (checkpoint, model, metrics.json, the text
tokenizer, the metrics callback) so that each call is recorded; at the end the calls this rank made
go to SPY_DIR/rank<RANK>.json. The test then checks that rank 1 wrote nothing.
"""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402

import evilm.pretrain.loop as loop  # noqa: E402
from evilm.data.text import TextTokenizer  # noqa: E402
from experiments.torchrun_pretrain import main  # noqa: E402

calls: list[str] = []


def _record(owner, name: str, label: str) -> None:
    real = getattr(owner, name)

    def recorded(*args, **kwargs):
        calls.append(label)
        return real(*args, **kwargs)

    setattr(owner, name, recorded)


if __name__ == "__main__":
    torch.set_num_threads(1)  # the same float summation order as the 1-process run
    for name in ("save_checkpoint", "save_pretrained", "atomic_write_json", "report"):  # the loop's writes
        _record(loop, name, name)
    _record(TextTokenizer, "save", "text_tokenizer.save")
    spy_dir, argv = Path(sys.argv[1]), sys.argv[2:]
    code = main(argv)
    spy_dir.mkdir(parents=True, exist_ok=True)
    rank = os.environ.get("RANK", "0")
    (spy_dir / f"rank{rank}.json").write_text(json.dumps({"calls": calls, "exit": code}))
    sys.exit(code)
