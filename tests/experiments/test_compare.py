"""Against a committed report: the same numbers are "same"; other ones are judged against the seeds'
spread (2 standard errors of the difference of the means)."""

from __future__ import annotations

import io
import re

from experiment_fakes import FAKE_KINDS
from rich.console import Console

from experiments.compare import Printed, compare, judge, print_comparison, printed_cells
from experiments.plan import build_plan, table_variants
from experiments.reporting import write_table_report
from experiments.specs import load_spec


def test_the_verdicts():
    three = Printed("10.0 ± 1.0", 10.0, 1.0, 3)
    assert judge(three, [10.04, 9.0, 11.0], ".1f")[1] == "same"  # equal as printed
    assert judge(three, [10.5, 9.5, 11.5], ".1f") == (0.5, "within the seeds' spread")
    delta, verdict = judge(three, [13.0, 12.0, 14.0], ".1f")
    assert delta == 3.0 and verdict == "beyond the seeds' spread"  # se = 0.82
    assert judge(Printed("10.0", 10.0, None, 1), [11.0], ".1f")[1] == "differs (one seed: no spread)"
    flat = Printed("48.7 ± 0.0", 48.7, 0.0, 3)  # an unseeded stage: the same number for every seed
    assert judge(flat, [50.0, 50.0, 50.0], ".1f")[1] == "differs (no spread between seeds)"


def test_a_reports_measured_table_reads_back():
    text = """# T

- **Hardware**: AMD EPYC x2
- **Seeds**: 0, 1, 2

## Measured (mean ± std over 3 seeds)

|  | A | B |
| --- | --- | --- |
| Row one | 9.0 ± 2.2 | — |
| Row two | 0.1 ± 0.0 (n=2) | 12 |

## Difference
"""
    cells = printed_cells(text)
    assert cells == {
        ("Row one", "A"): Printed("9.0 ± 2.2", 9.0, 2.2, 3),
        ("Row two", "A"): Printed("0.1 ± 0.0 (n=2)", 0.1, 0.0, 2),
        ("Row two", "B"): Printed("12", 12.0, None, 1),
    }


def test_show_compares_this_store_with_the_report(specs, runner, tracker, tmp_path):
    spec = load_spec("faketable", specs)
    plan = build_plan(spec.name, table_variants(spec, specs, "smoke", {}), "smoke", [0, 1], FAKE_KINDS)
    runner.execute(plan, "faketable")
    report = write_table_report(spec, plan, tracker, tmp_path / "reports", "faketable", {})
    diffs, facts = compare(spec, plan, tracker, report)
    assert diffs and {d.verdict for d in diffs} == {"same"}
    assert facts["then"] == facts["now"] and "1 torch thread" in facts["now"]
    # the committed numbers were another machine's: QA far off, MC a little
    text = report.read_text()
    qa_row = next(line for line in text.split("## Measured", 1)[1].splitlines() if line.startswith("| With MVM"))
    cells = qa_row.strip().strip("|").split("|")
    mean, std = (float(x) for x in re.findall(r"-?\d+\.\d+", cells[1])[:2])
    far = f" {mean + 10 * max(std, 1):.1f} ± {std:.1f} "
    report.write_text(text.replace(qa_row, qa_row.replace(cells[1], far)))
    diffs, _ = compare(spec, plan, tracker, report)
    verdicts = {(d.row, d.column): d.verdict for d in diffs}
    assert verdicts[("With MVM", "QA")] in ("beyond the seeds' spread", "differs (no spread between seeds)")
    assert verdicts[("No pretraining", "QA")] == "same"
    log = io.StringIO()
    print_comparison(spec, plan, tracker, report, Console(file=log, width=250))
    assert "cells the same as printed" in log.getvalue() and "committed report's hardware" in log.getvalue()
