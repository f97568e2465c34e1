"""A sweep report: every trial's point and objective (mean over seeds with a 95% bootstrap interval), the
best point when its interval excludes the runner-up's, where the paper's choice stands, and the
objective's reference lines (chance, video-blind rules, the calibration's floors and ceiling)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from experiments.reporting.index import summary_comment
from experiments.reporting.markdown import markdown_table
from experiments.reporting.timing import Timing, format_duration
from experiments.specs import SweepSpec
from experiments.stats import Interval, mean_interval

if TYPE_CHECKING:
    from experiments.reporting.floors import ColumnRefs

NOT_SEPARABLE = "no setting distinguishable at this budget"


@dataclass
class TrialRecord:
    number: int
    state: str
    params: dict[str, Any]
    values: list[float]  # objective per seed
    seconds: float | None = None  # the trial's duration (Optuna's start to completion)
    items: list[np.ndarray] | None = None  # per seed, the objective's per-item values (scaled), if logged

    def interval(self) -> Interval:
        """The mean objective with its 95% bootstrap interval (over seeds, and items when logged)."""
        return mean_interval(self.values, self.items)

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))


def sweep_markdown(
    spec: SweepSpec,
    plan_profile: str,
    trials: list[TrialRecord],
    header_lines: list[str],
    png: str | None,
    refs: ColumnRefs | None = None,
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
    lines += [
        "Objective: the mean over seeds, with its 95% percentile bootstrap interval (over seeds and, where "
        "the stage logged per-item results, test items; `source` says which).",
        "",
    ]
    rows = []
    for t in complete:
        paper = all(spec.paper.get(n) == t.params.get(n) for n in names) and bool(spec.paper)
        interval = t.interval() if t.values else None
        rows.append(
            [
                t.number,
                *(t.params.get(n) for n in names),
                _with_interval(interval) if interval else "",
                "" if interval is None else interval.source,
                len(t.values),
                "paper's choice" if paper else "",
            ]
        )
    lines += [markdown_table(["trial", *names, label, "source", "seeds", ""], rows), ""]
    scored = [t for t in complete if t.values]
    if scored:
        best, runner_up, why = separable_best(spec, scored)
        if best is not None:
            lines += [
                f"**Best** ({spec.objective.direction}): {_point(best, names)}, {_with_interval(best.interval())}; "
                f"its interval excludes the runner-up's ({_point(runner_up, names)}, "
                f"{_with_interval(runner_up.interval())}).",
                "",
            ]
        else:
            lines += [f"**Best**: {NOT_SEPARABLE} ({why}).", ""]
    if spec.paper:
        lines += ["**Paper's choice**: " + ", ".join(f"`{k}={v}`" for k, v in spec.paper.items()), ""]
    if refs is not None and (refs.refs or refs.note):
        shown = "; ".join(f"{r.label} {_with_interval(r.interval())}" for r in refs.refs)
        note = f" ({refs.note})" if refs.note else ""
        lines += [f"**Reference lines** ({label}): {shown or 'none logged'}{note}", ""]
    failed = [t for t in trials if t.state != "COMPLETE"]
    if failed:
        lines += ["Not complete: " + ", ".join(f"trial {t.number} ({t.state})" for t in failed), ""]
    if png:
        lines += [f"![{spec.title}]({png})", "", "_Error bars: 95% bootstrap intervals; horizontal lines: the "
                  "objective's chance, video-blind rules, floors and ceiling._", ""]
    summary = sweep_summary(spec, trials)
    comment = summary_comment(spec, plan_profile, Timing(None, trial_s), summary)
    return "\n".join(lines).rstrip() + "\n" + comment


def separable_best(
    spec: SweepSpec, complete: list[TrialRecord]
) -> tuple[TrialRecord | None, TrialRecord | None, str]:
    """(best, runner-up, why not) by mean objective: the best is named only when its 95% interval and
    the runner-up's do not overlap; otherwise (None, None, the reason)."""
    if len(complete) < 2:
        return None, None, "one point complete: nothing to compare"
    sign = 1.0 if spec.objective.direction == "maximize" else -1.0
    ranked = sorted(complete, key=lambda t: -sign * t.mean)
    best, runner_up = ranked[0], ranked[1]
    b, r = best.interval(), runner_up.interval()
    if b.low is None or r.low is None:
        return None, None, "one seed and no per-item results: no interval"
    apart = b.low > r.high if sign > 0 else b.high < r.low
    if not apart:
        return None, None, "the best mean's 95% interval overlaps the runner-up's"
    return best, runner_up, ""


def _point(trial: TrialRecord, names: list[str]) -> str:
    return ", ".join(f"`{n}={trial.params.get(n)}`" for n in names)


def _with_interval(i: Interval) -> str:
    if i.low is None or i.low == i.high:
        return f"{i.diff:.4g}"
    return f"{i.diff:.4g} [{i.low:.4g}, {i.high:.4g}]"


def sweep_summary(spec: SweepSpec, trials: list[TrialRecord]) -> str:
    """One line for the index: trials complete, the best point when it is separable from the runner-up
    (else that none is), and where the paper's choice stands."""
    complete = [t for t in trials if t.state == "COMPLETE" and t.values]
    text = f"{len(complete)} trial{'s' if len(complete) != 1 else ''} complete"
    if len(trials) > len(complete):
        text += f", {len(trials) - len(complete)} not"
    if not complete:
        return text
    seeds = max(len(t.values) for t in complete)
    means = [t.mean for t in complete]
    text += f" ({seeds} seed{'s' if seeds != 1 else ''} each; objective {min(means):.4g} to {max(means):.4g})"
    best, _, _ = separable_best(spec, complete)
    names = list(spec.params)
    text += f"; {NOT_SEPARABLE}" if best is None else f"; best {_point(best, names)} ({_with_interval(best.interval())})"
    if spec.paper:
        at_paper = [t for t in complete if all(t.params.get(n) == v for n, v in spec.paper.items())]
        if at_paper and best is not None and at_paper[0] is best:
            text += "; the paper's choice is the best"
        elif at_paper:
            text += f"; the paper's choice gives {_with_interval(at_paper[0].interval())}"
        else:
            text += "; the paper's choice was not tried"
    return text


def _sort_key(value: Any) -> tuple:
    """Numbers in numeric order, then everything else as text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))
