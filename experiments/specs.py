"""Experiment specs: the YAML files under ``ablations/`` and their typed schema.

Three kinds of spec, each a file named after it:

- ``ablations/<name>.yaml`` with ``kind: table`` (or ``kind: figure``): rows
  (variants, as overrides of a shared pipeline), columns (stage x metric), seeds,
  a default profile and the paper's published value for every cell.
- ``ablations/sweeps/<name>.yaml`` with ``kind: sweep``: a search space over
  pipeline keys, an objective, seeds.
- ``ablations/base/<name>.yaml``: a pipeline, i.e. named stages (kind, inputs,
  config) plus per-profile overrides, shared by reference (``base: evilm``).

Every error is a ``SpecError`` naming the file, the key path, what is allowed
and the close match for a typo.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from evilm.config import close_match

Profile = Literal["smoke", "quick", "paper"]
Seed = Annotated[int, Field(ge=0)]  # NumPy and torch seeds are unsigned
PROFILES: tuple[str, ...] = ("smoke", "quick", "paper")

SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # yaml.safe_load, with libyaml when present
DEFAULT_SPECS_DIR = Path(__file__).resolve().parent.parent / "ablations"


class SpecError(ValueError):
    """A spec is missing, unknown or invalid. Names the file and the key path."""

    def __init__(self, message: str, file: str | Path | None = None, path: str = ""):
        self.file = str(file) if file else None
        self.path = path
        where = ": ".join(p for p in (self.file, path) if p)
        super().__init__(f"{where}: {message}" if where else message)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- pipelines (ablations/base/*.yaml) ------------------------------------------------


class StageDecl(_Strict):
    kind: str
    inputs: dict[str, str] = Field(default_factory=dict)  # input name -> upstream stage name
    seeded: bool = True  # the experiment seed is set as ``config.seed``
    config: dict[str, Any] = Field(default_factory=dict)


class Pipeline(_Strict):
    description: str = ""
    dataset: str = ""  # one line for report headers: which data this pipeline sees
    stages: dict[str, StageDecl]
    profiles: dict[Profile, dict[str, Any]] = Field(default_factory=dict)  # "stage.key": value per profile
    # a stage declared anew for one profile (e.g. the paper profile reads a real data root)
    profile_stages: dict[Profile, dict[str, StageDecl]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_inputs(self):
        declared = [(n, s) for n, s in self.stages.items()]
        declared += [(n, s) for stages in self.profile_stages.values() for n, s in stages.items()]
        for name, stage in declared:
            for input_name, upstream in stage.inputs.items():
                if upstream not in self.stages:
                    raise ValueError(
                        f"stages.{name}.inputs.{input_name}: no stage '{upstream}'"
                        f"{close_match(upstream, self.stages)}; stages: {', '.join(self.stages)}"
                    )
        for profile, stages in self.profile_stages.items():
            for name in stages:
                if name not in self.stages:
                    raise ValueError(
                        f"profile_stages.{profile}.{name}: replaces no stage{close_match(name, self.stages)}"
                    )
        return self


# --- tables and figures ---------------------------------------------------------------


class Column(_Strict):
    id: str
    label: str
    stage: str = ""  # pipeline stage whose metric fills the column ("" = paper only)
    metric: str = ""  # metric name; "{var}" placeholders come from the row's vars
    scale: float = 1.0  # measured value x scale (e.g. 100 for a fraction shown in %)
    fmt: str = ".1f"
    higher_is_better: bool = True
    per_item: bool = True  # whether the stage's per-item results exist for this metric
    # a metric some rows' stages do not have (a tokenizer that does not reconstruct has no PSNR): a finished
    # run without it reads "—", not a missing run
    optional: bool = False


class Row(_Strict):
    id: str
    label: str
    base: str | None = None  # another pipeline for this row (default: the table's)
    set: dict[str, Any] = Field(default_factory=dict)  # overrides "stage.key.path": value
    # overrides for one profile, after ``set`` (e.g. model sizes around that profile's own model)
    set_by_profile: dict[Profile, dict[str, Any]] = Field(default_factory=dict)
    without: list[str] = Field(default_factory=list)  # stages removed from the pipeline
    vars: dict[str, str] = Field(default_factory=dict)  # fills "{var}" in column metrics
    baseline: str | None = None  # compare this row with another row than the table's baseline
    paper: dict[str, int | float | str | None] = Field(default_factory=dict)  # column id -> value as printed
    measured: bool = True  # False: a paper-only row (a method this suite cannot run)
    # a reference line for other tables' reports (the calibration spec): a floor (a video-blind model,
    # random initialisation) or a ceiling (a supervised model); reports match it to their columns by metric
    role: Literal["floor", "ceiling"] | None = None


class PlotSpec(_Strict):
    type: Literal["bubble", "bars"]
    x: str  # column id (bubble) or ignored (bars: rows on x)
    y: list[str]  # column ids
    size: str | None = None  # column id for bubble area
    group: str | None = None  # bars: row var that groups bars (e.g. model size)
    series: str | None = None  # bars: row var that colours bars (e.g. with/without MVM)


class Include(_Strict):
    """A Markdown artifact of one stage, appended to the report under a heading."""

    stage: str
    artifact: str
    title: str = ""


class TableSpec(_Strict):
    kind: Literal["table"]
    name: str = ""
    title: str
    caption: str = ""
    note: str = ""
    base: str
    profile: Profile = "quick"
    seeds: list[Seed] = Field(default_factory=lambda: [0])
    seeds_by_profile: dict[Profile, list[Seed]] = Field(default_factory=dict)  # e.g. one seed for smoke
    set: dict[str, Any] = Field(default_factory=dict)
    profiles: dict[Profile, dict[str, Any]] = Field(default_factory=dict)
    baseline: str | None = None  # row id the differences are taken against
    columns: list[Column]
    rows: list[Row]
    include: list[Include] = Field(default_factory=list)  # stage artifacts appended to the report

    @model_validator(mode="after")
    def _check_ids(self):
        col_ids = [c.id for c in self.columns]
        row_ids = [r.id for r in self.rows]
        for kind, ids in (("columns", col_ids), ("rows", row_ids)):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                raise ValueError(f"{kind}: duplicate id(s) {', '.join(dupes)}")
        baselines = [("baseline", self.baseline)] + [
            (f"rows[{i}].baseline", r.baseline) for i, r in enumerate(self.rows)
        ]
        for where, base in baselines:
            if base is not None and base not in row_ids:
                raise ValueError(
                    f"{where}: no row '{base}'{close_match(base, row_ids)}; rows: {', '.join(row_ids)}"
                )
        for i, row in enumerate(self.rows):
            for key in row.paper:
                if key not in col_ids:
                    raise ValueError(
                        f"rows[{i}].paper.{key}: no column '{key}'{close_match(key, col_ids)}; "
                        f"columns: {', '.join(col_ids)}"
                    )
        return self


class FigureSpec(TableSpec):
    kind: Literal["figure"]
    plot: PlotSpec

    @model_validator(mode="after")
    def _check_plot(self):
        col_ids = [c.id for c in self.columns]
        for key in [self.plot.x, *self.plot.y, self.plot.size]:
            if key and self.plot.type == "bubble" and key not in col_ids:
                raise ValueError(
                    f"plot: no column '{key}'{close_match(key, col_ids)}; columns: {', '.join(col_ids)}"
                )
        return self


# --- sweeps -----------------------------------------------------------------------------


class SearchParam(_Strict):
    grid: list[float | int | str | bool] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[float | int | str | bool] | None = None
    integer: bool = False  # suggest integers in [low, high]

    @model_validator(mode="after")
    def _one_form(self):
        forms = [
            self.grid is not None,
            self.low is not None or self.high is not None,
            self.choices is not None,
        ]
        if sum(forms) != 1:
            raise ValueError("give exactly one of: grid: [..], low:/high: (a range), choices: [..]")
        if forms[1] and (self.low is None or self.high is None or self.low >= self.high):
            raise ValueError(f"a range needs low < high, got low={self.low}, high={self.high}")
        return self


class Objective(_Strict):
    stage: str
    metric: str
    direction: Literal["maximize", "minimize"] = "maximize"
    label: str = ""
    scale: float = 1.0


class SweepSpec(_Strict):
    kind: Literal["sweep"]
    name: str = ""
    title: str
    note: str = ""
    base: str
    profile: Profile = "quick"
    seeds: list[Seed] = Field(default_factory=lambda: [0, 1, 2])  # every trial runs each seed
    seeds_by_profile: dict[Profile, list[Seed]] = Field(default_factory=dict)
    set: dict[str, Any] = Field(default_factory=dict)
    profiles: dict[Profile, dict[str, Any]] = Field(default_factory=dict)
    params: dict[str, SearchParam]  # "stage.key.path" -> search space
    objective: Objective
    n_trials: int | None = None  # ranges only; a grid runs every point
    paper: dict[str, Any] = Field(default_factory=dict)  # the paper's chosen value per param

    @property
    def is_grid(self) -> bool:
        return all(p.grid is not None for p in self.params.values())

    @model_validator(mode="after")
    def _check(self):
        kinds = {p.grid is not None for p in self.params.values()}
        if len(kinds) > 1:
            raise ValueError("params: mix of grids and ranges; use grids for all (grid search) or none (TPE)")
        if not self.is_grid and not self.n_trials:
            raise ValueError("n_trials: required when params are ranges/choices (TPE)")
        for key in self.paper:
            if key not in self.params:
                raise ValueError(f"paper.{key}: not a swept param{close_match(key, self.params)}")
        return self


Spec = TableSpec | FigureSpec | SweepSpec
SPEC_CLASSES: dict[str, type[BaseModel]] = {"table": TableSpec, "figure": FigureSpec, "sweep": SweepSpec}


# --- loading ----------------------------------------------------------------------------


def specs_dir(path: str | Path | None = None) -> Path:
    return Path(path or os.environ.get("EVILM_SPECS") or DEFAULT_SPECS_DIR)


def spec_files(root: Path) -> dict[str, Path]:
    """Every table, figure and sweep spec under ``root``, by name."""
    files: dict[str, Path] = {}
    for path in sorted(root.glob("*.yaml")) + sorted((root / "sweeps").glob("*.yaml")):
        if path.stem in files:
            raise SpecError(f"the name '{path.stem}' is used twice (also {files[path.stem]})", path)
        files[path.stem] = path
    return files


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.load(path.read_text(), Loader=SAFE_LOADER)
    except yaml.YAMLError as err:
        raise SpecError(f"not valid YAML: {err}", path) from None
    except OSError as err:
        raise SpecError(f"cannot read: {err}", path) from None
    if not isinstance(data, dict):
        raise SpecError("expected a mapping at the top level", path)
    return data


def load_spec(name: str, root: str | Path | None = None) -> Spec:
    root = specs_dir(root)
    files = spec_files(root)
    if name not in files:
        known = ", ".join(files) or "(none)"
        raise SpecError(f"unknown table, figure or sweep '{name}'{close_match(name, files)}; known: {known}")
    path = files[name]
    data = read_yaml(path)
    kind = data.get("kind")
    if kind not in SPEC_CLASSES:
        raise SpecError(
            f"{kind!r} is not one of {', '.join(SPEC_CLASSES)}{close_match(kind, SPEC_CLASSES)}", path, "kind"
        )
    spec = validate(SPEC_CLASSES[kind], data, path)
    spec.name = name
    load_pipeline(spec.base, root, where=(path, "base"))
    for i, row in enumerate(getattr(spec, "rows", [])):
        if row.base:
            load_pipeline(row.base, root, where=(path, f"rows[{i}].base"))
    return spec


def load_pipeline(
    name: str, root: str | Path | None = None, where: tuple[Path, str] | None = None
) -> Pipeline:
    base_dir = specs_dir(root) / "base"
    path = base_dir / f"{name}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in base_dir.glob("*.yaml"))
        file, key = where or (None, "")
        raise SpecError(
            f"no pipeline '{name}' in {base_dir}{close_match(name, known)}; known: {', '.join(known)}",
            file,
            key,
        )
    return _pipeline(path, path.stat().st_mtime_ns).model_copy(deep=True)


@functools.lru_cache(maxsize=64)
def _pipeline(path: Path, mtime_ns: int) -> Pipeline:
    return validate(Pipeline, read_yaml(path), path)


def validate(cls: type[BaseModel], data: dict[str, Any], path: Path):
    try:
        return cls.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        raise SpecError(_describe(first, cls), path, _key_path(first["loc"])) from None


def _key_path(loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _describe(error: dict[str, Any], cls: type[BaseModel]) -> str:
    kind = error["type"]
    loc = error["loc"]
    if kind == "extra_forbidden":
        allowed = _fields_at(cls, loc[:-1])
        key = loc[-1]
        return f"unknown key '{key}'{close_match(key, allowed)}; allowed: {', '.join(allowed)}"
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        choices = [c.strip().strip("'\"") for c in expected.replace(" or ", ",").split(",") if c.strip()]
        return f"{error['input']!r} is not one of {expected}{close_match(error['input'], choices)}"
    if kind == "missing":
        return f"required key '{loc[-1]}' is missing"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    return f"{error['msg']} (got {error.get('input')!r})"


def _fields_at(cls: type[BaseModel], loc) -> list[str]:
    """The field names of the model reached by following ``loc`` from ``cls``."""
    import typing

    current: Any = cls
    for part in loc:
        if isinstance(part, int) or not (isinstance(current, type) and issubclass(current, BaseModel)):
            continue
        field = current.model_fields.get(part)
        if field is None:
            continue
        current = _model_in(field.annotation, typing)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _model_in(annotation: Any, typing) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg, typing)
        if found is not None:
            return found
    return None


def whole_number_arg(text: str, minimum: int, what: str = "a whole number") -> int:
    """A command-line whole number ``>= minimum``, or argparse's error naming ``what``."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} is a whole number >= {minimum}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{what} is a whole number >= {minimum}, got {value}")
    return value


def seed_arg(text: str) -> int:
    """A ``--seeds`` value: a whole number >= 0 (NumPy and torch seeds are unsigned)."""
    return whole_number_arg(text, 0, "a seed")


def parse_sets(items: list[str] | None) -> dict[str, Any]:
    """``--set key=value`` items as a dict; values parse as YAML (0.5, true, [1, 2])."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SpecError(f"--set {item!r}: expected key=value, e.g. pretrain.mask.ratio=0.5")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            parsed = value
        if isinstance(parsed, str) and re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+", parsed.strip()):
            parsed = float(parsed)  # YAML 1.1 reads 1e-6 (no dot) as a string; a researcher means the number
        out[key.strip()] = parsed
    return out
