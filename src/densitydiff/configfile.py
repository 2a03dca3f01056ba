"""Read a YAML config file as a mapping, with one clear error for each way it can be wrong."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from densitydiff.errors import InputError


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
