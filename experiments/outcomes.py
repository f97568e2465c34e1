"""What happened to each stage of a plan (``Outcome``), the summary table the commands print, and the
data checks' lines."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from experiments.plan import PlannedStage


@dataclass
class Outcome:
    stage: PlannedStage
    # "reused" | "ran" | "failed" | "blocked" | "done" / "todo" / "unusable" (dry run; unusable: its data check failed)
    status: str
    run_id: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    artifacts: dict[str, Path] = field(default_factory=dict)
    out_dir: Path | None = None
    seconds: float = 0.0  # ran/failed: this attempt; reused/done: the original run's (0.0 when not recorded)
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("reused", "ran", "done")



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
        "unusable": "red",
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


def print_checks(console, stage: PlannedStage, checks: list) -> bool:
    """Print a stage's data checks (one line per benchmark); returns whether all passed."""
    if not checks:
        return True
    bad = [c for c in checks if not c.ok]
    verdict = f"[red]{len(bad)} of {len(checks)} failed[/red]" if bad else f"{len(checks)} ok"
    console.print(f"data check of stage '{stage.name}' ({stage.kind.name}): {verdict}", highlight=False, soft_wrap=True)
    for check in checks:
        mark = "[green]ok[/green]  " if check.ok else "[red]FAIL[/red]"
        console.print(f"  {mark} {escape(check.summary)}", highlight=False, soft_wrap=True)
    return not bad


def _time_cell(outcome: Outcome) -> str:
    if outcome.status in ("ran", "failed") and outcome.seconds:
        return f"{outcome.seconds:.1f}s"
    if outcome.status in ("reused", "done") and outcome.seconds:
        return f"[dim]({outcome.seconds:.1f}s)[/dim]"  # the original run's time, not spent now
    return ""


def label(stage: PlannedStage) -> str:
    seed = "" if stage.seed is None else f" seed {stage.seed}"
    return f"{stage.name}{seed}"


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
