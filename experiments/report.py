"""Markdown reports: the paper's table beside the measured one.

``reports/<name>.md`` holds, for a table or figure spec: a header (profile, data,
code version, hardware, seeds), the paper's table, the measured table with the
same rows and columns (mean +- std over seeds), and each row's difference from
the baseline row with a 95% bootstrap interval and whether the paper's direction
is reproduced. Figures and sweeps add a PNG beside the Markdown.

Values come from the MLflow store: a cell is the metric of the FINISHED run of
the stage identity the plan gives for that row, column and seed. Per-item
results (the ``per_item`` artifact, see README) widen the interval to test items.

Each report ends with a one-line machine-readable summary (an HTML comment:
profile, date, wall time, verdict counts) from which ``write_index`` regenerates
``reports/README.md``, one line per report.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from experiments.plan import Plan
from experiments.runner import MANIFEST, Outcome, run_seconds
from experiments.specs import Column, FigureSpec, Row, SweepSpec, TableSpec
from experiments.stats import (
    CONTRADICTED,
    NOT_REPRODUCED,
    REPRODUCED,
    Interval,
    diff_interval,
    reproduced,
    verdict_of,
)
from experiments.tracking import TAG, Tracker, metric_key

PER_ITEM = "per_item"
INDEX = "README.md"
SUMMARY_TAG = "evilm-report"  # <!-- evilm-report {json} --> at the end of each report


# --- time ----------------------------------------------------------------------------------


def format_duration(seconds: float) -> str:
    """``0.4 s``, ``42 s``, ``3 min 12 s``, ``14 min``, ``2 h 5 min``."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = int(round(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 10:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    if minutes + (secs >= 30) < 60:
        return f"{minutes + (secs >= 30)} min"
    hours, minutes = divmod(minutes + (secs >= 30), 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


@dataclass
class Timing:
    """How long a table took: this command's wall time, and the stage time behind its numbers."""

    wall_s: float | None = None  # None: the report was rewritten from the store, not run
    ran_s: float = 0.0  # stages run (or failed) in this command
    reused_s: float = 0.0  # stages reused from earlier runs: their original seconds

    @classmethod
    def from_outcomes(cls, outcomes: Mapping[str, Outcome], wall_s: float | None) -> Timing:
        ran = sum(o.seconds for o in outcomes.values() if o.status in ("ran", "failed"))
        reused = sum(o.seconds for o in outcomes.values() if o.status == "reused")
        return cls(wall_s, ran, reused)

    @classmethod
    def from_store(cls, plan: Plan, tracker: Tracker) -> Timing:
        """The plan's finished stages, all counted as earlier runs (``report`` runs nothing)."""
        runs = [tracker.finished_run(sid) for sid in plan.stages]
        return cls(None, 0.0, sum(run_seconds(r) for r in runs if r is not None))

    @property
    def compute_s(self) -> float:
        return self.ran_s + self.reused_s

    def wall_text(self) -> str:
        return "—" if self.wall_s is None else format_duration(self.wall_s)

    def describe(self) -> str:
        """e.g. ``3 min 12 s this run; stage compute 14 min (11 min reused from earlier runs)``."""
        head = (
            "not recorded (report rewritten from the store)"
            if self.wall_s is None
            else f"{format_duration(self.wall_s)} this run"
        )
        tail = f"stage compute {format_duration(self.compute_s)}"
        if self.wall_s is None:
            tail += " (the finished runs in the store)"
        elif self.reused_s and self.ran_s:
            tail += f" ({format_duration(self.reused_s)} reused from earlier runs)"
        elif self.reused_s:
            tail += " (all reused from earlier runs)"
        return f"{head}; {tail}"


@dataclass
class Cell:
    values: list[float] = field(default_factory=list)  # one per seed with a finished run (scaled)
    items: list[np.ndarray] | None = None  # per seed, per test item (scaled); None when missing
    run_ids: list[str] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def std(self) -> float:
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else 0.0


@dataclass
class Measured:
    cells: dict[tuple[str, str], Cell]
    runs: dict[str, Any]  # run id -> mlflow Run (for the header)
    missing: list[str]  # "row/column/seed" that have no finished run


# --- collecting ------------------------------------------------------------------------


def collect(spec: TableSpec, plan: Plan, tracker: Tracker) -> Measured:
    cells: dict[tuple[str, str], Cell] = {}
    runs: dict[str, Any] = {}
    by_stage: dict[str, Any] = {}
    missing = []
    for row in spec.rows:
        if not row.measured:
            continue
        for col in spec.columns:
            if not col.stage:
                continue
            metric = metric_name(col, row)
            cell = Cell(items=[])
            for seed in plan.seeds:
                stage = plan.stage_for(row.id, col.stage, seed)
                if stage is None:  # the row's pipeline has no such stage: not measured
                    break
                if stage.id not in by_stage:
                    by_stage[stage.id] = tracker.finished_run(stage.id)
                run = by_stage[stage.id]
                key = metric_key(metric)
                if run is None or key not in run.data.metrics:
                    missing.append(
                        f"{row.id}/{col.id}/seed{seed}" + ("" if run is None else f" (no metric '{metric}')")
                    )
                    continue
                runs[run.info.run_id] = run
                cell.values.append(run.data.metrics[key] * col.scale)
                cell.run_ids.append(run.info.run_id)
                items = per_item(tracker, run, metric) if col.per_item else None
                if items is None or cell.items is None:
                    cell.items = None
                else:
                    cell.items.append(items * col.scale)
            if cell.values:
                cells[(row.id, col.id)] = cell
    return Measured(cells, runs, missing)


def metric_name(col: Column, row: Row) -> str:
    try:
        return col.metric.format(**row.vars)
    except KeyError as err:
        from experiments.specs import SpecError

        raise SpecError(
            f"column '{col.id}' metric '{col.metric}' needs vars.{err.args[0]} in row '{row.id}'"
        ) from None


def per_item(tracker: Tracker, run, metric: str) -> np.ndarray | None:
    """The per-item values of ``metric`` logged by the run, or None."""
    manifest = _manifest(tracker, run)
    if not manifest or PER_ITEM not in manifest.get("artifacts", {}):
        return None
    rel = manifest["artifacts"][PER_ITEM]
    path = Path(run.data.tags.get(f"{TAG}out_dir", "")) / rel
    if not path.exists():
        try:
            path = tracker.download(
                run.info.run_id, f"outputs/{rel}", tracker.runs_dir / ".fetched" / run.info.run_id
            )
        except Exception:
            return None
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return item_values(data, metric, run.data.metrics.get(metric_key(metric)))


def item_values(data: dict, metric: str, value: float | None) -> np.ndarray | None:
    """Per-item values whose mean is the run's ``metric``, from either per-item layout (see README).

    ``{"<metric>": [v, ...]}``, or ``{"metric": "correct"|"rank", "items": [{"index", "correct"|"rank"}]}``
    (items ordered by ``index``; a recall ``R@k`` is ``rank <= k``). The values are used only when their
    mean reproduces the logged metric (as is, or as a percentage); otherwise None.
    """
    if metric in data and isinstance(data[metric], list):
        values = np.asarray(data[metric], dtype=float)
    elif isinstance(data.get("items"), list) and data.get("metric") in ("correct", "rank"):
        items = sorted(data["items"], key=lambda item: item.get("index", 0))
        name = metric.rsplit("/", 1)[-1]
        if data["metric"] == "correct":
            values = np.asarray([item["correct"] for item in items], dtype=float)
        elif name.startswith("R@"):
            k = float(name[2:])
            values = np.asarray([item["rank"] <= k for item in items], dtype=float)
        elif name == "MnR":
            values = np.asarray([item["rank"] for item in items], dtype=float)
        else:  # a median rank is not a mean over items
            return None
    else:
        return None
    if values.size == 0 or value is None:
        return None
    for factor in (1.0, 100.0):
        if math.isclose(values.mean() * factor, value, rel_tol=1e-6, abs_tol=1e-6):
            return values * factor
    return None


def _manifest(tracker: Tracker, run) -> dict | None:
    out_dir = run.data.tags.get(f"{TAG}out_dir")
    if out_dir and (Path(out_dir) / MANIFEST).exists():
        try:
            return json.loads((Path(out_dir) / MANIFEST).read_text())
        except ValueError:
            return None
    try:
        path = tracker.download(
            run.info.run_id, f"outputs/{MANIFEST}", tracker.runs_dir / ".fetched" / run.info.run_id
        )
        return json.loads(Path(path).read_text())
    except Exception:
        return None


# --- Markdown ------------------------------------------------------------------------------


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def esc(x: Any) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(esc(h) for h in headers) + " |",
        "|" + "|".join(" --- " for _ in headers) + "|",
    ]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def paper_number(value: Any) -> float | None:
    """The number in a paper cell ("64.8*" -> 64.8), or None."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    match = re.match(r"\s*(-?\d+(?:\.\d+)?)", str(value))
    return float(match.group(1)) if match else None


def header(
    spec,
    plan: Plan,
    runs: dict[str, Any],
    tracker: Tracker,
    overrides: dict[str, Any],
    compares: bool = True,
    timing: Timing | None = None,
) -> list[str]:
    pipeline = next(iter(plan.pipelines.values()), None)
    commits = sorted({r.data.tags.get(f"{TAG}git_commit", "?") for r in runs.values()}) or ["(no runs)"]
    hardware = sorted({r.data.tags.get(f"{TAG}hardware", "?") for r in runs.values()}) or ["(no runs)"]
    data_line = (
        pipeline.dataset if pipeline and pipeline.dataset else "see the pipeline's data stage"
    ) + _data_summary(plan)
    trains = any(s.kind.name == "data" for s in plan.stages.values())
    lines = [
        f"# {spec.title}",
        "",
        f"- **Profile**: `{plan.profile}`"
        + ("" if plan.profile == "paper" or not trains else " (not paper scale)"),
        f"- **Data**: {data_line}",
        f"- **Code version**: {', '.join(commits)}",
        f"- **Hardware**: {'; '.join(hardware)}",
        f"- **Seeds**: {', '.join(map(str, plan.seeds))}",
        *([f"- **Wall time**: {timing.describe()}"] if timing is not None else []),
        f"- **Overrides**: {', '.join(f'`{k}={v}`' for k, v in overrides.items()) if overrides else 'none'}",
        f"- **Store**: `{tracker.display_uri}`; generated {dt.datetime.now().strftime('%Y-%m-%d %H:%M')}",
        "",
    ]
    if plan.profile != "paper" and trains:
        lines += [
            f"> These are **{plan.profile}-profile** numbers on the data above, from small models trained briefly. "
            "They are not comparable in absolute value with the paper's (WebVid-2.5M pre-training, real benchmarks, "
            "full-size model)."
            + (
                " Compare directions: the last section says whether each paper difference is reproduced."
                if compares
                else ""
            ),
            "",
        ]
    return lines


def _data_summary(plan: Plan) -> str:
    for stage in plan.stages.values():
        if stage.kind.name in ("data", "data_root"):
            skip = {"seed", *stage.kind.ignore}
            scalars = [
                f"{k}={v}"
                for k, v in stage.params.items()
                if isinstance(v, (int, float, str)) and k not in skip
            ]
            return f" (`{stage.name}`: {', '.join(scalars[:8])})"
    return ""


def _fmt(value: float, col: Column) -> str:
    return format(value, col.fmt)


def table_markdown(
    spec: TableSpec,
    plan: Plan,
    measured: Measured,
    tracker: Tracker,
    overrides: dict[str, Any],
    timing: Timing | None = None,
) -> str:
    cols = spec.columns
    lines = header(spec, plan, measured.runs, tracker, overrides, timing=timing)
    if spec.caption:
        lines += [f"_{spec.caption.strip()}_", ""]
    if spec.note:
        lines += [spec.note.strip(), ""]

    lines += ["## Paper", ""]
    rows = [[r.label] + [_paper_cell(r.paper.get(c.id)) for c in cols] for r in spec.rows]
    lines += [markdown_table(["", *(c.label for c in cols)], rows), ""]

    n = len(plan.seeds)
    lines += [f"## Measured (mean ± std over {n} seeds)" if n > 1 else "## Measured (one seed)", ""]
    rows = []
    for r in spec.rows:
        cells = []
        for c in cols:
            cell = measured.cells.get((r.id, c.id))
            if cell is None:
                cells.append("—")
            elif len(cell.values) > 1:
                cells.append(
                    f"{_fmt(cell.mean, c)} ± {_fmt(cell.std, c)}"
                    + ("" if len(cell.values) == n else f" (n={len(cell.values)})")
                )
            else:
                cells.append(_fmt(cell.mean, c))
        rows.append([r.label + ("" if r.measured else " (paper only)"), *cells])
    lines += [markdown_table(["", *(c.label for c in cols)], rows), ""]
    lines += ["— : not measured (a method or column this suite does not run, or no finished run yet).", ""]

    lines += differences_section(spec, measured)
    if measured.missing:
        shown = ", ".join(measured.missing[:20]) + (
            f" and {len(measured.missing) - 20} more" if len(measured.missing) > 20 else ""
        )
        command = f"python -m experiments run {spec.name}" + (
            f" --profile {plan.profile}" if plan.profile != spec.profile else ""
        )
        lines += [f"**Missing runs**: {shown}. `{command}` fills those its stages can measure.", ""]
    return "\n".join(lines).rstrip() + "\n"


def _paper_cell(value: Any) -> str:
    return "-" if value is None else str(value)


@dataclass
class Difference:
    row: Row
    base: Row
    col: Column
    interval: Interval
    paper_diff: float | None
    verdict: str  # stats.reproduced's words


def baseline_pairs(spec: TableSpec) -> list[tuple[Row, Row]]:
    """(row, its baseline row) for every measured row compared with another."""
    rows_by_id = {r.id: r for r in spec.rows}
    pairs = [(r, rows_by_id[r.baseline or spec.baseline]) for r in spec.rows if (r.baseline or spec.baseline)]
    return [(r, b) for r, b in pairs if r.id != b.id and r.measured]


def differences(spec: TableSpec, measured: Measured) -> list[Difference]:
    """Each compared row's difference from its baseline, per column both have values for."""
    out = []
    for r, base in baseline_pairs(spec):
        for c in spec.columns:
            cell, base_cell = measured.cells.get((r.id, c.id)), measured.cells.get((base.id, c.id))
            if cell is None or base_cell is None:
                continue
            interval = diff_interval(cell.values, base_cell.values, cell.items, base_cell.items)
            p_row, p_base = paper_number(r.paper.get(c.id)), paper_number(base.paper.get(c.id))
            paper_diff = None if p_row is None or p_base is None else p_row - p_base
            out.append(Difference(r, base, c, interval, paper_diff, reproduced(paper_diff, interval)))
    return out


def differences_section(spec: TableSpec, measured: Measured) -> list[str]:
    pairs = baseline_pairs(spec)
    if not pairs:
        return []
    bases = list(dict.fromkeys(b.label for _, b in pairs))
    lines = [f"## Difference from the baseline row{'s' if len(bases) > 1 else ''} ({', '.join(bases)})", ""]
    lines += [
        "Δ = row − baseline. Interval: 95% percentile bootstrap over seeds and, where the stage logged per-item "
        "results, over test items (paired); `source` says which. Verdict: *reproduced* when the interval excludes 0 "
        "on the paper's side, *contradicted* when it excludes 0 on the other side, *not reproduced* otherwise "
        "(it spans 0, or there is no interval).",
        "",
    ]
    rows = [
        [
            d.row.label if len(bases) == 1 else f"{d.row.label} − {d.base.label}",
            d.col.label,
            _signed(d.interval.diff, d.col),
            _interval(d.interval, d.col),
            d.interval.source,
            "-" if d.paper_diff is None else _signed(d.paper_diff, d.col),
            d.verdict,
        ]
        for d in differences(spec, measured)
    ]
    if not rows:
        return lines + ["(no row has measured values for both itself and the baseline yet)", ""]
    lines += [
        markdown_table(
            ["row", "column", "Δ measured", "95% interval", "source", "Δ paper", "reproduced"], rows
        ),
        "",
    ]
    return lines


def table_summary(spec: TableSpec, measured: Measured) -> str:
    """One line for the index: verdicts per ablation row (a row is reproduced when every compared
    column is, contradicted when any column is, not reproduced otherwise)."""
    measured_rows = [r for r in spec.rows if r.measured]
    if not measured.cells:
        text = "no finished runs yet"
    elif baseline_pairs(spec):
        diffs = differences(spec, measured)
        by_row: dict[str, list[str]] = {}
        for d in diffs:
            verdict = verdict_of(d.verdict)
            if verdict is not None:
                by_row.setdefault(d.row.id, []).append(verdict)
        if by_row:
            counts = {REPRODUCED: 0, NOT_REPRODUCED: 0, CONTRADICTED: 0}
            for verdicts in by_row.values():
                if CONTRADICTED in verdicts:
                    counts[CONTRADICTED] += 1
                elif all(v == REPRODUCED for v in verdicts):
                    counts[REPRODUCED] += 1
                else:
                    counts[NOT_REPRODUCED] += 1
            text = f"{counts[REPRODUCED]} of {len(by_row)} ablation row{'s' if len(by_row) > 1 else ''} reproduced"
            text += "".join(f", {n} {k}" for k, n in counts.items() if k != REPRODUCED and n)
            cells = [v for verdicts in by_row.values() for v in verdicts]
            if len(cells) > len(by_row):
                text += f" ({sum(v == REPRODUCED for v in cells)} of {len(cells)} differences reproduced)"
        else:
            text = f"{len(diffs)} difference{'s' if len(diffs) != 1 else ''} measured; no paper values to compare"
    else:
        text = (
            f"{len(measured_rows)} measured row{'s' if len(measured_rows) != 1 else ''} beside "
            f"{len(spec.rows) - len(measured_rows)} paper-only; no ablation baseline"
        )
    if measured.missing:
        text += f"; {len(measured.missing)} cell(s) missing a finished run"
    return text


def _signed(value: float, col: Column) -> str:
    return ("+" if value >= 0 else "") + _fmt(value, col)


def _interval(interval: Interval, col: Column) -> str:
    if interval.low is None:
        return "n/a (one seed, no per-item results)"
    return f"[{_fmt(interval.low, col)}, {_fmt(interval.high, col)}]"


def write_table_report(
    spec: TableSpec,
    plan: Plan,
    tracker: Tracker,
    reports_dir: Path,
    stem: str,
    overrides: dict[str, Any],
    timing: Timing | None = None,
) -> Path:
    """Write ``reports_dir/<stem>.md``; ``timing`` (from a run) goes in the header, else it is read from
    the store."""
    timing = timing or Timing.from_store(plan, tracker)
    measured = collect(spec, plan, tracker)
    text = table_markdown(spec, plan, measured, tracker, overrides, timing)
    for extra in getattr(spec, "include", []):
        section = included_markdown(extra, spec, plan, tracker)
        if section:
            text = text.rstrip() + f"\n\n## {extra.title or extra.stage}\n\n{section.strip()}\n"
    reports_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(spec, FigureSpec):
        png = reports_dir / f"{stem}.png"
        plot_figure(spec, measured, png)
        text = text.rstrip() + f"\n\n![{spec.title}]({png.name})\n"
    text += summary_comment(spec, plan.profile, timing, table_summary(spec, measured))
    path = reports_dir / f"{stem}.md"
    _write(path, text)
    return path


def included_markdown(extra, spec: TableSpec, plan: Plan, tracker: Tracker) -> str | None:
    """The text of a Markdown artifact of the first row's finished ``extra.stage`` (first seed)."""
    for row in spec.rows:
        stage = plan.stage_for(row.id, extra.stage, plan.seeds[0]) if row.measured else None
        run = tracker.finished_run(stage.id) if stage else None
        manifest = _manifest(tracker, run) if run else None
        relative = (manifest or {}).get("artifacts", {}).get(extra.artifact)
        out_dir = run.data.tags.get(f"{TAG}out_dir") if run else None
        if relative and out_dir and (Path(out_dir) / relative).exists():
            return (Path(out_dir) / relative).read_text()
    return None


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


# --- the index (reports/README.md) ---------------------------------------------------------


def summary_comment(spec, profile: str, timing: Timing | None, summary: str) -> str:
    """The report's last line: what ``write_index`` lists, as JSON in an HTML comment (not rendered)."""
    data = {
        "spec": spec.name,
        "kind": spec.kind,
        "title": spec.title,
        "profile": profile,
        "generated": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "wall_s": None if timing is None or timing.wall_s is None else round(timing.wall_s, 1),
        "compute_s": None if timing is None else round(timing.compute_s, 1),
        "reused_s": None if timing is None else round(timing.reused_s, 1),
        "summary": summary,
    }
    blob = json.dumps(data, ensure_ascii=False).replace("-->", "--\\u003e")
    return f"\n<!-- {SUMMARY_TAG} {blob} -->\n"


_SUMMARY = re.compile(r"<!-- " + SUMMARY_TAG + r" (\{.*\}) -->\s*\Z", re.S)
_KIND_ORDER = {"table": 0, "figure": 1, "sweep": 2}


def read_summary(path: Path) -> dict[str, Any]:
    """A report's summary line; for a report without one (an older version wrote it), what its header
    says (title, profile, date) and a note that the summary is missing."""
    text = path.read_text(errors="replace")
    match = _SUMMARY.search(text)
    if match:
        try:
            return json.loads(match.group(1))
        except ValueError:
            pass
    spec = path.stem.split(".")[0]
    title = re.search(r"^# (.+)$", text, re.M)
    profile = re.search(r"\*\*Profile\*\*: `(\w+)`", text)
    date = re.search(r"generated (\d{4}-\d\d-\d\d \d\d:\d\d)", text)
    kind = "sweep" if "Optuna study" in text else "figure" if spec.startswith("figure") else "table"
    return {
        "spec": spec,
        "kind": kind,
        "title": title.group(1).strip() if title else spec,
        "profile": profile.group(1) if profile else "?",
        "generated": date.group(1) if date else "?",
        "wall_s": None,
        "compute_s": None,
        "summary": f"(no summary recorded: `python -m experiments report {spec}` rewrites the report)",
    }


def natural_key(text: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def write_index(reports_dir: Path) -> Path:
    """Regenerate ``reports_dir/README.md``: one line per report found there (tables, then figures, then
    sweeps), linking it, with its profile, date, wall time and a one-line verdict summary."""
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for path in reports_dir.glob("*.md"):
        if path.name == INDEX:
            continue
        data = read_summary(path)
        entries.append((path, data))
    entries.sort(key=lambda e: (_KIND_ORDER.get(e[1].get("kind"), 3), natural_key(e[0].stem)))
    rows = []
    for path, data in entries:
        wall = "—" if data.get("wall_s") is None else format_duration(data["wall_s"])
        if data.get("compute_s"):
            wall += f" (stage compute {format_duration(data['compute_s'])})"
        rows.append(
            [
                f"[{data.get('title', path.stem)}]({path.name})",
                f"`{data.get('profile', '?')}`",
                data.get("generated", "?"),
                wall,
                data.get("summary", ""),
            ]
        )
    lines = [
        "# Reports",
        "",
        "Written by `python -m experiments` after every report it writes (do not edit: it is regenerated from the "
        "reports in this folder). A `smoke` or `quick` report is a result on the generated world, not a paper-scale "
        "result. Verdicts: *reproduced* (the 95% interval of the difference from the baseline row excludes 0 on the "
        "paper's side), *not reproduced* (it spans 0, or one seed gave no interval), *contradicted* (it excludes 0 "
        "on the other side); a row counts as reproduced when every compared column is. Wall time: the command that "
        "wrote the report (— when it was rewritten from the store); stage compute counts reused stages at their "
        "original time.",
        "",
    ]
    if rows:
        lines += [markdown_table(["report", "profile", "date", "wall time", "summary"], rows)]
    else:
        lines += ["(no reports yet)"]
    path = reports_dir / INDEX
    _write(path, "\n".join(lines).rstrip() + "\n")
    return path


# --- plots ---------------------------------------------------------------------------------


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_figure(spec: FigureSpec, measured: Measured, path: Path) -> None:
    plt = _pyplot()
    plot = spec.plot
    cols = {c.id: c for c in spec.columns}
    if plot.type == "bubble":
        ncols = min(3, len(plot.y))
        nrows = math.ceil(len(plot.y) / ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.4 * nrows + 0.6), squeeze=False)
        points = {
            (row.id, y, source): _bubble_point(row, cols, plot.x, y, plot.size, source, measured)
            for row in spec.rows
            for y in plot.y
            for source in ("paper", "measured")
        }
        largest = max([p[2] for p in points.values() if p] or [1.0])
        handles = {}
        for ax, y in zip(axes.flat, plot.y):
            for i, row in enumerate(spec.rows):
                for source, filled in (("paper", False), ("measured", True)):
                    point = points[row.id, y, source]
                    if point is None:
                        continue
                    x, yv, size = point
                    handles[f"{row.label} ({source})"] = ax.scatter(
                        [x],
                        [yv],
                        s=40 + 900 * max(size, 0.0) / largest,  # area proportional to the size column
                        facecolors=f"C{i}" if filled else "none",
                        edgecolors=f"C{i}",
                        alpha=0.6 if filled else 1.0,
                    )
            ax.set_xscale("log")
            ax.margins(0.3)
            ax.set_xlabel(cols[plot.x].label)
            ax.set_ylabel(cols[y].label)
            ax.set_title(cols[y].label, fontsize=9)
        for ax in list(axes.flat)[len(plot.y) :]:
            ax.set_visible(False)
        if handles:
            fig.legend(
                list(handles.values()),
                list(handles),
                loc="lower center",
                ncol=min(4, len(handles)),
                fontsize=8,
                markerscale=0.4,
            )
        area = cols[plot.size].label if plot.size else "constant"
        fig.suptitle(f"{spec.title}\nbubble area ∝ {area}; hollow: paper, filled: measured", fontsize=9)
        fig.tight_layout(rect=(0, 0.08, 1, 0.93))
    else:  # bars: one bar per row, grouped by a row var, coloured by another
        y = plot.y[0]
        groups = list(dict.fromkeys(r.vars.get(plot.group or "", r.label) for r in spec.rows))
        series = list(dict.fromkeys(r.vars.get(plot.series or "", "") for r in spec.rows))
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
        width = 0.8 / max(len(series), 1)
        for ax, source in zip(axes, ("paper", "measured")):
            for k, s in enumerate(series):
                xs, hs, errs = [], [], []
                for g_i, g in enumerate(groups):
                    row = next(
                        (
                            r
                            for r in spec.rows
                            if r.vars.get(plot.group or "", r.label) == g
                            and r.vars.get(plot.series or "", "") == s
                        ),
                        None,
                    )
                    if row is None:
                        continue
                    if source == "paper":
                        v, e = paper_number(row.paper.get(y)), 0.0
                    else:
                        cell = measured.cells.get((row.id, y))
                        v, e = (cell.mean, cell.std) if cell else (None, 0.0)
                    if v is None:
                        continue
                    xs.append(g_i + k * width)
                    hs.append(v)
                    errs.append(e)
                if xs:
                    ax.bar(xs, hs, width, yerr=errs, label=s or None, color=f"C{k}")
            ax.set_xticks([g + width * (len(series) - 1) / 2 for g in range(len(groups))], groups)
            ax.set_ylabel(cols[y].label)
            ax.set_title(source)
            if not ax.has_data():
                ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes)
            elif any(series):
                ax.legend(fontsize=8)
        fig.suptitle(spec.title, fontsize=10)
        fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _bubble_point(row, cols, x, y, size, source, measured):
    if source == "paper":
        vals = [paper_number(row.paper.get(k)) if k else 1.0 for k in (x, y, size)]
    else:
        vals = []
        for k in (x, y, size):
            cell = measured.cells.get((row.id, k)) if k else None
            vals.append(cell.mean if cell else (1.0 if not k else None))
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in vals):
        return None
    return tuple(vals)


# --- sweeps --------------------------------------------------------------------------------


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
            text += "; the paper's choice is the best" if len(best) == 1 else "; the paper's choice is one of them"
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


def plot_sweep(spec: SweepSpec, trials: list[TrialRecord], path: Path) -> bool:
    complete = [t for t in trials if t.state == "COMPLETE" and t.values]
    if not complete:
        return False
    plt = _pyplot()
    names = list(spec.params)
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.4), squeeze=False)
    label = spec.objective.label or f"{spec.objective.stage}.{spec.objective.metric}"
    for ax, name in zip(axes[0], names):
        xs = [t.params.get(name) for t in complete]
        numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs)
        means = [float(np.mean(t.values)) for t in complete]
        stds = [float(np.std(t.values, ddof=1)) if len(t.values) > 1 else 0.0 for t in complete]
        if numeric:
            order = np.argsort(xs)
            ax.errorbar(
                np.asarray(xs)[order],
                np.asarray(means)[order],
                yerr=np.asarray(stds)[order],
                marker="o",
                capsize=3,
            )
            if spec.params[name].log:
                ax.set_xscale("log")
        else:
            ax.bar([str(x) for x in xs], means, yerr=stds)
        if name in spec.paper:
            ax.axvline(
                spec.paper[name] if numeric else str(spec.paper[name]), color="grey", ls="--", label="paper"
            )
            ax.legend(fontsize=8)
        ax.set_xlabel(name)
        ax.set_ylabel(label)
    fig.suptitle(spec.title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
