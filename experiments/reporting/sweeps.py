"""A sweep report: every trial's point and objective, the best point(s), where the paper's choice stands."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from experiments.reporting.index import summary_comment
from experiments.reporting.markdown import markdown_table
from experiments.reporting.timing import Timing, format_duration
from experiments.specs import SweepSpec


@dataclass
class TrialRecord:
    number: int
    state: str
    params: dict[str, Any]
    values: list[float]  # objective per seed
    seconds: float | None = None  # the trial's duration (Optuna's start to completion)


def sweep_markdown(
    spec: SweepSpec, plan_profile: str, trials: list[TrialRecord], header_lines: list[str], png: str | None
) -> str:
    lines = list(header_lines)
    trial_s = sum(t.seconds or 0.0 for t in trials)
    at = next((i for i, line in enumerate(lines) if line.startswith("- **Overrides**")), len(lines))
    lines.insert(at, f"- **Wall time**: the trials took {format_duration(trial_s)} in all (every invocation)")
    if spec.note:
        lines += [spec.note.strip(), ""]
    label = spec.objective.label or f"{spec.objective.stage}.{spec.objective.metric}"
    names = list(spec.params)
    complete = sorted(
        (t for t in trials if t.state == "COMPLETE"),
        key=lambda t: [_sort_key(t.params.get(n)) for n in names],
    )
    lines += [f"## Trials ({len(complete)} complete, {len(trials) - len(complete)} other)", ""]
    rows = []
    for t in complete:
        mean = float(np.mean(t.values)) if t.values else float("nan")
        std = float(np.std(t.values, ddof=1)) if len(t.values) > 1 else 0.0
        paper = all(spec.paper.get(n) == t.params.get(n) for n in names) and bool(spec.paper)
        rows.append(
            [
                t.number,
                *(t.params.get(n) for n in names),
                f"{mean:.4g} ± {std:.2g}" if len(t.values) > 1 else f"{mean:.4g}",
                len(t.values),
                "paper's choice" if paper else "",
            ]
        )
    lines += [markdown_table(["trial", *names, label, "seeds", ""], rows), ""]
    scored = [t for t in complete if t.values]
    if scored:
        value, best = best_trials(spec, scored)
        points = "; ".join(_point(t, names) for t in best)
        tie = f" (a tie of {len(best)} points at {value:.4g})" if len(best) > 1 else f" ({value:.4g})"
        lines += [f"**Best** ({spec.objective.direction}): {points}{tie}", ""]
    if spec.paper:
        lines += ["**Paper's choice**: " + ", ".join(f"`{k}={v}`" for k, v in spec.paper.items()), ""]
    failed = [t for t in trials if t.state != "COMPLETE"]
    if failed:
        lines += ["Not complete: " + ", ".join(f"trial {t.number} ({t.state})" for t in failed), ""]
    if png:
        lines += [f"![{spec.title}]({png})", ""]
    summary = sweep_summary(spec, trials)
    comment = summary_comment(spec, plan_profile, Timing(None, trial_s), summary)
    return "\n".join(lines).rstrip() + "\n" + comment


def best_trials(spec: SweepSpec, complete: list[TrialRecord]) -> tuple[float, list[TrialRecord]]:
    """The best mean objective over the complete trials and every trial that reaches it (ties are common
    at chance-level scores), in the order given."""
    means = [float(np.mean(t.values)) for t in complete]
    value = max(means) if spec.objective.direction == "maximize" else min(means)
    return value, [t for t, m in zip(complete, means) if m == value]


def _point(trial: TrialRecord, names: list[str]) -> str:
    return ", ".join(f"`{n}={trial.params.get(n)}`" for n in names)


def sweep_summary(spec: SweepSpec, trials: list[TrialRecord]) -> str:
    """One line for the index: trials complete, the best point, and where the paper's choice stands."""
    complete = [t for t in trials if t.state == "COMPLETE" and t.values]
    text = f"{len(complete)} trial{'s' if len(complete) != 1 else ''} complete"
    if len(trials) > len(complete):
        text += f", {len(trials) - len(complete)} not"
    if not complete:
        return text
    seeds = max(len(t.values) for t in complete)
    means = [float(np.mean(t.values)) for t in complete]
    text += f" ({seeds} seed{'s' if seeds != 1 else ''} each; objective {min(means):.4g} to {max(means):.4g})"
    value, best = best_trials(spec, complete)
    names = list(spec.params)
    if len(best) == 1:
        text += f"; best {_point(best[0], names)} ({value:.4g})"
    else:
        text += f"; best {value:.4g}, a tie of {len(best)} points"
    if spec.paper:
        at_paper = [t for t in complete if all(t.params.get(n) == v for n, v in spec.paper.items())]
        if at_paper and at_paper[0] in best:
            text += (
                "; the paper's choice is the best"
                if len(best) == 1
                else "; the paper's choice is one of them"
            )
        elif at_paper:
            text += f"; the paper's choice gives {float(np.mean(at_paper[0].values)):.4g}"
        else:
            text += "; the paper's choice was not tried"
    return text


def _sort_key(value: Any) -> tuple:
    """Numbers in numeric order, then everything else as text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))
