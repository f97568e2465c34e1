"""PNG plots: a figure's bubbles or bars (paper hollow, measured filled) and a sweep's objective against
each parameter. Error bars are 95% bootstrap intervals of the mean; each measured column's reference lines
(chance, video-blind rules, floors, ceiling) are horizontal lines. A panel with nothing to show is not
drawn. matplotlib is imported only when a plot is drawn."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from experiments.reporting.markdown import paper_number
from experiments.reporting.measure import Cell, Measured
from experiments.specs import FigureSpec, SweepSpec
from experiments.stats import Interval, mean_interval

if TYPE_CHECKING:
    from experiments.reporting.floors import ColumnRefs, Floors
    from experiments.reporting.sweeps import TrialRecord

_LINE_STYLES = {"chance": ":", "rule": "-.", "floor": "--", "ceiling": "-"}
_LINE_COLOURS = ("0.3", "C3", "C4", "C5", "C6", "C8", "C9")  # by position among a column's lines


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_figure(spec: FigureSpec, measured: Measured, path: Path, floors: Floors | None = None) -> None:
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
                    cell = measured.cells.get((row.id, y)) if filled else None
                    err = _yerr(cell)
                    if err is not None:
                        ax.errorbar([x], [yv], yerr=err, color=f"C{i}", capsize=3, lw=1)
            handles.update(_reference_lines(ax, floors, y))
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
        fig.suptitle(
            f"{spec.title}\nbubble area ∝ {area}; hollow: paper, filled: measured "
            "(bars: 95% intervals); lines: reference levels",
            fontsize=9,
        )
        fig.tight_layout(rect=(0, 0.08, 1, 0.93))
    else:  # bars: one bar per row, grouped by a row var, coloured by another
        y = plot.y[0]
        groups = list(dict.fromkeys(r.vars.get(plot.group or "", r.label) for r in spec.rows))
        series = list(dict.fromkeys(r.vars.get(plot.series or "", "") for r in spec.rows))
        # a panel only for a source with values: no empty "paper" panel when the paper prints none
        sources = [
            source
            for source in ("paper", "measured")
            if any(_bar_value(row, y, source, measured)[0] is not None for row in spec.rows)
        ] or ["measured"]
        fig, axes = plt.subplots(1, len(sources), figsize=(6.4 * len(sources) + 0.6, 3.8), squeeze=False)
        width = 0.8 / max(len(series), 1)
        for ax, source in zip(axes[0], sources):
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
                    v, e = _bar_value(row, y, source, measured) if row is not None else (None, None)
                    if v is None:
                        continue
                    xs.append(g_i + k * width)
                    hs.append(v)
                    errs.append(e if e is not None else (0.0, 0.0))
                if xs:
                    yerr = np.asarray(errs, dtype=float).T if source == "measured" else None
                    ax.bar(xs, hs, width, yerr=yerr, capsize=3, label=s or None, color=f"C{k}")
            if source == "measured":
                _reference_lines(ax, floors, y)
            ax.set_xticks([g + width * (len(series) - 1) / 2 for g in range(len(groups))], groups)
            ax.set_ylabel(cols[y].label)
            ax.set_title(source if source == "paper" else "measured (95% intervals)")
            if not ax.has_data():
                ax.text(0.5, 0.5, "no finished runs yet", ha="center", va="center", transform=ax.transAxes)
            elif any(series) or ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
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


def _bar_value(row, y: str, source: str, measured: Measured) -> tuple[float | None, tuple | None]:
    """(height, (down, up) error) of one bar; the error is the 95% interval of the measured mean."""
    if source == "paper":
        return paper_number(row.paper.get(y)), None
    cell = measured.cells.get((row.id, y))
    if cell is None:
        return None, None
    err = _yerr(cell)
    return cell.mean, None if err is None else (float(err[0][0]), float(err[1][0]))


def _yerr(cell: Cell | None) -> list[list[float]] | None:
    """matplotlib's asymmetric error of a cell's mean: its 95% bootstrap interval."""
    if cell is None:
        return None
    return _interval_err(mean_interval(cell.values, cell.items))


def _interval_err(i: Interval) -> list[list[float]] | None:
    if i.low is None or i.high is None:
        return None
    return [[max(i.diff - i.low, 0.0)], [max(i.high - i.diff, 0.0)]]


def _reference_lines(ax, floors: Floors | None, col_id: str) -> dict:
    """Draw the column's reference lines (chance, rules, floors, ceiling); returns legend handles."""
    refs = floors.columns.get(col_id) if floors is not None else None
    return _draw_lines(ax, refs)


def _draw_lines(ax, refs: ColumnRefs | None) -> dict:
    handles = {}
    for i, ref in enumerate(refs.refs if refs else []):
        colour = "C2" if ref.kind == "ceiling" else _LINE_COLOURS[i % len(_LINE_COLOURS)]
        handles[ref.label] = ax.axhline(
            ref.mean, ls=_LINE_STYLES.get(ref.kind, "--"), color=colour, lw=1.2, label=ref.label
        )
    return handles


def plot_sweep(spec: SweepSpec, trials: list[TrialRecord], path: Path, refs: ColumnRefs | None = None) -> bool:
    """The objective (mean over seeds, 95% interval) against each parameter, with the objective's
    reference lines; False when no trial is complete."""
    complete = [t for t in trials if t.state == "COMPLETE" and t.values]
    if not complete:
        return False
    plt = _pyplot()
    names = list(spec.params)
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.6), squeeze=False)
    label = spec.objective.label or f"{spec.objective.stage}.{spec.objective.metric}"
    intervals = [t.interval() for t in complete]
    means = np.asarray([i.diff for i in intervals])
    err = np.asarray([_interval_err(i) or [[0.0], [0.0]] for i in intervals], dtype=float)[:, :, 0].T
    for ax, name in zip(axes[0], names):
        xs = [t.params.get(name) for t in complete]
        numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs)
        if numeric:
            order = np.argsort(xs)
            ax.errorbar(np.asarray(xs)[order], means[order], yerr=err[:, order], marker="o", capsize=3)
            if spec.params[name].log:
                ax.set_xscale("log")
        else:
            ax.bar([str(x) for x in xs], means, yerr=err, capsize=3)
        _draw_lines(ax, refs)
        if name in spec.paper:
            ax.axvline(
                spec.paper[name] if numeric else str(spec.paper[name]), color="grey", ls="--", label="paper"
            )
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
        ax.set_xlabel(name)
        ax.set_ylabel(label)
    fig.suptitle(f"{spec.title}\n(mean over seeds, error bars: 95% bootstrap intervals)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
