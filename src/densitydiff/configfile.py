"""Typed configs: nested dataclasses built from presets, YAML files and overrides, checked once.

The one config idiom of the applications (sharpen/config.py, prior/config.py): a config is a
dataclass whose fields are values or nested dataclass sections, with a `validate()` method.
`build(cls, mapping)` makes one from plain data (unknown keys and non-numbers where numbers
belong are InputErrors), `resolve(cls, presets, preset_or_path, overrides)` starts from a preset
name or YAML file; `to_dict` / `dump_yaml` give the plain data back for run records.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from densitydiff.errors import InputError

T = TypeVar("T")
_NUMBER_TYPES = ("int", "float")


def read_yaml_mapping(path: str | os.PathLike) -> dict[str, Any]:
    """The mapping in a YAML file (empty file: {}); InputError if missing, invalid or not a map."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such config file: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise InputError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: config must be a mapping of keys to values")
    return data


def merge(base: Mapping[str, Any], override: Mapping[str, Any], where: str = "") -> dict:
    """Recursive dict update; unknown keys raise InputError so typos do not pass silently."""
    out = dict(base)
    for key, value in override.items():
        if key not in out:
            raise InputError(f"unknown config key {where + key!r}")
        if isinstance(out[key], dict) and isinstance(value, Mapping):
            out[key] = merge(out[key], value, f"{where}{key}.")
        else:
            out[key] = value
    return out


def to_dict(config: Any) -> dict[str, Any]:
    """Plain nested dict of a config (YAML- and checkpoint-safe)."""
    return dataclasses.asdict(config)


def _section(cls: type, name: str) -> type | None:
    """The dataclass type of field `name` when it is a nested section, else None."""
    default = next(f for f in dataclasses.fields(cls) if f.name == name)
    if default.default_factory is not dataclasses.MISSING:
        value = default.default_factory()
        if dataclasses.is_dataclass(value):
            return type(value)
    return None


def _make(cls: type[T], data: Mapping[str, Any], where: str) -> T:
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise InputError(f"unknown config key {where + unknown[0]!r}")
    kwargs = {}
    for key, value in data.items():
        section = _section(cls, key)
        if section is not None:
            if not isinstance(value, Mapping):
                raise InputError(f"config {where + key} must be a mapping")
            value = _make(section, value, f"{where}{key}.")
        elif names[key].type in _NUMBER_TYPES and not isinstance(value, (int, float)):
            raise InputError(f"config {where + key} must be a number, got {value!r}")
        kwargs[key] = value
    return cls(**kwargs)


def build(cls: type[T], data: Mapping[str, Any]) -> T:
    """A config of type `cls` from plain data over its defaults, validated (InputError)."""
    config = _make(cls, data, "")
    validate = getattr(config, "validate", None)
    if validate is not None:
        validate()
    return config


def resolve(
    cls: type[T],
    presets: Mapping[str, Mapping[str, Any]],
    preset_or_path: str | os.PathLike | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> T:
    """A preset name or YAML file (None: the defaults), then nested `overrides`, validated."""
    data: Mapping[str, Any] = {}
    if preset_or_path is not None:
        name = str(preset_or_path)
        if name in presets:
            data = presets[name]
        elif not Path(name).is_file():
            raise InputError(
                f"config {name!r} is neither a preset ({', '.join(presets)}) nor a file"
            )
        else:
            data = read_yaml_mapping(name)
    resolved = merge(to_dict(cls()), data)
    return build(cls, merge(resolved, overrides or {}))


def flat_values(
    preset_or_path: str | os.PathLike | None,
    presets: Mapping[str, Mapping[str, Any]],
    overrides: Mapping[str, Any],
) -> dict[str, Any]:
    """Flat config values: a preset or YAML file (a run's config.yaml, or a run record with the
    fields under "config"), then the overrides that are not None."""
    values: dict[str, Any] = {}
    if preset_or_path is not None and str(preset_or_path) in presets:
        values.update(presets[str(preset_or_path)])
    elif preset_or_path is not None:
        loaded = read_yaml_mapping(preset_or_path)
        values.update(loaded.get("config", loaded))
    values.update({k: v for k, v in overrides.items() if v is not None})
    return values


def dump_yaml(config: Any) -> str:
    """YAML text of a resolved config."""
    import yaml

    return yaml.safe_dump(to_dict(config), sort_keys=False)
