import numpy as np
from conftest import FAKE_KINDS

from experiments.plan import build_plan, table_variants
from experiments.report import collect, markdown_table, paper_number, write_table_report
from experiments.specs import load_spec
from experiments.stats import diff_interval, reproduced


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
    assert cells[4] == "seeds x items" and cells[5] == "+9.3"
    assert cells[6] in ("yes", "no (opposite)", "unclear (interval spans 0)")
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


def test_bootstrap_interval():
    rng = np.random.default_rng(0)
    base = [rng.random(400) < 0.5 for _ in range(3)]
    better = [rng.random(400) < 0.7 for _ in range(3)]
    same = [rng.random(400) < 0.5 for _ in range(3)]
    mean = lambda xs: [float(np.mean(x)) for x in xs]  # noqa: E731
    up = diff_interval(mean(better), mean(base), better, base)
    assert up.source == "seeds x items" and 0.1 < up.low < up.diff < up.high < 0.3
    assert reproduced(+5.0, up) == "yes" and reproduced(-5.0, up) == "no (opposite)"
    flat = diff_interval(mean(same), mean(base), same, base)
    assert flat.low < 0 < flat.high and reproduced(1.0, flat).startswith("unclear")
    seeds_only = diff_interval([0.6, 0.62, 0.61], [0.5, 0.52, 0.49])
    assert seeds_only.source == "seeds" and seeds_only.low > 0
    single = diff_interval([0.6], [0.5])
    assert single.low is None and reproduced(1.0, single) == "yes (point estimate only)"


def test_markdown_helpers():
    assert markdown_table(["a", "b"], [[1, "x|y"]]) == "| a | b |\n| --- | --- |\n| 1 | x\\|y |"
    assert paper_number("64.8*") == 64.8 and paper_number(None) is None and paper_number(3) == 3.0


def test_item_values_layouts():
    from experiments.report import item_values

    assert item_values({"accuracy": [1, 0, 1, 1]}, "accuracy", 0.75).tolist() == [1, 0, 1, 1]
    tasks = {"metric": "correct", "items": [{"index": 1, "correct": 0}, {"index": 0, "correct": 1}]}
    assert item_values(tasks, "msrvtt_qa/acc", 50.0).tolist() == [
        100.0,
        0.0,
    ]  # a percentage, ordered by index
    ranks = {"metric": "rank", "items": [{"index": i, "rank": r} for i, r in enumerate([1, 3, 7, 20])]}
    assert item_values(ranks, "msrvtt_ret/R@5", 50.0).tolist() == [100.0, 100.0, 0.0, 0.0]
    assert item_values(ranks, "msrvtt_ret/MdR", 5.0) is None  # a median is not a mean of items
    assert item_values(tasks, "msrvtt_qa/acc", 70.0) is None  # disagrees with the logged metric


def test_figure_plots(tmp_path):
    from experiments.report import Cell, Measured, plot_figure
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
        plot_figure(spec, measured, path)
        assert path.stat().st_size > 1000 and path.read_bytes()[:4] == b"\x89PNG"
