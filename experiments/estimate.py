"""How long a plan will take, before it runs (``run --dry-run``).

A done stage counts its recorded seconds. A stage to run counts the median seconds of this store's newest
finished runs of the same pipeline stage and kind (``pretrain``; ``msrvtt_qa`` fine-tuned as E-ViLM or as
the supervised ceiling; ...) on the same profile and thread count: an estimate, since a row's settings
(its losses, its decoder) change a stage's cost, and the store may hold runs of older code. The wall time
of ``--jobs N`` lanes is at least the compute over N; on two cores the lanes share memory bandwidth, so it
is usually somewhat more.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from experiments.outcomes import Outcome
from experiments.tracking import TAG, Tracker, run_seconds

NEWEST = 10  # finished runs of a stage (name, kind) that the estimate of one more reads


@dataclass
class PlanEstimate:
    done: int = 0
    done_s: float = 0.0  # the done stages' recorded seconds
    todo: int = 0
    todo_s: float = 0.0  # estimated, for the stages to run that have a basis
    no_basis: dict[str, int] = field(default_factory=dict)  # stage name -> stages to run with no past run

    def __add__(self, other: PlanEstimate) -> PlanEstimate:
        no_basis = dict(self.no_basis)
        for name, n in other.no_basis.items():
            no_basis[name] = no_basis.get(name, 0) + n
        return PlanEstimate(self.done + other.done, self.done_s + other.done_s, self.todo + other.todo,
                            self.todo_s + other.todo_s, no_basis)

    @property
    def cold_s(self) -> float:
        """The whole plan's compute, every stage run (done ones at their recorded time)."""
        return self.done_s + self.todo_s


def past_seconds(tracker: Tracker, profile: str, threads: int) -> dict[tuple[str, str], list[float]]:
    """(stage name, kind) -> the seconds of its finished runs on ``profile`` at ``threads``, newest first."""
    runs = tracker.search_all(f"attributes.status = 'FINISHED' and tags.`{TAG}profile` = '{profile}'")
    runs.sort(key=lambda r: r.info.end_time or 0, reverse=True)
    out: dict[tuple[str, str], list[float]] = defaultdict(list)
    for run in runs:
        tags = run.data.tags
        name, kind, seconds = tags.get(f"{TAG}stage"), tags.get(f"{TAG}kind", ""), run_seconds(run)
        if name and seconds > 0 and str(tags.get(f"{TAG}threads", threads)) == str(threads):
            out[(name, kind)].append(seconds)
    return dict(out)


def estimate(outcomes: Iterable[Outcome], past: Mapping[tuple[str, str], list[float]]) -> PlanEstimate:
    """The plan's compute from a dry run's outcomes (``done`` ones carry their recorded seconds)."""
    est = PlanEstimate()
    for outcome in outcomes:
        if outcome.status == "done":
            est.done += 1
            est.done_s += outcome.seconds
            continue
        est.todo += 1
        basis = past.get((outcome.stage.name, outcome.stage.kind.name), [])[:NEWEST]
        if basis:
            est.todo_s += statistics.median(basis)
        else:
            est.no_basis[outcome.stage.name] = est.no_basis.get(outcome.stage.name, 0) + 1
    return est


def describe(est: PlanEstimate, jobs: int) -> str:
    """e.g. ``stage compute: 41 min recorded for 30 done stages; about 1 h 2 min for the 18 to run ...``.

    Stages with no past run to go by are named, not guessed: totals that leave them out say "more than".
    """
    from experiments.reporting import format_duration

    lanes = max(1, jobs)
    uncounted = sum(est.no_basis.values())
    missing = ", ".join(f"{name} x{n}" for name, n in sorted(est.no_basis.items()))
    done = f"{format_duration(est.done_s)} recorded for {est.done} done stage(s)" if est.done else "no stage done yet"
    parts = [f"stage compute: {done}"]
    if est.todo and uncounted == est.todo:
        parts.append(f"no estimate for the {est.todo} to run: no finished run of {missing} in this store to go by")
    elif est.todo:
        text = f"about {format_duration(est.todo_s)} for the {est.todo} to run"
        if uncounted:
            text += f" ({uncounted} of them not counted: no finished run of {missing} to go by)"
        parts.append(text)
        parts.append(f"at --jobs {jobs}: at least {format_duration(est.todo_s / lanes)} of wall time")
    if est.cold_s > 0:
        size = "more than" if uncounted else "about"
        parts.append(f"cold (every stage): {size} {format_duration(est.cold_s)}, "
                     f"at least {format_duration(est.cold_s / lanes)} of wall time at --jobs {jobs}")
    return "; ".join(parts)
