"""``python -m experiments`` with the fake stage kinds of experiment_fakes.py (a command in its own
process, for tests that signal it)."""

import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[2])]

from experiment_fakes import FAKE_KINDS  # noqa: E402

import experiments.plan  # noqa: E402
import experiments.stages  # noqa: E402
from experiments.cli import main  # noqa: E402

experiments.plan.STAGE_KINDS = FAKE_KINDS
experiments.stages.STAGE_KINDS = FAKE_KINDS

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
