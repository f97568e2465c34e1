"""Markdown reports: the paper's table beside the measured one, sweeps, plots and the index.

``reports/<name>.md`` holds, for a table or figure spec: a header (profile, data, code version,
hardware, seeds), the paper's table, the measured table with the same rows and columns (mean +- std
over seeds, each cell marked against its floor), the reference lines (chance, video-blind rules, the
calibration report's floors and ceiling), and each row's difference from the baseline row with a 95%
bootstrap interval, its minimum detectable difference and one of four verdicts. Figures and sweeps add
a PNG beside the Markdown. Each report ends with a one-line summary from which ``write_index``
regenerates ``reports/README.md``.

| module | job |
| --- | --- |
| ``markdown`` | Markdown tables, numbers, paper numbers, the header every report shares |
| ``measure`` | the measured cells, read from the MLflow store (per-item values for intervals) |
| ``floors`` | reference lines per column, and a cell against its best floor |
| ``tables`` | a table or figure report: paper, measured, floors, differences, verdicts |
| ``sweeps`` | a sweep report: trials with intervals, a best point only when separable, the paper's choice |
| ``power`` | the seed and test-item planner of ``python -m experiments power`` |
| ``plots`` | PNG plots of figures and sweeps (95% intervals, reference lines) |
| ``index`` | the summary line each report ends with, and ``reports/README.md`` from them |
| ``timing`` | wall time and stage compute, in words |
"""

from experiments.reporting.index import INDEX, natural_key, read_summary, summary_comment, write_index
from experiments.reporting.markdown import header, markdown_table, paper_number
from experiments.reporting.measure import PER_ITEM, Cell, Measured, collect, item_values, metric_name
from experiments.reporting.plots import plot_figure, plot_sweep
from experiments.reporting.sweeps import TrialRecord, sweep_markdown, sweep_summary
from experiments.reporting.tables import write_table_report
from experiments.reporting.timing import Timing, format_duration

__all__ = [
    "INDEX",
    "PER_ITEM",
    "Cell",
    "Measured",
    "Timing",
    "TrialRecord",
    "collect",
    "format_duration",
    "header",
    "item_values",
    "markdown_table",
    "metric_name",
    "natural_key",
    "paper_number",
    "plot_figure",
    "plot_sweep",
    "read_summary",
    "summary_comment",
    "sweep_markdown",
    "sweep_summary",
    "write_index",
    "write_table_report",
]
