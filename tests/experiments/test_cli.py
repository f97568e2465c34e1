import pytest
from experiment_fakes import CALLS, FAKE_KINDS

import experiments.plan
import experiments.stages
from experiments.cli import EXIT_FAILED, EXIT_OK, EXIT_SPEC, EXIT_STORE, build_parser, main


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


def test_a_paper_dry_run_on_a_missing_data_root_fails_with_a_summary(tmp_path, store_uri, monkeypatch, capsys):
    monkeypatch.delenv("EVILM_SPECS", raising=False)
    missing = tmp_path / "nonexistent"
    argv = ["run", "table6", "--profile", "paper", "--set", f"data.root={missing}", "--dry-run", "--quiet",
            "--tracking-uri", store_uri, "--runs-dir", str(tmp_path / "runs"), "--reports-dir", str(tmp_path / "r")]
    assert main(argv) == EXIT_FAILED
    captured = capsys.readouterr()
    assert "data check of stage 'data' (data_root): 11 of 11 failed" in captured.err
    for name in ("webvid", "msrvtt_qa", "hmdb51", "k400"):
        assert f"FAIL {name}: the data root {missing} does not exist" in captured.err
    assert "1 with unusable data" in captured.out and "cannot run" in captured.err


def test_seeds_and_thread_counts_are_checked_before_anything_runs(cli, capsys):
    for bad in (["--seeds", "-1"], ["--seeds", "x"], ["--threads", "0"], ["--jobs", "0"]):
        with pytest.raises(SystemExit) as exit_:
            cli("run", "faketable", "--dry-run", *bad)
        assert exit_.value.code == EXIT_SPEC, bad
    assert "a seed is a whole number >= 0, got -1" in capsys.readouterr().err
    assert CALLS == []


def test_an_unreachable_store_is_one_line_naming_it_with_its_password_masked(specs, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(experiments.plan, "STAGE_KINDS", FAKE_KINDS)
    common = ["--specs", str(specs), "--runs-dir", str(tmp_path / "runs"), "--reports-dir", str(tmp_path / "r")]
    down = "postgresql://bob:s3cret@127.0.0.1:1/evilm"  # nothing listens on port 1
    assert main(["run", "faketable", "--tracking-uri", down, "--quiet", *common]) == EXIT_STORE
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "cannot reach the tracking store postgresql://bob:***@127.0.0.1:1/evilm" in lines[0]
    assert "Check that the database server runs" in lines[0] and "s3cret" not in err

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    optuna_down = "postgresql://:pw@127.0.0.1:1/optuna?password=pw"
    assert main(["sweep", "fakesweep", "--storage", optuna_down, "--tracking-uri", store, *common]) == EXIT_STORE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot reach the sweep storage postgresql://:***@127.0.0.1:1/optuna" in err
    assert "pw" not in err.replace("postgresql", "")


def test_dry_run_prints_the_estimate_from_the_stores_finished_runs(cli, capsys):
    assert cli("run", "faketable", "--seeds", "0", "--dry-run") == EXIT_OK
    out = capsys.readouterr().out
    # an empty store has nothing to go by
    assert "faketable (smoke) stage compute: no stage done yet; no estimate for the 7 to run" in out
    assert cli("run", "faketable", "--seeds", "0") == EXIT_OK
    capsys.readouterr()
    assert cli("run", "faketable", "--seeds", "0", "--set", "qa.quality=0.9", "--dry-run") == EXIT_OK
    out = capsys.readouterr().out
    assert "for the 2 to run;" in out and "not counted" not in out  # both qa stages have a past qa run
