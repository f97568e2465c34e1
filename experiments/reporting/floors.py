"""Reference lines beside the measured numbers, and how far each cell stands above its floor.

A column's reference lines are, in order:

- what its own stage logs about the test set (the same for every row): ``P/chance`` (a uniform guess;
  ``P/chance_R@k`` for a recall), ``P/majority`` and ``P/text_prior`` (the best video-blind rule), for a
  column whose metric is ``P/acc``, ``P/top1`` or ``P/R@k``;
- the rows of the calibration report (``ablations/calibration.yaml``) that carry a ``role`` (``floor``:
  a video-blind model, random initialisation, ...; ``ceiling``: a supervised model), read from the store
  for the same profile, matched to the column by metric name (a zero-shot column ``P_zs/...`` reads the
  fine-tuned column ``P/...`` of the same test set when the calibration has no zero-shot one).

A cell's *best floor* is the highest of chance, the video-blind rules and the calibration floors. The
95% interval of (cell - best floor) says whether the cell is above it, within noise of it (``~ floor``)
or significantly below it; a cell significantly below *chance* is a likely bug.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from experiments.plan import Plan, build_plan, spec_stages, table_variants
from experiments.reporting.markdown import markdown_table, number, signed
from experiments.reporting.measure import Cell, Measured, collect, metric_name
from experiments.specs import Column, SpecError, TableSpec, load_spec, spec_files
from experiments.stats import Interval, diff_interval, mean_interval
from experiments.tracking import Tracker, metric_key

CALIBRATION = "calibration"  # the spec whose role rows are every report's floors and ceiling
_RECALL = re.compile(r"R@(\d+)")


@dataclass
class Reference:
    """One reference line of a column: per-seed values (one value for a property of the test set)."""

    label: str
    kind: str  # "chance" | "rule" | "floor" | "ceiling"
    values: list[float]
    items: list[np.ndarray] | None = None

    @property
    def constant(self) -> bool:
        """Chance and the rules are properties of the test set: no noise."""
        return self.kind in ("chance", "rule")

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    def interval(self) -> Interval:
        if self.constant:
            return Interval(self.mean, self.mean, self.mean, "exact")
        return mean_interval(self.values, self.items)


@dataclass
class ColumnRefs:
    refs: list[Reference] = field(default_factory=list)
    note: str = ""  # why calibration lines are missing, or which calibration column was matched
    test_items: int | None = None  # the size of the column's test set, as its stage logged it

    def floors(self) -> list[Reference]:
        return [r for r in self.refs if r.kind != "ceiling"]

    def best_floor(self, skip: str | None = None) -> Reference | None:
        floors = [r for r in self.floors() if r.label != skip]
        return max(floors, key=lambda r: r.mean) if floors else None

    def chance(self) -> Reference | None:
        return next((r for r in self.refs if r.kind == "chance"), None)


# "Likely a bug" needs a cell below chance at 99.9%, not 95%: a report checks some 50 cells, and at 95% one
# cell of an indifferent model would be flagged in most reports. A cell under chance at 95% only is marked
# "below floor" (chance is one of its floors).
BUG_Z = 3.29  # two-sided 99.9%


@dataclass
class FloorCheck:
    """A cell against its best floor."""

    floor: Reference
    interval: Interval  # cell - floor
    below_chance: bool  # significantly below chance

    @property
    def mark(self) -> str:
        if self.below_chance:
            return "below chance: likely a bug"
        direction = self.interval.direction()
        if self.interval.low is None:
            return ""
        if direction == 0:
            return "~ floor"
        return "below floor" if direction < 0 else ""

    @property
    def words(self) -> str:
        """The mark for the "above the floor" table (``above`` included)."""
        if self.interval.low is None:
            return "no interval"
        return self.mark or "above floor"


def reference_metrics(metric: str) -> dict[str, tuple[str, str]]:
    """Label -> (kind, metric) of the reference metrics a column's stage may log beside ``metric``."""
    prefix, _, name = metric.rpartition("/")
    if not prefix:
        return {}
    if name in ("acc", "top1"):
        return {
            "chance": ("chance", f"{prefix}/chance"),
            "majority": ("rule", f"{prefix}/majority"),
            "text prior": ("rule", f"{prefix}/text_prior"),
        }
    if _RECALL.fullmatch(name):
        return {"chance": ("chance", f"{prefix}/chance_{name}")}
    return {}


@dataclass
class Floors:
    """Every measured column's reference lines (columns without any are left out)."""

    columns: dict[str, ColumnRefs] = field(default_factory=dict)
    source: str = ""  # where the calibration lines come from, in words

    def check(self, spec: TableSpec, row, col: Column, cell: Cell | None) -> FloorCheck | None:
        if cell is None or col.id not in self.columns:
            return None
        return check_cell(cell, self.columns[col.id], skip=_own(spec, row))


@dataclass
class Calibration:
    """The calibration report's measured cells for one profile, or why there are none."""

    spec: TableSpec | None = None
    measured: Measured | None = None
    note: str = ""  # what a reference line that is not there needs (a command to run)
    source: str = ""  # where the lines come from, in words

    def refs(self, metric: str, scale: float, label: str) -> ColumnRefs:
        """The role rows of the calibration column of ``metric`` (rescaled to ``scale``)."""
        if self.spec is None or self.measured is None:
            return ColumnRefs(note=self.note if reference_metrics(metric) else "")
        match = _match(metric, self.spec)
        if match is None:
            return ColumnRefs()
        cal_col, cal_metric = match
        factor = scale / cal_col.scale
        out = ColumnRefs()
        for row in self.spec.rows:
            cell = self.measured.cells.get((row.id, cal_col.id))
            if row.role and cell is not None:
                items = None if cell.items is None else [x * factor for x in cell.items]
                out.refs.append(Reference(row.label, row.role, [v * factor for v in cell.values], items))
        # a role row that leaves the column's stage out (the video-blind floor has no retrieval) is not missing
        missing = [r.label for r in self.spec.rows if r.role and cal_col.stage not in r.without
                   and (r.id, cal_col.id) not in self.measured.cells]
        if missing:
            out.note = f"{', '.join(missing)}: {self.note}"
        elif cal_metric != metric:
            out.note = f"{label}: the calibration's `{cal_metric}` (the same test items, fine-tuned)"
        return out


def calibration_plan(root: Path, profile: str, overrides: dict[str, Any]) -> tuple[TableSpec, Plan, dict[str, Any]]:
    """The calibration spec, its plan for ``profile`` (its own seeds) and the ``overrides`` whose stages it has."""
    cal = load_spec(CALIBRATION, root)
    stages = spec_stages(cal, root)
    share = {k: v for k, v in overrides.items() if str(k).partition(".")[0] in stages}
    seeds = list(cal.seeds_by_profile.get(profile, cal.seeds))
    return cal, build_plan(cal.name, table_variants(cal, root, profile, share), profile, seeds), share


def load_calibration(
    root: Path | None, profile: str, overrides: dict[str, Any], tracker: Tracker
) -> Calibration:
    """The calibration spec planned for ``profile`` (its own seeds; the ``overrides`` whose stages it
    has) and its cells in the store."""
    if root is None or CALIBRATION not in spec_files(Path(root)):
        return Calibration(note=f"no calibration spec (ablations/{CALIBRATION}.yaml): chance and the rules only")
    try:
        cal, cal_plan, share = calibration_plan(Path(root), profile, overrides)
    except SpecError as err:
        return Calibration(note=f"calibration not planned: {err}")
    command = f"python -m experiments run {CALIBRATION}" + (f" --profile {profile}" if profile != cal.profile else "")
    command += "".join(f" --set {k}={v}" for k, v in share.items())
    measured = collect(cal, cal_plan, tracker)
    found = ", ".join(map(str, measured.seeds)) or "none"
    planned = "" if measured.seeds == list(cal_plan.seeds) else f" of the {len(cal_plan.seeds)} it plans"
    source = f" (`{CALIBRATION}`, profile `{profile}`, seeds {found}{planned})"
    return Calibration(cal, measured, f"not measured: run `{command}`", source)


def metric_refs(
    metric: str, scale: float, run_metrics: list[dict[str, float]], calibration: Calibration, label: str = ""
) -> ColumnRefs:
    """The reference lines of ``metric``: what its runs logged about the test set (``run_metrics``:
    their logged metrics), then the calibration's role rows."""
    out = calibration.refs(metric, scale, label or metric)
    logged = []
    for ref_label, (kind, name) in reference_metrics(metric).items():
        values = [m[metric_key(name)] * scale for m in run_metrics if metric_key(name) in m]
        if values:
            logged.append(Reference(ref_label, kind, [float(np.mean(values))]))
    out.refs = logged + out.refs
    prefix = metric.rpartition("/")[0]
    # a test set's size: its items, or a retrieval stage's text queries
    size_keys = [metric_key(f"{prefix}/{name}") for name in ("test_items", "queries")]
    sizes = [m[k] for m in run_metrics for k in size_keys if prefix and k in m]
    out.test_items = int(max(sizes)) if sizes else None
    return out


def reference_lines(
    spec: TableSpec,
    plan: Plan,
    measured: Measured,
    tracker: Tracker,
    root: Path | None,
    overrides: dict[str, Any],
) -> Floors:
    """Each measured column's reference lines: the test-set metrics its runs logged, then the matching
    calibration rows with a role (same profile; the calibration's own seeds)."""
    if spec.name == CALIBRATION:
        calibration = Calibration(spec, measured, "no finished run yet")
    else:
        calibration = load_calibration(root, plan.profile, overrides, tracker)
    out: dict[str, ColumnRefs] = {}
    for col in spec.columns:
        found = [(row, measured.cells[(row.id, col.id)]) for row in spec.rows if (row.id, col.id) in measured.cells]
        if not found:
            continue
        row, cell = found[0]
        runs = [measured.runs[rid].data.metrics for rid in cell.run_ids if rid in measured.runs]
        refs = metric_refs(metric_name(col, row), col.scale, runs, calibration, col.label)
        if refs.refs or refs.note:
            out[col.id] = refs
    return Floors(out, calibration.source)


def check_cell(cell: Cell, refs: ColumnRefs, skip: str | None = None) -> FloorCheck | None:
    """The cell against its best floor (``skip``: a reference that is this very row)."""
    floor = refs.best_floor(skip)
    if floor is None:
        return None
    here = mean_interval(cell.values, cell.items)
    if floor.constant:
        interval = here.shifted(floor.mean)
    else:
        interval = diff_interval(cell.values, floor.values, cell.items, floor.items)
    chance = refs.chance()
    below_chance = False
    if chance is not None and here.high is not None:
        # the 95% interval's upper half widened to 99.9% (normal approximation: a bootstrap that far into
        # the tail would need some 20,000 resamples per cell)
        strict_high = here.diff + (here.high - here.diff) * BUG_Z / 1.96
        below_chance = strict_high < chance.mean
    return FloorCheck(floor, interval, below_chance)


def floors_section(spec: TableSpec, floors: Floors) -> list[str]:
    """The block under the measured table: one line per reference, one column per measured column."""
    refs = floors.columns
    if not refs:
        return []
    cols = [c for c in spec.columns if c.id in refs]
    labels: dict[str, str] = {}
    for c in cols:
        for r in refs[c.id].refs:
            labels.setdefault(r.label, r.kind)
    order = ("chance", "rule", "floor", "ceiling")
    labels = dict(sorted(labels.items(), key=lambda kv: order.index(kv[1]) if kv[1] in order else len(order)))
    lines = [
        "## Reference lines (floors and ceiling)",
        "",
        "Chance, majority and text prior (the best video-blind rule) are logged by each column's own stage: "
        "properties of the test set (for QA, chance is a uniform guess within the question's template). The "
        f"other lines are the rows of the calibration report with a role{floors.source}, as mean "
        "[95% bootstrap interval]. A measured cell is marked *~ floor* when the 95% interval of (cell − its "
        "best floor) spans 0, *below floor* when it lies under 0, and *below chance: likely a bug* when the "
        "cell is under chance at the 99.9% level (a report checks many cells). Best floor: the highest of "
        "chance, the rules and the floors. Test items: the size of each column's test set.",
        "",
    ]
    if labels:
        rows = []
        if any(refs[c.id].test_items for c in cols):
            rows.append(["test items", *(f"{refs[c.id].test_items:,}" if refs[c.id].test_items else "—" for c in cols)])
        for label, kind in labels.items():
            cells = []
            for c in cols:
                ref = next((r for r in refs[c.id].refs if r.label == label), None)
                cells.append("—" if ref is None else _ref_text(ref, c))
            rows.append([f"{label} ({kind})" if kind in ("floor", "ceiling") else label, *cells])
        lines += [markdown_table(["reference", *(c.label for c in cols)], rows), ""]
    notes = list(dict.fromkeys(refs[c.id].note for c in cols if refs[c.id].note))
    lines += [f"- {n}" for n in notes] + ([""] if notes else [])
    return lines


def above_floor_section(spec: TableSpec, measured: Measured, floors: Floors) -> list[str]:
    """Each measured cell's difference from its best floor (for a table with no baseline row)."""
    rows = []
    for r in spec.rows:
        for c in spec.columns:
            check = floors.check(spec, r, c, measured.cells.get((r.id, c.id)))
            if check is None:
                continue
            i = check.interval
            rows.append(
                [
                    r.label,
                    c.label,
                    check.floor.label,
                    number(check.floor.mean, c.fmt),
                    signed(i.diff, c.fmt),
                    "n/a" if i.low is None else f"[{number(i.low, c.fmt)}, {number(i.high, c.fmt)}]",
                    i.source,
                    check.words,
                ]
            )
    if not rows:
        return []
    return [
        "## Above the floor",
        "",
        "Δ = cell − its best floor (see the reference lines), with a 95% bootstrap interval over seeds and, "
        "where both have per-item results on the same test items, over items (paired); chance and the rules "
        "are exact. A cell is above its floor when the interval excludes 0.",
        "",
        markdown_table(["row", "column", "best floor", "floor", "Δ", "95% interval", "source", ""], rows),
        "",
    ]


def _own(spec: TableSpec, row) -> str | None:
    """In the calibration report itself, a role row is not compared with itself."""
    return row.label if spec.name == CALIBRATION and row.role else None


def _ref_text(ref: Reference, col: Column) -> str:
    if ref.constant:
        return number(ref.mean, col.fmt)
    i = ref.interval()
    if i.low is None:
        return f"{number(ref.mean, col.fmt)} (one seed)"
    return f"{number(ref.mean, col.fmt)} [{number(i.low, col.fmt)}, {number(i.high, col.fmt)}]"


def _match(metric: str, cal_spec: TableSpec) -> tuple[Column, str] | None:
    """The calibration column of ``metric`` (or of its fine-tuned twin for a zero-shot ``P_zs/...``)."""
    prefix, _, name = metric.rpartition("/")
    candidates = [metric] + ([f"{prefix.removesuffix('_zs')}/{name}"] if prefix.endswith("_zs") else [])
    first = next((r for r in cal_spec.rows if r.measured), None)
    if first is None:
        return None
    for wanted in candidates:
        for col in cal_spec.columns:
            if col.stage and metric_name(col, first) == wanted:
                return col, wanted
    return None
