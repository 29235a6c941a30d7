"""The notebook's ``parameters`` cell: what can be set, converting given values to its types, and
the effective value of every parameter a run used (the defaults, overridden by the request)."""
from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from typing import Any

from ..errors import MLXError

_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


@dataclass(frozen=True)
class Parameter:
    """A name assigned in the parameters cell, with its default and the comment beside it."""

    name: str
    default: Any
    type_name: str
    help: str = ""
    expression: str | None = None  # the default's source text when it is not a JSON literal

    @property
    def recorded_default(self) -> Any:
        """The default as a run records it: its JSON value, or its source text for an expression."""
        return self.default if self.expression is None else self.expression


@dataclass(frozen=True)
class EffectiveParameters:
    """Every parameter a run uses: ``values`` (the parameters cell's order, then the rest),
    ``overridden`` (the names the request set; papermill injects only these) and ``expressions``
    (the names whose value is a default's source text, e.g. ``np.arange(3)``: not evaluated)."""

    values: dict[str, Any]
    overridden: list[str]
    expressions: list[str]

    @property
    def overrides(self) -> dict[str, Any]:
        """The values the request set: what is injected into the notebook."""
        return {name: self.values[name] for name in self.overridden}


def parameters_cell_index(notebook: dict[str, Any]) -> int | None:
    """Index of the first code cell tagged ``parameters`` (papermill's convention)."""
    for index, cell in enumerate(notebook.get("cells", [])):
        tags = (cell.get("metadata") or {}).get("tags") or []
        if cell.get("cell_type") == "code" and "parameters" in tags:
            return index
    return None


def cell_source(cell: dict[str, Any]) -> str:
    """A cell's source as one string (nbformat stores it as a string or a list of lines)."""
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _literal(node: ast.expr | None) -> Any:
    try:
        return ast.literal_eval(node) if node is not None else None
    except (ValueError, SyntaxError, TypeError):
        return _UNEVALUATED


_UNEVALUATED = object()


def _json_literal(value: Any) -> bool:
    """Whether ``value`` is recorded as it is: it has a strict JSON form (no NaN, no set, no bytes)."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def _type_name(default: Any, annotation: ast.expr | None) -> str:
    if isinstance(annotation, ast.Name):
        return annotation.id
    if default is _UNEVALUATED:
        return "expression"
    return "None" if default is None else type(default).__name__


def declared_parameters(notebook: dict[str, Any]) -> dict[str, Parameter]:
    """Parameters declared in the notebook's parameters cell, in order (empty when none)."""
    index = parameters_cell_index(notebook)
    if index is None:
        return {}
    source = cell_source(notebook["cells"][index])
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise MLXError("invalid_notebook", f"the parameters cell does not parse: {exc}") from None
    lines = source.splitlines()
    found: dict[str, Parameter] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value, annotation = node.targets[0], node.value, None
        elif isinstance(node, ast.AnnAssign):
            target, value, annotation = node.target, node.value, node.annotation
        else:
            continue
        if not isinstance(target, ast.Name):
            continue
        default = _literal(value)
        line = lines[node.lineno - 1]
        comment = line.split("#", 1)[1].strip() if "#" in line[node.end_col_offset or 0 :] else ""
        literal = default is not _UNEVALUATED and _json_literal(default)
        found[target.id] = Parameter(
            target.id,
            None if default is _UNEVALUATED else default,
            _type_name(default, annotation),
            comment,
            None if literal else (ast.get_source_segment(source, value) if value is not None else None),
        )
    return found


def effective_parameters(notebook: dict[str, Any], overrides: dict[str, Any]) -> EffectiveParameters:
    """The value of every parameter of the parameters cell for a run given ``overrides``
    (already resolved): the overrides, else the defaults (an expression: its source text).

    A parameters cell that does not parse (IPython magics, say) records the overrides alone:
    the run still happens, as papermill would run it."""
    try:
        declared = declared_parameters(notebook)
    except MLXError:
        declared = {}
    values = {name: p.recorded_default for name, p in declared.items()}
    values.update(overrides)
    expressions = [name for name, p in declared.items() if p.expression is not None and name not in overrides]
    return EffectiveParameters(values, list(overrides), expressions)


def _convert_text(text: str, type_name: str) -> Any:
    """Convert a command-line string to the parameter's type."""
    if type_name == "str":
        return text
    if type_name == "bool":
        lowered = text.strip().lower()
        if lowered in _TRUE | _FALSE:
            return lowered in _TRUE
        raise ValueError("expected true or false")
    if type_name == "int":
        return int(text)
    if type_name == "float":
        return float(text)
    # None, list, dict, tuple, expressions: JSON first, then a Python literal, else the text
    for parse in (json.loads, ast.literal_eval):
        try:
            return parse(text)
        except (ValueError, SyntaxError, TypeError):
            continue
    if type_name in ("list", "dict", "tuple"):
        raise ValueError(f"expected a {type_name} literal")
    return text


def _convert_value(value: Any, type_name: str) -> Any:
    """Check a typed value (from JSON or Python) against the parameter's type."""
    if type_name == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if type_name == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    expected = {"int": int, "float": float, "bool": bool, "str": str, "list": list, "dict": dict}
    kind = expected.get(type_name)
    if kind is None or (isinstance(value, kind) and not (kind is int and isinstance(value, bool))):
        return value
    raise ValueError(f"expected {type_name}, got {type(value).__name__}")


def resolve_parameters(notebook: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """Check ``given`` against the parameters cell and convert each value to its default's type.

    Strings (from the CLI) are parsed; other values (from JSON or Python) are type-checked.
    """
    if not given:
        return {}
    declared = declared_parameters(notebook)
    if parameters_cell_index(notebook) is None:
        raise MLXError(
            "no_parameters_cell",
            "the notebook has no cell tagged 'parameters'; add the tag to the cell holding its defaults",
        )
    resolved: dict[str, Any] = {}
    for name, value in given.items():
        parameter = declared.get(name)
        if parameter is None:
            known = ", ".join(declared) or "none"
            raise MLXError("unknown_parameter", f"unknown parameter {name!r}; known parameters: {known}")
        try:
            if isinstance(value, str):
                resolved[name] = _convert_text(value, parameter.type_name)
            else:
                resolved[name] = _convert_value(value, parameter.type_name)
        except ValueError as exc:
            raise MLXError(
                "invalid_parameter",
                f"parameter {name}={value!r} cannot be converted to {parameter.type_name} "
                f"(default {parameter.default!r}): {exc}",
            ) from None
    return resolved
