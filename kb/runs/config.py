"""Presets and ``--set key=value`` overrides on a runner's frozen config dataclass."""

import dataclasses
import importlib
import json
import operator
import types
import typing

from kb.errors import BadInput
from kb.runs.registry import RunnerSpec


def presets(spec: RunnerSpec) -> dict:
    """The runner's ``PRESETS`` (name -> frozen Config), the first being its default."""
    return importlib.import_module(spec.config).PRESETS


def _convert(raw: str, kind, key: str):
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [k for k in typing.get_args(kind) if k is not type(None)]
        if raw.lower() in ("none", "null", ""):
            return None
        return _convert(raw, options[0], key)
    if origin is tuple:
        items = [s for s in raw.strip("()[] ").split(",") if s.strip()]
        inner = typing.get_args(kind)[0]
        return tuple(_convert(s.strip(), inner, key) for s in items)
    if kind is bool:
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise BadInput(f"--set {key}={raw}: expected true or false")
    if kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            raise BadInput(f"--set {key}={raw}: expected {kind.__name__}") from None
    return raw


def resolve(spec: RunnerSpec, preset: str | None, overrides: list[str] | tuple[str, ...] = ()):
    """The config of ``preset`` (the runner's first preset if None) with ``key=value`` overrides.

    Only existing fields may be overridden (a family's fields included: a runner's Config extends its
    family's); values are converted to the field's type.
    """
    table = presets(spec)
    name = preset or next(iter(table))
    if name not in table:
        raise BadInput(f"runner {spec.name!r} has no preset {name!r}; presets: {', '.join(table)}")
    config = table[name]
    hints = typing.get_type_hints(type(config))
    changes = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep:
            raise BadInput(f"--set {item!r}: expected key=value")
        if key not in hints:
            raise BadInput(f"--set {key}: {spec.name} config has no field {key!r}; fields: {', '.join(hints)}")
        changes[key] = _convert(raw.strip(), hints[key], key)
    return name, dataclasses.replace(config, **changes)


def check(config, *, at_least: dict | None = None, above: dict | None = None, at_most: dict | None = None,
          below: dict | None = None, choices: dict | None = None) -> None:
    """Refuse a config with a field out of range, naming it: ``at_least={"epochs": 1}`` (>=),
    ``above={"lr": 0}`` (>), ``at_most`` (<=), ``below={"dropout": 1}`` (<), each applied to every item
    of a tuple field, and ``choices={"arch": ("yolo", "fast")}``.

    Runners call it from their Config's ``__post_init__``, so a bad ``--set`` is refused in one line
    before a run is created, instead of failing inside training.
    """
    bounds = {"at least": (operator.ge, at_least), "greater than": (operator.gt, above),
              "at most": (operator.le, at_most), "less than": (operator.lt, below)}
    for words, (holds, limits) in bounds.items():
        for name, limit in (limits or {}).items():
            values = getattr(config, name)
            for value in values if isinstance(values, tuple) else (values,):
                if not holds(value, limit):
                    raise BadInput(f"{name}={value}: must be {words} {limit:g}")
    for name, allowed in (choices or {}).items():
        if getattr(config, name) not in allowed:
            raise BadInput(f"{name}={getattr(config, name)!r}: expected one of {', '.join(map(repr, allowed))}")


def to_dict(config) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def from_dict(spec: RunnerSpec, preset: str, values: dict):
    """Rebuild a config recorded as JSON (for resume and job execution)."""
    base = presets(spec)[preset]
    hints = typing.get_type_hints(type(base))
    fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in hints}
    return dataclasses.replace(base, **fixed)
