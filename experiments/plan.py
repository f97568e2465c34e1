"""From a spec to a graph of stages, each with a content identity.

A row of a table (or a trial of a sweep) at one seed resolves its pipeline: the
pipeline's stage configs, overridden in order by the pipeline's profile, the
spec's ``set`` and profile, the row's ``set`` and the command line's ``--set``.
Each stage's identity is a hash of its kind, code version, resolved config and
its inputs' identities, so two rows (or two tables) that need the same stage
share it, and changing one key changes exactly the stages downstream of it.
A ``threaded`` kind's identity holds the torch thread count it runs with
(``--threads``), and a kind with a ``fingerprint`` the hash of the files it reads.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evilm.config import ConfigError, close_match, deep_update, from_dict, to_dict
from experiments.specs import Pipeline, SpecError, TableSpec, load_pipeline
from experiments.stages import STAGE_KINDS, StageKind

ID_LENGTH = 20


@dataclass
class Layer:
    """One set of overrides and where it was written (for error messages)."""

    origin: str  # e.g. "ablations/table6.yaml: rows[2].set"
    overrides: Mapping[str, Any]


@dataclass
class Variant:
    """A row of a table or a trial of a sweep: a pipeline and what changes in it."""

    id: str
    pipeline: Pipeline
    pipeline_file: str
    layers: list[Layer]
    without: list[str] = field(default_factory=list)
    needed: list[str] = field(default_factory=list)  # stages whose results are read


@dataclass
class PlannedStage:
    id: str
    name: str  # the pipeline's name for it ("pretrain", "msrvtt_qa", ...)
    kind: StageKind
    config: Any  # the stage's config dataclass
    params: dict[str, Any]  # the same, as a plain dict (hashed, logged)
    inputs: dict[str, str]  # input name -> upstream stage id
    seed: int | None
    uses: list[tuple[str, int]] = field(default_factory=list)  # (variant id, seed)


@dataclass
class Plan:
    name: str
    profile: str
    seeds: list[int]
    threads: int = 1  # torch threads per stage (of a threaded kind): part of those stages' identities
    stages: dict[str, PlannedStage] = field(default_factory=dict)  # upstream first
    # (variant id, stage name, seed) -> stage id
    lookup: dict[tuple[str, str, int], str] = field(default_factory=dict)
    pipelines: dict[str, Pipeline] = field(default_factory=dict)  # variant id -> pipeline

    def stage_for(self, variant: str, stage: str, seed: int) -> PlannedStage | None:
        stage_id = self.lookup.get((variant, stage, seed))
        return self.stages.get(stage_id) if stage_id else None

    def critical_first(self) -> list[str]:
        """Stage ids, those with the most stages downstream first (plan order among equals): with lanes,
        the runner starts a shared tokenizer or pre-training before a row's last fine-tuning."""
        below: dict[str, set[str]] = {sid: set() for sid in self.stages}
        for sid in reversed(self.stages):  # upstream first, so a stage's consumers are complete here
            for upstream in set(self.stages[sid].inputs.values()):
                below[upstream] |= below[sid] | {sid}
        return sorted(self.stages, key=lambda sid: -len(below[sid]))

    def downstream_of(self, stage_id: str) -> set[str]:
        out: set[str] = set()
        for sid, stage in self.stages.items():  # upstream first, so one pass suffices
            if stage_id in stage.inputs.values() or out & set(stage.inputs.values()):
                out.add(sid)
        return out


def identity(
    kind: StageKind,
    params: Mapping[str, Any],
    inputs: Mapping[str, str],
    threads: int | None = None,
    fingerprint: str | None = None,
) -> str:
    payload: dict[str, Any] = {"kind": kind.name, "version": kind.version, "config": params, "inputs": dict(inputs)}
    if threads is not None and kind.threaded:
        payload["threads"] = int(threads)
    if fingerprint is not None:
        payload["fingerprint"] = fingerprint
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:ID_LENGTH]


def profile_layers(spec, pipeline: Pipeline, pipeline_file: str, spec_file: str, profile: str) -> list[Layer]:
    """The overrides every variant of ``spec`` shares, in order."""
    return [
        Layer(f"{pipeline_file}: profiles.{profile}", pipeline.profiles.get(profile, {})),
        Layer(f"{spec_file}: set", spec.set),
        Layer(f"{spec_file}: profiles.{profile}", spec.profiles.get(profile, {})),
    ]


def table_variants(spec: TableSpec, root: Path, profile: str, cli_set: Mapping[str, Any]) -> list[Variant]:
    spec_file = str(Path(root) / f"{spec.name}.yaml")
    variants = []
    known_stages: set[str] = set()
    for i, row in enumerate(spec.rows):
        base = row.base or spec.base
        pipeline = load_pipeline(base, root)
        known_stages |= set(pipeline.stages)
        if not row.measured:
            continue
        pipeline_file = str(Path(root) / "base" / f"{base}.yaml")
        for j, name in enumerate(row.without):
            if name not in pipeline.stages:
                raise SpecError(
                    f"no stage '{name}'{close_match(name, pipeline.stages)}; stages: {', '.join(pipeline.stages)}",
                    spec_file,
                    f"rows[{i}].without[{j}]",
                )
        needed = [
            c.stage
            for c in spec.columns
            if c.stage and c.stage in pipeline.stages and c.stage not in row.without
        ]
        layers = profile_layers(spec, pipeline, pipeline_file, spec_file, profile)
        # a --set of a stage this row's pipeline lacks (figure 1's cost-only row) does not apply to it
        row_cli = {k: v for k, v in cli_set.items() if str(k).partition(".")[0] in pipeline.stages}
        layers += [
            Layer(f"{spec_file}: rows[{i}].set", row.set),
            Layer(f"{spec_file}: rows[{i}].set_by_profile.{profile}", row.set_by_profile.get(profile, {})),
            Layer("--set", row_cli),
        ]
        variants.append(Variant(row.id, pipeline, pipeline_file, layers, list(row.without), needed))
    for key in cli_set:
        head = str(key).partition(".")[0]
        if head not in known_stages:
            raise SpecError(
                f"'{key}': no stage '{head}' in the pipelines of {spec.name or spec_file}"
                f"{close_match(head, known_stages)}; stages: {', '.join(sorted(known_stages))}",
                "--set",
            )
    for i, col in enumerate(spec.columns):
        if col.stage and col.stage not in known_stages:
            raise SpecError(
                f"no stage '{col.stage}' in the pipelines used{close_match(col.stage, known_stages)}; "
                f"stages: {', '.join(sorted(known_stages))}",
                spec_file,
                f"columns[{i}].stage",
            )
    return variants


def spec_bases(spec) -> list[str]:
    """The pipelines ``spec`` uses: its base, then its rows' own bases."""
    return list(dict.fromkeys([spec.base, *(r.base for r in getattr(spec, "rows", []) if r.base)]))


def spec_stages(spec, root: Path) -> set[str]:
    """The stage names of every pipeline ``spec`` uses (its base and its rows' bases)."""
    return {name for base in spec_bases(spec) for name in load_pipeline(base, root).stages}


def kinds_needed(spec, root: Path) -> list[str]:
    """The stage kinds running ``spec`` needs, in pipeline order: for a table or figure, the kinds of the
    stages its columns read and of their upstream stages; for a sweep, every kind of its pipeline."""
    columns = getattr(spec, "columns", None)
    kinds: list[str] = []
    for base in spec_bases(spec):
        stages = load_pipeline(base, root).stages
        wanted = stages if columns is None else closure([c.stage for c in columns if c.stage], stages)
        kinds += [decl.kind for name, decl in stages.items() if name in wanted]
    return list(dict.fromkeys(kinds))


def build_plan(
    name: str,
    variants: list[Variant],
    profile: str,
    seeds: list[int],
    kinds: Mapping[str, StageKind] | None = None,
    threads: int = 1,
) -> Plan:
    """The stages every variant needs at every seed, shared where identical; ``threads``: the torch
    thread count each stage runs with (part of the identity of threaded kinds)."""
    kinds = STAGE_KINDS if kinds is None else kinds
    if int(threads) < 1:
        raise SpecError(f"--threads must be at least 1, got {threads}")
    for seed in seeds:
        if not isinstance(seed, int) or seed < 0:
            raise SpecError(f"seeds must be integers >= 0, got {seed!r}")
    plan = Plan(name=name, profile=profile, seeds=list(seeds), threads=int(threads))
    defaults = _Defaults()
    for variant in variants:
        plan.pipelines[variant.id] = variant.pipeline
        for seed in seeds:
            resolved = resolve(variant, seed, kinds, profile, defaults, plan.threads)
            for stage in resolved.values():
                existing = plan.stages.setdefault(stage.id, stage)
                existing.uses.append((variant.id, seed))
                plan.lookup[(variant.id, stage.name, seed)] = stage.id
    return plan


def resolve(
    variant: Variant, seed: int, kinds: Mapping[str, StageKind], profile: str, defaults=None, threads: int = 1
) -> dict[str, PlannedStage]:
    """The stages ``variant`` needs at ``seed``, upstream first, with their identities."""
    defaults = defaults or _Defaults()
    pipeline = variant.pipeline
    stages = {**pipeline.stages, **pipeline.profile_stages.get(profile, {})}
    decls = {n: d for n, d in stages.items() if n not in variant.without}
    for name, decl in decls.items():
        if decl.kind not in kinds:
            raise SpecError(
                f"unknown stage kind '{decl.kind}'{close_match(decl.kind, kinds)}; known: {', '.join(kinds)}",
                variant.pipeline_file,
                f"stages.{name}.kind",
            )
    order = _topological(decls, variant.pipeline_file)
    wanted = closure(variant.needed, decls)
    configs = {
        n: deep_update(defaults(kinds[d.kind], profile), d.config) for n, d in decls.items() if n in wanted
    }
    for layer in variant.layers:
        for stage_name, overrides in _split(layer, pipeline, variant).items():
            if stage_name in configs:  # overrides of removed or unneeded stages do not apply
                configs[stage_name] = deep_update(configs[stage_name], overrides)
    out: dict[str, PlannedStage] = {}
    for stage_name in order:
        if stage_name not in wanted:
            continue
        decl = decls[stage_name]
        where = f"{variant.pipeline_file}: stages.{stage_name}"
        kind = kinds[decl.kind]
        config_dict = configs[stage_name]
        if decl.seeded and kind.seed_key:
            config_dict = deep_update(config_dict, {kind.seed_key: seed})
        try:
            config_cls = kind.load_config()
        except (ImportError, AttributeError) as err:
            raise StageUnavailable(kind.name, err) from None
        try:
            config = from_dict(config_cls, config_dict)
        except ConfigError as err:
            origin = _origin(variant, stage_name, err.path) or where
            raise SpecError(f"{stage_name}.{err} (row/trial '{variant.id}', seed {seed})", origin) from None
        params = to_dict(config)

        inputs: dict[str, str] = {}
        for input_name, upstream in decl.inputs.items():
            if input_name not in kind.inputs:
                raise SpecError(
                    f"stage kind '{kind.name}' has no input '{input_name}'{close_match(input_name, kind.inputs)}; "
                    f"inputs: {', '.join(kind.inputs) or '(none)'}",
                    variant.pipeline_file,
                    f"stages.{stage_name}.inputs",
                )
            if upstream not in decls:
                continue  # removed by the row's ``without``
            upstream_kind = decls[upstream].kind
            if upstream_kind not in kind.inputs[input_name].kinds:
                raise SpecError(
                    f"input '{input_name}' takes a stage of kind {', '.join(kind.inputs[input_name].kinds)}, "
                    f"but '{upstream}' is a '{upstream_kind}'",
                    variant.pipeline_file,
                    f"stages.{stage_name}.inputs.{input_name}",
                )
            inputs[input_name] = out[upstream].id
        for input_name, spec_in in kind.inputs.items():
            if spec_in.required and input_name not in inputs:
                raise SpecError(
                    f"stage '{stage_name}' ({kind.name}) needs input '{input_name}', which is missing "
                    f"or removed (row/trial '{variant.id}')",
                    variant.pipeline_file,
                    f"stages.{stage_name}.inputs",
                )
        fingerprint = defaults.fingerprint(kind, config, params)
        stage_id = identity(kind, _without_keys(params, kind.ignore), inputs, threads, fingerprint)
        out[stage_name] = PlannedStage(
            stage_id,
            stage_name,
            kind,
            config,
            params,
            inputs,
            seed if decl.seeded and kind.seed_key else None,
        )
    return out


class _Defaults:
    """Each kind's profile defaults and each config's fingerprint, computed once per plan (presets can
    be slow to build; a fingerprint hashes files)."""

    def __init__(self):
        self._cache: dict[tuple[int, str], dict[str, Any]] = {}
        self._fingerprints: dict[tuple[int, str], str | None] = {}

    def fingerprint(self, kind: StageKind, config: Any, params: dict[str, Any]) -> str | None:
        if kind.fingerprint is None:
            return None
        key = (id(kind), json.dumps(params, sort_keys=True, default=str))
        if key not in self._fingerprints:
            try:
                self._fingerprints[key] = kind.content_fingerprint(config)
            except (ValueError, OSError) as err:  # e.g. an unknown benchmark name
                raise SpecError(f"stage kind '{kind.name}': {type(err).__name__}: {err}") from None
        return self._fingerprints[key]

    def __call__(self, kind: StageKind, profile: str) -> dict[str, Any]:
        key = (id(kind), profile)
        if key not in self._cache:
            try:
                self._cache[key] = kind.defaults(profile)
            except (ImportError, AttributeError) as err:
                raise StageUnavailable(kind.name, err) from None
            except ConfigError as err:
                raise SpecError(
                    f"stage kind '{kind.name}' has no preset for profile '{profile}': {err}"
                ) from None
        return copy.deepcopy(self._cache[key])


def _without_keys(params: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    out = copy.deepcopy(params)
    for key in keys:
        *parents, last = key.split(".")
        node: Any = out
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(last, None)
    return out


class StageUnavailable(SpecError):
    """A stage kind whose code is not importable (not written yet, or broken)."""

    def __init__(self, kind: str, err: Exception):
        super().__init__(f"stage kind '{kind}' is not available: {type(err).__name__}: {err}")
        self.kind = kind


def _split(layer: Layer, pipeline: Pipeline, variant: Variant) -> dict[str, dict[str, Any]]:
    """``{"pretrain.mlm_prob": 0.2}`` or ``{"pretrain": {"mlm_prob": 0.2}}`` -> per stage."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in (layer.overrides or {}).items():
        head, _, rest = str(key).partition(".")
        if head not in pipeline.stages:
            raise SpecError(
                f"'{key}': no stage '{head}' in pipeline {Path(variant.pipeline_file).stem}"
                f"{close_match(head, pipeline.stages)}; stages: {', '.join(pipeline.stages)}",
                layer.origin,
            )
        if rest:
            value = {rest: value}
        elif not isinstance(value, Mapping):
            raise SpecError(f"'{key}': expected '{head}.<key>: value' or a mapping", layer.origin)
        out[head] = deep_update(out.get(head, {}), value)
    return out


def _origin(variant: Variant, stage: str, path: str) -> str | None:
    """The last layer that wrote ``stage.path`` (or a part of it)."""
    full = f"{stage}.{path}" if path else stage
    for layer in reversed(variant.layers):
        for key in _flatten(layer.overrides or {}):
            if key == full or key.startswith(full + ".") or full.startswith(key + "."):
                return f"{layer.origin}['{key}']"
    return None


def _flatten(data: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key, value in data.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            keys += _flatten(value, full)
        else:
            keys.append(full)
    return keys


def _topological(decls, file: str) -> list[str]:
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str, chain: list[str]):
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise SpecError(f"stages form a cycle: {' -> '.join([*chain, name])}", file, "stages")
        state[name] = 1
        for upstream in decls[name].inputs.values():
            if upstream in decls:
                visit(upstream, [*chain, name])
        state[name] = 2
        order.append(name)

    for name in decls:
        visit(name, [])
    return order


def closure(needed: list[str], decls) -> set[str]:
    """The stages of ``decls`` named in ``needed`` and every stage upstream of them."""
    out: set[str] = set()
    todo = [n for n in needed if n in decls]
    while todo:
        name = todo.pop()
        if name in out:
            continue
        out.add(name)
        todo += [u for u in decls[name].inputs.values() if u in decls]
    return out
