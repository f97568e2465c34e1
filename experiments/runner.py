"""Runs a plan: each stage reused if a finished run of its identity exists, else run.

Independent stages run at once, each in a worker process (``experiments/lanes.py``): up to ``jobs``
lanes, a stage starting when all its inputs are done; a kind that parallelises itself runs alone.
The main process keeps the MLflow record: a stage runs in ``runs/<stage_id>/`` as an MLflow run
(files an unfinished attempt left there stay, so a stage that can resume does; ``--force``/``--rerun``
start from an empty folder). Its parameters are the flattened resolved config, its per-step metrics
come back from the worker as it sends them, and its outputs stay in that folder (a local store) or
are also copied into the store as the run's ``outputs`` (a shared store). Then the run is marked ``FINISHED`` and the manifest
(``_stage.json``) written last. An exception marks the run ``FAILED`` and Ctrl-C ``KILLED`` (every
worker is stopped); neither is ever reused. Stages downstream of a failed one are ``blocked``; the
others still run. Results do not depend on ``jobs``: each stage is seeded and runs with its plan's
thread count whichever lane runs it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from evilm.processes import pid_alive
from experiments import machine
from experiments.lanes import Event, Job, Lanes, default_jobs
from experiments.locks import StageLock, try_lock
from experiments.manifests import (
    CONFIG_FILE,
    ERROR_FILE,
    MANIFEST,
    OUTPUTS,
    manifest,
    read_manifest,
    relative_path,
    restore_outputs,
    write_config,
    write_manifest,
)
from experiments.outcomes import Outcome, print_checks, summary_table, without_progress_bars  # noqa: F401
from experiments.outcomes import label as _label
from experiments.plan import Plan, PlannedStage
from experiments.tracking import TAG, Tracker, git_commit, mask_url, metric_key, run_seconds

POLL_S = 0.2  # how often the main process looks at its workers and at locks held elsewhere


@dataclass
class _Running:
    """A stage whose worker is running it."""

    stage: PlannedStage
    run_id: str
    lock: StageLock
    task: Any  # its line in the progress display
    tags: dict[str, str]
    started: float = field(default_factory=time.perf_counter)
    start_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    last_step: int = 0
    latest: dict[str, tuple[int, float]] = field(default_factory=dict)  # MLflow key -> (step, last value)

    def saw(self, metrics: Mapping[str, float], step: int) -> None:
        """Keep each metric's value as MLflow shows it: the one at the highest step, the latest on a tie."""
        self.last_step = max(self.last_step, int(step))
        for name, value in metrics.items():
            key = metric_key(name)
            if key not in self.latest or step >= self.latest[key][0]:
                self.latest[key] = (int(step), float(value))


class Runner:
    def __init__(
        self,
        tracker: Tracker,
        console: Console | None = None,
        show_progress: bool = True,
        max_artifact_mb: float = 200.0,
        once_per_invocation: bool = False,
        jobs: int | None = None,
        threads: int = 1,
    ):
        self.tracker = tracker
        self.console = console or Console(stderr=True)
        self.show_progress = show_progress
        self.max_artifact_bytes = int(max_artifact_mb * 2**20)
        self.jobs = jobs  # lanes; None: the cores, shared out at the plan's thread count
        self.threads = threads  # torch threads per stage, for plans made for this runner (sweeps)
        self._lanes: Lanes | None = None
        self._commit: str | None = None
        # several tables in one command: a stage that ran (even forced) or failed in an earlier
        # ``execute`` is not run again by a later one (a failure is reported, not retried per table)
        self.once_per_invocation = once_per_invocation
        self.ran_now: set[str] = set()
        self.failed_now: dict[str, Outcome] = {}
        self._checked: dict[str, list] = {}  # stage id -> its data checks (dry runs)

    @property
    def commit(self) -> str:
        if self._commit is None:
            self._commit = git_commit()
        return self._commit

    def lanes(self, threads: int) -> Lanes:
        if self._lanes is None:
            self._lanes = Lanes(self.jobs or default_jobs(threads))
        return self._lanes

    def close(self) -> None:
        """Let the idle workers go (they also go when this process exits)."""
        if self._lanes is not None:
            self._lanes.close()
            self._lanes = None

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- planning ---------------------------------------------------------------

    def out_dir(self, stage: PlannedStage) -> Path:
        return self.tracker.runs_dir / stage.id

    def to_rerun(self, plan: Plan, force: bool = False, rerun: Iterable[str] = ()) -> set[str]:
        """Stage ids that must run even if finished: all (force), or named stages and their downstream."""
        if force:
            return set(plan.stages)
        names = set(rerun)
        unknown = names - {s.name for s in plan.stages.values()}
        if unknown:
            raise ValueError(f"--rerun: no stage named {', '.join(sorted(unknown))} in this plan")
        out: set[str] = set()
        for sid, stage in plan.stages.items():
            if stage.name in names:
                out |= {sid} | plan.downstream_of(sid)
        return out

    def dry_run(self, plan: Plan, force: bool = False, rerun: Iterable[str] = ()) -> dict[str, Outcome]:
        """Each stage done (a finished run exists) or to do; a stage whose kind checks its data (a real
        data root) checks it now and is ``unusable`` when that fails, with a summary printed."""
        forced = self.to_rerun(plan, force, rerun)
        out = {}
        for sid, stage in plan.stages.items():
            run = None if sid in forced else self.tracker.finished_run(sid)
            out[sid] = Outcome(stage, "done" if run else "todo", run.info.run_id if run else None,
                               seconds=run_seconds(run) if run else 0.0)
            if sid not in self._checked:  # once per command: loading a real data set's annotations takes a while
                self._checked[sid] = stage.kind.run_checks(stage.config)
                print_checks(self.console, stage, self._checked[sid])
            checks = self._checked[sid]
            if not all(c.ok for c in checks):
                out[sid].status = "unusable"
                out[sid].error = "data check failed: " + ", ".join(c.name for c in checks if not c.ok)
        return out

    # --- execution --------------------------------------------------------------

    def execute(
        self,
        plan: Plan,
        experiment: str,
        force: bool = False,
        rerun: Iterable[str] = (),
        parent_run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> dict[str, Outcome]:
        """Run (or reuse) every stage of ``plan``; the outcomes in plan order."""
        forced = self.to_rerun(plan, force, rerun)
        if self.once_per_invocation:
            forced -= self.ran_now
        outcomes: dict[str, Outcome] = {}
        running: dict[str, _Running] = {}
        waiting: dict[str, str] = {}  # stage id -> pid of the other process running it
        # stages found unfinished in the store: not looked up again at every poll (a lookup is a store
        # query); the lookup under the stage's lock, before it starts, still catches another process's run
        unfinished: set[str] = set()
        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"),
            console=self.console,
            disable=not self.show_progress,
        )
        lanes = self.lanes(plan.threads)
        context = (plan, experiment, parent_run_id, dict(tags or {}), forced, progress, unfinished,
                   plan.critical_first())
        with progress:
            try:
                while len(outcomes) < len(plan.stages):
                    self._start_ready(context, outcomes, running, waiting, lanes)
                    if len(outcomes) == len(plan.stages):
                        break
                    event = lanes.next_event(POLL_S)
                    if event is not None:
                        self._on_event(event, outcomes, running, progress)
            except BaseException:  # Ctrl-C (or a bug): stop every worker; their runs are not results
                lanes.kill()
                for active in running.values():
                    self.tracker.finish(active.run_id, "KILLED")
                    active.lock.release()
                self._lanes = None
                raise
        return {sid: outcomes[sid] for sid in plan.stages}

    def _start_ready(self, context, outcomes, running, waiting, lanes: Lanes) -> None:
        """Decide every stage whose inputs are done: blocked, reused, or started in a free lane."""
        plan, experiment, parent_run_id, extra_tags, forced, progress, unfinished, order = context
        console = progress.console
        for sid in order:
            stage = plan.stages[sid]
            if sid in outcomes or sid in running:
                continue
            upstream = list(stage.inputs.values())
            if any(u not in outcomes for u in upstream):
                continue
            blocked = [u for u in upstream if not outcomes[u].ok]
            if blocked:
                outcomes[sid] = Outcome(stage, "blocked", error=f"upstream {', '.join(blocked)} did not finish")
                continue
            if self.once_per_invocation and sid in self.failed_now:
                earlier = self.failed_now[sid]
                outcomes[sid] = Outcome(
                    stage,
                    "failed",
                    earlier.run_id,
                    out_dir=earlier.out_dir,
                    error=f"failed earlier in this command: {earlier.error}",
                )
                continue
            fresh = sid in forced
            reused = None if fresh or sid in waiting or sid in unfinished else self.reuse(stage)
            if reused is not None:
                outcomes[sid] = reused
                console.print(f"[dim]reused[/dim] {_label(stage)} [dim]{sid}[/dim]")
                continue
            unfinished.add(sid)
            alone = stage.kind.exclusive
            if not lanes.can_start(alone):
                if alone:
                    return  # nothing else starts until it can
                continue
            lock = try_lock(self.out_dir(stage))
            if not isinstance(lock, StageLock):
                if sid not in waiting:
                    console.print(
                        f"[yellow]waiting for another process running stage {sid} (pid {lock})[/yellow]"
                    )
                waiting[sid] = lock
                continue
            # checked again under the lock: another process may have finished it just now
            reused = None if fresh else self.reuse(stage)
            if reused is not None:
                lock.release()
                how = "another process ran it" if sid in waiting else "another process finished it just now"
                outcomes[sid] = reused
                console.print(f"[dim]reused[/dim] {_label(stage)} [dim]{sid}[/dim] ({how})")
                continue
            waiting.pop(sid, None)
            threads = (os.cpu_count() or 1) if alone else plan.threads
            failed = self._begin(plan, stage, outcomes, experiment, parent_run_id, extra_tags, progress, fresh,
                                 lock, threads, lanes, running)
            if failed is not None:
                lock.release()
                self._settled(failed, outcomes)

    def _begin(self, plan, stage, outcomes, experiment, parent_run_id, extra_tags, progress, fresh, lock,
               threads, lanes: Lanes, running) -> Outcome | None:
        """Open the stage's MLflow run and hand the stage to a lane; a failed Outcome if that fails.
        ``fresh``: start from an empty ``out_dir`` (--force/--rerun); otherwise what an unfinished
        attempt left stays, so stages that can resume (pretraining) do."""
        variant, seed = stage.uses[0]
        self._close_dead_runs(stage.id)
        tags = {
            f"{TAG}stage_id": stage.id,
            f"{TAG}stage": stage.name,
            f"{TAG}kind": stage.kind.name,
            f"{TAG}code_version": stage.kind.version,
            f"{TAG}git_commit": self.commit,
            f"{TAG}table": plan.name,
            f"{TAG}row": variant,
            f"{TAG}rows": ",".join(sorted({v for v, _ in stage.uses})),
            f"{TAG}seed": "" if stage.seed is None else stage.seed,
            f"{TAG}profile": plan.profile,
            f"{TAG}host": socket.gethostname(),
            f"{TAG}pid": os.getpid(),
            f"{TAG}threads": threads,
            **extra_tags,
        }
        seed_part = "" if stage.seed is None else f"/seed{stage.seed}"
        run_name = f"{variant}/{stage.name}{seed_part}"
        run_id = self.tracker.start(experiment, run_name, tags, parent_run_id)
        out_dir = self.out_dir(stage)
        try:
            self.tracker.log_params(run_id, {**stage.params, "inputs": dict(stage.inputs)})
            if fresh:
                shutil.rmtree(out_dir, ignore_errors=True)
            out_dir.mkdir(parents=True, exist_ok=True)
            for stale in (MANIFEST, ERROR_FILE):  # the manifest is written last, by a finished attempt
                (out_dir / stale).unlink(missing_ok=True)
            write_config(out_dir, stage.params)
            # the stages' own progress bars would fight over the terminal: the runner shows each one's steps
            job = Job(stage.id, _label(stage), stage.kind.run, without_progress_bars(stage.config),
                      self._inputs(stage, outcomes), out_dir, threads)
            lanes.start(job, alone=stage.kind.exclusive)
        except Exception as err:
            message = f"{type(err).__name__}: {err}"
            self._record_failure(run_id, out_dir, message, _traceback())
            progress.console.print(f"[red]failed[/red] {_label(stage)}: {message}")
            return Outcome(stage, "failed", run_id, out_dir=out_dir, error=message)
        tags = {k: mask_url(v) for k, v in tags.items()} | {"mlflow.runName": run_name}
        task = progress.add_task(_label(stage), total=None, info="")
        running[stage.id] = _Running(stage, run_id, lock, task, tags)
        return None

    def _on_event(self, event: Event, outcomes, running: dict[str, _Running], progress) -> None:
        active = running.get(event.stage_id)
        if active is None:
            return
        if event.kind == "metrics":
            self.tracker.log_metrics(active.run_id, event.metrics, event.step)
            active.saw(event.metrics, event.step)
            shown = "  ".join(f"{k}={v:.4g}" for k, v in list(event.metrics.items())[:3])
            progress.update(active.task, info=f"step {event.step}  {shown}")
            return
        if event.kind == "interrupted":  # a Ctrl-C that reached the worker first
            raise KeyboardInterrupt
        del running[event.stage_id]
        progress.remove_task(active.task)
        stage, out_dir = active.stage, self.out_dir(active.stage)
        seconds = time.perf_counter() - active.started
        try:
            if event.kind != "done":
                raise _StageFailed(event.error, event.traceback)
            outcome = self._finished(active, event, out_dir)
            progress.console.print(f"[green]ran[/green] {_label(stage)} [dim]{stage.id}[/dim] in {seconds:.1f}s")
        except Exception as err:
            message = err.message if isinstance(err, _StageFailed) else f"{type(err).__name__}: {err}"
            trace = err.trace if isinstance(err, _StageFailed) else _traceback()
            self._record_failure(active.run_id, out_dir, message, trace)
            progress.console.print(f"[red]failed[/red] {_label(stage)}: {message}")
            outcome = Outcome(stage, "failed", active.run_id, out_dir=out_dir, seconds=seconds, error=message)
        finally:
            active.lock.release()
        self._settled(outcome, outcomes)

    def _settled(self, outcome: Outcome, outcomes: dict[str, Outcome]) -> None:
        outcomes[outcome.stage.id] = outcome
        if outcome.status == "ran":
            self.ran_now.add(outcome.stage.id)
        elif outcome.status == "failed":
            self.failed_now[outcome.stage.id] = outcome

    def _finished(self, active: _Running, event: Event, out_dir: Path) -> Outcome:
        """Record a stage the worker finished: final metrics, outputs, machine facts, FINISHED, then the
        manifest (last: its presence says the run is FINISHED and the files beside it complete)."""
        stage, run_id = active.stage, active.run_id
        metrics = dict(event.metrics)
        self.tracker.log_metrics(run_id, metrics, active.last_step)
        active.saw(metrics, active.last_step)
        relative = {name: relative_path(Path(path), out_dir) for name, path in event.artifacts.items()}
        seconds = round(time.perf_counter() - active.started, 3)  # what reusing this stage saves
        done_tags = {f"{TAG}out_dir": str(out_dir), f"{TAG}seconds": seconds, **machine.tags(event.facts, TAG)}
        skipped = []
        if self.tracker.copy_outputs:
            skipped = self._log_outputs(run_id, out_dir, relative, stage.kind.log_artifacts)
            if skipped:
                done_tags[f"{TAG}not_logged"] = ",".join(skipped)
        self.tracker.set_tags(run_id, done_tags)
        end_ms = int(time.time() * 1000)
        record = {
            "store": self.tracker.display_uri,
            "status": "FINISHED",
            "run_name": active.tags.get("mlflow.runName", ""),
            "start_time": active.start_ms,
            "end_time": end_ms,
            "tags": {**active.tags, **{k: mask_url(v) for k, v in done_tags.items()}},
            "logged_metrics": {k: v for k, (_, v) in sorted(active.latest.items())},
            "inputs": dict(stage.inputs),
        }
        if self.tracker.copy_outputs:  # another machine restores the folder from these
            body = manifest(stage.id, run_id, metrics, relative, seconds, record)
            self.tracker.log_text(run_id, json.dumps(body, indent=2, sort_keys=True), f"{OUTPUTS}/{MANIFEST}")
        self.tracker.finish(run_id, "FINISHED", end_time=end_ms)
        write_manifest(out_dir, stage.id, run_id, metrics, relative, seconds, record)
        return Outcome(
            stage,
            "ran",
            run_id,
            metrics=metrics,
            artifacts={k: out_dir / v for k, v in relative.items()},
            out_dir=out_dir,
            seconds=time.perf_counter() - active.started,
        )

    def reuse(self, stage: PlannedStage) -> Outcome | None:
        """The finished run of ``stage``'s identity with its outputs on disk, or None."""
        run = self.tracker.finished_run(stage.id)
        if run is None:
            return None
        out_dir = self.out_dir(stage)
        found = read_manifest(out_dir, stage.id)
        if found is None:
            found = restore_outputs(self.tracker, run.info.run_id, stage.id, out_dir)
            if found is None:
                return None
        return Outcome(
            stage,
            "reused",
            run.info.run_id,
            metrics=dict(found["metrics"]),
            artifacts={k: out_dir / v for k, v in found["artifacts"].items()},
            out_dir=out_dir,
            seconds=float(found.get("seconds") or run_seconds(run)),
        )

    def _inputs(self, stage: PlannedStage, outcomes: Mapping[str, Outcome]) -> dict[str, Path]:
        inputs = {}
        for name, upstream_id in stage.inputs.items():
            upstream = outcomes[upstream_id]
            artifact = stage.kind.inputs[name].artifact
            if artifact is None:
                inputs[name] = upstream.out_dir
            elif artifact in upstream.artifacts:
                inputs[name] = upstream.artifacts[artifact]
            else:
                raise KeyError(
                    f"input '{name}': upstream stage '{upstream.stage.name}' ({upstream.stage.kind.name}) returned "
                    f"no artifact '{artifact}'; it has: {', '.join(upstream.artifacts) or '(none)'}"
                )
        return inputs

    def _log_outputs(
        self, run_id: str, out_dir: Path, relative: Mapping[str, str], log_all: bool = True
    ) -> list[str]:
        """Copy the declared artifacts (and the config) into the store under ``outputs/``; returns those
        not copied."""
        skipped = []
        for name, rel in relative.items():
            path = out_dir / rel
            if not log_all or Path(rel).is_absolute() or _size(path) > self.max_artifact_bytes:
                skipped.append(name)
                continue
            if path.is_dir():
                target = OUTPUTS if rel == "." else f"{OUTPUTS}/{rel}"
            else:
                target = str(PurePosixPath(OUTPUTS, rel).parent)
            self.tracker.log_artifact(run_id, path, target)
        self.tracker.log_artifact(run_id, out_dir / CONFIG_FILE, OUTPUTS)
        return skipped

    def _record_failure(self, run_id: str, out_dir: Path, message: str, trace: str) -> None:
        """Mark the run FAILED, with the worker's traceback in ``_error.txt`` and the message as a tag."""
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / ERROR_FILE).write_text(trace)
            self.tracker.log_artifact(run_id, out_dir / ERROR_FILE)
            self.tracker.set_tags(run_id, {f"{TAG}error": message[:4000]})
        except Exception:  # recording the failure must not hide it
            pass
        self.tracker.finish(run_id, "FAILED")

    def _close_dead_runs(self, stage_id: str) -> None:
        """Mark KILLED the RUNNING runs of this stage left by dead processes on this host."""
        host = socket.gethostname()
        for run in self.tracker.runs_of_stage(stage_id):
            tags = run.data.tags
            if run.info.status != "RUNNING" or tags.get(f"{TAG}host") != host:
                continue
            pid = int(tags.get(f"{TAG}pid", "0") or 0)
            if pid and pid != os.getpid() and not pid_alive(pid):
                self.tracker.finish(run.info.run_id, "KILLED")


class _StageFailed(Exception):
    def __init__(self, message: str, trace: str):
        super().__init__(message)
        self.message, self.trace = message, trace


def _traceback() -> str:
    import traceback

    return traceback.format_exc()


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
