"""``python -m experiments list | run | sweep | report | show``.

Exit codes: 0 ok; 1 a stage or trial failed (or was blocked by one that did);
2 a bad spec, an unknown name or bad usage; 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from experiments.plan import StageUnavailable, build_plan, table_variants
from experiments.specs import (
    PROFILES,
    SpecError,
    SweepSpec,
    load_pipeline,
    load_spec,
    parse_sets,
    spec_files,
    specs_dir,
)

EXIT_OK, EXIT_FAILED, EXIT_SPEC, EXIT_INTERRUPTED = 0, 1, 2, 130

MAIN_HELP = """\
Run the E-ViLM ablation suite: tables, figures and sweeps declared in ablations/.

  python -m experiments list                          what can be run
  python -m experiments run table1                    the cost table (no training)
  python -m experiments run table6 --profile smoke    a whole table at the smallest scale
  python -m experiments run table6 --dry-run          which stages are done, which will run
  python -m experiments run all                       every table and figure, sharing their stages
  python -m experiments sweep mask_ratio              an Optuna study, resumable
  python -m experiments report table6                 rewrite reports/table6.md from the store
  python -m experiments show table6                   the resolved spec and the last results
  mlflow ui                                           browse every run (in this directory)

Every stage is an MLflow run in sqlite:///mlflow.db here (or $MLFLOW_TRACKING_URI).
A stage whose identity (config + inputs + code version) already has a finished run
is reused, never recomputed; --force reruns.
"""


def _common(p: argparse.ArgumentParser, seeds: bool = True, many: bool = False) -> None:
    if many:
        p.add_argument(
            "names",
            nargs="+",
            metavar="name",
            help="tables or figures (see `python -m experiments list`), or `all` for every one of them",
        )
    else:
        p.add_argument("name", help="a table, figure or sweep (see `python -m experiments list`)")
    p.add_argument(
        "--profile",
        choices=PROFILES,
        help="scale: smoke (tests, CI), quick (minutes on a CPU), paper (GPUs); default: the spec's",
    )
    if seeds:
        p.add_argument("--seeds", type=int, nargs="+", metavar="S", help="seeds to run (default: the spec's)")
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        metavar="KEY=VALUE",
        default=[],
        help="override a stage config key, e.g. --set pretrain.mask.ratio=0.5 (repeatable; values parse as YAML)",
    )
    p.add_argument(
        "--specs", type=Path, help="the specs folder (default: ablations/ of this checkout, or $EVILM_SPECS)"
    )
    p.add_argument(
        "--runs-dir", type=Path, default=Path("runs"), help="where stage outputs go (default: ./runs)"
    )
    p.add_argument(
        "--reports-dir", type=Path, default=Path("reports"), help="where reports go (default: ./reports)"
    )
    p.add_argument(
        "--tracking-uri", help="MLflow store (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db here)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress display")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m experiments",
        description=MAIN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{list,run,sweep,report,show}")

    p = sub.add_parser("list", help="tables, figures and sweeps, and whether their stages are available")
    p.add_argument("--specs", type=Path, help="the specs folder (default: ablations/)")

    p = sub.add_parser(
        "run",
        help="run every stage a table or figure needs (or several, or `all`), then write its report",
        description="Plan the table's stages (data -> tokenizer -> pretraining -> downstream), reuse the finished "
        "ones, run the rest as MLflow runs, print a summary and the wall time, write reports/<name>.md and the "
        "index reports/README.md. Several names (or `all`: every table and figure) are planned first and run "
        "one after another; a stage two of them share runs once.\n\n"
        "  python -m experiments run table6 --profile smoke\n"
        "  python -m experiments run table5 table6              # shared stages run once\n"
        "  python -m experiments run all --with-sweeps          # every table, figure and sweep\n"
        "  python -m experiments run table6 --seeds 0 1 2 --set pretrain.epochs=2\n"
        "  python -m experiments run table6 --rerun tokenizer      # that stage and everything after it",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(p, many=True)
    p.add_argument(
        "--with-sweeps",
        action="store_true",
        help="after the tables, run (or resume) every sweep in ablations/sweeps/ too; sweeps can take long",
    )
    p.add_argument("--dry-run", action="store_true", help="print the plan (done / will run) and stop")
    p.add_argument("--force", action="store_true", help="rerun every stage, even finished ones")
    p.add_argument(
        "--rerun",
        action="append",
        default=[],
        metavar="STAGE",
        help="rerun this stage (by pipeline name) and all downstream",
    )
    p.add_argument("--no-report", action="store_true", help="do not write the report")

    p = sub.add_parser(
        "sweep",
        help="run or resume an Optuna study over a sweep spec",
        description="Each trial resolves the pipeline with the trial's params and runs it like a table row "
        "(finished stages are reused); each trial is an MLflow child run of the sweep's run. Rerunning the same "
        "command resumes the study: points never tried run, failed or killed points run again.\n\n"
        "  python -m experiments sweep mask_ratio --profile smoke\n"
        "  python -m experiments sweep mask_ratio --n-trials 2     # at most 2 trials now; rerun to continue\n"
        "  python -m experiments sweep lr --storage postgresql://host/db --worker   # one of several workers",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(p)
    p.add_argument("--n-trials", type=int, help="at most this many trials in this invocation")
    p.add_argument(
        "--storage",
        help="Optuna storage: a URL (postgresql://user@host/db for workers on many machines), or a journal "
        "file (journal:///path, or a path ending in .log/.journal) for local workers "
        "(default: sqlite optuna.db beside the MLflow store)",
    )
    p.add_argument(
        "--worker",
        action="store_true",
        help="other workers share the study: fail only trials whose heartbeat stopped (or, for a journal "
        "file, whose process on this host is gone); each grid point runs once across workers",
    )
    p.add_argument(
        "--heartbeat",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds between a running trial's heartbeats in an RDB storage; a trial silent for 2 "
        "intervals is failed and its point rerun (default: 60)",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="print the study's state and the first point's plan"
    )

    p = sub.add_parser("report", help="write reports/<name>.md (and PNGs) from the runs in the store")
    _common(p)
    p.add_argument("--storage", help="the sweep's Optuna storage (sweeps only)")

    p = sub.add_parser(
        "show", help="print the resolved spec (stage configs and identities) and the last results"
    )
    _common(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(stderr=True)
    try:
        if args.command == "list":
            return cmd_list(args)
        return COMMANDS[args.command](args, console)
    except SpecError as err:
        console.print(f"[red]error:[/red] {err}", highlight=False, soft_wrap=True)
        if isinstance(err, StageUnavailable):
            console.print(
                "This stage's code is not in this checkout yet; `python -m experiments list` shows what runs."
            )
        return EXIT_SPEC
    except KeyboardInterrupt:
        console.print(
            "[yellow]interrupted[/yellow]: unfinished runs are marked KILLED and will not be reused"
        )
        return EXIT_INTERRUPTED


# --- commands --------------------------------------------------------------------------


def cmd_list(args) -> int:
    from experiments.stages import STAGE_KINDS

    root = specs_dir(args.specs)
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
        kinds = _kinds_needed(spec, root)
        missing = [k for k in kinds if availability.get(k)]
        state = "[green]ready[/green]" if not missing else f"[yellow]waits for {', '.join(missing)}[/yellow]"
        if isinstance(spec, SweepSpec):
            size = f"{len(spec.params)} param(s), " + (
                f"grid of {_grid_size(spec)}" if spec.is_grid else f"{spec.n_trials} TPE trials"
            )
        else:
            size = f"{len(spec.rows)} rows x {len(spec.columns)} columns"
        table.add_row(name, spec.kind, spec.title, size, spec.profile, state)
    Console().print(table)
    return EXIT_SPEC if errors else EXIT_OK


def _grid_size(spec: SweepSpec) -> int:
    n = 1
    for p in spec.params.values():
        n *= len(p.grid)
    return n


def _kinds_needed(spec, root: Path) -> list[str]:
    bases = {spec.base} | {r.base for r in getattr(spec, "rows", []) if r.base}
    kinds: list[str] = []
    for base in bases:
        for stage in load_pipeline(base, root).stages.values():
            if stage.kind not in kinds:
                kinds.append(stage.kind)
    if isinstance(spec, SweepSpec) or not hasattr(spec, "columns"):
        return kinds
    used = {c.stage for c in spec.columns if c.stage}
    needed: list[str] = []
    for base in bases:
        pipeline = load_pipeline(base, root)
        todo = [s for s in used if s in pipeline.stages]
        seen: set[str] = set()
        while todo:
            s = todo.pop()
            if s in seen:
                continue
            seen.add(s)
            todo += list(pipeline.stages[s].inputs.values())
            if pipeline.stages[s].kind not in needed:
                needed.append(pipeline.stages[s].kind)
    return needed


def _setup(args):
    from experiments.runner import Runner
    from experiments.tracking import Tracker, quiet_mlflow

    quiet_mlflow()
    root = specs_dir(args.specs)
    spec = load_spec(args.name, root)
    profile, seeds, stem = _resolve(spec, args)
    cli_set = parse_sets(args.sets)
    tracker = Tracker(args.tracking_uri, args.runs_dir)
    runner = Runner(tracker, show_progress=not args.quiet)
    return root, spec, profile, seeds, cli_set, tracker, runner, stem


def _table_plan(spec, root, profile, seeds, cli_set):
    return build_plan(spec.name, table_variants(spec, root, profile, cli_set), profile, seeds)


@dataclass
class TableJob:
    """One table or figure of a ``run``: its spec, resolved settings and plan."""

    spec: Any
    profile: str
    seeds: list[int]
    cli_set: dict[str, Any]
    stem: str
    plan: Any = None
    rerun: list[str] = field(default_factory=list)


def run_names(names: list[str], root: Path) -> list[str]:
    """The tables and figures ``names`` asks for, ``all`` expanded (tables first, then figures)."""
    from experiments.report import natural_key

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


def _resolve(spec, args) -> tuple[str, list[int], str]:
    """The profile, seeds and report stem of ``spec`` under the command's options."""
    profile = args.profile or spec.profile
    seeds = list(args.seeds) if getattr(args, "seeds", None) else list(spec.seeds_by_profile.get(profile, spec.seeds))
    stem = spec.name if profile == spec.profile else f"{spec.name}.{profile}"
    return profile, seeds, stem


def _sets_for(specs: list, root: Path, cli_set: dict[str, Any]) -> list[dict[str, Any]]:
    """Each spec's share of ``--set``: with several specs, a key applies to those whose pipelines have
    its stage, and must apply to at least one."""
    from experiments.plan import spec_stages

    if len(specs) == 1:
        return [dict(cli_set)]
    stages = [spec_stages(spec, root) for spec in specs]
    for key in cli_set:
        head = str(key).partition(".")[0]
        if not any(head in names for names in stages):
            known = set().union(*stages)
            raise SpecError(
                f"'{key}': no stage '{head}' in the pipelines of {', '.join(s.name for s in specs)}; "
                f"stages: {', '.join(sorted(known))}",
                "--set",
            )
    return [{k: v for k, v in cli_set.items() if str(k).partition(".")[0] in names} for names in stages]


def cmd_run(args, console: Console) -> int:
    from experiments.report import Timing, format_duration, write_index, write_table_report
    from experiments.runner import Runner
    from experiments.tracking import Tracker, quiet_mlflow

    quiet_mlflow()
    root = specs_dir(args.specs)
    cli_set = parse_sets(args.sets)
    specs = [load_spec(name, root) for name in run_names(args.names, root)]
    for spec in specs:
        if isinstance(spec, SweepSpec):
            raise SpecError(
                f"'{spec.name}' is a sweep: use `python -m experiments sweep {spec.name}` "
                "(or `run all --with-sweeps`)"
            )
    sweeps = []
    if args.with_sweeps:
        sweeps = [s for s in (load_spec(n, root) for n in spec_files(root)) if isinstance(s, SweepSpec)]
    # plan everything first: a bad spec or --set stops the command before any stage runs
    sets = _sets_for([*specs, *sweeps], root, cli_set)
    jobs = []
    for spec, spec_set in zip(specs, sets):
        profile, seeds, stem = _resolve(spec, args)
        plan = _table_plan(spec, root, profile, seeds, spec_set)
        jobs.append(TableJob(spec, profile, seeds, spec_set, stem, plan))
    names = {s.name for job in jobs for s in job.plan.stages.values()}
    unknown = sorted(set(args.rerun) - names)
    if unknown:
        raise SpecError(f"--rerun: no stage named {', '.join(unknown)} in this plan")
    for job in jobs:
        job.rerun = [n for n in args.rerun if n in {s.name for s in job.plan.stages.values()}]

    tracker = Tracker(args.tracking_uri, args.runs_dir)
    runner = Runner(tracker, show_progress=not args.quiet, once_per_invocation=True)
    if args.dry_run:
        todo_ids: set[str] = set()
        for job in jobs:
            outcomes = runner.dry_run(job.plan, args.force, job.rerun)
            todo = {sid for sid, o in outcomes.items() if o.status == "todo"}
            todo_ids |= todo
            Console().print(
                _summary(
                    outcomes,
                    f"plan for {job.spec.name} ({job.profile}): {len(outcomes) - len(todo)} done, {len(todo)} to run",
                )
            )
        if len(jobs) > 1:
            distinct = {sid for job in jobs for sid in job.plan.stages}
            print(
                f"all {len(jobs)}: {len(distinct)} distinct stages, {len(todo_ids)} to run (shared ones once)"
            )
        return EXIT_OK

    started_all = time.perf_counter()
    ran: dict[str, Any] = {}  # stage id -> the outcome of its run in this command
    bad = 0
    for job in jobs:
        started = time.perf_counter()
        outcomes = runner.execute(job.plan, job.spec.name, force=args.force, rerun=job.rerun)
        ran.update({sid: o for sid, o in outcomes.items() if o.status in ("ran", "failed") and o.seconds})
        Console().print(
            _summary(outcomes, f"{job.spec.name} ({job.profile})", _table_metrics(job.spec, job.plan))
        )
        timing = Timing.from_outcomes(outcomes, time.perf_counter() - started)
        if not args.no_report:
            path = write_table_report(
                job.spec, job.plan, tracker, args.reports_dir, job.stem, job.cli_set, timing
            )
            console.print(f"report: {path}")
        print(f"{job.spec.name} ({job.profile}) wall time: {timing.describe()}", flush=True)
        failed = [o for o in outcomes.values() if not o.ok]
        if failed:
            bad += 1
            console.print(
                f"[red]{len(failed)} stage(s) failed or blocked[/red]; failed runs are kept in MLflow (status FAILED) "
                "and will rerun next time"
            )
    for spec, spec_set in zip(sweeps, sets[len(specs) :]):
        bad += _run_sweep(spec, args, root, spec_set, tracker, console)
    if (jobs and not args.no_report) or sweeps:
        write_index(args.reports_dir)
    if len(jobs) + len(sweeps) > 1:
        spent = sum(o.seconds for o in ran.values())
        print(
            f"all ({len(jobs)} tables/figures{f', {len(sweeps)} sweeps' if sweeps else ''}): wall time "
            f"{format_duration(time.perf_counter() - started_all)}; {len(ran)} stages ran, "
            f"stage compute {format_duration(spent)}" + (f"; {bad} with failures" if bad else "")
        )
    return EXIT_FAILED if bad else EXIT_OK


def _run_sweep(spec, args, root, spec_set, tracker, console) -> int:
    """One sweep of ``run --with-sweeps``: 1 if a trial failed. It gets its own runner, since a sweep
    retries its failed points within one command."""
    from experiments.report import format_duration
    from experiments.runner import Runner
    from experiments.sweep import Sweep

    profile, seeds, stem = _resolve(spec, args)
    runner = Runner(tracker, show_progress=not args.quiet)
    started = time.perf_counter()
    sweep = Sweep(
        spec, root, tracker, runner, profile, seeds, spec_set, reports_dir=args.reports_dir, stem=stem
    )
    result = sweep.run()
    _print_sweep(spec, result, console)
    print(f"{spec.name} ({profile}) wall time: {format_duration(time.perf_counter() - started)}")
    return 1 if result.failed_now else 0


def _summary(outcomes, title: str, highlight=None):
    from experiments.runner import summary_table

    return summary_table(outcomes, title, highlight)


def _table_metrics(spec, plan) -> dict[str, list[str]]:
    """Stage id -> the metrics the table's columns read from it."""
    from experiments.report import metric_name

    out: dict[str, list[str]] = {}
    for row in spec.rows:
        for col in spec.columns:
            for seed in plan.seeds:
                stage = plan.stage_for(row.id, col.stage, seed) if col.stage and row.measured else None
                if stage is not None:
                    out.setdefault(stage.id, []).append(metric_name(col, row))
    return out


def _sweep(args, root, spec, profile, seeds, cli_set, tracker, runner, stem):
    from experiments.sweep import Sweep

    return Sweep(
        spec,
        root,
        tracker,
        runner,
        profile,
        seeds,
        cli_set,
        storage=args.storage,
        worker=getattr(args, "worker", False),
        heartbeat_s=getattr(args, "heartbeat", 60.0),
        reports_dir=args.reports_dir,
        stem=stem,
    )


def cmd_sweep(args, console: Console) -> int:
    from experiments.tracking import mask_url

    root, spec, profile, seeds, cli_set, tracker, runner, stem = _setup(args)
    if not isinstance(spec, SweepSpec):
        raise SpecError(f"'{spec.name}' is a {spec.kind}: use `python -m experiments run {spec.name}`")
    sweep = _sweep(args, root, spec, profile, seeds, cli_set, tracker, runner, stem)
    if args.dry_run:
        study = sweep.study()
        fresh, failed = sweep.to_do(study)
        states: dict[str, int] = {}
        for t in study.get_trials(deepcopy=False):
            states[t.state.name] = states.get(t.state.name, 0) + 1
        print(f"study {sweep.name} in {mask_url(sweep.storage_url)}")
        print(f"trials: {states or 'none yet'}; to run: {len(fresh)} new, {len(failed)} to retry")
        first = (
            fresh[0]
            if fresh and fresh[0]
            else {n: (p.grid or p.choices or [p.low])[0] for n, p in spec.params.items()}
        )
        plan = sweep.plan("point", first)
        Console().print(_summary(runner.dry_run(plan), f"stages of the point {first}"))
        return EXIT_OK
    result = sweep.run(args.n_trials)
    _print_sweep(spec, result, console)
    from experiments.report import write_index

    write_index(args.reports_dir)
    return EXIT_FAILED if result.failed_now else EXIT_OK


def _print_sweep(spec, result, console: Console) -> None:
    table = Table(title=f"sweep {spec.name}: study {result.study_name}")
    for col in ("trial", *spec.params, "state", "objective"):
        table.add_column(str(col))
    for r in result.trials:
        value = f"{sum(r.values) / len(r.values):.4g}" if r.values else ""
        table.add_row(str(r.number), *(str(r.params.get(p)) for p in spec.params), r.state, value)
    Console().print(table)
    console.print(f"report: {result.report}; remaining points: {result.remaining}")


def cmd_report(args, console: Console) -> int:
    root, spec, profile, seeds, cli_set, tracker, runner, stem = _setup(args)
    if isinstance(spec, SweepSpec):
        sweep = _sweep(args, root, spec, profile, seeds, cli_set, tracker, runner, stem)
        path = sweep.write_report(sweep.records(sweep.study()))
    else:
        from experiments.report import write_table_report

        plan = _table_plan(spec, root, profile, seeds, cli_set)
        path = write_table_report(spec, plan, tracker, args.reports_dir, stem, cli_set)
    from experiments.report import write_index

    write_index(args.reports_dir)
    print(path)
    return EXIT_OK


def cmd_show(args, console: Console) -> int:
    root, spec, profile, seeds, cli_set, tracker, runner, stem = _setup(args)
    out: dict[str, Any] = {"spec": spec.model_dump(exclude_defaults=True), "profile": profile, "seeds": seeds}
    if isinstance(spec, SweepSpec):
        first = {n: (p.grid or p.choices or [p.low])[0] for n, p in spec.params.items()}
        plan = _sweep(args, root, spec, profile, seeds, cli_set, tracker, runner, stem).plan("point", first)
    else:
        plan = _table_plan(spec, root, profile, seeds, cli_set)
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
    report = args.reports_dir / f"{stem}.md"
    if report.exists():
        print(f"# last report: {report}\n")
        print(report.read_text())
    return EXIT_OK


COMMANDS = {"run": cmd_run, "sweep": cmd_sweep, "report": cmd_report, "show": cmd_show}

if __name__ == "__main__":
    sys.exit(main())
