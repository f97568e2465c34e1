"""Measured values from the MLflow store: a cell is the metric of the FINISHED run of the stage identity
the plan gives for that row, column and seed; per-item results (the ``per_item`` artifact, see README)
widen the interval to test items."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from experiments.manifests import run_artifact
from experiments.plan import Plan
from experiments.specs import Column, Row, SpecError, TableSpec
from experiments.tracking import Tracker, metric_key

PER_ITEM = "per_item"


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
    seeds: list[int] = field(default_factory=list)  # the seeds with at least one finished cell


def collect(spec: TableSpec, plan: Plan, tracker: Tracker) -> Measured:
    cells: dict[tuple[str, str], Cell] = {}
    runs: dict[str, Any] = {}
    by_stage: dict[str, Any] = {}
    missing = []
    seeds: set[int] = set()
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
                if run is not None and key not in run.data.metrics and col.optional:
                    continue  # the row's method has no such measure
                if run is None or key not in run.data.metrics:
                    missing.append(
                        f"{row.id}/{col.id}/seed{seed}" + ("" if run is None else f" (no metric '{metric}')")
                    )
                    continue
                runs[run.info.run_id] = run
                seeds.add(seed)
                cell.values.append(run.data.metrics[key] * col.scale)
                cell.run_ids.append(run.info.run_id)
                items = per_item(tracker, run, metric) if col.per_item else None
                if items is None or cell.items is None:
                    cell.items = None
                else:
                    cell.items.append(items * col.scale)
            if cell.values:
                cells[(row.id, col.id)] = cell
    return Measured(cells, runs, missing, sorted(seeds))


def metric_name(col: Column, row: Row) -> str:
    try:
        return col.metric.format(**row.vars)
    except KeyError as err:
        raise SpecError(
            f"column '{col.id}' metric '{col.metric}' needs vars.{err.args[0]} in row '{row.id}'"
        ) from None


def per_item(tracker: Tracker, run, metric: str) -> np.ndarray | None:
    """The per-item values of ``metric`` logged by the run, or None."""
    path = run_artifact(tracker, run, PER_ITEM)
    if path is None:
        return None
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return item_values(data, metric, run.data.metrics.get(metric_key(metric)))


def item_values(data: dict, metric: str, value: float | None) -> np.ndarray | None:
    """Per-item values whose mean is the run's ``metric``, from either per-item layout (see README).

    ``{"<metric>": [v, ...]}``, or ``{"metric": "correct"|"rank", "items": [{"index", "correct"|"rank"}]}``
    (items ordered by ``index``; ``correct`` may be a tie's fractional credit; a recall ``R@k`` is
    ``rank <= k``, or a random tie-break's expected credit when the items hold ``higher`` and ``tied``
    counts under ``"ties": "random"``). The values are used only when their mean reproduces the logged
    metric (as is, or as a percentage); otherwise None.
    """
    if metric in data and isinstance(data[metric], list):
        values = np.asarray(data[metric], dtype=float)
    elif isinstance(data.get("items"), list) and data.get("metric") in ("correct", "rank"):
        items = sorted(data["items"], key=lambda item: item.get("index", 0))
        name = metric.rsplit("/", 1)[-1]
        if data["metric"] == "correct":
            values = np.asarray([item["correct"] for item in items], dtype=float)
        elif name.startswith("R@"):
            values = recall_credit(items, float(name[2:]), data.get("ties"))
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


def recall_credit(items: list[dict], k: float, ties: str | None) -> np.ndarray:
    """Per query, the credit of "the correct item within the top ``k``": under the ``random`` tie rule
    (``higher`` candidates above it, ``tied`` others level with it) the expected share of a random
    tie-break, ``clamp(k - higher, 0, tied + 1) / (tied + 1)``; otherwise ``rank <= k``."""
    if ties == "random" and all("higher" in item and "tied" in item for item in items):
        higher = np.asarray([item["higher"] for item in items], dtype=float)
        tied = np.asarray([item["tied"] for item in items], dtype=float)
        return np.minimum(np.clip(k - higher, 0.0, None), tied + 1.0) / (tied + 1.0)
    return np.asarray([item["rank"] <= k for item in items], dtype=float)
