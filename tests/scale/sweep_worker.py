"""``python -m experiments`` with the fake stage kinds of scale_fakes.py (a worker process in tests)."""

import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[2])]

from scale_fakes import KINDS  # noqa: E402

import experiments.plan  # noqa: E402
import experiments.stages  # noqa: E402
from experiments.cli import main  # noqa: E402

experiments.plan.STAGE_KINDS = KINDS
experiments.stages.STAGE_KINDS = KINDS

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
