"""``gc`` deletes the stage folders no finished run uses, and nothing a finished or running stage needs."""

from __future__ import annotations

import io
import json
import shutil

from experiment_fakes import CALLS, FAKE_KINDS
from rich.console import Console

from experiments.cleanup import collect, find_garbage
from experiments.cli import EXIT_OK, main
from experiments.locks import lock_path, try_lock
from experiments.manifests import FETCHED, MANIFEST
from experiments.plan import build_plan, table_variants
from experiments.specs import load_spec


def plan_for(specs, cli_set=None):
    spec = load_spec("faketable", specs)
    return build_plan(spec.name, table_variants(spec, specs, "smoke", cli_set or {}), "smoke", [0], FAKE_KINDS)


def test_gc_deletes_what_no_finished_run_uses(specs, runner, tracker):
    done = runner.execute(plan_for(specs), "faketable")
    failed = runner.execute(plan_for(specs, {"pretrain.fail": True}), "faketable")
    broken = next(o for o in failed.values() if o.status == "failed")
    (broken.out_dir / "checkpoints").mkdir()
    (broken.out_dir / "checkpoints" / "last.pt").write_text("resume state")
    runs = tracker.runs_dir
    (runs / FETCHED / "run1").mkdir(parents=True)
    (runs / FETCHED / "run1" / "per_item.json").write_text("{}")
    stale_restore = runs / f"{'a' * 20}.restore-999999999"
    stale_restore.mkdir()
    other = runs / ("b" * 20)  # another store's finished stage in a shared runs folder
    other.mkdir()
    (other / MANIFEST).write_text(json.dumps({"stage_id": "b" * 20, "artifacts": {}, "store": "sqlite:///elsewhere.db"}))
    running = runs / ("c" * 20)  # a stage another process runs now
    running.mkdir()
    held = try_lock(running)
    (runs / "notes.txt").write_text("mine")  # not the runner's: never touched

    garbage, notes = find_garbage(tracker)
    assert {g.path for g in garbage} == {
        broken.out_dir, lock_path(broken.out_dir), runs / FETCHED, stale_restore
    }
    assert any("running now" in n for n in notes) and any("another store" in n for n in notes)

    log = io.StringIO()
    collect(tracker, dry_run=True, console=Console(file=log, width=300))
    assert broken.out_dir.exists() and "would delete 4 item(s)" in log.getvalue()
    collect(tracker, console=Console(file=log, width=300))
    assert not broken.out_dir.exists() and not stale_restore.exists() and not (runs / FETCHED).exists()
    assert other.exists() and running.exists() and (runs / "notes.txt").exists()
    held.release()
    assert all(o.out_dir.exists() for o in done.values())
    CALLS.clear()
    again = runner.execute(plan_for(specs), "faketable")  # everything finished is still reused
    assert {o.status for o in again.values()} == {"reused"} and CALLS == []


def test_gc_removes_folders_whose_runs_left_the_store(specs, runner, tracker, capsys):
    outcomes = runner.execute(plan_for(specs), "faketable")
    qa = next(o for o in outcomes.values() if o.stage.name == "qa")
    tracker.client.delete_run(qa.run_id)
    tracker.client._tracking_client.store._hard_delete_run(qa.run_id)
    assert main(["gc", "--runs-dir", str(tracker.runs_dir), "--tracking-uri", tracker.uri]) == EXIT_OK
    out = capsys.readouterr().err
    assert f"deleted {qa.out_dir}" in out and "its run is not in the store" in out
    assert not qa.out_dir.exists() and sum(o.out_dir.exists() for o in outcomes.values()) == len(outcomes) - 1
    shutil.rmtree(tracker.runs_dir)
    assert main(["gc", "--runs-dir", str(tracker.runs_dir), "--tracking-uri", tracker.uri]) == EXIT_OK
