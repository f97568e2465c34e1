import numpy as np
import pytest
from conftest import FAKE_KINDS

from experiments.plan import build_plan, table_variants
from experiments.reporting import collect, markdown_table, paper_number, write_table_report
from experiments.specs import load_spec
from experiments.stats import (
    CONTRADICTED,
    NOT_REPRODUCED,
    REPRODUCED,
    UNDERPOWERED,
    Interval,
    diff_interval,
    mean_interval,
    reproduced,
    row_verdict,
    verdict_of,
)


def plan_for(specs, seeds):
    spec = load_spec("faketable", specs)
    return spec, build_plan(
        spec.name, table_variants(spec, specs, "smoke", {}), "smoke", list(seeds), FAKE_KINDS
    )


def test_report_from_a_store_of_runs(specs, runner, tracker, tmp_path):
    spec, plan = plan_for(specs, [0, 1])
    runner.execute(plan, "faketable")
    measured = collect(spec, plan, tracker)
    qa = measured.cells[("mvm", "qa")]
    assert len(qa.values) == 2 and len(qa.items) == 2 and len(qa.items[0]) == 30
    assert np.isclose(qa.items[0].mean(), qa.values[0])  # per-item results agree with the metric
    assert ("other", "qa") not in measured.cells  # paper-only row
    assert ("none", "usage") not in measured.cells  # the row has no tokenizer
    assert measured.cells[("mvm", "usage")].items is None  # per_item: false
    assert np.allclose(
        measured.cells[("mvm", "hits")].values, np.asarray(qa.values) / 100
    )  # logged as hits_at_1

    path = write_table_report(spec, plan, tracker, tmp_path / "reports", "faketable", {})
    text = path.read_text()
    assert "## Paper" in text and "## Measured (mean ± std over 2 seeds)" in text
    assert "| Other method (paper only) | 45.0 | 64.8* | - |" in text
    assert f"{qa.mean:.1f} ± {qa.std:.1f}" in text
    assert "Profile**: `smoke` (not paper scale)" in text and "fake items" in text and "n_items=30" in text
    assert "not comparable in absolute value" in text
    # the difference section: With MVM vs No pretraining, interval over seeds and items, paper direction
    diff_rows = [line for line in text.splitlines() if line.startswith("| With MVM | QA |")]
    assert len(diff_rows) == 1
    cells = [c.strip() for c in diff_rows[0].strip("|").split("|")]
    assert cells[5] == "seeds x items" and cells[6] == "+9.3"
    low, high = (float(x) for x in cells[3].strip("[]").split(", "))
    # the MDD: the interval's half-width (the bounds are printed rounded, hence the tolerance)
    assert cells[4].startswith("±") and abs(float(cells[4][1:]) - (high - low) / 2) <= 0.1 + 1e-9
    assert cells[7].split(" (")[0] in ("reproduced", "contradicted", "not reproduced", "underpowered")
    assert "Usage" not in [
        line.split("|")[2].strip() for line in text.splitlines() if line.startswith("| With MVM |")
    ]


def test_report_degrades_without_runs_or_seeds(specs, runner, tracker, tmp_path):
    spec, plan = plan_for(specs, [0])
    path = write_table_report(spec, plan, tracker, tmp_path, "empty", {})
    text = path.read_text()
    assert "Missing runs" in text and "—" in text

    runner.execute(plan, "faketable")
    text = write_table_report(spec, plan, tracker, tmp_path, "one", {}).read_text()
    assert "items" in text  # one seed, but per-item results still give an interval
    assert "Missing runs" not in text
    spec, two = plan_for(specs, [0, 1])  # seed 1 never ran: each cell says it holds one seed
    text = write_table_report(spec, two, tracker, tmp_path, "two", {}).read_text()
    measured = text.split("## Measured (mean ± std over 2 seeds)")[1].split("\n\n")[1]
    assert measured.count(" (n=1)") > 0 and "±" not in measured and "Missing runs" in text


def test_an_optional_column_a_finished_run_lacks_is_not_a_missing_run(specs, runner, tracker, tmp_path):
    text = (specs / "faketable.yaml").read_text()
    extra = "  - {id: psnr, label: PSNR, stage: qa, metric: psnr, per_item: false%s}\nrows:"
    (specs / "faketable.yaml").write_text(text.replace("rows:", extra % "", 1))
    spec, plan = plan_for(specs, [0])
    runner.execute(plan, "faketable")
    assert "(no metric 'psnr')" in write_table_report(spec, plan, tracker, tmp_path, "a", {}).read_text()
    (specs / "faketable.yaml").write_text(text.replace("rows:", extra % ", optional: true", 1))
    spec, plan = plan_for(specs, [0])
    report = write_table_report(spec, plan, tracker, tmp_path, "b", {}).read_text()
    assert "Missing runs" not in report and "| PSNR |" in report


def test_bootstrap_interval():
    rng = np.random.default_rng(0)
    base = [rng.random(400) < 0.5 for _ in range(3)]
    better = [rng.random(400) < 0.7 for _ in range(3)]
    same = [rng.random(400) < 0.5 for _ in range(3)]
    mean = lambda xs: [float(np.mean(x)) for x in xs]  # noqa: E731
    up = diff_interval(mean(better), mean(base), better, base)
    assert up.source == "seeds x items" and 0.1 < up.low < up.diff < up.high < 0.3
    assert reproduced(+5.0, up) == "reproduced" and reproduced(-5.0, up) == "contradicted"
    flat = diff_interval(mean(same), mean(base), same, base)
    assert flat.low < 0 < flat.high
    assert reproduced(1.0, flat).startswith("not reproduced")  # the MDD (~0.04) is below 1.0
    assert reproduced(0.01, flat).startswith("underpowered")  # ... and above 0.01
    seeds_only = diff_interval([0.6, 0.62, 0.61], [0.5, 0.52, 0.49])
    assert seeds_only.source == "seeds" and seeds_only.low > 0
    single = diff_interval([0.6], [0.5])
    assert single.low is None and reproduced(1.0, single).startswith("underpowered (no interval")
    assert verdict_of(reproduced(1.0, single)) == "underpowered" and verdict_of("n/a") is None
    # one row's mean: over seeds x items, fractional credit (a tie's 1/k) accepted
    credit = [np.asarray([1.0, 0.2, 0.0, 0.5] * 25), np.asarray([1.0, 0.0, 0.2, 0.5] * 25)]
    alone = mean_interval([float(x.mean()) for x in credit], credit)
    assert alone.source == "seeds x items" and alone.diff == pytest.approx(0.425)
    assert alone.low < alone.diff < alone.high


def test_the_four_verdicts():
    paper = +3.0
    assert reproduced(paper, Interval(5.0, 2.0, 8.0, "seeds")) == REPRODUCED
    assert reproduced(paper, Interval(-5.0, -8.0, -2.0, "seeds")) == CONTRADICTED
    # spans 0, half-width 1.5 <= 3: the suite could have seen the paper's difference and did not
    assert verdict_of(reproduced(paper, Interval(0.5, -1.0, 2.0, "seeds"))) == NOT_REPRODUCED
    # spans 0, half-width 7.5 > 3: it could not have
    assert verdict_of(reproduced(paper, Interval(0.5, -7.0, 8.0, "seeds"))) == UNDERPOWERED
    assert verdict_of(reproduced(-paper, Interval(0.5, -7.0, 8.0, "seeds"))) == UNDERPOWERED
    assert verdict_of(reproduced(paper, Interval(0.5, None, None, "none"))) == UNDERPOWERED
    # one seed each, identical per-item results: [0, 0] shows no variation, not a precise zero
    assert verdict_of(reproduced(paper, Interval(0.0, 0.0, 0.0, "items"))) == UNDERPOWERED
    assert Interval(0.5, -7.0, 8.0, "seeds").half_width == 7.5 and Interval(0.0, None, None, "none").half_width is None
    # a row: contradicted if any column is, reproduced if all are, not reproduced if a column could
    # have seen its effect, else underpowered
    assert row_verdict([REPRODUCED, CONTRADICTED, UNDERPOWERED]) == CONTRADICTED
    assert row_verdict([REPRODUCED, REPRODUCED]) == REPRODUCED
    assert row_verdict([REPRODUCED, NOT_REPRODUCED, UNDERPOWERED]) == NOT_REPRODUCED
    assert row_verdict([REPRODUCED, UNDERPOWERED]) == UNDERPOWERED


def test_markdown_helpers():
    assert markdown_table(["a", "b"], [[1, "x|y"]]) == "| a | b |\n| --- | --- |\n| 1 | x\\|y |"
    assert paper_number("64.8*") == 64.8 and paper_number(None) is None and paper_number(3) == 3.0


def test_item_values_layouts():
    from experiments.reporting import item_values

    assert item_values({"accuracy": [1, 0, 1, 1]}, "accuracy", 0.75).tolist() == [1, 0, 1, 1]
    tasks = {"metric": "correct", "items": [{"index": 1, "correct": 0}, {"index": 0, "correct": 1}]}
    assert item_values(tasks, "msrvtt_qa/acc", 50.0).tolist() == [
        100.0,
        0.0,
    ]  # a percentage, ordered by index
    ranks = {"metric": "rank", "items": [{"index": i, "rank": r} for i, r in enumerate([1, 3, 7, 20])]}
    assert item_values(ranks, "msrvtt_ret/R@5", 50.0).tolist() == [100.0, 100.0, 0.0, 0.0]
    assert item_values(ranks, "msrvtt_ret/MdR", 5.0) is None  # a median is not a mean of items
    # the random tie rule: a tie's expected share of a hit (rank 2-3 of 4 tied with one other: half at k=2)
    tied = {"metric": "rank", "ties": "random", "items": [
        {"index": 0, "rank": 2.5, "higher": 1, "tied": 1}, {"index": 1, "rank": 1.0, "higher": 0, "tied": 0},
        {"index": 2, "rank": 2.5, "higher": 0, "tied": 3}]}
    assert item_values(tied, "msrvtt_ret/R@2", 200 / 3).tolist() == [50.0, 100.0, 50.0]
    assert item_values(tied, "msrvtt_ret/R@1", 100 * 1.25 / 3).tolist() == pytest.approx([0.0, 100.0, 25.0])
    fractional = {"metric": "correct", "items": [{"index": 0, "correct": 0.2}, {"index": 1, "correct": 1.0}]}
    assert item_values(fractional, "msrvtt_mc/acc", 60.0).tolist() == [20.0, 100.0]
    assert item_values(tasks, "msrvtt_qa/acc", 70.0) is None  # disagrees with the logged metric


def test_figure_plots(tmp_path):
    from experiments.reporting import Cell, Measured, plot_figure
    from experiments.reporting.floors import ColumnRefs, Floors, Reference
    from experiments.specs import FigureSpec

    rows = [
        {
            "id": "a",
            "label": "A",
            "vars": {"size": "s", "mvm": "no"},
            "paper": {"flops": 10, "acc": 50, "params": 5},
        },
        {
            "id": "b",
            "label": "B",
            "vars": {"size": "s", "mvm": "yes"},
            "paper": {"flops": 200, "acc": 60, "params": 90},
        },
    ]
    columns = [{"id": k, "label": k.upper(), "stage": "x", "metric": k} for k in ("flops", "acc", "params")]
    cells = {("a", "flops"): Cell([9.0]), ("a", "acc"): Cell([40.0, 42.0]), ("a", "params"): Cell([4.0])}
    measured = Measured(cells, {}, [])
    for plot in (
        {"type": "bubble", "x": "flops", "y": ["acc"], "size": "params"},
        {"type": "bars", "x": "acc", "y": ["acc"], "group": "size", "series": "mvm"},
    ):
        spec = FigureSpec.model_validate(
            {"kind": "figure", "title": "t", "base": "p", "columns": columns, "rows": rows, "plot": plot}
        )
        path = tmp_path / f"{plot['type']}.png"
        refs = ColumnRefs([Reference("chance", "chance", [20.0]), Reference("ceiling", "ceiling", [70.0, 72.0])])
        plot_figure(spec, measured, path, Floors({"acc": refs}))
        assert path.stat().st_size > 1000 and path.read_bytes()[:4] == b"\x89PNG"


def test_durations_and_timing_words():
    from experiments.reporting import Timing, format_duration

    assert [format_duration(s) for s in (0.44, 42.4, 192, 840, 7500)] == [
        "0.4 s",
        "42 s",
        "3 min 12 s",
        "14 min",
        "2 h 5 min",
    ]
    timing = Timing(wall_s=192, ran_s=180, reused_s=660)
    assert timing.describe() == "3 min 12 s this run; stage compute 14 min (11 min reused from earlier runs)"
    assert Timing(5.0, 0.0, 60.0).describe().endswith("(all reused from earlier runs)")
    assert Timing(None, 0.0, 60.0).describe().startswith("not recorded")


def test_index_lists_every_report_with_its_verdicts(specs, runner, tracker, tmp_path):
    from experiments.reporting import Timing, read_summary, write_index

    reports = tmp_path / "reports"
    spec, plan = plan_for(specs, [0, 1])
    outcomes = runner.execute(plan, "faketable")
    path = write_table_report(
        spec, plan, tracker, reports, "faketable", {}, Timing.from_outcomes(outcomes, 3.0)
    )
    (reports / "table1.md").write_text(
        "# Table 1: old\n\n- **Profile**: `quick`\n- **Store**: x; generated 2026-01-02 03:04\n"
    )
    write_index(reports)
    index = (reports / "README.md").read_text()
    lines = [line for line in index.splitlines() if line.startswith("| [")]
    assert len(lines) == 2 and "(faketable.md)" in lines[0] and "(table1.md)" in lines[1]
    assert "| `smoke` |" in lines[0] and "| 3.0 s (stage compute" in lines[0]
    assert "2026-01-02 03:04" in lines[1] and "no summary recorded" in lines[1]

    # the summary counts the verdicts of the report's own difference table, per row
    verdicts = [
        line.strip("|").split("|")[-1].strip().split(" (")[0]
        for line in path.read_text().split("## Difference")[1].splitlines()
        if line.startswith("| With MVM |")
    ]
    assert verdicts.pop() == "n/a"  # Hits@1: no paper difference
    assert len(verdicts) == 2  # QA and MC (Usage has no baseline value)
    row = (
        "contradicted"
        if "contradicted" in verdicts
        else "reproduced"
        if set(verdicts) == {"reproduced"}
        else "not reproduced"
    )
    expected = (
        "1 of 1 ablation row reproduced"
        if row == "reproduced"
        else f"0 of 1 ablation row reproduced, 1 {row}"
    )
    expected += f" ({verdicts.count('reproduced')} of 2 differences reproduced)"
    assert read_summary(path)["summary"] == expected
    assert lines[0].endswith(f"| {expected} |")


def test_sweep_summary_names_a_best_only_when_its_interval_excludes_the_runner_ups():
    from experiments.reporting import TrialRecord, sweep_summary
    from experiments.reporting.sweeps import separable_best

    spec = load_spec("mask_ratio")  # the shipped sweep: maximize, the paper's choice is ratio 0.4
    assert spec.seeds == [0, 1, 2] and spec.seeds_by_profile == {"smoke": [0]}

    def trial(number, ratio, values):
        return TrialRecord(number, "COMPLETE", {"pretrain.mask.ratio": ratio}, values)

    # overlapping intervals: the best mean (0.1) is not distinguishable from the paper's 0.4
    overlapping = [trial(0, 0.1, [8.9, 8.0, 8.6]), trial(1, 0.4, [8.2, 8.7, 8.1]), trial(2, 0.9, [5.0, 5.2, 5.1])]
    best, runner_up, why = separable_best(spec, overlapping)
    assert best is None and "overlaps" in why
    text = sweep_summary(spec, overlapping)
    assert "3 seeds each; objective 5.1 to 8.5" in text
    assert "no setting distinguishable at this budget" in text and "best `" not in text
    assert "the paper's choice gives 8.333 [" in text

    # separated intervals: 0.4 is named, with its interval
    separated = [trial(0, 0.1, [6.9, 7.0, 7.2]), trial(1, 0.4, [9.0, 9.2, 9.1]), trial(2, 0.9, [5.0, 5.2, 5.1])]
    best, runner_up, _ = separable_best(spec, separated)
    assert best.number == 1 and runner_up.number == 0
    assert best.interval().low > runner_up.interval().high
    text = sweep_summary(spec, separated)
    assert "best `pretrain.mask.ratio=0.4` (9.1 [" in text and "the paper's choice is the best" in text

    # one seed and no per-item results: no interval, so no winner however far apart the means are
    single = [trial(0, 0.1, [1.0]), trial(1, 0.4, [9.0])]
    assert separable_best(spec, single)[0] is None and "no interval" in separable_best(spec, single)[2]
    # one seed with per-item results: the items' interval decides
    items = [np.asarray([1.0] * 90 + [0.0] * 10), np.asarray([1.0] * 10 + [0.0] * 90)]
    by_items = [TrialRecord(i, "COMPLETE", {"pretrain.mask.ratio": r}, [float(x.mean())], items=[x])
                for i, (r, x) in enumerate(zip((0.4, 0.9), items))]
    assert separable_best(spec, by_items)[0].number == 0


def test_a_report_knows_what_it_was_made_from(specs, runner, tracker, tmp_path):
    from experiments.reporting.freshness import is_up_to_date, report_key

    spec, plan = plan_for(specs, [0])
    runner.execute(plan, "faketable")
    key = report_key(spec, plan, {}, specs, tracker.runs_dir)
    assert key == report_key(spec, plan, {}, specs, tracker.runs_dir)  # deterministic
    path = tmp_path / "faketable.md"
    assert not is_up_to_date(path, key)  # no report yet
    write_table_report(spec, plan, tracker, tmp_path, "faketable", {}, key=key)
    assert is_up_to_date(path, key)
    # another plan (a --set that changes a stage) or another spec: another key, the report is stale
    other = build_plan(spec.name, table_variants(spec, specs, "smoke", {"qa.quality": 0.9}), "smoke", [0], FAKE_KINDS)
    assert not is_up_to_date(path, report_key(spec, other, {"qa.quality": 0.9}, specs, tracker.runs_dir))
    renamed = spec.model_copy(update={"title": "Another title"})
    assert not is_up_to_date(path, report_key(renamed, plan, {}, specs, tracker.runs_dir))
