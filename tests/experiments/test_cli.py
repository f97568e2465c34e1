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
