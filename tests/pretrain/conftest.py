"""Shared fixtures for the pre-training tests: one `smoke` world per session."""

from __future__ import annotations

import pytest

from evilm.data.synthetic import WorldConfig, generate_world


@pytest.fixture(scope="session")
def smoke_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("worlds")
    path, _ = generate_world(WorldConfig(profile="smoke", seed=0, progress=False), root)
    return path
