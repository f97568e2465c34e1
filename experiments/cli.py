"""``python -m experiments list | run | sweep | report | show``: the arguments, and the exit code of what
``commands`` does with them.

Exit codes: 0 ok; 1 a stage or trial failed (or was blocked by one that did, or --dry-run found
unusable data); 2 a bad spec, an unknown name or bad usage; 3 the tracking store or the sweep
storage is out of reach; 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from experiments import cleanup, commands
from experiments.commands import Session
from experiments.plan import StageUnavailable
from experiments.specs import PROFILES, SpecError, parse_sets, seed_arg, specs_dir, whole_number_arg
from experiments.tracking import StoreError

EXIT_OK, EXIT_FAILED, EXIT_SPEC, EXIT_STORE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

MAIN_HELP = """\
Run the E-ViLM ablation suite: tables, figures and sweeps declared in ablations/.

  python -m experiments list                          what can be run
  python -m experiments run table1                    the cost table (no training)
  python -m experiments run table6 --profile smoke    a whole table at the smallest scale
  python -m experiments run table6 --dry-run          which stages are done, which will run, how long
  python -m experiments run all                       every table and figure, sharing their stages
  python -m experiments sweep mask_ratio              an Optuna study, resumable
  python -m experiments report table6                 rewrite reports/table6.md from the store
  python -m experiments power table6                  seeds/items each comparison needs to see the paper's Δ
  python -m experiments show table6                   the resolved spec and the last results
  python -m experiments gc                            delete stage folders no finished run uses
  mlflow ui                                           browse every run (in this directory)

Every stage is an MLflow run in sqlite:///mlflow.db here (or $MLFLOW_TRACKING_URI).
A stage whose identity (config + inputs + code version) already has a finished run
is reused, never recomputed; --force reruns.
"""


POWER_HELP = """\
Read the finished runs of a table (for the profile and seeds given) and say, for every compared
column (a row against its baseline row), what the measurement can resolve and what it would take
to resolve the paper's difference:

  |Δ paper|         the paper's difference for that row and column: the effect to detect
  Δ measured        the measured difference (mean over seeds), and in brackets the MDD now:
                    the minimum detectable difference, half the width of the report's 95%
                    bootstrap interval. If the interval spans 0 and MDD > |Δ paper|, the report
                    says "underpowered" (it could not have seen the effect), else "not reproduced".
  noise now         seeds: the SD of (row − baseline) from one seed of each, sqrt(var_row +
                    var_base) over seeds (needs >= 2 seeds per row); items: the SD over test
                    items of the paired per-item difference (needs per-item results)
  seeds / items     how many seeds per row (at today's test items), or test items (at today's
                    seeds), make the 95% interval's half-width smaller than |Δ paper|:
                    1.96 * sqrt(SD_seed^2 / seeds + SD_item^2 / items) < |Δ paper|;
                    "80% power" asks for 2.8 instead of 1.96: the interval then excludes 0 in
                    about 80% of repeats when the true effect is |Δ paper|. "more items first":
                    the items' noise alone is too large for any number of seeds (and vice versa).

The paper's differences come from paper-scale models and data: on the generated world they are a
yardstick, not a prediction. On the paper profile the test sets are the real ones (fixed size).

  python -m experiments power table6                  # the spec's profile and seeds
  python -m experiments power table5 --profile smoke
  python -m experiments power table6 --seeds 0 1 2 3 4
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
        p.add_argument("--seeds", type=seed_arg, nargs="+", metavar="S", help="seeds to run (default: the spec's)")
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
    p.add_argument(
        "--threads",
        type=_positive,
        default=1,
        metavar="N",
        help="torch threads per stage (default: 1). Part of each stage's identity: other counts can give "
        "slightly other floats, so a finished stage is reused only at the same count",
    )


def _jobs(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--jobs",
        type=_positive,
        metavar="N",
        help="independent stages (rows, seeds) run at once, each in its own worker process "
        "(default: the CPU cores / --threads; 1 with an NVIDIA GPU). Results do not depend on it",
    )


def _positive(text: str) -> int:
    return whole_number_arg(text, 1, "a count")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m experiments",
        description=MAIN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{list,run,sweep,report,power,show,gc}")

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
    _jobs(p)
    p.add_argument(
        "--with-sweeps",
        action="store_true",
        help="after the tables, run (or resume) every sweep in ablations/sweeps/ too; sweeps can take long",
    )
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan (done / will run), its estimated compute and wall time, and stop")
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
    _jobs(p)
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
        "power",
        help="how many seeds (and test items) each compared column needs to see the paper's difference",
        description=POWER_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(p)

    p = sub.add_parser(
        "show", help="print the resolved spec (stage configs and identities) and the last results"
    )
    _common(p)

    p = sub.add_parser(
        "gc",
        help="delete stage folders in the runs folder that no finished run uses",
        description="Delete what no FINISHED run of the store refers to: folders of failed, killed or "
        "abandoned attempts (their resume checkpoints too), stage folders whose run is gone from the store, "
        "files fetched for reports. A stage running now (its lock is held) is left alone.\n\n"
        "  python -m experiments gc --dry-run     # what would go\n"
        "  python -m experiments gc",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--runs-dir", type=Path, default=Path("runs"), help="the runs folder (default: ./runs)")
    p.add_argument(
        "--tracking-uri", help="MLflow store (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db here)"
    )
    p.add_argument("--dry-run", action="store_true", help="list what would be deleted, delete nothing")
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
    except StoreError as err:
        console.print(f"[red]error:[/red] {escape(str(err))}", highlight=False, soft_wrap=True)
        return EXIT_STORE
    except KeyboardInterrupt:
        console.print(
            "[yellow]interrupted[/yellow]: unfinished runs are marked KILLED and will not be reused"
        )
        return EXIT_INTERRUPTED


# --- commands: parse, call ``commands``, exit code ------------------------------------------


def session(args, console: Console) -> Session:
    """The options every command but ``list`` takes, as a ``Session``."""
    return Session(
        root=specs_dir(args.specs),
        runs_dir=args.runs_dir,
        reports_dir=args.reports_dir,
        tracking_uri=args.tracking_uri,
        profile=args.profile,
        seeds=getattr(args, "seeds", None),
        overrides=parse_sets(args.sets),
        quiet=args.quiet,
        console=console,
        jobs=getattr(args, "jobs", None),
        threads=args.threads,
    )


def cmd_list(args) -> int:
    return EXIT_SPEC if commands.list_specs(specs_dir(args.specs)) else EXIT_OK


def cmd_run(args, console: Console) -> int:
    bad = commands.run_tables(
        session(args, console),
        args.names,
        force=args.force,
        rerun=args.rerun,
        dry_run=args.dry_run,
        with_sweeps=args.with_sweeps,
        write_reports=not args.no_report,
    )
    return EXIT_FAILED if bad else EXIT_OK


def cmd_sweep(args, console: Console) -> int:
    failed = commands.run_sweep(
        session(args, console),
        args.name,
        n_trials=args.n_trials,
        storage=args.storage,
        worker=args.worker,
        heartbeat_s=args.heartbeat,
        dry_run=args.dry_run,
    )
    return EXIT_FAILED if failed else EXIT_OK


def cmd_report(args, console: Console) -> int:
    print(commands.report(session(args, console), args.name, storage=args.storage))
    return EXIT_OK


def cmd_power(args, console: Console) -> int:
    commands.power(session(args, console), args.name)
    return EXIT_OK


def cmd_show(args, console: Console) -> int:
    commands.show(session(args, console), args.name)
    return EXIT_OK


def cmd_gc(args, console: Console) -> int:
    cleanup.collect_garbage(args.runs_dir, args.tracking_uri, dry_run=args.dry_run, console=console)
    return EXIT_OK


COMMANDS = {"run": cmd_run, "sweep": cmd_sweep, "report": cmd_report, "power": cmd_power, "show": cmd_show, "gc": cmd_gc}

if __name__ == "__main__":
    sys.exit(main())
