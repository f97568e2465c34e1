import shutil

import pytest
from experiment_fakes import CALLS, FAKE_KINDS

from experiments.plan import build_plan, table_variants
from experiments.specs import load_spec
from experiments.tracking import TAG


def plan_for(specs, cli_set=None, seeds=(0,)):
    spec = load_spec("faketable", specs)
    return build_plan(
        spec.name, table_variants(spec, specs, "smoke", cli_set or {}), "smoke", list(seeds), FAKE_KINDS
    )


def kinds_called():
    return sorted(kind for kind, _ in CALLS)


def test_second_run_reuses_every_stage(specs, runner, tracker):
    plan = plan_for(specs)
    first = runner.execute(plan, "faketable")
    assert {o.status for o in first.values()} == {"ran"}
    assert kinds_called() == [
        "data",
        "downstream",
        "downstream",
        "downstream",
        "downstream",
        "pretrain",
        "tokenizer",
    ]

    CALLS.clear()
    second = runner.execute(plan_for(specs), "faketable")
    assert CALLS == []
    assert {o.status for o in second.values()} == {"reused"}
    assert {sid: o.metrics for sid, o in second.items()} == {sid: o.metrics for sid, o in first.items()}

    # the MLflow record: tags, flattened params, per-step metrics, artifacts
    pretrain = next(o for o in first.values() if o.stage.name == "pretrain")
    run = tracker.client.get_run(pretrain.run_id)
    assert run.info.status == "FINISHED"
    tags = run.data.tags
    assert tags[f"{TAG}stage_id"] == pretrain.stage.id and tags[f"{TAG}table"] == "faketable"
    assert tags[f"{TAG}row"] == "mvm" and tags[f"{TAG}seed"] == "0" and tags[f"{TAG}stage"] == "pretrain"
    assert f"{TAG}git_commit" in tags and f"{TAG}hardware" in tags
    assert (
        run.data.params["lr"] == "0.1"
        and run.data.params["inputs.tokenizer"] == pretrain.stage.inputs["tokenizer"]
    )
    history = tracker.client.get_metric_history(pretrain.run_id, "loss")
    assert sorted(m.step for m in history) == [0, 1, 2, 2]  # 3 steps + the final value
    # a local store: the files stay in the stage folder only, which the run names
    assert tags[f"{TAG}out_dir"] == str(pretrain.out_dir) and (pretrain.out_dir / "ckpt" / "model.json").exists()
    assert tracker.client.list_artifacts(pretrain.run_id) == []


def test_changing_one_parameter_reruns_exactly_downstream(specs, runner):
    runner.execute(plan_for(specs), "faketable")
    CALLS.clear()
    outcomes = runner.execute(plan_for(specs, {"pretrain.lr": 0.2}), "faketable")
    ran = sorted(o.stage.name for o in outcomes.values() if o.status == "ran")
    assert ran == ["mc", "pretrain", "qa"]  # the "none" row's qa/mc have no pretrain input
    assert kinds_called() == ["downstream", "downstream", "pretrain"]


def test_failed_stage_is_not_reused_and_blocks_downstream(specs, runner, tracker):
    outcomes = runner.execute(plan_for(specs, {"pretrain.fail": True}), "faketable")
    status = {
        o.stage.name + ("/none" if "none" in {v for v, _ in o.stage.uses} else ""): o.status
        for o in outcomes.values()
    }
    assert status["pretrain"] == "failed"
    assert status["qa"] == "blocked" and status["mc"] == "blocked"
    assert status["qa/none"] == "ran"  # independent stages still run
    failed = next(o for o in outcomes.values() if o.status == "failed")
    run = tracker.client.get_run(failed.run_id)
    assert run.info.status == "FAILED" and "NaN" in run.data.tags[f"{TAG}error"]

    CALLS.clear()
    again = runner.execute(plan_for(specs, {"pretrain.fail": True}), "faketable")
    assert ("pretrain", "s0") in CALLS  # tried again, not reused
    assert next(o for o in again.values() if o.stage.name == "pretrain").status == "failed"


def test_killed_stage_is_marked_and_not_reused(specs, runner, tracker):
    plan = plan_for(specs, {"pretrain.interrupt": True})
    with pytest.raises(KeyboardInterrupt):
        runner.execute(plan, "faketable")
    pretrain = next(s for s in plan.stages.values() if s.name == "pretrain")
    runs = tracker.runs_of_stage(pretrain.id)
    assert [r.info.status for r in runs] == ["KILLED"]
    assert runner.reuse(pretrain) is None


def test_running_run_left_by_a_dead_process_is_not_reused(specs, runner, tracker):
    plan = plan_for(specs)
    data = next(s for s in plan.stages.values() if s.name == "data")
    # a run with this identity that never finished (the process was killed with -9)
    run_id = tracker.start(
        "faketable", "dead", {f"{TAG}stage_id": data.id, f"{TAG}host": "elsewhere", f"{TAG}pid": 1}
    )
    assert runner.reuse(data) is None
    outcomes = runner.execute(plan, "faketable")
    assert outcomes[data.id].status == "ran"
    assert tracker.client.get_run(run_id).info.status == "RUNNING"  # another host's: left alone


def test_force_and_rerun(specs, runner):
    runner.execute(plan_for(specs), "faketable")
    CALLS.clear()
    runner.execute(plan_for(specs), "faketable", rerun=["pretrain"])
    assert kinds_called() == ["downstream", "downstream", "pretrain"]
    CALLS.clear()
    runner.execute(plan_for(specs), "faketable", force=True)
    assert len(CALLS) == 7


def test_outputs_are_restored_from_a_shared_store_when_local_copy_is_gone(specs, shared_tracker):
    from experiments.runner import Runner

    runner = Runner(shared_tracker, show_progress=False)
    first = runner.execute(plan_for(specs), "faketable")
    pretrain = next(o for o in first.values() if o.stage.name == "pretrain")
    logged = {a.path for a in shared_tracker.client.list_artifacts(pretrain.run_id, "outputs")}
    assert {"outputs/ckpt", "outputs/_stage.json", "outputs/_config.json"} <= logged
    shutil.rmtree(shared_tracker.runs_dir)  # another machine: only the store has the files
    CALLS.clear()
    second = runner.execute(plan_for(specs), "faketable")
    runner.close()
    assert CALLS == [] and {o.status for o in second.values()} == {"reused"}
    pretrain = next(o for o in second.values() if o.stage.name == "pretrain")
    assert (
        pretrain.artifacts["checkpoint"].read_text()
        == next(o for o in first.values() if o.stage.name == "pretrain").artifacts["checkpoint"].read_text()
    )


def test_dry_run_reports_done_and_todo(specs, runner):
    plan = plan_for(specs)
    assert {o.status for o in runner.dry_run(plan).values()} == {"todo"}
    runner.execute(plan, "faketable")
    changed = plan_for(specs, {"qa.quality": 0.9})
    status = {
        (o.stage.name, tuple(sorted({v for v, _ in o.stage.uses}))): o.status
        for o in runner.dry_run(changed).values()
    }
    assert status[("qa", ("mvm",))] == "todo" and status[("qa", ("none",))] == "todo"
    assert status[("pretrain", ("mvm",))] == "done" and status[("mc", ("mvm",))] == "done"


def test_unfinished_attempt_keeps_its_files_for_resuming_but_force_starts_fresh(specs, runner):
    plan = plan_for(specs, {"pretrain.fail": True})
    runner.execute(plan, "faketable")
    pretrain = next(s for s in plan.stages.values() if s.name == "pretrain")
    partial = runner.out_dir(pretrain) / "checkpoints" / "last.pt"
    partial.parent.mkdir(parents=True)
    partial.write_text("step 100")  # what a resumable stage would have left
    runner.execute(plan, "faketable")
    assert partial.exists()
    runner.execute(plan, "faketable", force=True)
    assert not partial.exists()


def test_stage_seconds_are_recorded_and_carried_by_reuse(specs, runner, tracker):
    import json

    from experiments.manifests import MANIFEST
    from experiments.tracking import run_seconds

    first = runner.execute(plan_for(specs), "faketable")
    pretrain = next(o for o in first.values() if o.stage.name == "pretrain")
    manifest = json.loads((pretrain.out_dir / MANIFEST).read_text())
    assert 0 < manifest["seconds"] <= pretrain.seconds
    run = tracker.client.get_run(pretrain.run_id)
    assert float(run.data.tags[f"{TAG}seconds"]) == manifest["seconds"] == run_seconds(run)

    second = runner.execute(plan_for(specs), "faketable")
    reused = second[pretrain.stage.id]
    assert reused.status == "reused" and reused.seconds == manifest["seconds"]


def test_once_per_invocation_runs_a_stage_once_across_executes(specs, tracker):
    from experiments.runner import Runner

    runner = Runner(tracker, show_progress=False, once_per_invocation=True)
    forced = runner.execute(plan_for(specs), "faketable", force=True)
    assert {o.status for o in forced.values()} == {"ran"} and len(CALLS) == 7
    CALLS.clear()
    again = runner.execute(plan_for(specs), "faketable", force=True)  # a second table of the same command
    assert CALLS == [] and {o.status for o in again.values()} == {"reused"}

    failing = plan_for(specs, {"pretrain.fail": True})
    runner.execute(failing, "faketable")
    assert kinds_called().count("pretrain") == 1
    CALLS.clear()
    later = runner.execute(failing, "faketable")  # not retried within the command
    assert "pretrain" not in kinds_called()
    pretrain = next(o for o in later.values() if o.stage.name == "pretrain")
    assert pretrain.status == "failed" and "failed earlier in this command" in pretrain.error
    assert {
        o.status for o in later.values() if o.stage.name in ("qa", "mc") and o.stage.inputs.get("checkpoint")
    } == {"blocked"}
    runner.close()


def test_quiet_runs_turn_off_the_stages_progress_bars():
    from evilm.data.synthetic import WorldConfig
    from evilm.pretrain.config import pretrain_config
    from evilm.tasks.config import QAConfig
    from experiments.runner import without_progress_bars

    pre = pretrain_config("smoke")
    assert pre.progress and not without_progress_bars(pre).progress
    assert without_progress_bars(pre).max_steps == pre.max_steps  # nothing else changes
    qa = QAConfig()
    assert qa.train.progress and not without_progress_bars(qa).train.progress
    assert not without_progress_bars(WorldConfig(profile="smoke")).progress
    assert without_progress_bars({"progress": True}) == {"progress": True}  # not a dataclass: as is


def test_code_version_is_dirty_for_code_changes_not_for_regenerated_reports(tmp_path):
    import subprocess

    from experiments.tracking import git_commit

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "table6.md").write_text("old\n")
    (tmp_path / "model.py").write_text("x = 1\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    clean = git_commit(tmp_path)
    assert len(clean) == 12 and not clean.endswith("+dirty")
    (tmp_path / "reports" / "table6.md").write_text("rewritten by a run\n")
    assert git_commit(tmp_path) == clean
    (tmp_path / "model.py").write_text("x = 2\n")
    assert git_commit(tmp_path) == clean + "+dirty"


def test_a_cached_rerun_imports_no_mlflow(specs, tracker, tmp_path):
    """Planning and reusing finished stages read the local manifests: MLflow loads only to run a stage."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    worker = Path(__file__).resolve().with_name("cli_worker.py")
    argv = ["run", "faketable", "--seeds", "0", "--quiet", "--specs", str(specs), "--tracking-uri", tracker.uri,
            "--runs-dir", str(tracker.runs_dir), "--reports-dir", str(tmp_path / "reports")]
    probe = (
        "import json, runpy, sys\n"
        f"sys.argv = [{str(worker)!r}, *{argv!r}]\n"
        "try:\n"
        f"    runpy.run_path({str(worker)!r}, run_name='__main__')\n"
        "except SystemExit as done:\n"
        "    assert done.code == 0, done.code\n"
        "print(json.dumps(sorted(m for m in ('mlflow', 'torch', 'optuna') if m in sys.modules)))\n"
    )
    env = {**os.environ}

    def run():
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, env=env)
        assert out.returncode == 0, out.stderr[-3000:]
        return json.loads(out.stdout.strip().splitlines()[-1])

    assert run() == ["mlflow"]  # the first run records every stage
    assert len(CALLS) == 7
    CALLS.clear()
    report = tmp_path / "reports" / "faketable.md"
    first = report.read_text()
    assert run() == []  # the second reuses them all from the manifests; its report is up to date
    assert CALLS == [] and report.read_text() == first
    report.write_text(first.replace('"key": "', '"key": "0'))  # a report made from something else
    run()  # is written again
    assert "(all reused from earlier runs)" in report.read_text()
