"""PNG plots: a figure's bubbles or bars (paper hollow, measured filled) and a sweep's objective against
each parameter. matplotlib is imported only when a plot is drawn."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from experiments.reporting.markdown import paper_number
from experiments.reporting.measure import Measured
from experiments.specs import FigureSpec, SweepSpec

if TYPE_CHECKING:
    from experiments.reporting.sweeps import TrialRecord


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
