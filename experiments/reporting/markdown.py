"""The Markdown every report shares: tables, paper numbers, and the header (profile, data, code
version, hardware, seeds, wall time, overrides, store)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Any

from experiments.plan import Plan, PlannedStage
from experiments.reporting.timing import Timing
from experiments.tracking import TAG, Tracker

DATA_INPUT = "data"  # the input through which stages read the data (stages.py): its upstream makes the data


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def esc(x: Any) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(esc(h) for h in headers) + " |",
        "|" + "|".join(" --- " for _ in headers) + "|",
    ]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def paper_number(value: Any) -> float | None:
    """The number in a paper cell ("64.8*" -> 64.8), or None."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    match = re.match(r"\s*(-?\d+(?:\.\d+)?)", str(value))
    return float(match.group(1)) if match else None


def number(value: float, fmt: str) -> str:
    """``value`` in ``fmt``, without the minus of a value that rounds to zero ("-0.0")."""
    text = format(value, fmt)
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def signed(value: float, fmt: str) -> str:
    """``number`` with a plus sign when not negative."""
    text = number(value, fmt)
    return text if text.startswith("-") else "+" + text


def now() -> str:
    """The time a report is generated, as its header and summary line write it."""
    return dt.datetime.now().strftime("%Y-%m-%d %H:%M")


def header(
    spec,
    plan: Plan,
    runs: dict[str, Any],
    tracker: Tracker,
    overrides: dict[str, Any],
    compares: bool = True,
    timing: Timing | None = None,
) -> list[str]:
    pipeline = next(iter(plan.pipelines.values()), None)
    commits = sorted({r.data.tags.get(f"{TAG}git_commit", "?") for r in runs.values()}) or ["(no runs)"]
    hardware = sorted({r.data.tags.get(f"{TAG}hardware", "?") for r in runs.values()}) or ["(no runs)"]
    data = data_stages(plan)
    data_line = (
        pipeline.dataset if pipeline and pipeline.dataset else "see the pipeline's data stage"
    ) + _data_summary(data)
    trains = bool(data)  # a plan that reads data trains on it; a cost table does not
    lines = [
        f"# {spec.title}",
        "",
        f"- **Profile**: `{plan.profile}`"
        + ("" if plan.profile == "paper" or not trains else " (not paper scale)"),
        f"- **Data**: {data_line}",
        f"- **Code version**: {', '.join(commits)}",
        f"- **Hardware**: {'; '.join(hardware)}",
        f"- **Seeds**: {', '.join(map(str, plan.seeds))}",
        *([f"- **Wall time**: {timing.describe()}"] if timing is not None else []),
        f"- **Overrides**: {', '.join(f'`{k}={v}`' for k, v in overrides.items()) if overrides else 'none'}",
        f"- **Store**: `{tracker.display_uri}`; generated {now()}",
        "",
    ]
    if plan.profile != "paper" and trains:
        lines += [
            f"> These are **{plan.profile}-profile** numbers on the data above, from small models trained briefly. "
            "They are not comparable in absolute value with the paper's (WebVid-2.5M pre-training, real benchmarks, "
            "full-size model)."
            + (
                " Compare directions: the last section says whether each paper difference is reproduced."
                if compares
                else ""
            ),
            "",
        ]
    return lines


def data_stages(plan: Plan) -> list[PlannedStage]:
    """The plan's stages that make the data (a generated world or a real data root), upstream first:
    those that feed another stage's ``data`` input. Found by the wiring, so no kind is named here."""
    feeding = {sid for s in plan.stages.values() for name, sid in s.inputs.items() if name == DATA_INPUT}
    return [stage for sid, stage in plan.stages.items() if sid in feeding]


def _data_summary(data: list[PlannedStage]) -> str:
    for stage in data[:1]:
        skip = {"seed", *stage.kind.ignore}
        scalars = [
            f"{k}={v}" for k, v in stage.params.items() if isinstance(v, (int, float, str)) and k not in skip
        ]
        return f" (`{stage.name}`: {', '.join(scalars[:8])})"
    return ""
