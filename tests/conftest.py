"""Shared test settings: deterministic, CPU-only, few threads."""

import warnings

import pytest
import torch

warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
