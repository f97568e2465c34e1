"""Shared test settings: deterministic, CPU-only, few threads."""

import warnings

import pytest
import torch

warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
# One thread: the tests' tensors are small, and on a loaded machine two OpenMP threads waiting on each
# other made a 60-step test 14x slower than one.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def smoke_world(tmp_path_factory):
    """One generated `smoke` world for the whole session (about 140 clips of 8 frames at 64x64), read-only."""
    from evilm.data.synthetic import WorldConfig, generate_world

    root = tmp_path_factory.mktemp("worlds")
    path, _ = generate_world(WorldConfig(profile="smoke", seed=0, progress=False), root)
    return path
