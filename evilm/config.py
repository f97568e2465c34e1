"""Typed configuration helpers shared by every module.

Each module owns a small ``@dataclass`` config. ``from_dict`` builds one from a
plain mapping (a YAML spec, ``--set`` overrides) and fails with one clear
``ConfigError`` that names the key path, what is allowed and the closest match
for a typo. ``to_dict`` / ``merge`` go the other way, so a resolved config can be
hashed, logged and rebuilt. ``from_preset`` gives a named profile's config (every preset
function of the library goes through it).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value is missing, unknown or invalid. ``path`` names the key."""

    def __init__(self, path: str, message: str):
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


def close_match(word: str, choices) -> str:
    """A ' (did you mean ...?)' suffix for a typo, or ''."""
    match = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


def pick(table: Mapping[str, T], name: str, key: str, what: str | None = None) -> T:
    """``table[name]``, or a ``ConfigError`` at ``key`` naming the unknown ``what``, the closest
    match and the known names."""
    if name not in table:
        raise ConfigError(key, f"unknown {what or key} '{name}'{close_match(name, table)}; known: {', '.join(table)}")
    return table[name]


def from_preset(cls: type[T], presets: Mapping[str, Mapping[str, Any]], name: str,
                overrides: Mapping[str, Any] | None = None, key: str = "profile") -> T:
    """The ``cls`` config of preset ``name`` (a mapping of its non-default keys) with ``overrides``
    (nested or dotted keys) applied and validated; an unknown name fails at ``key``."""
    preset = pick(presets, name, key)
    return from_dict(cls, deep_update(copy.deepcopy(dict(preset)), overrides or {}))


def _convert(value: Any, tp: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, path)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(path, f"expected {_type_name(tp)}, got {value!r}")
    if origin is typing.Literal:
        if value not in args:
            allowed = ", ".join(repr(a) for a in args)
            raise ConfigError(path, f"{value!r} is not one of {allowed}{close_match(value, args)}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(path, f"expected a mapping for {tp.__name__}, got {value!r}")
        return from_dict(tp, value, path)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(path, f"expected a list, got {value!r}")
        item_tp = args[0] if args else Any
        items = [_convert(v, item_tp, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(path, f"expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(path, f"expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(path, f"expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(path, f"expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(path, f"expected a string, got {value!r}")
        return value
    return value


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def from_dict(cls: type[T], data: Mapping[str, Any] | None, path: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, validating keys and types."""
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            where = f"{path}.{key}" if path else key
            allowed = ", ".join(sorted(fields))
            raise ConfigError(where, f"unknown key{close_match(key, fields)}; allowed: {allowed}")
    kwargs = {}
    for name, value in data.items():
        where = f"{path}.{name}" if path else name
        kwargs[name] = _convert(value, hints[name], where)
    try:
        return cls(**kwargs)
    except TypeError as err:  # a required field is missing
        raise ConfigError(path, str(err)) from None


def to_dict(config: Any) -> dict[str, Any]:
    """A plain, YAML/JSON-friendly dict of a (nested) dataclass config."""
    out = dataclasses.asdict(config)

    def clean(v):
        if isinstance(v, tuple):
            return [clean(x) for x in v]
        if isinstance(v, list):
            return [clean(x) for x in v]
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        return v

    return clean(out)


def merge(config: T, overrides: Mapping[str, Any] | None, path: str = "") -> T:
    """A copy of ``config`` with nested ``overrides`` applied (and validated)."""
    if not overrides:
        return config
    base = to_dict(config)
    return from_dict(type(config), deep_update(base, overrides), path)


def deep_update(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Recursively merge ``overrides`` into a copy of ``base``. Dotted keys nest."""
    out = dict(base)
    for key, value in overrides.items():
        if "." in key:
            head, rest = key.split(".", 1)
            value = {rest: value}
            key = head
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_update(dict(out[key]), value)
        else:
            out[key] = value
    return out
