"""Whether a report is up to date, without opening the store.

A report depends on its spec, the stages its plan names, the calibration's stages (its reference lines)
and the code that writes it. ``report_key`` hashes them, with which of the calibration's stages have
finished (their manifests in the runs folder); the key goes into the report's summary line. A rerun that
reused every stage and finds the same key leaves the report as it is, so a cached ``run`` does not read
MLflow (the store is what makes writing a report take seconds).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from experiments.manifests import MANIFEST
from experiments.plan import Plan
from experiments.specs import SpecError, spec_files

# the code a report's text comes from: this package, the statistics and the spec schema
_CODE = [*sorted(Path(__file__).parent.glob("*.py")), Path(__file__).parents[1] / "stats.py",
         Path(__file__).parents[1] / "specs.py"]
_KEY = re.compile(r'<!-- evilm-report .*?"key": "([0-9a-f]+)"')


def report_key(spec, plan: Plan, overrides: dict[str, Any], root: Path, runs_dir: Path) -> str:
    """A hash of everything the report of ``spec`` under ``plan`` is made from."""
    from experiments.reporting.floors import CALIBRATION, calibration_plan

    parts: dict[str, Any] = {
        "spec": spec.model_dump(mode="json"),
        "profile": plan.profile,
        "stages": sorted(plan.stages),
        "overrides": {str(k): repr(v) for k, v in sorted(overrides.items())},
        "code": hashlib.sha256(b"".join(f.read_bytes() for f in _CODE)).hexdigest(),
    }
    if CALIBRATION in spec_files(root):
        try:
            cal, cal_plan, _ = calibration_plan(root, plan.profile, overrides)
            parts["calibration"] = cal.model_dump(mode="json")
            parts["calibration_finished"] = sorted(
                sid for sid in cal_plan.stages if (Path(runs_dir) / sid / MANIFEST).is_file())
        except SpecError as err:
            parts["calibration"] = str(err)
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


def is_up_to_date(path: Path, key: str) -> bool:
    """Whether the report at ``path`` was written with ``key``."""
    if not path.is_file():
        return False
    match = _KEY.search(path.read_text(errors="replace"))
    return match is not None and match.group(1) == key
