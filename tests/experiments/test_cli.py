import pytest
from conftest import CALLS, FAKE_KINDS

import experiments.plan
import experiments.stages
from experiments.cli import EXIT_FAILED, EXIT_OK, EXIT_SPEC, build_parser, main


@pytest.fixture
def cli(specs, tracker, tmp_path, monkeypatch):
    """``main`` on the fake specs and stages, with the test's store and folders."""
    monkeypatch.setattr(experiments.plan, "STAGE_KINDS", FAKE_KINDS)
    monkeypatch.setattr(experiments.stages, "STAGE_KINDS", FAKE_KINDS)
    common = [
        "--specs",
        str(specs),
        "--tracking-uri",
        tracker.uri,
        "--runs-dir",
        str(tracker.runs_dir),
        "--reports-dir",
        str(tmp_path / "reports"),
        "--quiet",
    ]

    def call(*args):
        return main([*args, *common])

    return call


def test_run_then_rerun_reuses_and_reports(cli, tmp_path, capsys):
    assert cli("run", "faketable", "--seeds", "0") == EXIT_OK
    assert len(CALLS) == 7
    assert (tmp_path / "reports" / "faketable.md").exists()
    CALLS.clear()
    assert cli("run", "faketable", "--seeds", "0") == EXIT_OK
    assert CALLS == []
    out = capsys.readouterr().out
    assert "reused" in out

    assert cli("run", "faketable", "--seeds", "0", "--set", "qa.quality=0.9", "--dry-run") == EXIT_OK
    out = capsys.readouterr().out
    assert "2 to run" in out  # the qa stage of each measured row
    assert CALLS == []

    assert cli("run", "faketable", "--profile", "quick", "--seeds", "0", "--no-report") == EXIT_OK
    assert not (tmp_path / "reports" / "faketable.quick.md").exists()
    assert cli("report", "faketable", "--profile", "quick", "--seeds", "0") == EXIT_OK
    assert "Profile**: `quick`" in (tmp_path / "reports" / "faketable.quick.md").read_text()


def test_exit_codes(cli, capsys):
    assert cli("run", "faketabel") == EXIT_SPEC
    err = capsys.readouterr().err
    assert "did you mean 'faketable'" in err and "known:" in err
    assert cli("run", "faketable", "--set", "pretrain.lrr=1") == EXIT_SPEC
    assert "did you mean 'lr'" in capsys.readouterr().err
    assert cli("run", "fakesweep") == EXIT_SPEC  # a sweep is not run with `run`
    assert cli("run", "faketable", "--seeds", "0", "--set", "pretrain.fail=true") == EXIT_FAILED
    assert "failed or blocked" in capsys.readouterr().err


def test_sweep_and_show(cli, capsys):
    assert cli("sweep", "fakesweep", "--n-trials", "1") == EXIT_OK
    assert cli("sweep", "fakesweep", "--dry-run") == EXIT_OK
    assert "to run: 3 new, 0 to retry" in capsys.readouterr().out
    assert cli("show", "faketable", "--seeds", "0") == EXIT_OK
    out = capsys.readouterr().out
    assert "stages:" in out and "quality: 0.4" in out


def test_help_teaches(capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "python -m experiments run table6 --profile smoke" in text and "mlflow ui" in text
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["run", "--help"])
    assert "--dry-run" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["frobnicate"])
    assert exit_.value.code == 2


SMALL_PIPELINE = """\
description: data and one task, no pretraining
stages:
  data: {kind: data, seeded: false}
  qa: {kind: downstream, inputs: {data: data}, config: {task: qa}}
"""

SECOND_TABLE = """\
kind: table
title: "Fake table 2: shares its stages with the first"
base: fake
profile: smoke
seeds: [0]
baseline: plain
columns:
  - {id: qa, label: QA, stage: qa, metric: accuracy, scale: 100}
rows:
  - {id: plain, label: No pretraining, base: small, paper: {qa: 30.0}}
  - {id: mvm, label: With MVM, paper: {qa: 39.3}}
"""


@pytest.fixture
def two_tables(specs):
    (specs / "base" / "small.yaml").write_text(SMALL_PIPELINE)
    (specs / "faketable2.yaml").write_text(SECOND_TABLE)
    return specs


def test_run_all_shares_stages_times_and_indexes(cli, two_tables, tmp_path, capsys):
    assert cli("run", "all", "--seeds", "0") == EXIT_OK
    assert len(CALLS) == 7  # faketable's stages; faketable2 needs no other
    out = capsys.readouterr().out
    assert "faketable (smoke) wall time:" in out and "faketable2 (smoke) wall time:" in out
    assert "all (2 tables/figures)" in out and "7 stages ran" in out
    reports = tmp_path / "reports"
    first, second = (reports / "faketable.md").read_text(), (reports / "faketable2.md").read_text()
    assert "- **Wall time**: " in first and "this run; stage compute" in first
    assert "(all reused from earlier runs)" in second  # its stages ran for the first table

    index = (reports / "README.md").read_text()
    lines = [line for line in index.splitlines() if line.startswith("| [")]
    assert [line.split("](")[1].split(")")[0] for line in lines] == ["faketable.md", "faketable2.md"]
    assert all("`smoke`" in line for line in lines)
    verdict = next(line for line in second.splitlines() if line.startswith("| With MVM | QA |"))
    word = verdict.strip("|").split("|")[-1].strip().split(" (")[0]  # the report's verdict for its one row
    expected = (
        "1 of 1 ablation row reproduced"
        if word == "reproduced"
        else f"0 of 1 ablation row reproduced, 1 {word}"
    )
    assert lines[1].endswith(f"| {expected} |")

    CALLS.clear()  # --force across several tables: each forced stage runs once
    assert cli("run", "faketable2", "faketable", "--seeds", "0", "--force", "--no-report") == EXIT_OK
    assert len(CALLS) == 7

    CALLS.clear()  # a --set applies where its stage exists (not faketable2's pipeline-less row)
    assert cli("run", "all", "--seeds", "0", "--set", "pretrain.steps=4") == EXIT_OK
    assert sorted(k for k, _ in CALLS) == ["downstream", "downstream", "pretrain"]
    assert cli("run", "all", "--set", "nosuch.key=1") == EXIT_SPEC
    assert "no stage 'nosuch'" in capsys.readouterr().err

    CALLS.clear()  # a failing shared stage fails once, and both tables say so
    assert cli("run", "all", "--seeds", "0", "--set", "pretrain.fail=true") == EXIT_FAILED
    assert [k for k, _ in CALLS].count("pretrain") == 1


def test_run_with_sweeps_and_dry_run_of_several(cli, two_tables, tmp_path, capsys):
    assert cli("run", "faketable", "faketable2", "--seeds", "0", "--dry-run") == EXIT_OK
    assert "all 2: 7 distinct stages, 7 to run" in capsys.readouterr().out
    assert CALLS == []
    assert cli("run", "faketable2", "--with-sweeps") == EXIT_OK
    out = capsys.readouterr().out
    assert "fakesweep (smoke) wall time:" in out
    index = (tmp_path / "reports" / "README.md").read_text()
    lines = [line for line in index.splitlines() if line.startswith("| [")]
    assert "(fakesweep.md)" in lines[-1] and "4 trials complete (1 seed each; objective" in lines[-1]
    # 30 test items, one seed: the two best points' intervals overlap, so no point is named
    assert "no setting distinguishable at this budget" in lines[-1] and "best `" not in lines[-1]
    assert "(faketable2.md)" in lines[0]


def test_power_plans_seeds_for_each_compared_column(cli, capsys):
    assert cli("power", "faketable") == EXIT_OK
    assert "no compared column has finished runs" in capsys.readouterr().out
    assert cli("run", "faketable", "--seeds", "0", "1") == EXIT_OK
    capsys.readouterr()
    assert cli("power", "faketable", "--seeds", "0", "1") == EXIT_OK
    out = capsys.readouterr().out
    assert "faketable (smoke, seeds 0, 1): what it takes" in out and "80% power" in out
    lines = [line for line in out.splitlines() if "With MVM" in line]
    assert any("9.3" in line for line in lines)  # QA: the paper's |39.3 - 30.0|
    assert any("no paper Δ" in line for line in lines)  # Hits@1
    assert cli("power", "fakesweep") == EXIT_SPEC
    assert "teach" not in build_parser().format_help()
    sub = build_parser()._subparsers._group_actions[0].choices["power"]
    assert "MDD now" in sub.format_help() and "80% power" in sub.format_help()
