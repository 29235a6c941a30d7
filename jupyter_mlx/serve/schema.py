"""A notebook function's signature as a JSON request schema, and the check of a request body
against it: a mismatch is a 400 saying which field is wrong, before the function runs."""
from __future__ import annotations

import inspect
import types
import typing
from typing import Any, Callable, Union

_SIMPLE = {int: "integer", float: "number", str: "string", bool: "boolean", type(None): "null"}


class SchemaMismatch(ValueError):
    """A request body that does not fit the function's signature."""


def type_schema(annotation: Any) -> dict[str, Any]:
    """JSON Schema of a type hint (``list[list[float]]``, ``dict[str, int]``, ``Optional[str]``...);
    ``{}`` (anything) for hints it does not know."""
    if annotation is inspect.Parameter.empty or annotation is Any:
        return {}
    if annotation in _SIMPLE:
        return {"type": _SIMPLE[annotation]}
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (list, tuple, set, frozenset) or annotation in (list, tuple):
        item = type_schema(args[0]) if args and args[0] is not Ellipsis else {}
        return {"type": "array", "items": item} if item else {"type": "array"}
    if origin is dict or annotation is dict:
        values = type_schema(args[1]) if len(args) == 2 else {}
        return {"type": "object", "additionalProperties": values} if values else {"type": "object"}
    if origin in (Union, types.UnionType):
        return {"anyOf": [type_schema(arg) for arg in args]}
    if origin is typing.Literal:
        return {"enum": list(args)}
    return {}


def request_schema(function: Callable[..., Any]) -> dict[str, Any]:
    """The JSON object a request body must be: one property per parameter of ``function``."""
    hints = _hints(function)
    properties, required = {}, []
    for name, parameter in inspect.signature(function).parameters.items():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        properties[name] = type_schema(hints.get(name, parameter.annotation))
        if parameter.default is inspect.Parameter.empty:
            required.append(name)
    accepts_more = any(p.kind is p.VAR_KEYWORD for p in inspect.signature(function).parameters.values())
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": accepts_more}


def response_schema(function: Callable[..., Any]) -> dict[str, Any]:
    return type_schema(_hints(function).get("return", inspect.Parameter.empty))


def check_body(body: Any, schema: dict[str, Any]) -> None:
    """Raise ``SchemaMismatch`` with a readable message where ``body`` does not fit ``schema``."""
    if not isinstance(body, dict):
        raise SchemaMismatch(f"the body must be a JSON object of the function's arguments, not {_kind(body)}")
    missing = [name for name in schema["required"] if name not in body]
    if missing:
        raise SchemaMismatch(f"missing argument(s): {', '.join(missing)}")
    if not schema["additionalProperties"]:
        unknown = sorted(set(body) - set(schema["properties"]))
        if unknown:
            raise SchemaMismatch(f"unknown argument(s): {', '.join(unknown)}; the function takes "
                                 f"{', '.join(schema['properties']) or 'none'}")
    for name, value in body.items():
        if name in schema["properties"]:
            _check(value, schema["properties"][name], name)


def _check(value: Any, schema: dict[str, Any], where: str) -> None:
    if not schema:
        return
    if "anyOf" in schema:
        for option in schema["anyOf"]:
            try:
                _check(value, option, where)
                return
            except SchemaMismatch:
                continue
        raise SchemaMismatch(f"{where}: {_kind(value)} matches none of the allowed types")
    if "enum" in schema:
        if value not in schema["enum"]:
            raise SchemaMismatch(f"{where}: {value!r} is not one of {schema['enum']}")
        return
    expected = schema.get("type")
    if not _is(value, expected):
        raise SchemaMismatch(f"{where}: expected {_article(expected)}, got {_kind(value)}")
    if expected == "array" and schema.get("items"):
        for index, item in enumerate(value):
            _check(item, schema["items"], f"{where}[{index}]")
    if expected == "object" and schema.get("additionalProperties"):
        for key, item in value.items():
            _check(item, schema["additionalProperties"], f"{where}.{key}")


_PYTHON = {"string": str, "boolean": bool, "null": type(None), "array": list, "object": dict}


def _is(value: Any, expected: str | None) -> bool:
    if expected is None:
        return True
    if expected == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _PYTHON[expected])


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return {str: "a string", list: "an array", dict: "an object"}.get(type(value), type(value).__name__)


def _article(kind: str | None) -> str:
    return {"integer": "an integer", "array": "an array", "object": "an object"}.get(kind or "", f"a {kind}")


def _hints(function: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(function)
    except Exception:  # unresolvable forward references: fall back to the raw annotations
        return dict(getattr(function, "__annotations__", {}))
