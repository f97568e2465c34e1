"""One whole real table, end to end on the ``smoke`` profile, through the command line.

Table 2 is the cheapest table whose stages include pre-training and a fine-tuned downstream task:
data -> video tokenizer -> pre-training -> MSRVTT and DiDeMo retrieval (5 stages). The run gets its own
MLflow store, runs folder and reports folder; the test reads back the report and the store.
"""

from __future__ import annotations

import shutil

import pytest

from experiments.cli import EXIT_OK, main
from experiments.commands import table_plan
from experiments.specs import load_spec, specs_dir
from experiments.tracking import TAG, Tracker, metric_key


def _section(text: str, heading: str) -> list[list[str]]:
    """The Markdown table under ``## heading`` as rows of cells (header row first)."""
    body = text.split(f"\n## {heading}", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in body.splitlines() if line.startswith("|")]
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines if "---" not in line]


@pytest.mark.slow
def test_table2_smoke_through_the_cli(tmp_path, template_store, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("EVILM_SPECS", raising=False)
    db = tmp_path / "mlflow.db"
    shutil.copy(template_store, db)
    uri = f"sqlite:///{db}"
    argv = ["run", "table2", "--profile", "smoke", "--seeds", "0", "--tracking-uri", uri, "--quiet"]
    argv += ["--runs-dir", str(tmp_path / "runs"), "--reports-dir", str(tmp_path / "reports")]

    assert main(argv) == EXIT_OK
    out = capsys.readouterr().out
    assert "table2 (smoke) wall time:" in out and "this run; stage compute" in out

    spec = load_spec("table2", specs_dir())
    plan = table_plan(spec, specs_dir(), "smoke", [0], {})
    assert sorted(s.name for s in plan.stages.values()) == sorted(
        ["data", "image_prior", "clip_prior", "tokenizer", "pretrain", "msrvtt_ret", "didemo_ret"]
    )

    # the store: one FINISHED run per stage, tagged with its table, row and seed
    tracker = Tracker(uri, tmp_path / "runs")
    finished = {}
    for sid, stage in plan.stages.items():
        runs = tracker.runs_of_stage(sid)
        assert [r.info.status for r in runs] == ["FINISHED"], stage.name
        tags = runs[0].data.tags
        assert tags[f"{TAG}table"] == "table2" and tags[f"{TAG}row"] == "evilm"
        assert tags[f"{TAG}seed"] == ("" if stage.seed is None else "0")  # data, the prior and the tokenizer are unseeded
        assert (stage.seed is None) == (stage.name in ("data", "image_prior", "clip_prior", "tokenizer"))
        assert tags[f"{TAG}profile"] == "smoke" and float(tags[f"{TAG}seconds"]) > 0
        finished[stage.name] = runs[0]
    assert len(tracker.search(f"tags.`{TAG}table` = 'table2'")) == len(plan.stages)

    # the report: header, the paper's table and the measured one, one row per spec row
    text = (tmp_path / "reports" / "table2.smoke.md").read_text()
    header = text.split("\n## ", 1)[0]
    assert "- **Profile**: `smoke`" in header
    assert "- **Data**: the generated video world" in header and "profile=smoke" in header
    for key in ("Code version", "Hardware"):
        value = header.split(f"- **{key}**: ", 1)[1].splitlines()[0]
        assert value and "(no runs)" not in value
    wall = header.split("- **Wall time**: ", 1)[1].splitlines()[0]
    assert "this run; stage compute" in wall

    labels = ["", *(c.label for c in spec.columns)]
    paper, measured = _section(text, "Paper"), _section(text, "Measured")
    assert paper[0] == labels and measured[0] == labels
    assert [r[0] for r in paper[1:]] == [r.label for r in spec.rows]
    assert [r[0] for r in measured[1:]] == [
        r.label + ("" if r.measured else " (paper only)") for r in spec.rows
    ]
    for row, cells in zip(spec.rows, paper[1:]):
        assert cells[1:] == [str(row.paper[c.id]) if c.id in row.paper else "-" for c in spec.columns]
    for row, cells in zip(spec.rows, measured[1:]):
        if not row.measured:
            assert set(cells[1:]) == {"—"}
            continue
        for col, cell in zip(spec.columns, cells[1:]):
            if not col.stage:
                assert cell == "—"
                continue
            logged = finished[col.stage].data.metrics[metric_key(col.metric)]
            number = cell.split(" (", 1)[0]  # a mark may follow the number, e.g. "16.7 (~ floor)"
            assert number == format(logged * col.scale, col.fmt), col.id

    index = (tmp_path / "reports" / "README.md").read_text()
    assert "(table2.smoke.md) | `smoke` |" in index

    # a second run reuses every stage: nothing is recomputed, and the report, made from the same stages
    # by the same code, is left as it was (with the first run's wall time)
    first = (tmp_path / "reports" / "table2.smoke.md").read_text()
    assert main(argv) == EXIT_OK
    assert all(len(tracker.runs_of_stage(sid)) == 1 for sid in plan.stages)
    assert (tmp_path / "reports" / "table2.smoke.md").read_text() == first
