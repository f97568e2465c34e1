"""What each command does, without the argument parsing: ``cli.py`` parses, calls one function here and
turns its result into an exit code.

A ``Session`` holds what every command works with (the specs folder, the command line's profile, seeds
and ``--set``, the store, the output folders); a ``Target`` is one table, figure or sweep as this command
runs it (its profile, seeds, overrides, report name and plan). MLflow, Optuna and the reports are
imported only by the commands that use them.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from rich.console import Console
from rich.table import Table

from experiments.plan import Plan, build_plan, kinds_needed, spec_stages, table_variants
from experiments.specs import SpecError, SweepSpec, load_spec, spec_files

if TYPE_CHECKING:
    from experiments.runner import Runner
    from experiments.sweep import Sweep
    from experiments.tracking import Tracker


@dataclass
class Target:
    """One table, figure or sweep of a command: its spec, resolved settings and (for tables) plan."""

    spec: Any
    profile: str
    seeds: list[int]
    overrides: dict[str, Any]  # its share of --set
    stem: str  # the report's file name: the spec's name, plus the profile when not the spec's own
    plan: Plan | None = None
    rerun: list[str] = field(default_factory=list)  # --rerun stages that are in its plan


@dataclass
class Session:
    """What a command works with: the specs, the command line's choices, the store and output folders."""

    root: Path  # the specs folder
    runs_dir: Path
    reports_dir: Path
    tracking_uri: str | None = None
    profile: str | None = None  # --profile; None: each spec's own
    seeds: list[int] | None = None  # --seeds; None: each spec's own (for the profile)
    overrides: dict[str, Any] = field(default_factory=dict)  # --set
    quiet: bool = False
    console: Console = field(default_factory=lambda: Console(stderr=True))
    jobs: int | None = None  # --jobs: stages at once; None: the cores, shared out at `threads` each
    threads: int = 1  # --threads: torch threads per stage (part of the stages' identities)

    @functools.cached_property
    def tracker(self) -> Tracker:
        """The store, opened on first use: MLflow loads only when a stage runs or a run is not in the
        local manifests (see experiments/tracking.py)."""
        from experiments.tracking import Tracker, quiet_mlflow

        quiet_mlflow()
        return Tracker(self.tracking_uri, self.runs_dir)

    def runner(self, once_per_invocation: bool = False) -> Runner:
        from experiments.runner import Runner

        return Runner(
            self.tracker,
            show_progress=not self.quiet,
            once_per_invocation=once_per_invocation,
            jobs=self.jobs,
            threads=self.threads,
        )

    def target(self, spec, overrides: dict[str, Any] | None = None) -> Target:
        """``spec`` under the command's profile and seeds, with ``overrides`` (default: all of --set)."""
        profile = self.profile or spec.profile
        seeds = list(self.seeds) if self.seeds else list(spec.seeds_by_profile.get(profile, spec.seeds))
        stem = spec.name if profile == spec.profile else f"{spec.name}.{profile}"
        return Target(spec, profile, seeds, dict(self.overrides if overrides is None else overrides), stem)

    def plan(self, target: Target) -> Plan:
        """A table's or figure's plan at this command's thread count."""
        return table_plan(target.spec, self.root, target.profile, target.seeds, target.overrides, self.threads)

    def sweep(
        self,
        target: Target,
        runner: Runner,
        storage: str | None = None,
        worker: bool = False,
        heartbeat_s: float = 60.0,
    ) -> Sweep:
        from experiments.sweep import Sweep
        from experiments.tracking import probe_store

        sweep = Sweep(
            target.spec,
            self.root,
            self.tracker,
            runner,
            target.profile,
            target.seeds,
            target.overrides,
            storage=storage,
            worker=worker,
            heartbeat_s=heartbeat_s,
            reports_dir=self.reports_dir,
            stem=target.stem,
        )
        probe_store("sweep storage", sweep.storage_url)  # one line, not Optuna's traceback, when out of reach
        return sweep


def table_plan(
    spec, root: Path, profile: str, seeds: list[int], overrides: dict[str, Any], threads: int = 1
) -> Plan:
    return build_plan(spec.name, table_variants(spec, root, profile, overrides), profile, seeds, threads=threads)


# --- list --------------------------------------------------------------------------------


def list_specs(root: Path) -> int:
    """Print every table, figure and sweep under ``root`` and whether its stages' code is there; returns
    the number of specs that do not load."""
    from experiments.stages import STAGE_KINDS

    table = Table(title=f"specs in {root}")
    for col in ("name", "kind", "title", "size", "profile", "stages"):
        table.add_column(col, overflow="fold")
    availability = {name: kind.available() for name, kind in STAGE_KINDS.items()}
    errors = 0
    for name in spec_files(root):
        try:
            spec = load_spec(name, root)
        except SpecError as err:
            table.add_row(name, "?", f"[red]{err}[/red]", "", "", "")
            errors += 1
            continue
        missing = [k for k in kinds_needed(spec, root) if availability.get(k)]
        state = "[green]ready[/green]" if not missing else f"[yellow]waits for {', '.join(missing)}[/yellow]"
        if isinstance(spec, SweepSpec):
            size = f"{len(spec.params)} param(s), " + (
                f"grid of {_grid_size(spec)}" if spec.is_grid else f"{spec.n_trials} TPE trials"
            )
        else:
            size = f"{len(spec.rows)} rows x {len(spec.columns)} columns"
        table.add_row(name, spec.kind, spec.title, size, spec.profile, state)
    Console().print(table)
    return errors


def _grid_size(spec: SweepSpec) -> int:
    n = 1
    for p in spec.params.values():
        n *= len(p.grid)
    return n


# --- run ---------------------------------------------------------------------------------


def run_names(names: list[str], root: Path) -> list[str]:
    """The tables and figures ``names`` asks for, ``all`` expanded (tables first, then figures)."""
    from experiments.reporting import natural_key

    out: list[str] = []
    for name in names:
        if name == "all":
            found = [(load_spec(n, root), n) for n in spec_files(root)]
            tables = [n for spec, n in found if spec.kind == "table"]
            figures = [n for spec, n in found if spec.kind == "figure"]
            out += sorted(tables, key=natural_key) + sorted(figures, key=natural_key)
        else:
            out.append(name)
    return list(dict.fromkeys(out))


def overrides_per_spec(specs: list, root: Path, overrides: dict[str, Any]) -> list[dict[str, Any]]:
    """Each spec's share of ``--set``: with several specs, a key applies to those whose pipelines have
    its stage, and must apply to at least one."""
    if len(specs) == 1:
        return [dict(overrides)]
    stages = [spec_stages(spec, root) for spec in specs]
    for key in overrides:
        head = str(key).partition(".")[0]
        if not any(head in names for names in stages):
            known = set().union(*stages)
            raise SpecError(
                f"'{key}': no stage '{head}' in the pipelines of {', '.join(s.name for s in specs)}; "
                f"stages: {', '.join(sorted(known))}",
                "--set",
            )
    return [{k: v for k, v in overrides.items() if str(k).partition(".")[0] in names} for names in stages]


def plan_run(
    session: Session, names: list[str], rerun: list[str], with_sweeps: bool = False
) -> tuple[list[Target], list[Target]]:
    """The tables (planned) and sweeps of a ``run``: everything is planned first, so a bad spec or
    ``--set`` stops the command before any stage runs."""
    root = session.root
    specs = [load_spec(name, root) for name in run_names(names, root)]
    for spec in specs:
        if isinstance(spec, SweepSpec):
            raise SpecError(
                f"'{spec.name}' is a sweep: use `python -m experiments sweep {spec.name}` "
                "(or `run all --with-sweeps`)"
            )
    sweep_specs = []
    if with_sweeps:
        sweep_specs = [s for s in (load_spec(n, root) for n in spec_files(root)) if isinstance(s, SweepSpec)]
    shares = overrides_per_spec([*specs, *sweep_specs], root, session.overrides)
    tables = []
    for spec, share in zip(specs, shares):
        target = session.target(spec, share)
        target.plan = session.plan(target)
        tables.append(target)
    names_in_plans = {s.name for t in tables for s in t.plan.stages.values()}
    unknown = sorted(set(rerun) - names_in_plans)
    if unknown:
        raise SpecError(f"--rerun: no stage named {', '.join(unknown)} in this plan")
    for t in tables:
        t.rerun = [n for n in rerun if n in {s.name for s in t.plan.stages.values()}]
    sweeps = [session.target(spec, share) for spec, share in zip(sweep_specs, shares[len(specs) :])]
    return tables, sweeps


def run_tables(
    session: Session,
    names: list[str],
    force: bool = False,
    rerun: list[str] | None = None,
    dry_run: bool = False,
    with_sweeps: bool = False,
    write_reports: bool = True,
) -> int:
    """``run``: every stage the tables need (shared stages once), their reports, then the sweeps; returns
    how many tables and sweeps had a failed or blocked stage (or trial)."""
    tables, sweeps = plan_run(session, names, list(rerun or []), with_sweeps)
    runner = session.runner(once_per_invocation=True)
    if dry_run:
        return print_dry_run(tables, runner, force)
    from experiments.reporting import Timing, format_duration, write_index, write_table_report
    from experiments.reporting.freshness import is_up_to_date, report_key

    console = session.console
    started_all = time.perf_counter()
    ran: dict[str, Any] = {}  # stage id -> the outcome of its run in this command
    bad = 0
    rewritten = 0
    for t in tables:
        started = time.perf_counter()
        outcomes = runner.execute(t.plan, t.spec.name, force=force, rerun=t.rerun)
        ran.update({sid: o for sid, o in outcomes.items() if o.status in ("ran", "failed") and o.seconds})
        Console().print(_summary(outcomes, f"{t.spec.name} ({t.profile})", _table_metrics(t.spec, t.plan)))
        timing = Timing.from_outcomes(outcomes, time.perf_counter() - started)
        if write_reports:
            key = report_key(t.spec, t.plan, t.overrides, session.root, session.runs_dir)
            path = session.reports_dir / f"{t.stem}.md"
            if all(o.status == "reused" for o in outcomes.values()) and is_up_to_date(path, key):
                console.print(f"report: {path} (up to date: the same stages, calibration and report code)")
            else:
                path = write_table_report(t.spec, t.plan, session.tracker, session.reports_dir, t.stem,
                                          t.overrides, timing, session.root, key)
                rewritten += 1
                console.print(f"report: {path}")
        print(f"{t.spec.name} ({t.profile}) wall time: {timing.describe()}", flush=True)
        failed = [o for o in outcomes.values() if not o.ok]
        if failed:
            bad += 1
            console.print(
                f"[red]{len(failed)} stage(s) failed or blocked[/red]; failed runs are kept in MLflow (status FAILED) "
                "and will rerun next time"
            )
    for target in sweeps:
        bad += _sweep_in_run(session, target)
    if rewritten or sweeps:
        write_index(session.reports_dir)
    if len(tables) + len(sweeps) > 1:
        spent = sum(o.seconds for o in ran.values())
        print(
            f"all ({len(tables)} tables/figures{f', {len(sweeps)} sweeps' if sweeps else ''}): wall time "
            f"{format_duration(time.perf_counter() - started_all)}; {len(ran)} stages ran, "
            f"stage compute {format_duration(spent)}" + (f"; {bad} with failures" if bad else "")
        )
    return bad


def print_dry_run(tables: list[Target], runner: Runner, force: bool) -> int:
    """Each table's plan: which stages are done (reused) and which would run, and how long that takes
    (``experiments.estimate``); returns how many stages are unusable (their data check failed: the runner
    printed why)."""
    from experiments.estimate import PlanEstimate, describe, estimate, past_seconds
    from experiments.lanes import default_jobs

    todo_ids: set[str] = set()
    unusable: set[str] = set()
    every: dict[str, tuple[Any, tuple[str, int]]] = {}  # stage id -> (its outcome, its (profile, threads))
    past: dict[tuple[str, int], dict] = {}  # (profile, threads) -> (stage name, kind) -> past seconds
    for t in tables:
        outcomes = runner.dry_run(t.plan, force, t.rerun)
        key = (t.plan.profile, t.plan.threads)
        every.update({sid: (outcome, key) for sid, outcome in outcomes.items()})
        if key not in past:
            past[key] = past_seconds(runner.tracker, *key)
        jobs = runner.jobs or default_jobs(t.plan.threads)
        todo = {sid for sid, o in outcomes.items() if o.status in ("todo", "unusable")}
        bad = {sid for sid, o in outcomes.items() if o.status == "unusable"}
        todo_ids |= todo
        unusable |= bad
        Console().print(
            _summary(
                outcomes,
                f"plan for {t.spec.name} ({t.profile}): {len(outcomes) - len(todo)} done, {len(todo)} to run"
                + (f", [red]{len(bad)} with unusable data[/red]" if bad else ""),
            )
        )
        print(f"{t.spec.name} ({t.profile}) {describe(estimate(outcomes.values(), past[key]), jobs)}")
    if len(tables) > 1:
        distinct = {sid for t in tables for sid in t.plan.stages}
        print(
            f"all {len(tables)}: {len(distinct)} distinct stages, {len(todo_ids)} to run (shared ones once)"
        )
        total = sum((estimate([o for o, k in every.values() if k == key], past[key]) for key in past),
                    PlanEstimate())
        jobs = runner.jobs or default_jobs(tables[0].plan.threads)
        print(f"all {len(tables)} {describe(total, jobs)}")
    if unusable:
        Console(stderr=True).print(
            f"[red]error:[/red] {len(unusable)} stage(s) cannot run: their data did not pass the check above",
            soft_wrap=True,
        )
    return len(unusable)


def _sweep_in_run(session: Session, target: Target) -> int:
    """One sweep of ``run --with-sweeps``: 1 if a trial failed. It gets its own runner, since a sweep
    retries its failed points within one command."""
    from experiments.reporting import format_duration

    started = time.perf_counter()
    result = session.sweep(target, session.runner()).run()
    _print_sweep(target.spec, result, session.console)
    print(
        f"{target.spec.name} ({target.profile}) wall time: {format_duration(time.perf_counter() - started)}"
    )
    return 1 if result.failed_now else 0


def _summary(outcomes, title: str, highlight=None):
    from experiments.runner import summary_table

    return summary_table(outcomes, title, highlight)


def _table_metrics(spec, plan: Plan) -> dict[str, list[str]]:
    """Stage id -> the metrics the table's columns read from it."""
    from experiments.reporting import metric_name

    out: dict[str, list[str]] = {}
    for row in spec.rows:
        for col in spec.columns:
            for seed in plan.seeds:
                stage = plan.stage_for(row.id, col.stage, seed) if col.stage and row.measured else None
                if stage is not None:
                    out.setdefault(stage.id, []).append(metric_name(col, row))
    return out


# --- sweep -------------------------------------------------------------------------------


def run_sweep(
    session: Session,
    name: str,
    n_trials: int | None = None,
    storage: str | None = None,
    worker: bool = False,
    heartbeat_s: float = 60.0,
    dry_run: bool = False,
) -> int:
    """``sweep``: run or resume the study (or, ``dry_run``, print its state); returns the number of trials
    that failed in this invocation."""
    spec = load_spec(name, session.root)
    target = session.target(spec)
    if not isinstance(spec, SweepSpec):
        raise SpecError(f"'{spec.name}' is a {spec.kind}: use `python -m experiments run {spec.name}`")
    runner = session.runner()
    sweep = session.sweep(target, runner, storage, worker, heartbeat_s)
    if dry_run:
        print_sweep_plan(sweep, runner)
        return 0
    result = sweep.run(n_trials)
    _print_sweep(spec, result, session.console)
    from experiments.reporting import write_index

    write_index(session.reports_dir)
    return result.failed_now


def print_sweep_plan(sweep: Sweep, runner: Runner) -> None:
    """The study's trials so far, what is left to run, and the stages of the first point."""
    from experiments.tracking import mask_url

    study = sweep.study()
    fresh, failed = sweep.to_do(study)
    states: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        states[t.state.name] = states.get(t.state.name, 0) + 1
    print(f"study {sweep.name} in {mask_url(sweep.storage_url)}")
    print(f"trials: {states or 'none yet'}; to run: {len(fresh)} new, {len(failed)} to retry")
    first = fresh[0] if fresh and fresh[0] else first_point(sweep.spec)
    plan = sweep.plan("point", first)
    Console().print(_summary(runner.dry_run(plan), f"stages of the point {first}"))


def first_point(spec: SweepSpec) -> dict[str, Any]:
    """The first value of every swept parameter."""
    return {n: (p.grid or p.choices or [p.low])[0] for n, p in spec.params.items()}


def _print_sweep(spec, result, console: Console) -> None:
    table = Table(title=f"sweep {spec.name}: study {result.study_name}")
    for col in ("trial", *spec.params, "state", "objective"):
        table.add_column(str(col))
    for r in result.trials:
        value = f"{sum(r.values) / len(r.values):.4g}" if r.values else ""
        table.add_row(str(r.number), *(str(r.params.get(p)) for p in spec.params), r.state, value)
    Console().print(table)
    console.print(f"report: {result.report}; remaining points: {result.remaining}")


# --- gc ----------------------------------------------------------------------------------


# --- report, show ------------------------------------------------------------------------


def report(session: Session, name: str, storage: str | None = None) -> Path:
    """``report``: rewrite the report of a table, figure or sweep from the store, then the index."""
    from experiments.reporting import write_index, write_table_report

    spec = load_spec(name, session.root)
    target = session.target(spec)
    if isinstance(spec, SweepSpec):
        sweep = session.sweep(target, session.runner(), storage)
        path = sweep.write_report(sweep.records(sweep.study()))
    else:
        plan = session.plan(target)
        path = write_table_report(
            spec, plan, session.tracker, session.reports_dir, target.stem, target.overrides, specs_root=session.root
        )
    write_index(session.reports_dir)
    return path


def power(session: Session, name: str) -> int:
    """``power``: per compared column of a table, the measured noise and the seeds (and test items) that
    would resolve the paper's difference; returns the number of compared columns printed."""
    from experiments.reporting import collect
    from experiments.reporting.power import power_rows, print_power

    spec = load_spec(name, session.root)
    if isinstance(spec, SweepSpec):
        raise SpecError(f"'{spec.name}' is a sweep: `power` plans the seeds of a table's comparisons")
    target = session.target(spec)
    plan = table_plan(spec, session.root, target.profile, target.seeds, target.overrides)
    rows = power_rows(spec, collect(spec, plan, session.tracker))
    print_power(spec.name, target.profile, target.seeds, rows, Console())
    return len(rows)


def show(session: Session, name: str) -> None:
    """``show``: print the resolved spec (each stage's config and identity) and the last report."""
    spec = load_spec(name, session.root)
    target = session.target(spec)
    out: dict[str, Any] = {
        "spec": spec.model_dump(exclude_defaults=True),
        "profile": target.profile,
        "seeds": target.seeds,
    }
    if isinstance(spec, SweepSpec):
        plan = session.sweep(target, session.runner()).plan("point", first_point(spec))
    else:
        plan = session.plan(target)
    out["stages"] = {
        sid: {
            "name": s.name,
            "kind": s.kind.name,
            "used_by": sorted({v for v, _ in s.uses}),
            "inputs": s.inputs,
            "config": s.params,
        }
        for sid, s in plan.stages.items()
    }
    print(yaml.safe_dump(out, sort_keys=False, width=110))
    last = session.reports_dir / f"{target.stem}.md"
    if last.exists():
        print(f"# last report: {last}\n")
        print(last.read_text())
    if not isinstance(spec, SweepSpec):  # rerun elsewhere: are the differences beyond the seeds' spread?
        from experiments.compare import print_comparison

        print_comparison(spec, plan, session.tracker, last)
