"""Runs a plan: each stage reused if a finished run of its identity exists, else run.

A stage runs in ``runs/<stage_id>/`` as an MLflow run (files an unfinished attempt left there stay,
so a stage that can resume does; ``--force``/``--rerun`` start from an empty folder). Its parameters are the
flattened resolved config, its per-step metrics come through ``on_metrics``,
its declared artifacts are logged under ``outputs/`` and a manifest
(``_stage.json``: metrics and artifact paths) is written last. Only then is the
run marked ``FINISHED``; an exception marks it ``FAILED`` and Ctrl-C ``KILLED``,
and neither is ever reused. Stages downstream of a failed one are ``blocked``.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import time
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from evilm.processes import pid_alive
from evilm.stage import StageResult
from experiments.locks import stage_lock
from experiments.manifests import (
    CONFIG_FILE,
    ERROR_FILE,
    MANIFEST,
    OUTPUTS,
    read_manifest,
    relative_path,
    restore_outputs,
    write_config,
    write_manifest,
)
from experiments.plan import Plan, PlannedStage
from experiments.tracking import TAG, Tracker, git_commit, hardware, run_seconds


@dataclass
class Outcome:
    stage: PlannedStage
    status: str  # "reused" | "ran" | "failed" | "blocked" | "done" (dry run) | "todo" (dry run)
    run_id: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    artifacts: dict[str, Path] = field(default_factory=dict)
    out_dir: Path | None = None
    seconds: float = 0.0  # ran/failed: this attempt; reused: the original run's (0.0 when not recorded)
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("reused", "ran", "done")


class Runner:
    def __init__(
        self,
        tracker: Tracker,
        console: Console | None = None,
        show_progress: bool = True,
        max_artifact_mb: float = 200.0,
        once_per_invocation: bool = False,
    ):
        self.tracker = tracker
        self.console = console or Console(stderr=True)
        self.show_progress = show_progress
        self.max_artifact_bytes = int(max_artifact_mb * 2**20)
        self._commit: str | None = None
        # several tables in one command: a stage that ran (even forced) or failed in an earlier
        # ``execute`` is not run again by a later one (a failure is reported, not retried per table)
        self.once_per_invocation = once_per_invocation
        self.ran_now: set[str] = set()
        self.failed_now: dict[str, Outcome] = {}

    @property
    def commit(self) -> str:
        if self._commit is None:
            self._commit = git_commit()
        return self._commit

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
        forced = self.to_rerun(plan, force, rerun)
        out = {}
        for sid, stage in plan.stages.items():
            run = None if sid in forced else self.tracker.finished_run(sid)
            out[sid] = Outcome(stage, "done" if run else "todo", run.info.run_id if run else None)
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
        forced = self.to_rerun(plan, force, rerun)
        if self.once_per_invocation:
            forced -= self.ran_now
        outcomes: dict[str, Outcome] = {}
        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"),
            console=self.console,
            disable=not self.show_progress,
        )
        with progress:
            for sid, stage in plan.stages.items():
                blocked = [u for u in stage.inputs.values() if not outcomes[u].ok]
                if blocked:
                    outcomes[sid] = Outcome(
                        stage, "blocked", error=f"upstream {', '.join(blocked)} did not finish"
                    )
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
                reused = None if sid in forced else self.reuse(stage)
                if reused is not None:
                    outcomes[sid] = reused
                    progress.console.print(f"[dim]reused[/dim] {_label(stage)} [dim]{sid}[/dim]")
                    continue
                task = progress.add_task(_label(stage), total=None, info="")
                outcomes[sid] = self.run_stage(
                    plan,
                    stage,
                    outcomes,
                    experiment,
                    parent_run_id,
                    tags,
                    progress,
                    task,
                    fresh=sid in forced,
                )
                done = outcomes[sid]
                if done.status == "ran":
                    self.ran_now.add(sid)
                elif done.status == "failed":
                    self.failed_now[sid] = done
                progress.remove_task(task)
                if done.status == "ran":
                    progress.console.print(
                        f"[green]ran[/green] {_label(stage)} [dim]{sid}[/dim] in {done.seconds:.1f}s"
                    )
        return outcomes

    def reuse(self, stage: PlannedStage) -> Outcome | None:
        """The finished run of ``stage``'s identity with its outputs on disk, or None."""
        run = self.tracker.finished_run(stage.id)
        if run is None:
            return None
        out_dir = self.out_dir(stage)
        manifest = read_manifest(out_dir, stage.id)
        if manifest is None:
            manifest = restore_outputs(self.tracker, run.info.run_id, stage.id, out_dir)
            if manifest is None:
                return None
        return Outcome(
            stage,
            "reused",
            run.info.run_id,
            metrics=dict(manifest["metrics"]),
            artifacts={k: out_dir / v for k, v in manifest["artifacts"].items()},
            out_dir=out_dir,
            seconds=float(manifest.get("seconds") or run_seconds(run)),
        )

    def run_stage(
        self, plan, stage, outcomes, experiment, parent_run_id, extra_tags, progress, task, fresh=False
    ) -> Outcome:
        """``_run_stage`` under the stage's file lock (experiments/locks.py): a process wanting a stage that
        another process on this runs folder is running waits, then reuses its result if it finished."""
        console = progress.console
        with stage_lock(self.out_dir(stage), stage.id, lambda msg: console.print(f"[yellow]{msg}[/yellow]")) as waited:
            # checked again under the lock even without a wait: another process may have finished and
            # released it between the caller's first check and this acquisition
            reused = self.reuse(stage) if not fresh else None
            if reused is not None:
                how = "another process ran it" if waited else "another process finished it just now"
                console.print(f"[dim]reused[/dim] {_label(stage)} [dim]{stage.id}[/dim] ({how})")
                return reused
            return self._run_stage(
                plan, stage, outcomes, experiment, parent_run_id, extra_tags, progress, task, fresh
            )

    def _run_stage(
        self, plan, stage, outcomes, experiment, parent_run_id, extra_tags, progress, task, fresh=False
    ) -> Outcome:
        """Run one stage as an MLflow run. ``fresh``: start from an empty ``out_dir`` (--force/--rerun);
        otherwise what an unfinished attempt left stays, so stages that can resume (pretraining) do."""
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
            **(extra_tags or {}),
        }
        seed_part = "" if stage.seed is None else f"/seed{stage.seed}"
        run_id = self.tracker.start(experiment, f"{variant}/{stage.name}{seed_part}", tags, parent_run_id)
        out_dir = self.out_dir(stage)
        started = time.perf_counter()
        last_step = [0]

        def on_metrics(metrics: dict[str, float], step: int) -> None:
            self.tracker.log_metrics(run_id, metrics, step)
            last_step[0] = max(last_step[0], int(step))
            shown = "  ".join(f"{k}={v:.4g}" for k, v in list(metrics.items())[:3])
            progress.update(task, info=f"step {step}  {shown}")

        try:
            self.tracker.log_params(run_id, {**stage.params, "inputs": dict(stage.inputs)})
            if fresh:
                shutil.rmtree(out_dir, ignore_errors=True)
            out_dir.mkdir(parents=True, exist_ok=True)
            for stale in (MANIFEST, ERROR_FILE):  # the manifest is written last, by a finished attempt
                (out_dir / stale).unlink(missing_ok=True)
            write_config(out_dir, stage.params)
            inputs = self._inputs(stage, outcomes)
            config = stage.config if self.show_progress else without_progress_bars(stage.config)
            result = stage.kind.load_run()(config, inputs, out_dir, on_metrics)
            metrics, artifacts = _check_result(result, stage)
            self.tracker.log_metrics(run_id, metrics, last_step[0])
            relative = {name: relative_path(path, out_dir) for name, path in artifacts.items()}
            seconds = round(time.perf_counter() - started, 3)  # what reusing this stage saves
            write_manifest(out_dir, stage.id, run_id, metrics, relative, seconds)
            skipped = self._log_outputs(run_id, out_dir, relative, stage.kind.log_artifacts)
            done_tags = {
                f"{TAG}out_dir": str(out_dir),
                f"{TAG}hardware": hardware(),
                f"{TAG}seconds": seconds,
            }
            if skipped:
                done_tags[f"{TAG}not_logged"] = ",".join(skipped)
            self.tracker.set_tags(run_id, done_tags)
            self.tracker.finish(run_id, "FINISHED")
        except Exception as err:  # the stage failed: record why, never reuse it
            message = f"{type(err).__name__}: {err}"
            self._record_failure(run_id, out_dir, message)
            self.tracker.finish(run_id, "FAILED")
            progress.console.print(f"[red]failed[/red] {_label(stage)}: {message}")
            return Outcome(
                stage, "failed", run_id, out_dir=out_dir, seconds=time.perf_counter() - started, error=message
            )
        except BaseException:  # Ctrl-C, SystemExit: the run is over, and not a result
            self.tracker.finish(run_id, "KILLED")
            raise
        return Outcome(
            stage,
            "ran",
            run_id,
            metrics=metrics,
            artifacts={k: out_dir / v for k, v in relative.items()},
            out_dir=out_dir,
            seconds=time.perf_counter() - started,
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
        """Log the declared artifacts (and the manifest) under ``outputs/``; returns those not logged."""
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
        self.tracker.log_artifact(run_id, out_dir / MANIFEST, OUTPUTS)
        return skipped

    def _record_failure(self, run_id: str, out_dir: Path, message: str) -> None:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / ERROR_FILE).write_text(traceback.format_exc())
            self.tracker.log_artifact(run_id, out_dir / ERROR_FILE)
            self.tracker.set_tags(run_id, {f"{TAG}error": message[:4000]})
        except Exception:  # recording the failure must not hide it
            pass

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


def summary_table(
    outcomes: Mapping[str, Outcome], title: str = "stages", highlight: Mapping[str, list[str]] | None = None
) -> Table:
    """One line per stage; ``highlight`` (stage id -> metric names) picks the metrics shown."""
    table = Table(title=title)
    for col in ("stage", "used by", "seed", "status", "time", "id", "metrics"):
        table.add_column(col, overflow="fold", no_wrap=col in ("stage", "status", "id"))
    styles = {
        "ran": "green",
        "reused": "cyan",
        "failed": "red",
        "blocked": "yellow",
        "done": "cyan",
        "todo": "yellow",
    }
    for outcome in outcomes.values():
        stage = outcome.stage
        rows = sorted({v for v, _ in stage.uses})
        used = ", ".join(rows[:4]) + (f" +{len(rows) - 4}" if len(rows) > 4 else "")
        names = [k for k in (highlight or {}).get(stage.id, []) if k in outcome.metrics]
        picked = list(dict.fromkeys(names))[:4]
        shown = {k: outcome.metrics[k] for k in picked} or dict(list(outcome.metrics.items())[:2])
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in shown.items()) or outcome.error[:80]
        style = styles.get(outcome.status, "")
        table.add_row(
            stage.name,
            used,
            "" if stage.seed is None else str(stage.seed),
            f"[{style}]{outcome.status}[/{style}]",
            _time_cell(outcome),
            stage.id[:8],
            metrics,
        )
    return table


def _time_cell(outcome: Outcome) -> str:
    if outcome.status in ("ran", "failed") and outcome.seconds:
        return f"{outcome.seconds:.1f}s"
    if outcome.status == "reused" and outcome.seconds:
        return f"[dim]({outcome.seconds:.1f}s)[/dim]"  # the original run's time, not spent now
    return ""


def _label(stage: PlannedStage) -> str:
    seed = "" if stage.seed is None else f" seed {stage.seed}"
    return f"{stage.name}{seed}"


def _check_result(result: Any, stage: PlannedStage) -> tuple[dict[str, float], dict[str, Path]]:
    if not isinstance(result, StageResult):
        raise TypeError(
            f"stage '{stage.name}' returned {type(result).__name__}, expected evilm.stage.StageResult"
        )
    metrics = {}
    for key, value in result.metrics.items():
        try:
            metrics[str(key)] = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"stage '{stage.name}': metric '{key}' is not a number: {value!r}") from None
    artifacts = {str(k): Path(v) for k, v in result.artifacts.items()}
    missing = [k for k, p in artifacts.items() if not p.exists()]
    if missing:
        raise FileNotFoundError(f"stage '{stage.name}': artifact(s) {', '.join(missing)} do not exist")
    return metrics, artifacts


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def without_progress_bars(config: Any) -> Any:
    """``config`` with its progress bars off (``progress``, ``train.progress``): how, not what, so the
    stage identity is the same; ``--quiet`` then silences the stages too, not just the runner."""
    if not dataclasses.is_dataclass(config):
        return config
    changes: dict[str, Any] = {}
    if isinstance(getattr(config, "progress", None), bool):
        changes["progress"] = False
    train = getattr(config, "train", None)
    if dataclasses.is_dataclass(train) and isinstance(getattr(train, "progress", None), bool):
        changes["train"] = dataclasses.replace(train, progress=False)
    return dataclasses.replace(config, **changes) if changes else config
