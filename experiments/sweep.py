"""Sweeps: an Optuna study over pipeline keys, each trial an MLflow child run.

A grid (every param a ``grid:``) uses Optuna's ``GridSampler``; ranges and
choices use TPE. The study lives in ``optuna.db`` beside the MLflow store (any
Optuna storage URL works) under a name derived from the spec, profile, seeds and
overrides, so rerunning the same command resumes it:

1. trials a killed process left ``RUNNING`` are failed (single worker; with
   ``--worker`` only those whose heartbeat stopped — Optuna's RDB heartbeat — or,
   for a journal file, whose process on this host is gone), and their MLflow
   runs are marked ``KILLED``;
2. the sampler runs the points never tried;
3. points that failed (or were killed) are enqueued and run again.

Several workers (``--worker``, on one machine with a journal file, on many with
``postgresql://``) share one study. Before a trial runs its point it *claims*
it: it creates the study ``<study>:claim:<point>:<attempt>`` (``attempt`` = how
many claimed trials of that point failed). Study names are unique in every
Optuna storage, so exactly one worker wins each claim; a trial that loses it, or
whose point is already complete, is ``PRUNED`` without running anything. A point
therefore completes once, and is retried only after its last attempt failed.

A trial's stages go through the same runner as tables, so the stages a trial
shares with earlier trials or tables (data, tokenizer) are reused, not rerun.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import socket
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.storages._heartbeat import BaseHeartbeat  # RDB storages; journal files have no heartbeat
from optuna.trial import TrialState

from evilm.files import atomic_write_text
from evilm.processes import pid_alive
from experiments.plan import Layer, Variant, build_plan, profile_layers
from experiments.reporting import TrialRecord, header, plot_sweep, sweep_markdown
from experiments.reporting.floors import ColumnRefs, load_calibration, metric_refs
from experiments.reporting.measure import per_item
from experiments.runner import Runner
from experiments.specs import SearchParam, SweepSpec, load_pipeline
from experiments.stages import StageKind
from experiments.tracking import TAG, Tracker, database_url, mask_url

HEARTBEAT_S = 60  # Optuna's RDB heartbeat; a trial silent for 2 intervals is stale
CLAIM_ATTR = "evilm.claim"  # the trial's claim (study name) on its point
HOST_ATTR, PID_ATTR = "evilm.host", "evilm.pid"


class TrialFailed(RuntimeError):
    pass


@dataclass
class SweepResult:
    study_name: str
    storage: str
    trials: list[TrialRecord]
    failed_now: int  # trials that failed in this invocation
    remaining: int  # grid points (or TPE trials) still to do
    report: Path | None


def study_name(spec: SweepSpec, profile: str, seeds: list[int], cli_set: Mapping[str, Any]) -> str:
    key = {
        "params": {k: v.model_dump() for k, v in spec.params.items()},
        "objective": spec.objective.model_dump(),
        "set": spec.set,
        "profiles": spec.profiles.get(profile, {}),
        "cli": dict(cli_set),
        "seeds": list(seeds),
        "base": spec.base,
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{spec.name}-{profile}-{digest}"


def default_storage(tracker: Tracker) -> str:
    return f"sqlite:///{tracker.store_dir / 'optuna.db'}"


def journal_path(url: str) -> Path | None:
    """The file of a journal storage (``journal:///abs/path``, or a path ending in .log/.journal), else None."""
    if url.startswith("journal://"):
        return Path(url.removeprefix("journal://"))
    if url.endswith((".log", ".journal")) and "://" not in url:
        return Path(url)
    return None


def open_storage(url: str, heartbeat_s: float = HEARTBEAT_S):
    """An Optuna storage: a journal file (safe for local concurrent workers, unlike SQLite) or any
    SQLAlchemy URL (``postgresql://`` for workers on many machines) with heartbeats every ``heartbeat_s``."""
    journal = journal_path(url)
    if journal is not None:
        from optuna.storages.journal import JournalFileBackend

        journal.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(str(journal)))
    with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna, and what makes --worker safe
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        interval = max(1, round(heartbeat_s))
        for attempt in range(3):
            try:
                return optuna.storages.RDBStorage(
                    database_url(url), heartbeat_interval=interval, grace_period=2 * interval
                )
            except Exception as err:  # workers starting together on an empty database race to make the schema
                if "already exists" not in str(err) or attempt == 2:
                    raise
                time.sleep(0.5 + attempt)


def grid_points(spec: SweepSpec) -> list[dict[str, Any]]:
    names = list(spec.params)
    return [dict(zip(names, combo)) for combo in itertools.product(*(spec.params[n].grid for n in names))]


def suggest(trial: optuna.Trial, name: str, param: SearchParam) -> Any:
    if param.grid is not None:
        return trial.suggest_categorical(name, param.grid)
    if param.choices is not None:
        return trial.suggest_categorical(name, param.choices)
    if param.integer:
        return trial.suggest_int(
            name, int(param.low), int(param.high), step=int(param.step or 1), log=param.log
        )
    return trial.suggest_float(name, param.low, param.high, step=param.step, log=param.log)


def _key(params: Mapping[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, default=str)


class Sweep:
    def __init__(
        self,
        spec: SweepSpec,
        root: Path,
        tracker: Tracker,
        runner: Runner,
        profile: str,
        seeds: list[int],
        cli_set: Mapping[str, Any],
        storage: str | None = None,
        worker: bool = False,
        kinds: Mapping[str, StageKind] | None = None,
        reports_dir: Path = Path("reports"),
        stem: str | None = None,
        heartbeat_s: float = HEARTBEAT_S,
    ):
        self.reports_dir = Path(reports_dir)
        self.stem = stem or spec.name
        self.spec, self.root, self.tracker, self.runner = spec, Path(root), tracker, runner
        self.profile, self.seeds, self.cli_set = profile, list(seeds), dict(cli_set)
        self.storage_url = storage or default_storage(tracker)
        self.worker = worker
        self.heartbeat_s = heartbeat_s
        self.kinds = kinds
        self.name = study_name(spec, profile, self.seeds, self.cli_set)
        self.pipeline = load_pipeline(spec.base, self.root)
        self.pipeline_file = str(self.root / "base" / f"{spec.base}.yaml")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._parent: str | None = None
        self._storage = None

    # --- planning --------------------------------------------------------------------

    def variant(self, trial_id: str, params: Mapping[str, Any]) -> Variant:
        spec_file = str(self.root / "sweeps" / f"{self.spec.name}.yaml")
        layers = profile_layers(self.spec, self.pipeline, self.pipeline_file, spec_file, self.profile)
        layers += [Layer("--set", self.cli_set), Layer(f"{spec_file}: params", dict(params))]
        return Variant(trial_id, self.pipeline, self.pipeline_file, layers, [], [self.spec.objective.stage])

    def plan(self, trial_id: str, params: Mapping[str, Any]):
        return build_plan(
            self.spec.name, [self.variant(trial_id, params)], self.profile, self.seeds, self.kinds,
            threads=getattr(self.runner, "threads", 1),  # the thread count is part of the identities
        )

    def study(self, sampler=None) -> optuna.Study:
        if sampler is None:
            if self.spec.is_grid:
                sampler = optuna.samplers.GridSampler(
                    {n: p.grid for n, p in self.spec.params.items()}, seed=0
                )
            else:
                sampler = optuna.samplers.TPESampler(seed=0)
        if self._storage is None:
            self._storage = open_storage(self.storage_url, self.heartbeat_s)
        return optuna.create_study(
            study_name=self.name,
            storage=self._storage,
            sampler=sampler,
            direction=self.spec.objective.direction,
            load_if_exists=True,
        )

    def to_do(self, study: optuna.Study) -> tuple[list[dict], list[dict]]:
        """(points never tried, points tried but not complete) — grids; for TPE the first is a count."""
        trials = study.get_trials(deepcopy=False)
        complete = {_key(t.params) for t in trials if t.state == TrialState.COMPLETE}
        tried = {_key(t.params) for t in trials if t.state != TrialState.WAITING}
        waiting = {_key(t.params) for t in trials if t.state == TrialState.WAITING}
        running = {_key(t.params) for t in trials if t.state == TrialState.RUNNING}  # other workers'
        failed = []
        seen = set(complete) | waiting | running
        for t in trials:
            k = _key(t.params)
            if t.state == TrialState.FAIL and k not in seen:
                failed.append(dict(t.params))
                seen.add(k)
        if self.spec.is_grid:
            fresh = [p for p in grid_points(self.spec) if _key(p) not in tried and _key(p) not in waiting]
            return fresh, failed
        done = sum(t.state == TrialState.COMPLETE for t in trials)
        running = sum(t.state == TrialState.RUNNING for t in trials)
        return [{}] * max(0, (self.spec.n_trials or 0) - done - running - len(failed) - len(waiting)), failed

    # --- running ---------------------------------------------------------------------

    def run(self, n_trials: int | None = None) -> SweepResult:
        """Resume the study: fail stale trials, run never-tried points, then retry failed ones."""
        study = self.study()
        self._fail_stale(study)
        self._parent = self._parent_run()
        budget = math.inf if n_trials is None else n_trials
        failed_now = 0
        try:
            fresh, _ = self.to_do(study)
            if fresh and budget > 0:
                count = int(min(budget, len(fresh)))
                failed_now += self._optimize(study, count)
                budget -= count
            # enqueued points need no sampling, and a GridSampler would stop the study after the first
            study = self.study(optuna.samplers.RandomSampler(seed=0))
            _, failed = self.to_do(study)
            waiting = sum(t.state == TrialState.WAITING for t in study.get_trials(deepcopy=False))
            retry = failed[: int(min(budget, len(failed)))]
            for params in retry:
                study.enqueue_trial(params)
            if retry or waiting:
                failed_now += self._optimize(study, int(min(budget, len(retry) + waiting)))
        except BaseException:
            self.tracker.finish(self._parent, "KILLED")
            raise
        fresh, failed = self.to_do(study)
        records = self.records(study)
        report = self.write_report(records)
        self.tracker.set_tags(self._parent, {f"{TAG}complete": sum(r.state == "COMPLETE" for r in records)})
        self.tracker.finish(self._parent, "FINISHED")
        return SweepResult(
            self.name, mask_url(self.storage_url), records, failed_now, len(fresh) + len(failed), report
        )

    def _optimize(self, study: optuna.Study, n: int) -> int:
        before = {t.number for t in study.get_trials(deepcopy=False)}
        study.optimize(self.objective, n_trials=n, catch=(Exception,), gc_after_trial=False)
        return sum(
            t.state == TrialState.FAIL for t in study.get_trials(deepcopy=False) if t.number not in before
        )

    def _fail_stale(self, study: optuna.Study) -> None:
        """Fail the trials of dead processes, and mark their MLflow runs KILLED (never FINISHED)."""
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if not self.worker:  # a single worker: every RUNNING trial belongs to a dead process
            stale = running
        elif isinstance(study._storage, BaseHeartbeat):  # other workers run: fail only silent trials
            optuna.storages.fail_stale_trials(study)
            now = {t.number: t.state for t in study.get_trials(deepcopy=False)}
            stale = [t for t in running if now.get(t.number) == TrialState.FAIL]
        else:  # a journal file has no heartbeat: a trial is stale when its process on this host is gone
            host = socket.gethostname()
            stale = [
                t
                for t in running
                if t.system_attrs.get(HOST_ATTR) == host and not _alive(int(t.system_attrs.get(PID_ATTR, 0)))
            ]
        for t in stale:
            try:  # (Optuna has no public call to fail another process's trial)
                study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:
                pass  # already failed (by the heartbeat check or by another worker)
            run_id = t.user_attrs.get("mlflow_run_id")
            if run_id:
                self.tracker.set_tags(run_id, {f"{TAG}error": "the trial's process died (stale trial)"})
                self.tracker.finish(run_id, "KILLED")

    def claim(self, study: optuna.Study, trial: optuna.Trial, params: Mapping[str, Any]) -> str | None:
        """Claim ``params`` for this trial; None when the point is complete or another trial holds it."""
        key = _key(params)
        others = [
            t for t in study.get_trials(deepcopy=False) if t.number != trial.number and _key(t.params) == key
        ]
        if any(t.state == TrialState.COMPLETE for t in others):
            return None
        attempt = sum(t.state == TrialState.FAIL and CLAIM_ATTR in t.system_attrs for t in others)
        name = f"{self.name}:claim:{hashlib.sha256(key.encode()).hexdigest()[:16]}:{attempt}"
        try:  # study names are unique in every storage: exactly one creator wins
            study._storage.create_new_study([study.direction], name)
        except optuna.exceptions.DuplicatedStudyError:
            return None
        study._storage.set_trial_system_attr(trial._trial_id, CLAIM_ATTR, name)
        return name

    def _parent_run(self) -> str:
        runs = self.tracker.search(
            f"tags.`{TAG}study` = '{self.name}' and tags.`{TAG}role` = 'sweep'", max_results=1
        )
        if runs:
            run_id = runs[0].info.run_id
            self.tracker.client.update_run(run_id, status="RUNNING")
            return run_id
        tags = {
            f"{TAG}role": "sweep",
            f"{TAG}sweep": self.spec.name,
            f"{TAG}study": self.name,
            f"{TAG}storage": mask_url(self.storage_url),
            f"{TAG}profile": self.profile,
            f"{TAG}seeds": ",".join(map(str, self.seeds)),
        }
        run_id = self.tracker.start(self.spec.name, f"sweep {self.name}", tags)
        # workers starting together may each have made one: all keep the oldest, the others go
        runs = self.tracker.search(f"tags.`{TAG}study` = '{self.name}' and tags.`{TAG}role` = 'sweep'")
        oldest = min(runs, key=lambda r: (r.info.start_time, r.info.run_id)).info.run_id
        if oldest != run_id:
            self.tracker.client.delete_run(run_id)
            return oldest
        self.tracker.log_params(
            run_id,
            {
                "search": {k: v.model_dump(exclude_none=True) for k, v in self.spec.params.items()},
                "set": self.cli_set,
            },
        )
        return run_id

    def objective(self, trial: optuna.Trial) -> float:
        params = {name: suggest(trial, name, p) for name, p in self.spec.params.items()}
        storage = trial.study._storage
        storage.set_trial_system_attr(trial._trial_id, HOST_ATTR, socket.gethostname())
        storage.set_trial_system_attr(trial._trial_id, PID_ATTR, os.getpid())
        if self.claim(trial.study, trial, params) is None:
            trial.set_user_attr("skipped", "point complete or run by another trial")
            raise optuna.TrialPruned()
        trial_id = f"trial{trial.number}"
        plan = self.plan(trial_id, params)
        tags = {
            f"{TAG}sweep": self.spec.name,
            f"{TAG}study": self.name,
            f"{TAG}trial": trial.number,
            f"{TAG}role": "trial",
        }
        run_id = self.tracker.start(self.spec.name, f"trial {trial.number}", tags, parent_run_id=self._parent)
        trial.set_user_attr("mlflow_run_id", run_id)
        try:
            self.tracker.log_params(run_id, params)
            outcomes = self.runner.execute(
                plan, self.spec.name, parent_run_id=run_id, tags={f"{TAG}trial": trial.number}
            )
            values = []
            for seed in self.seeds:
                stage = plan.stage_for(trial_id, self.spec.objective.stage, seed)
                outcome = outcomes[stage.id]
                if not outcome.ok:
                    raise TrialFailed(f"stage '{stage.name}' seed {seed} {outcome.status}: {outcome.error}")
                metric = self.spec.objective.metric
                if metric not in outcome.metrics:
                    raise TrialFailed(
                        f"stage '{stage.name}' logged no metric '{metric}'; it has: {', '.join(outcome.metrics)}"
                    )
                values.append(outcome.metrics[metric] * self.spec.objective.scale)
            value = sum(values) / len(values)
            trial.set_user_attr("values", values)
            self.tracker.log_metrics(
                run_id,
                {"objective": value, **{f"objective.seed{s}": v for s, v in zip(self.seeds, values)}},
                0,
            )
            self.tracker.finish(run_id, "FINISHED")
            return value
        except Exception as err:
            self.tracker.set_tags(run_id, {f"{TAG}error": f"{type(err).__name__}: {err}"[:4000]})
            self.tracker.finish(run_id, "FAILED")
            raise
        except BaseException:
            self.tracker.finish(run_id, "KILLED")
            raise

    # --- reporting -------------------------------------------------------------------

    def records(self, study: optuna.Study) -> list[TrialRecord]:
        """Every trial but the pruned duplicates (points another trial ran or is running)."""
        return [
            TrialRecord(
                t.number,
                t.state.name,
                dict(t.params),
                list(t.user_attrs.get("values", [])),
                t.duration.total_seconds() if t.duration else None,
            )
            for t in study.get_trials(deepcopy=False)
            if t.state != TrialState.PRUNED
        ]

    def objective_items(self, records: list[TrialRecord]) -> ColumnRefs:
        """Fill each complete trial's per-item objective values (when every seed's run logged them) and
        return the objective's reference lines (what its runs logged about the test set, the calibration)."""
        objective = self.spec.objective
        logged: list[dict[str, float]] = []
        for record in records:
            if record.state != "COMPLETE" or not record.values:
                continue
            plan = self.plan(f"trial{record.number}", record.params)
            items: list | None = []
            for seed in self.seeds:
                stage = plan.stage_for(f"trial{record.number}", objective.stage, seed)
                run = self.tracker.finished_run(stage.id) if stage else None
                values = per_item(self.tracker, run, objective.metric) if run is not None else None
                if run is not None:
                    logged.append(run.data.metrics)
                items = None if values is None or items is None else [*items, values * objective.scale]
            record.items = items if items and len(items) == len(record.values) else None
        calibration = load_calibration(self.root, self.profile, self.cli_set, self.tracker)
        return metric_refs(objective.metric, objective.scale, logged, calibration, objective.label)

    def write_report(self, records: list[TrialRecord]) -> Path:
        reports_dir, stem = self.reports_dir, self.stem
        reports_dir.mkdir(parents=True, exist_ok=True)
        png = reports_dir / f"{stem}.png"
        refs = self.objective_items(records)
        drew = plot_sweep(self.spec, records, png, refs)
        first = (
            records[0].params
            if records
            else {p: (v.grid or v.choices or [v.low])[0] for p, v in self.spec.params.items()}
        )
        plan = self.plan("report", first)
        runs = {
            r.info.run_id: r for r in (self.tracker.finished_run(s) for s in plan.stages) if r is not None
        }
        lines = header(self.spec, plan, runs, self.tracker, self.cli_set, compares=False)
        lines += [
            f"Optuna study `{self.name}` in `{mask_url(self.storage_url)}`; objective: {self.spec.objective.direction} "
            f"`{self.spec.objective.stage}.{self.spec.objective.metric}` (mean over seeds, with a 95% interval; "
            "a best point is named only when its interval excludes the runner-up's).",
            "",
        ]
        text = sweep_markdown(self.spec, self.profile, records, lines, png.name if drew else None, refs)
        path = reports_dir / f"{stem}.md"
        atomic_write_text(path, text)
        if self._parent:
            self.tracker.log_artifact(self._parent, path, "report")
            if drew:
                self.tracker.log_artifact(self._parent, png, "report")
        return path


def _alive(pid: int) -> bool:
    return pid > 0 and pid_alive(pid)  # 0: no pid recorded (os.kill(0) would signal our own group)
