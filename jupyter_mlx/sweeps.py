"""Sweep specifications: a grid of parameter axes, or an explicit list of parameter sets."""
from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from .errors import MLXError

MAX_UNCONFIRMED_RUNS = 10_000


def split_axis(raw: str) -> list[str]:
    """``"0.1,1,10"`` -> ``["0.1", "1", "10"]`` (the values of one axis, as typed)."""
    values = [value.strip() for value in raw.split(",")]
    if not raw.strip() or any(value == "" for value in values):
        raise MLXError("invalid_request", f"malformed sweep values {raw!r}: use comma-separated values like 0.1,1,10")
    return values


def grid_size(grid: dict[str, list[Any]]) -> int:
    size = 1
    for values in grid.values():
        size *= len(values)
    return size


def expand(spec: dict[str, Any], confirm_large: bool = False) -> list[dict[str, Any]]:
    """The parameter sets of ``{"grid": {name: [values]}}`` or ``{"list": [{...}, ...]}``."""
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in ("grid", "list"):
        raise MLXError("invalid_request", 'a sweep is {"grid": {name: [values, ...]}} or {"list": [{name: value}, ...]}')
    kind, body = next(iter(spec.items()))
    if kind == "grid":
        if not isinstance(body, dict) or not body:
            raise MLXError("invalid_request", "the sweep grid is empty: give at least one parameter with values")
        for name, values in body.items():
            if not isinstance(values, list) or not values:
                raise MLXError("invalid_request", f"sweep axis {name!r} needs a non-empty list of values")
        size = grid_size(body)
    else:
        if not isinstance(body, list) or not body:
            raise MLXError("invalid_request", "the sweep list is empty: give at least one parameter set")
        if not all(isinstance(item, dict) for item in body):
            raise MLXError("invalid_request", "each entry of a sweep list is an object of parameter values")
        size = len(body)
    if size > MAX_UNCONFIRMED_RUNS and not confirm_large:
        raise MLXError(
            "invalid_request",
            f"this sweep has {size:,} runs, more than {MAX_UNCONFIRMED_RUNS:,}: confirm it explicitly "
            "(--yes on the command line, \"confirm\": true in REST)",
        )
    if kind == "list":
        return [dict(item) for item in body]
    names = list(body)
    return [dict(zip(names, combination)) for combination in itertools.product(*body.values())]


def load_parameter_sets(path: Path) -> list[dict[str, Any]]:
    """An explicit list of parameter sets from a JSON or YAML file."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise MLXError("invalid_path", f"cannot read {path}: {exc.strerror}") from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:
        raise MLXError("invalid_request", f"{path} is not valid {path.suffix.lstrip('.').upper() or 'JSON'}: {exc}") from None
    if isinstance(data, dict) and "list" in data:
        data = data["list"]
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise MLXError("invalid_request", f"{path} must hold a list of parameter sets, like [{{\"C\": 0.1}}, {{\"C\": 1}}]")
    return data
