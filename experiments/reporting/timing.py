"""How long a table took, in words: this command's wall time and the stage compute behind its numbers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from experiments.plan import Plan
from experiments.tracking import Tracker, run_seconds

if TYPE_CHECKING:
    from experiments.runner import Outcome


def format_duration(seconds: float) -> str:
    """``0.4 s``, ``42 s``, ``3 min 12 s``, ``14 min``, ``2 h 5 min``."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = int(round(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 10:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    if minutes + (secs >= 30) < 60:
        return f"{minutes + (secs >= 30)} min"
    hours, minutes = divmod(minutes + (secs >= 30), 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


@dataclass
class Timing:
    """How long a table took: this command's wall time, and the stage time behind its numbers."""

    wall_s: float | None = None  # None: the report was rewritten from the store, not run
    ran_s: float = 0.0  # stages run (or failed) in this command
    reused_s: float = 0.0  # stages reused from earlier runs: their original seconds

    @classmethod
    def from_outcomes(cls, outcomes: Mapping[str, Outcome], wall_s: float | None) -> Timing:
        ran = sum(o.seconds for o in outcomes.values() if o.status in ("ran", "failed"))
        reused = sum(o.seconds for o in outcomes.values() if o.status == "reused")
        return cls(wall_s, ran, reused)

    @classmethod
    def from_store(cls, plan: Plan, tracker: Tracker) -> Timing:
        """The plan's finished stages, all counted as earlier runs (``report`` runs nothing)."""
        runs = [tracker.finished_run(sid) for sid in plan.stages]
        return cls(None, 0.0, sum(run_seconds(r) for r in runs if r is not None))

    @property
    def compute_s(self) -> float:
        return self.ran_s + self.reused_s

    def wall_text(self) -> str:
        return "—" if self.wall_s is None else format_duration(self.wall_s)

    def describe(self) -> str:
        """e.g. ``3 min 12 s this run; stage compute 14 min (11 min reused from earlier runs)``."""
        head = (
            "not recorded (report rewritten from the store)"
            if self.wall_s is None
            else f"{format_duration(self.wall_s)} this run"
        )
        tail = f"stage compute {format_duration(self.compute_s)}"
        if self.wall_s is None:
            tail += " (the finished runs in the store)"
        elif self.reused_s and self.ran_s:
            tail += f" ({format_duration(self.reused_s)} reused from earlier runs)"
        elif self.reused_s:
            tail += " (all reused from earlier runs)"
        return f"{head}; {tail}"
