"""``python -m experiments list | run | sweep | report | show``.

Exit codes: 0 ok; 1 a stage or trial failed (or was blocked by one that did);
2 a bad spec, an unknown name or bad usage; 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
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
  python -m experiments sweep mask_ratio              an Optuna study, resumable
  python -m experiments report table6                 rewrite reports/table6.md from the store
  python -m experiments show table6                   the resolved spec and the last results
  mlflow ui                                           browse every run (in this directory)

Every stage is an MLflow run in sqlite:///mlflow.db here (or $MLFLOW_TRACKING_URI).
A stage whose identity (config + inputs + code version) already has a finished run
is reused, never recomputed; --force reruns.
"""


def _common(p: argparse.ArgumentParser, seeds: bool = True) -> None:
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
        help="run every stage a table or figure needs, then write its report",
        description="Plan the table's stages (data -> tokenizer -> pretraining -> downstream), reuse the finished "
        "ones, run the rest as MLflow runs, print a summary and write reports/<name>.md.\n\n"
        "  python -m experiments run table6 --profile smoke\n"
        "  python -m experiments run table6 --seeds 0 1 2 --set pretrain.epochs=2\n"
        "  python -m experiments run table6 --rerun tokenizer      # that stage and everything after it",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(p)
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
    profile = args.profile or spec.profile
    seeds = (
        list(args.seeds)
        if getattr(args, "seeds", None)
        else list(spec.seeds_by_profile.get(profile, spec.seeds))
    )
    cli_set = parse_sets(args.sets)
    tracker = Tracker(args.tracking_uri, args.runs_dir)
    runner = Runner(tracker, show_progress=not args.quiet)
    stem = spec.name if profile == spec.profile else f"{spec.name}.{profile}"
    return root, spec, profile, seeds, cli_set, tracker, runner, stem


def _table_plan(spec, root, profile, seeds, cli_set):
    return build_plan(spec.name, table_variants(spec, root, profile, cli_set), profile, seeds)


def cmd_run(args, console: Console) -> int:
    root, spec, profile, seeds, cli_set, tracker, runner, stem = _setup(args)
    if isinstance(spec, SweepSpec):
        raise SpecError(f"'{spec.name}' is a sweep: use `python -m experiments sweep {spec.name}`")
    plan = _table_plan(spec, root, profile, seeds, cli_set)
    try:
        runner.to_rerun(plan, args.force, args.rerun)
    except ValueError as err:
        raise SpecError(str(err)) from None
    if args.dry_run:
        outcomes = runner.dry_run(plan, args.force, args.rerun)
        todo = sum(o.status == "todo" for o in outcomes.values())
        Console().print(
            _summary(
                outcomes, f"plan for {spec.name} ({profile}): {len(outcomes) - todo} done, {todo} to run"
            )
        )
        return EXIT_OK
    outcomes = runner.execute(plan, spec.name, force=args.force, rerun=args.rerun)
    Console().print(_summary(outcomes, f"{spec.name} ({profile})", _table_metrics(spec, plan)))
    if not args.no_report:
        from experiments.report import write_table_report

        path = write_table_report(spec, plan, tracker, args.reports_dir, stem, cli_set)
        console.print(f"report: {path}")
    bad = [o for o in outcomes.values() if not o.ok]
    if bad:
        console.print(
            f"[red]{len(bad)} stage(s) failed or blocked[/red]; failed runs are kept in MLflow (status FAILED) and will rerun next time"
        )
        return EXIT_FAILED
    return EXIT_OK


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
    records = result.trials
    table = Table(title=f"sweep {spec.name}: study {result.study_name}")
    for col in ("trial", *spec.params, "state", "objective"):
        table.add_column(str(col))
    for r in records:
        value = f"{sum(r.values) / len(r.values):.4g}" if r.values else ""
        table.add_row(str(r.number), *(str(r.params.get(p)) for p in spec.params), r.state, value)
    Console().print(table)
    console.print(f"report: {result.report}; remaining points: {result.remaining}")
    return EXIT_FAILED if result.failed_now else EXIT_OK


def cmd_report(args, console: Console) -> int:
    root, spec, profile, seeds, cli_set, tracker, runner, stem = _setup(args)
    if isinstance(spec, SweepSpec):
        sweep = _sweep(args, root, spec, profile, seeds, cli_set, tracker, runner, stem)
        path = sweep.write_report(sweep.records(sweep.study()))
    else:
        from experiments.report import write_table_report

        plan = _table_plan(spec, root, profile, seeds, cli_set)
        path = write_table_report(spec, plan, tracker, args.reports_dir, stem, cli_set)
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
