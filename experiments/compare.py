"""This store's numbers against a committed report's: is a difference beyond the seeds' spread?

On the same machine a rerun gives the same numbers. On another machine (another CPU instruction
set, thread count or library version: the report header names them) the floats differ, and a
reader needs to know whether by more than the noise the seeds already show. For each measured
cell, with ``n`` seeds and standard deviation ``s`` on each side, the difference of the means is
judged against its standard error ``sqrt(s1²/n1 + s2²/n2)``: beyond 2 standard errors it is
"beyond the seeds' spread". Equal as printed counts as the same; a cell without spread (one seed,
or an unseeded stage) can only be the same or differ.
"""

from __future__ import annotations

import math
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

_NUMBER = r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
_CELL = re.compile(rf"^\s*(?P<mean>{_NUMBER})\s*(?:±\s*(?P<std>{_NUMBER}))?\s*(?:\(n=(?P<n>\d+)\))?\s*$")


@dataclass
class Printed:
    """A measured cell of a report as printed: mean, std (None: one seed) and the seeds behind it."""

    text: str
    mean: float
    std: float | None
    n: int


@dataclass
class CellDiff:
    row: str
    column: str
    before: str
    now: str
    delta: float
    verdict: str  # "same", "within the seeds' spread", "beyond the seeds' spread", "differs (no spread)"


def committed_text(path: Path) -> tuple[str | None, str]:
    """The report at ``path`` as its git checkout's HEAD has it (the rerun may have rewritten the file),
    else as it is on disk; and where it came from."""
    path = Path(path).resolve()
    try:
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=path.parent, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        if top:
            rel = path.relative_to(Path(top).resolve()).as_posix()
            shown = subprocess.run(
                ["git", "show", f"HEAD:{rel}"], cwd=top, capture_output=True, text=True, timeout=10
            )
            if shown.returncode == 0:
                return shown.stdout, f"{rel} at the checkout's HEAD"
    except (OSError, ValueError, subprocess.SubprocessError):
        pass
    if path.exists():
        return path.read_text(), str(path)
    return None, str(path)


def header_value(text: str, key: str) -> str:
    match = re.search(rf"^- \*\*{re.escape(key)}\*\*: (.*)$", text, re.MULTILINE)
    return match.group(1).strip() if match else "?"


def printed_cells(text: str) -> dict[tuple[str, str], Printed]:
    """The ``## Measured`` table of a report: (row label, column label) -> the printed cell."""
    seeds = [s for s in header_value(text, "Seeds").split(",") if s.strip()]
    section = re.split(r"^## Measured.*$", text, maxsplit=1, flags=re.MULTILINE)
    if len(section) < 2:
        return {}
    lines = []
    for line in section[1].strip().splitlines():
        if not line.startswith("|"):
            break
        lines.append([c.strip() for c in line.strip().strip("|").split("|")])
    if len(lines) < 3:
        return {}
    columns = lines[0][1:]
    out = {}
    for cells in lines[2:]:
        for column, cell in zip(columns, cells[1:]):
            match = _CELL.match(cell)
            if match:
                std = float(match["std"]) if match["std"] else None
                n = int(match["n"]) if match["n"] else len(seeds) if std is not None else 1
                out[(cells[0], column)] = Printed(cell, float(match["mean"]), std, n)
    return out


def judge(before: Printed, values: list[float], fmt: str) -> tuple[float, str]:
    """The difference of the means and its verdict (see the module's docstring)."""
    mean = sum(values) / len(values)
    delta = mean - before.mean
    if format(mean, fmt) == format(before.mean, fmt):
        return delta, "same"
    std = _std(values)
    if len(values) < 2 or before.std is None or before.n < 2:
        return delta, "differs (one seed: no spread)"
    se = math.sqrt(before.std**2 / before.n + std**2 / len(values))
    if se == 0:
        return delta, "differs (no spread between seeds)"
    return delta, "within the seeds' spread" if abs(delta) <= 2 * se else "beyond the seeds' spread"


def compare(spec, plan, tracker, report_path: Path) -> tuple[list[CellDiff], dict[str, str]] | None:
    """Each measured cell of ``spec`` in this store against the committed report; None without one."""
    from experiments.reporting import collect

    text, where = committed_text(report_path)
    if text is None:
        return None
    printed = printed_cells(text)
    measured = collect(spec, plan, tracker)
    diffs = []
    for row in spec.rows:
        for col in spec.columns:
            cell = measured.cells.get((row.id, col.id))
            before = printed.get((row.label, col.label))
            if cell is None or before is None:
                continue
            delta, verdict = judge(before, cell.values, col.fmt)
            now = format(cell.mean, col.fmt) + (f" ± {format(cell.std, col.fmt)}" if len(cell.values) > 1 else "")
            diffs.append(CellDiff(row.label, col.label, before.text, now, delta, verdict))
    hardware = sorted({r.data.tags.get("evilm.hardware", "?") for r in measured.runs.values()})
    facts = {"report": where, "then": header_value(text, "Hardware"), "now": "; ".join(hardware) or "(no runs)"}
    return diffs, facts


def print_comparison(spec, plan, tracker, report_path: Path, console: Console | None = None) -> None:
    """``show``'s last section: this store against the committed report, cell by cell."""
    console = console or Console()
    found = compare(spec, plan, tracker, report_path)
    if found is None or not found[0]:
        return
    diffs, facts = found
    table = Table(title=f"this store against {facts['report']}")
    for name in ("row", "column", "committed", "this store", "Δ", "verdict"):
        table.add_column(name, overflow="fold")
    for d in diffs:
        style = "red" if d.verdict.startswith("beyond") else "green" if d.verdict == "same" else ""
        verdict = f"[{style}]{d.verdict}[/{style}]" if style else d.verdict
        table.add_row(d.row, d.column, d.before, d.now, f"{d.delta:+.3g}", verdict)
    console.print(table)
    beyond = sum(d.verdict.startswith("beyond") for d in diffs)
    same = sum(d.verdict == "same" for d in diffs)
    console.print(
        f"{same} of {len(diffs)} cells the same as printed, {beyond} beyond the seeds' spread "
        "(more than 2 standard errors of the difference).\n"
        f"committed report's hardware: {facts['then']}\nthis store's hardware: {facts['now']}",
        highlight=False,
    )


def _std(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
