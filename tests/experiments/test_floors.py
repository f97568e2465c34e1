"""Reference lines beside the measured numbers: chance from the column's own runs, the calibration
report's floors and ceiling, the ~ floor / below chance marks, and the plots' reference lines."""

import struct
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import FAKE_KINDS

import experiments.plan
from experiments.plan import build_plan, table_variants
from experiments.reporting import (
    Cell,
    Measured,
    collect,
    plot_figure,
    read_summary,
    write_index,
    write_table_report,
)
from experiments.reporting.floors import (
    Calibration,
    ColumnRefs,
    Floors,
    Reference,
    check_cell,
    floors_section,
    load_calibration,
    metric_refs,
    reference_metrics,
)
from experiments.specs import Column, FigureSpec, load_spec

CALIBRATION = """\
kind: table
title: "Fake calibration"
base: fake
profile: smoke
seeds: [0, 1]
columns:
  - {id: qa, label: QA, stage: qa, metric: "qa/acc"}
rows:
  - {id: blind, label: "best video-blind model", role: floor, without: [pretrain, tokenizer], set: {qa.quality: 0.45}}
  - {id: ceiling, label: "supervised ceiling", role: ceiling, set: {qa.quality: 0.8}}
  - {id: pretrained, label: "E-ViLM"}
"""

# no baseline row: each cell gets its difference from its best floor
ZERO_SHOT = """\
kind: table
title: "Fake zero-shot table"
base: fake
profile: smoke
seeds: [0, 1]
columns:
  - {id: qa, label: QA, stage: qa, metric: "qa/acc"}
  - {id: mc, label: MC, stage: mc, metric: "mc/acc"}
rows:
  - {id: at_floor, label: "At the floor", without: [pretrain, tokenizer], set: {qa.quality: 0.45}}
  - {id: buggy, label: "Buggy", without: [pretrain, tokenizer], set: {qa.quality: 0.0, mc.quality: 0.0}}
  - {id: good, label: "Good", set: {qa.quality: 0.7}}
"""


@pytest.fixture(autouse=True)
def _fake_kinds(monkeypatch):
    """The calibration is planned inside the report, with the stage kinds the plan module knows."""
    monkeypatch.setattr(experiments.plan, "STAGE_KINDS", FAKE_KINDS)


def _plan(specs, name):
    spec = load_spec(name, specs)
    return spec, build_plan(spec.name, table_variants(spec, specs, "smoke", {}), "smoke", spec.seeds, FAKE_KINDS)


def _row(text: str, label: str) -> list[str]:
    line = next(line for line in text.splitlines() if line.startswith(f"| {label} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_reference_metrics_follow_the_column_metric():
    assert reference_metrics("msrvtt_qa/acc") == {
        "chance": ("chance", "msrvtt_qa/chance"),
        "majority": ("rule", "msrvtt_qa/majority"),
        "text prior": ("rule", "msrvtt_qa/text_prior"),
    }
    assert reference_metrics("hmdb51_probe/top1")["chance"] == ("chance", "hmdb51_probe/chance")
    assert reference_metrics("msrvtt_ret_zs/R@5") == {"chance": ("chance", "msrvtt_ret_zs/chance_R@5")}
    assert reference_metrics("msrvtt_ret/MdR") == {} and reference_metrics("usage") == {}


def test_a_cell_against_its_best_floor():
    items = [np.asarray([1.0, 0.0] * 50), np.asarray([1.0, 0.0, 0.0, 1.0] * 25)]  # 50% on 100 items
    cell = Cell([50.0, 50.0], [x * 100 for x in items])
    chance = Reference("chance", "chance", [20.0])
    model = Reference("best video-blind model", "floor", [50.0, 50.0], [x * 100 for x in items])
    # the video-blind model is the higher floor, and the cell is within noise of it
    check = check_cell(cell, ColumnRefs([chance, model]))
    assert check.floor is model and check.mark == "~ floor" and not check.below_chance
    # chance alone: well above it
    check = check_cell(cell, ColumnRefs([chance]))
    assert check.floor is chance and check.mark == "" and check.words == "above floor"
    assert check.interval.low > 0 and check.interval.diff == 30.0
    # far below chance: a likely bug
    low = Cell([2.0, 2.0], [np.asarray([100.0] * 2 + [0.0] * 98)] * 2)
    assert check_cell(low, ColumnRefs([Reference("chance", "chance", [50.0])])).mark == "below chance: likely a bug"
    # 80 of 500 right against chance 20% (close to the calibration's random-init MC cell, 83): under chance at
    # 95%, not at 99.9%, so below its floor but no bug alarm
    unlucky = Cell([16.0], [np.asarray([100.0] * 80 + [0.0] * 420)])
    check = check_cell(unlucky, ColumnRefs([Reference("chance", "chance", [20.0])]))
    assert check.mark == "below floor" and not check.below_chance
    # the ceiling is never a floor
    assert check_cell(cell, ColumnRefs([Reference("ceiling", "ceiling", [90.0])])) is None


def test_reports_show_floors_marks_and_the_difference_from_the_floor(specs, runner, tracker, tmp_path):
    (specs / "calibration.yaml").write_text(CALIBRATION)
    (specs / "zeroshot.yaml").write_text(ZERO_SHOT)
    spec, plan = _plan(specs, "zeroshot")
    runner.execute(plan, "zeroshot")
    reports = tmp_path / "reports"

    # the calibration has not run yet: chance only, and the command that would measure the floors
    text = write_table_report(spec, plan, tracker, reports, "zeroshot", {}, specs_root=specs).read_text()
    assert "## Reference lines (floors and ceiling)" in text
    assert "not measured: run `python -m experiments run calibration`" in text
    assert _row(text, "chance")[1:] == ["25.0", "25.0"]

    cal_spec, cal_plan = _plan(specs, "calibration")
    runner.execute(cal_plan, "calibration")
    text = write_table_report(spec, plan, tracker, reports, "zeroshot", {}, specs_root=specs).read_text()
    assert "not measured: run" not in text
    assert "(`calibration`, profile `smoke`, seeds 0, 1)" in text
    blind = _row(text, "best video-blind model (floor)")
    ceiling = _row(text, "supervised ceiling (ceiling)")
    measured = collect(cal_spec, cal_plan, tracker)
    assert blind[1].startswith(f"{measured.cells[('blind', 'qa')].mean:.1f} [") and blind[2] == "—"
    assert ceiling[1].startswith(f"{measured.cells[('ceiling', 'qa')].mean:.1f} [")

    # the measured table marks each cell against its best floor
    assert _row(text, "At the floor")[1].endswith("(~ floor)")  # the very stage of the floor row
    buggy = _row(text, "Buggy")
    assert buggy[1].endswith("(below chance: likely a bug)") and buggy[2].endswith("(below chance: likely a bug)")
    assert "(" not in _row(text, "Good")[1]  # far above the video-blind model

    # no baseline row: the difference from the best floor, per cell
    section = text.split("## Above the floor")[1]
    good_qa = _row(section, "Good")
    assert good_qa[1] == "QA" and good_qa[2] == "best video-blind model" and good_qa[-1] == "above floor"
    assert float(good_qa[4]) > 0 and float(good_qa[5].strip("[]").split(", ")[0]) > 0
    assert "## Difference from the baseline" not in text

    # the summary counts the marks, and the index adds them up
    summary = read_summary(reports / "zeroshot.md")
    assert summary["floors"]["below_chance"] == 2 and summary["floors"]["at_floor"] >= 1
    assert "2 below chance (likely bugs)" in summary["summary"]
    index = write_index(reports).read_text()
    assert "**Measured cells against their floor**" in index

    # the calibration's own report does not compare a floor row with itself
    cal_text = write_table_report(cal_spec, cal_plan, tracker, reports, "calibration", {}, specs_root=specs).read_text()
    assert "(~ floor)" not in _row(cal_text, "best video-blind model")[1]


def test_calibration_lines_for_a_profile_and_a_zero_shot_column(specs, runner, tracker):
    (specs / "calibration.yaml").write_text(CALIBRATION)
    cal = load_calibration(specs, "smoke", {"qa.quality": 0.3, "nope.key": 1}, tracker)
    assert "--set qa.quality=0.3" in cal.note and "nope.key" not in cal.note  # only its own stages' keys
    cal_spec, cal_plan = _plan(specs, "calibration")
    runner.execute(cal_plan, "calibration")
    cal = load_calibration(specs, "smoke", {}, tracker)
    refs = cal.refs("qa_zs/acc", 1.0, "QA zero-shot")  # a zero-shot column reads the fine-tuned one
    assert [r.label for r in refs.refs] == ["best video-blind model", "supervised ceiling"]
    assert "the calibration's `qa/acc`" in refs.note
    assert cal.refs("mc/acc", 1.0, "MC").refs == []
    assert Calibration(note="x").refs("qa/acc", 1.0, "QA").note == "x"
    assert load_calibration(None, "smoke", {}, tracker).spec is None


def _png_width(path) -> int:
    return struct.unpack(">I", path.read_bytes()[16:20])[0]


def test_figure_without_paper_values_has_no_empty_panel(tmp_path):
    rows = [
        {"id": f"{size}{m}", "label": f"{size} {m}", "vars": {"size": size, "mvm": m}}
        for size in ("small", "large")
        for m in ("no", "yes")
    ]
    columns = [{"id": "mc", "label": "MC", "stage": "x", "metric": "mc/acc"}]
    plot = {"type": "bars", "x": "mc", "y": ["mc"], "group": "size", "series": "mvm"}
    spec = FigureSpec.model_validate(
        {"kind": "figure", "title": "t", "base": "p", "columns": columns, "rows": rows, "plot": plot}
    )
    cells = {(r["id"], "mc"): Cell([20.0, 22.0, 21.0]) for r in rows}
    from experiments.reporting.floors import Floors

    floors = Floors({"mc": ColumnRefs([Reference("chance", "chance", [20.0])])})
    alone = tmp_path / "alone.png"
    plot_figure(spec, Measured(cells, {}, []), alone, floors)
    rows[0]["paper"] = {"mc": 50.0}
    with_paper = tmp_path / "paper.png"
    spec = FigureSpec.model_validate(
        {"kind": "figure", "title": "t", "base": "p", "columns": columns, "rows": rows, "plot": plot}
    )
    plot_figure(spec, Measured(cells, {}, []), with_paper, floors)
    assert _png_width(with_paper) > 1.6 * _png_width(alone)  # two panels only when the paper has values


def test_the_reference_block_gives_each_column_its_test_set_size():
    refs = metric_refs("qa/acc", 100.0, [{"qa/chance": 0.2, "qa/test_items": 1076.0}], Calibration(note=""))
    assert refs.test_items == 1076 and refs.chance().mean == 20.0
    spec = SimpleNamespace(columns=[Column(id="qa", label="QA", stage="qa", metric="qa/acc")])
    lines = floors_section(spec, Floors({"qa": refs}))
    assert "| test items | 1,076 |" in "\n".join(lines)
    retrieval = metric_refs("ret/R@10", 1.0, [{"ret/queries": 500.0, "ret/videos": 500.0}], Calibration(note=""))
    assert retrieval.test_items == 500  # a retrieval stage counts its text queries


def test_a_role_row_without_the_columns_stage_is_not_reported_missing(specs):
    # the video-blind floor has no retrieval stage: its retrieval cell is not "no finished run yet"
    (specs / "calibration.yaml").write_text(CALIBRATION.replace(
        "role: floor, without: [pretrain, tokenizer]", "role: floor, without: [pretrain, tokenizer, qa]"))
    spec = load_spec("calibration", specs)
    ceiling = Cell([80.0], [np.asarray([100.0] * 80 + [0.0] * 20)])
    measured = Measured({("ceiling", "qa"): ceiling}, {}, [])
    refs = Calibration(spec, measured, "no finished run yet").refs("qa/acc", 1.0, "QA")
    assert [r.label for r in refs.refs] == ["supervised ceiling"] and refs.note == ""
    # the ceiling's own cell, unfinished, is
    refs = Calibration(spec, Measured({}, {}, []), "no finished run yet").refs("qa/acc", 1.0, "QA")
    assert refs.note == "supervised ceiling: no finished run yet"
