"""A table or figure report: the paper's table, the measured one (mean +- std over seeds) with each cell
marked against its floor, the reference lines (chance, video-blind rules, the calibration report's floors
and ceiling), and each row's difference from its baseline row with a 95% bootstrap interval, the minimum
detectable difference and a verdict; a table without a baseline row shows each cell's difference from its
floor instead. Figures add a PNG beside the Markdown."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evilm.files import atomic_write_text
from experiments.manifests import run_artifact
from experiments.plan import Plan
from experiments.reporting.floors import Floors, above_floor_section, floors_section, reference_lines
from experiments.reporting.index import summary_comment
from experiments.reporting.markdown import header, markdown_table, number, paper_number, signed
from experiments.reporting.measure import Measured, collect
from experiments.reporting.plots import plot_figure
from experiments.reporting.timing import Timing
from experiments.specs import Column, FigureSpec, Row, TableSpec
from experiments.stats import (
    REPRODUCED,
    VERDICTS,
    Interval,
    diff_interval,
    reproduced,
    row_verdict,
    verdict_of,
)
from experiments.tracking import Tracker


def write_table_report(
    spec: TableSpec,
    plan: Plan,
    tracker: Tracker,
    reports_dir: Path,
    stem: str,
    overrides: dict[str, Any],
    timing: Timing | None = None,
    specs_root: Path | None = None,
    key: str | None = None,
) -> Path:
    """Write ``reports_dir/<stem>.md``; ``timing`` (from a run) goes in the header, else it is read from
    the store. ``specs_root`` (the specs folder) finds the calibration spec for the floors; ``key``
    (``freshness.report_key``) goes into the summary line."""
    timing = timing or Timing.from_store(plan, tracker)
    measured = collect(spec, plan, tracker)
    floors = reference_lines(spec, plan, measured, tracker, specs_root, overrides)
    text = table_markdown(spec, plan, measured, tracker, overrides, timing, floors)
    for extra in getattr(spec, "include", []):
        section = included_markdown(extra, spec, plan, tracker)
        if section:
            text = text.rstrip() + f"\n\n## {extra.title or extra.stage}\n\n{section.strip()}\n"
    reports_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(spec, FigureSpec):
        png = reports_dir / f"{stem}.png"
        plot_figure(spec, measured, png, floors)
        text = text.rstrip() + (
            f"\n\n![{spec.title}]({png.name})\n\n_Error bars: 95% bootstrap intervals of the mean (over seeds and, "
            "where the stage logged per-item results, test items). Horizontal lines: each column's chance, "
            "video-blind rules, floors and ceiling (see the reference lines)._\n"
        )
    summary, counts = table_summary(spec, measured, floors)
    text += summary_comment(spec, plan.profile, timing, summary, counts, key)
    path = reports_dir / f"{stem}.md"
    atomic_write_text(path, text)
    return path


def included_markdown(extra, spec: TableSpec, plan: Plan, tracker: Tracker) -> str | None:
    """The text of a Markdown artifact of the first row's finished ``extra.stage`` (first seed), when
    its output folder is on this machine."""
    for row in spec.rows:
        stage = plan.stage_for(row.id, extra.stage, plan.seeds[0]) if row.measured else None
        run = tracker.finished_run(stage.id) if stage else None
        path = run_artifact(tracker, run, extra.artifact, fetch=False) if run else None
        if path is not None:
            return path.read_text()
    return None


def table_markdown(
    spec: TableSpec,
    plan: Plan,
    measured: Measured,
    tracker: Tracker,
    overrides: dict[str, Any],
    timing: Timing | None = None,
    floors: Floors | None = None,
) -> str:
    cols = spec.columns
    floors = floors or Floors()
    lines = header(spec, plan, measured.runs, tracker, overrides, timing=timing)
    if spec.caption:
        lines += [f"_{spec.caption.strip()}_", ""]
    if spec.note:
        lines += [spec.note.strip(), ""]

    lines += ["## Paper", ""]
    if any(r.paper for r in spec.rows):
        rows = [[r.label] + [_paper_cell(r.paper.get(c.id)) for c in cols] for r in spec.rows]
        lines += [markdown_table(["", *(c.label for c in cols)], rows), ""]
    else:
        lines += ["The paper prints no numbers for this one (see the note above).", ""]

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
            else:  # one seed: no spread to show; say so when the table plans more
                cells.append(_fmt(cell.mean, c) + ("" if n == 1 else " (n=1)"))
            check = floors.check(spec, r, c, cell)
            if check is not None and check.mark:
                cells[-1] += f" ({check.mark})"
        rows.append([r.label + ("" if r.measured else " (paper only)"), *cells])
    lines += [markdown_table(["", *(c.label for c in cols)], rows), ""]
    lines += [
        "— : not measured (a method or column this suite does not run, or no finished run yet)."
        + (" *~ floor*, *below floor*: see the reference lines below." if floors.columns else ""),
        "",
    ]
    lines += floors_section(spec, floors)

    if baseline_pairs(spec):
        lines += differences_section(spec, measured)
    else:
        lines += above_floor_section(spec, measured, floors)
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


def _fmt(value: float, col: Column) -> str:
    return number(value, col.fmt)


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
        "results, over test items (paired); `source` says which. MDD: the minimum detectable difference, the "
        "interval's half-width (a smaller difference cannot exclude 0 at this budget; `python -m experiments "
        "power` says how many seeds or items would). Verdict: *reproduced* when the interval excludes 0 on the "
        "paper's side, *contradicted* when it excludes 0 on the other side; when it spans 0, *not reproduced* if "
        "the MDD is below the paper's |Δ| (the suite could have seen the effect) and *underpowered* if it is "
        "above it (or there is no interval).",
        "",
    ]
    rows = [
        [
            d.row.label if len(bases) == 1 else f"{d.row.label} − {d.base.label}",
            d.col.label,
            _signed(d.interval.diff, d.col),
            _interval(d.interval, d.col),
            "n/a" if d.interval.half_width is None else "±" + _fmt(d.interval.half_width, d.col),
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
            ["row", "column", "Δ measured", "95% interval", "MDD", "source", "Δ paper", "verdict"], rows
        ),
        "",
    ]
    return lines


def table_summary(spec: TableSpec, measured: Measured, floors: Floors | None = None) -> tuple[str, dict]:
    """One line for the index, and its counts: verdicts per ablation row (a row is contradicted when any
    compared column is, reproduced when every one is, not reproduced when some column could have seen its
    effect and did not, underpowered otherwise), per difference, and the cells at or below their floor."""
    measured_rows = [r for r in spec.rows if r.measured]
    counts: dict[str, Any] = {}
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
            rows = [row_verdict(v) for v in by_row.values()]
            cells = [v for verdicts in by_row.values() for v in verdicts]
            counts["rows"] = {k: rows.count(k) for k in VERDICTS}
            counts["differences"] = {k: cells.count(k) for k in VERDICTS}
            text = f"{rows.count(REPRODUCED)} of {len(rows)} ablation row{'s' if len(rows) > 1 else ''} reproduced"
            text += "".join(f", {rows.count(k)} {k}" for k in VERDICTS if k != REPRODUCED and rows.count(k))
            if len(cells) > len(rows):
                text += f" ({cells.count(REPRODUCED)} of {len(cells)} differences reproduced"
                text += "".join(f", {cells.count(k)} {k}" for k in VERDICTS if k != REPRODUCED and cells.count(k))
                text += ")"
        else:
            text = f"{len(diffs)} difference{'s' if len(diffs) != 1 else ''} measured; no paper values to compare"
    else:
        text = (
            f"{len(measured_rows)} measured row{'s' if len(measured_rows) != 1 else ''} beside "
            f"{len(spec.rows) - len(measured_rows)} paper-only; no ablation baseline"
        )
    marks = _floor_marks(spec, measured, floors or Floors())
    if marks:
        counts["floors"] = marks
        text += f"; {marks['at_floor']} of {marks['checked']} cells ~ floor"
        text += f", {marks['below_floor']} below floor" if marks["below_floor"] else ""
        text += f", {marks['below_chance']} below chance (likely bugs)" if marks["below_chance"] else ""
    if measured.missing:
        text += f"; {len(measured.missing)} cell(s) missing a finished run"
    return text, counts


def _floor_marks(spec: TableSpec, measured: Measured, floors: Floors) -> dict[str, int]:
    checks = [
        floors.check(spec, r, c, measured.cells.get((r.id, c.id))) for r in spec.rows for c in spec.columns
    ]
    marks = [c.mark for c in checks if c is not None and c.interval.low is not None]
    if not marks:
        return {}
    return {
        "checked": len(marks),
        "at_floor": marks.count("~ floor"),
        "below_floor": marks.count("below floor"),
        "below_chance": sum(m.startswith("below chance") for m in marks),
    }


def _signed(value: float, col: Column) -> str:
    return signed(value, col.fmt)


def _interval(interval: Interval, col: Column) -> str:
    if interval.low is None:
        return "n/a (one seed, no per-item results)"
    return f"[{_fmt(interval.low, col)}, {_fmt(interval.high, col)}]"
