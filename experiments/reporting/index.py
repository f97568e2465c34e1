"""``reports/README.md``: one line per report in the folder, from the summary line each report ends with.

Each report ends with an HTML comment holding a one-line machine-readable summary (profile, date, wall
time, verdict counts); ``write_index`` regenerates the index from those lines alone.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from evilm.files import atomic_write_text
from experiments.reporting.markdown import markdown_table, now
from experiments.reporting.timing import Timing, format_duration

INDEX = "README.md"
SUMMARY_TAG = "evilm-report"  # <!-- evilm-report {json} --> at the end of each report

_SUMMARY = re.compile(r"<!-- " + SUMMARY_TAG + r" (\{.*\}) -->\s*\Z", re.S)
_KIND_ORDER = {"table": 0, "figure": 1, "sweep": 2}


def summary_comment(
    spec, profile: str, timing: Timing | None, summary: str, counts: dict[str, Any] | None = None,
    key: str | None = None,
) -> str:
    """The report's last line: what ``write_index`` lists, as JSON in an HTML comment (not rendered).
    ``counts``: the verdicts per row and per difference, the cells at their floor (tables)."""
    data = {
        "spec": spec.name,
        "kind": spec.kind,
        "title": spec.title,
        "profile": profile,
        "generated": now(),
        "wall_s": None if timing is None or timing.wall_s is None else round(timing.wall_s, 1),
        "compute_s": None if timing is None else round(timing.compute_s, 1),
        "reused_s": None if timing is None else round(timing.reused_s, 1),
        "summary": summary,
        **(counts or {}),
        **({"key": key} if key else {}),  # what it was made from (experiments.reporting.freshness)
    }
    blob = json.dumps(data, ensure_ascii=False).replace("-->", "--\\u003e")
    return f"\n<!-- {SUMMARY_TAG} {blob} -->\n"


def read_summary(path: Path) -> dict[str, Any]:
    """A report's summary line; for a report without one (an older version wrote it), what its header
    says (title, profile, date) and a note that the summary is missing."""
    text = path.read_text(errors="replace")
    match = _SUMMARY.search(text)
    if match:
        try:
            return json.loads(match.group(1))
        except ValueError:
            pass
    spec = path.stem.split(".")[0]
    title = re.search(r"^# (.+)$", text, re.M)
    profile = re.search(r"\*\*Profile\*\*: `(\w+)`", text)
    date = re.search(r"generated (\d{4}-\d\d-\d\d \d\d:\d\d)", text)
    kind = "sweep" if "Optuna study" in text else "figure" if spec.startswith("figure") else "table"
    return {
        "spec": spec,
        "kind": kind,
        "title": title.group(1).strip() if title else spec,
        "profile": profile.group(1) if profile else "?",
        "generated": date.group(1) if date else "?",
        "wall_s": None,
        "compute_s": None,
        "summary": f"(no summary recorded: `python -m experiments report {spec}` rewrites the report)",
    }


def natural_key(text: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def write_index(reports_dir: Path) -> Path:
    """Regenerate ``reports_dir/README.md``: one line per report found there (tables, then figures, then
    sweeps), linking it, with its profile, date, wall time and a one-line verdict summary."""
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for path in reports_dir.glob("*.md"):
        if path.name == INDEX:
            continue
        data = read_summary(path)
        entries.append((path, data))
    entries.sort(key=lambda e: (_KIND_ORDER.get(e[1].get("kind"), 3), natural_key(e[0].stem)))
    rows = []
    for path, data in entries:
        wall = "—" if data.get("wall_s") is None else format_duration(data["wall_s"])
        if data.get("compute_s"):
            wall += f" (stage compute {format_duration(data['compute_s'])})"
        rows.append(
            [
                f"[{data.get('title', path.stem)}]({path.name})",
                f"`{data.get('profile', '?')}`",
                data.get("generated", "?"),
                wall,
                data.get("summary", ""),
            ]
        )
    lines = [
        "# Reports",
        "",
        "Written by `python -m experiments` after every report it writes (do not edit: it is regenerated from the "
        "reports in this folder). A `smoke` or `quick` report is a result on the generated world, not a paper-scale "
        "result. Verdicts on each paper difference, from the 95% interval of the measured difference from the "
        "baseline row and its half-width, the minimum detectable difference (MDD): *reproduced* (the interval "
        "excludes 0 on the paper's side), *contradicted* (it excludes 0 on the other side), *not reproduced* (it "
        "spans 0 although the MDD is below the paper's |Δ|: the suite could have seen the effect), *underpowered* "
        "(it spans 0 and the MDD exceeds the paper's |Δ|, or one seed gave no interval: the suite could not have "
        "seen it). A row is contradicted when any compared column is, reproduced when every one is, not "
        "reproduced when some column could have seen its effect, underpowered otherwise. *~ floor*: a cell within "
        "noise of its best floor (chance, a video-blind rule or model, random init). Wall time: the command that "
        "wrote the report (— when it was rewritten from the store); stage compute counts reused stages at their "
        "original time.",
        "",
    ]
    if rows:
        lines += [markdown_table(["report", "profile", "date", "wall time", "summary"], rows), ""]
        lines += _totals([data for _, data in entries])
    else:
        lines += ["(no reports yet)"]
    path = reports_dir / INDEX
    atomic_write_text(path, "\n".join(lines).rstrip() + "\n")
    return path


def _totals(summaries: list[dict[str, Any]]) -> list[str]:
    """The four verdicts counted over every report that has them (per difference and per row)."""
    from experiments.stats import VERDICTS

    lines = []
    for level in ("differences", "rows"):
        counts = {k: sum(int(d.get(level, {}).get(k, 0)) for d in summaries) for k in VERDICTS}
        if sum(counts.values()):
            name = "paper differences" if level == "differences" else "ablation rows"
            lines.append(
                f"- **All {name}** ({sum(counts.values())}): " + ", ".join(f"{n} {k}" for k, n in counts.items())
            )
    floors = [d["floors"] for d in summaries if isinstance(d.get("floors"), dict)]
    if floors:
        checked = sum(f.get("checked", 0) for f in floors)
        lines.append(
            f"- **Measured cells against their floor** ({checked}): {sum(f.get('at_floor', 0) for f in floors)} "
            f"~ floor, {sum(f.get('below_floor', 0) for f in floors)} below floor, "
            f"{sum(f.get('below_chance', 0) for f in floors)} below chance (likely bugs)"
        )
    return lines
