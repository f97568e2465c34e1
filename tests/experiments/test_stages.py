"""The data stages. The real data root (the paper profile's data): its identity follows the annotation
files under the root, and ``--dry-run`` checks that every benchmark loads before anything runs. The
generated world: its identity follows the generator's version and the profile's pool sizes."""

from __future__ import annotations

import dataclasses
import io
import os

import pytest
from experiment_fakes import FAKE_KINDS
from rich.console import Console

from evilm.data import synthetic
from experiments.plan import build_plan, table_variants
from experiments.runner import Runner
from experiments.specs import load_spec
from experiments.stages import STAGE_KINDS, DataRootConfig, Input, check_data_root

PIPELINE = """\
stages:
  data: {kind: data_root, seeded: false, config: {benchmarks: [hmdb51]}}
  qa: {kind: downstream, inputs: {data: data}}
"""
TABLE = """\
kind: table
title: real data
base: real
profile: paper
seeds: [0]
columns: [{id: qa, label: QA, stage: qa, metric: accuracy}]
rows: [{id: only, label: Only}]
"""


def _hmdb_root(root):
    """Two HMDB51 classes in the official layout: split files and (tiny stand-in) videos."""
    splits = root / "hmdb51/testTrainMulti_7030_splits"
    splits.mkdir(parents=True)
    for label in ("brush_hair", "cartwheel"):
        (splits / f"{label}_test_split1.txt").write_text(f"{label}_a.avi 1 \n{label}_b.avi 2 \n")
        for name in "ab":
            video = root / f"hmdb51/videos/{label}/{label}_{name}.avi"
            video.parent.mkdir(parents=True, exist_ok=True)
            video.write_bytes(b"video")
    return root


@pytest.fixture
def real_specs(specs):
    (specs / "base" / "real.yaml").write_text(PIPELINE)
    (specs / "realtable.yaml").write_text(TABLE)
    return specs


KINDS = {
    "data_root": STAGE_KINDS["data_root"],
    "downstream": dataclasses.replace(FAKE_KINDS["downstream"], inputs={"data": Input(("data_root",), "world")}),
}


def plan_for(specs, root):
    spec = load_spec("realtable", specs)
    variants = table_variants(spec, specs, "paper", {"data.root": str(root)})
    return build_plan(spec.name, variants, "paper", [0], KINDS)


def data_id(plan) -> str:
    return next(sid for sid, s in plan.stages.items() if s.name == "data")


def test_the_data_roots_identity_follows_its_annotation_files(real_specs, tmp_path):
    root = _hmdb_root(tmp_path / "real")
    first = plan_for(real_specs, root)
    assert data_id(plan_for(real_specs, root)) == data_id(first)
    (root / "hmdb51/videos/cartwheel/cartwheel_c.avi").write_bytes(b"more video")  # not an annotation
    assert data_id(plan_for(real_specs, root)) == data_id(first)
    split = root / "hmdb51/testTrainMulti_7030_splits/cartwheel_test_split1.txt"
    stat = split.stat()
    split.write_text(split.read_text().replace("_a.avi 1", "_a.avi 2"))  # same size and time, new content
    os.utime(split, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    changed = plan_for(real_specs, root)
    assert data_id(changed) != data_id(first)
    qa = [sid for sid, s in changed.stages.items() if s.name == "qa"]
    assert qa != [sid for sid, s in first.stages.items() if s.name == "qa"]  # and everything downstream


def test_the_generated_worlds_identity_follows_its_generator_and_pool_sizes(monkeypatch):
    world = STAGE_KINDS["data"]
    config = synthetic.WorldConfig(profile="smoke")
    first = world.content_fingerprint(config)
    assert world.content_fingerprint(synthetic.WorldConfig(profile="smoke", workers=1)) == first
    monkeypatch.setattr(synthetic, "GENERATOR_VERSION", synthetic.GENERATOR_VERSION + 1)
    assert world.content_fingerprint(config) != first
    monkeypatch.undo()
    sizes = dataclasses.replace(synthetic.PROFILES["smoke"]["sizes"], tgif_train=9)
    monkeypatch.setitem(synthetic.PROFILES["smoke"], "sizes", sizes)
    assert world.content_fingerprint(config) != first


def test_the_check_finds_a_missing_root_and_missing_videos(tmp_path):
    missing = check_data_root(DataRootConfig(root=str(tmp_path / "nowhere"), benchmarks=["hmdb51", "k400"]))
    assert [(c.name, c.ok) for c in missing] == [("hmdb51", False), ("k400", False)]
    assert "does not exist" in missing[0].summary and str(tmp_path / "nowhere") in missing[0].summary
    root = _hmdb_root(tmp_path / "real")
    [good] = check_data_root(DataRootConfig(root=str(root), benchmarks=["hmdb51"]))
    assert good.ok and good.counts["test"] == 2, good.summary
    for video in (root / "hmdb51/videos").rglob("*.avi"):
        video.unlink()
    [bad] = check_data_root(DataRootConfig(root=str(root), benchmarks=["hmdb51"]))
    assert not bad.ok and "sampled videos are missing" in bad.summary
    [absent] = check_data_root(DataRootConfig(root=str(root), benchmarks=["k400"]))
    assert not absent.ok and "k400" in absent.summary


def test_a_dry_run_checks_the_data_and_says_what_fails(real_specs, tracker, tmp_path):
    root = _hmdb_root(tmp_path / "real")
    log = io.StringIO()
    runner = Runner(tracker, Console(file=log, width=200), show_progress=False)
    good = runner.dry_run(plan_for(real_specs, root))
    assert {o.status for o in good.values()} == {"todo"}
    assert "data check of stage 'data' (data_root): 1 ok" in log.getvalue()
    for video in (root / "hmdb51/videos").rglob("*.avi"):
        video.unlink()
    runner = Runner(tracker, Console(file=log, width=200), show_progress=False)  # a runner checks once per command
    bad = runner.dry_run(plan_for(real_specs, root))
    assert bad[data_id(plan_for(real_specs, root))].status == "unusable"
    assert "1 of 1 failed" in log.getvalue() and "FAIL" in log.getvalue()
