"""The seed (and test-item) planner behind ``python -m experiments power NAME``: for each compared
column of a table, the paper's |difference|, the noise the finished runs measured, and how many seeds
per row (and, on a generated world, how many test items) would resolve the paper's difference."""

from __future__ import annotations

from dataclasses import dataclass

from experiments.reporting.markdown import signed
from experiments.reporting.measure import Measured
from experiments.reporting.tables import baseline_pairs
from experiments.specs import Column, TableSpec
from experiments.stats import Z80_POWER, Z95, PowerPlan, diff_interval, power_plan

COLUMNS = (
    "row · column",
    "|Δ paper|",
    "Δ measured (MDD now)",
    "noise now",
    "seeds per row: 95% CI < |Δ| / 80% power",
    "test items: 95% CI < |Δ| / 80% power",
)


@dataclass
class PowerRow:
    label: str  # row (- baseline)
    col: Column
    plan: PowerPlan | None  # None: the paper gives no difference
    diff: float
    mdd: float | None  # the bootstrap's half-width, as the report prints it

    def cells(self, items_fixed: bool) -> list[str]:
        """The printed row (``items_fixed``: a real test set, which cannot grow)."""
        col, plan = self.col, self.plan
        measured = _signed(self.diff, col) + (" (no interval)" if self.mdd is None else f" (±{self.mdd:{col.fmt}})")
        head = [f"{self.label} · {col.label}"]
        if plan is None:
            return [*head, "no paper Δ", measured, "", "", ""]
        noise = [
            f"seeds: {'n/a' if plan.sd_seeds is None else format(plan.sd_seeds, col.fmt)} SD of a one-seed Δ, "
            f"{plan.seeds} now",
            f"items: {'n/a' if plan.sd_items is None else format(plan.sd_items, col.fmt)} SD of an item's Δ, "
            f"{plan.items or 'no per-item results'}" + (" now" if plan.items else ""),
        ]
        items = (
            "fixed (the real test set)"
            if items_fixed
            else f"{_items(plan, Z95)} / {_items(plan, Z80_POWER)}"
        )
        return [
            *head,
            format(plan.delta, col.fmt),
            measured,
            "\n".join(noise),
            f"{_seeds(plan, Z95)} / {_seeds(plan, Z80_POWER)}",
            items,
        ]


def power_rows(spec: TableSpec, measured: Measured) -> list[PowerRow]:
    """Every compared (row, column) with values for both rows."""
    from experiments.reporting.markdown import paper_number

    bases = {b.id for _, b in baseline_pairs(spec)}
    out = []
    for row, base in baseline_pairs(spec):
        for col in spec.columns:
            cell, base_cell = measured.cells.get((row.id, col.id)), measured.cells.get((base.id, col.id))
            if cell is None or base_cell is None:
                continue
            p_row, p_base = paper_number(row.paper.get(col.id)), paper_number(base.paper.get(col.id))
            delta = None if p_row is None or p_base is None or p_row == p_base else p_row - p_base
            interval = diff_interval(cell.values, base_cell.values, cell.items, base_cell.items)
            plan = None if delta is None else power_plan(delta, cell.values, base_cell.values, cell.items, base_cell.items)
            label = row.label if len(bases) == 1 else f"{row.label} − {base.label}"
            out.append(PowerRow(label, col, plan, interval.diff, interval.half_width))
    return out


def _signed(value: float, col: Column) -> str:
    return signed(value, col.fmt)


def _seeds(plan: PowerPlan, z: float) -> str:
    n = plan.seeds_needed(z)
    if n is not None:
        return str(n)
    return "≥2 seeds to tell" if plan.sd_seeds is None else "more items first"


def _items(plan: PowerPlan, z: float) -> str:
    n = plan.items_needed(z)
    if n is not None and plan.items:
        return f"{n} (data.scale {max(1.0, n / plan.items):.2g})" if n > plan.items else f"{n} (enough now)"
    return "no per-item results" if plan.sd_items is None else "more seeds first"


def print_power(name: str, profile: str, seeds: list[int], rows: list[PowerRow], console) -> None:
    """The ``power`` command's table and the planner's formula (nothing to print: the runs it needs)."""
    from rich.table import Table

    if not rows:
        console.print(
            f"{name} ({profile}): no compared column has finished runs for both rows "
            f"(a table with a baseline row is needed; `python -m experiments run {name}` makes the runs)"
        )
        return
    table = Table(title=f"{name} ({profile}, seeds {', '.join(map(str, seeds))}): what it takes")
    for col in COLUMNS:
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(*r.cells(items_fixed=profile == "paper"))
    console.print(table)
    console.print(
        "MDD now: the half-width of the report's 95% bootstrap interval. Planner (normal approximation): "
        "half-width ≈ 1.96·sqrt(SD_seed²/seeds + SD_item²/items); 80% power needs 2.8 instead of 1.96. "
        "Seeds: per row, at today's test items. Items: at today's seeds; a generated world's test splits "
        "grow with `--set data.scale=<factor>` (every pool size times the factor)."
    )
