"""Shared fixtures for the data tests: one `smoke` world per test session."""

from __future__ import annotations

import pytest

from evilm.data.synthetic import WorldConfig, generate_world


@pytest.fixture(scope="session")
def smoke_world(tmp_path_factory):
    """A generated `smoke` world (about 140 clips of 8 frames at 64x64), read-only for tests."""
    root = tmp_path_factory.mktemp("worlds")
    path, _ = generate_world(WorldConfig(profile="smoke", seed=0, progress=False), root)
    return path
