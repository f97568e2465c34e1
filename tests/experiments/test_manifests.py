import json
import shutil

from experiment_fakes import FAKE_KINDS

from experiments.manifests import MANIFEST, read_manifest, relative_path, run_artifact, write_manifest


def test_a_manifest_is_read_back_only_for_its_stage_with_its_artifacts(tmp_path):
    (tmp_path / "model.pt").write_text("weights")
    write_manifest(tmp_path, "abc", "run1", {"loss": 0.5}, {"model": "model.pt"}, 1.25)
    manifest = read_manifest(tmp_path, "abc")
    assert manifest == {
        "stage_id": "abc",
        "run_id": "run1",
        "metrics": {"loss": 0.5},
        "artifacts": {"model": "model.pt"},
        "seconds": 1.25,
    }
    assert json.loads((tmp_path / MANIFEST).read_text()) == manifest
    assert read_manifest(tmp_path, "other") is None  # another stage's folder
    (tmp_path / "model.pt").unlink()
    assert read_manifest(tmp_path, "abc") is None  # an artifact is gone: not reusable
    assert read_manifest(tmp_path / "missing", "abc") is None


def test_relative_paths_stay_absolute_outside_the_folder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    assert relative_path(out / "sub" / "f.json", out) == "sub/f.json"
    assert relative_path(tmp_path / "elsewhere.json", out) == str((tmp_path / "elsewhere.json").resolve())


def test_a_finished_runs_artifacts_are_found_in_its_folder_or_fetched(specs, shared_tracker):
    from experiments.plan import build_plan, table_variants
    from experiments.runner import Runner
    from experiments.specs import load_spec

    tracker = shared_tracker  # outputs copied into the store, as with PostgreSQL + an artifact server
    spec = load_spec("faketable", specs)
    plan = build_plan(spec.name, table_variants(spec, specs, "smoke", {}), "smoke", [0], FAKE_KINDS)
    with Runner(tracker, show_progress=False) as runner:
        outcomes = runner.execute(plan, "faketable")
    qa = next(o for o in outcomes.values() if o.stage.name == "qa")
    run = tracker.finished_run(qa.stage.id)
    local = run_artifact(tracker, run, "per_item")
    assert local == qa.artifacts["per_item"] and run_artifact(tracker, run, "nothing") is None
    text = local.read_text()
    shutil.rmtree(tracker.runs_dir)  # another machine's run: only MLflow has the files
    assert run_artifact(tracker, run, "per_item", fetch=False) is None
    fetched = run_artifact(tracker, run, "per_item")
    assert fetched is not None and fetched.read_text() == text


def test_a_local_store_reads_finished_runs_from_manifests_without_mlflow(specs, runner, tracker):
    """The manifest holds the run as MLflow does (status, tags, last metric values), so reuse and
    reports need no MLflow; it counts only for the store that recorded it."""
    from experiments.manifests import LocalRun, local_run
    from experiments.plan import build_plan, table_variants
    from experiments.specs import load_spec
    from experiments.tracking import Tracker

    spec = load_spec("faketable", specs)
    plan = build_plan(spec.name, table_variants(spec, specs, "smoke", {}), "smoke", [0], FAKE_KINDS)
    outcomes = runner.execute(plan, "faketable")
    tok = next(o for o in outcomes.values() if o.stage.name == "tokenizer")
    local = tracker.finished_run(tok.stage.id)
    assert isinstance(local, LocalRun)
    stored = tracker.client.get_run(tok.run_id)
    assert local.info.run_id == stored.info.run_id and local.info.status == stored.info.status == "FINISHED"
    assert local.info.end_time == stored.info.end_time
    assert local.data.metrics == stored.data.metrics  # "loss" per step and "usage": each one's last value
    assert local.data.params == stored.data.params
    mine = {k: v for k, v in stored.data.tags.items() if not k.startswith("mlflow.") or k == "mlflow.runName"}
    assert local.data.tags == mine
    other = Tracker(tracker.uri.replace("mlflow.db", "other.db"), tracker.runs_dir)
    assert local_run(tok.out_dir, tok.stage.id, other.display_uri) is None  # another store's record
    old = json.loads((tok.out_dir / MANIFEST).read_text())
    for key in ("store", "status", "tags", "logged_metrics"):
        old.pop(key)
    (tok.out_dir / MANIFEST).write_text(json.dumps(old))  # written before manifests held the run
    assert local_run(tok.out_dir, tok.stage.id, tracker.display_uri) is None
    assert tracker.finished_run(tok.stage.id).info.run_id == tok.run_id  # then MLflow answers


def test_a_runs_folder_moved_since_the_run_still_gives_its_artifacts(specs, runner, tracker, tmp_path):
    from experiments.plan import build_plan, table_variants
    from experiments.specs import load_spec
    from experiments.tracking import Tracker

    spec = load_spec("faketable", specs)
    plan = build_plan(spec.name, table_variants(spec, specs, "smoke", {}), "smoke", [0], FAKE_KINDS)
    tok = next(o for o in runner.execute(plan, "faketable").values() if o.stage.name == "tokenizer")
    moved = tmp_path / "moved_runs"
    shutil.copytree(tracker.runs_dir, moved)
    shutil.rmtree(tracker.runs_dir)  # the folder the run wrote, and its tag names, is gone
    elsewhere = Tracker(tracker.uri, moved)
    run = elsewhere.finished_run(tok.stage.id)
    found = run_artifact(elsewhere, run, "tokenizer", fetch=False)
    assert found is not None and found.parent == moved / tok.stage.id
