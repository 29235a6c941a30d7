"""Sorting and filtering of run listings: a parsed, storage-neutral description.

Every door (REST, CLI, service) hands the raw ``sort``/``order``/``filter`` strings to
``RunStore.list_runs``, which parses them here once; stores translate the result to their
query language. A mistake raises ``MLXError("invalid_request", ...)`` naming the bad term.

Filter grammar: whitespace-separated terms, all of which must hold.

- ``name<op>value``, op one of ``= != < <= > >=``; name is ``status``, ``version``,
  ``backend``, ``notebook``, ``user``, ``tag``, ``metrics.X``, ``params.X`` or a bare ``X`` (the
  parameter X or the metric X). A value that reads as a number compares numerically
  (with JSON numbers), any other value as a string. A comparison holds only for runs that
  have the value (``C!=1`` skips runs without a parameter C).
- ``artifact:PATH``: the run wrote a file at ``PATH`` (relative to the project, or to any folder
  of it: ``artifact:model.pkl`` finds ``examples/model.pkl``); ``*`` matches any characters.
- a bare word: a case-insensitive substring of the notebook path, the status, ``v<version>``,
  the user, the parameters, the tags or the error's name and message.

Double quotes group words with spaces (``solver="l bfgs"``, ``"did not converge"``);
``\\"`` and ``\\\\`` escape inside them.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Union

from ..errors import MLXError
from .records import STATUSES

#: sort keys that are columns (``metrics.<name>`` and ``params.<name>`` are the others)
SORT_COLUMNS = ("queued_at", "version", "duration", "status", "notebook")
ORDERS = ("desc", "asc")
#: comparison operators, longest first (the tokenizer tries them in this order)
OPERATORS = ("<=", ">=", "!=", "=", "<", ">")
#: filter names that are fields of the run (anything else is a parameter or metric name)
FIELDS = ("status", "version", "backend", "notebook", "user", "tag")
_EQUALITY_ONLY = ("status", "tag")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_SORT_HELP = "one of queued_at, version, duration, status, notebook, metrics.<name>, params.<name>"


def _bad(message: str) -> MLXError:
    return MLXError("invalid_request", message)


@dataclass(frozen=True)
class RunSort:
    """Order of a listing: ``field`` is a sort column, ``metrics`` or ``params`` (then ``name``).

    Runs without the value come last in both orders; ties go newest first.
    """

    field: str = "queued_at"
    name: str | None = None
    descending: bool = True
    explicit: bool = False  # False: the listing's historical default order

    @property
    def key(self) -> str:
        return self.field if self.name is None else f"{self.field}.{self.name}"


@dataclass(frozen=True)
class Comparison:
    """``name <op> value``. ``field`` is one of ``FIELDS``, ``metrics``, ``params`` or ``any``
    (the parameter or the metric ``name``); ``value`` is a float when it reads as a number."""

    field: str
    name: str | None
    op: str
    value: Union[float, str]

    @property
    def numeric(self) -> bool:
        return isinstance(self.value, float)


@dataclass(frozen=True)
class TextSearch:
    """A bare word: a case-insensitive substring of the run's text fields (``text`` is lowercase)."""

    text: str


@dataclass(frozen=True)
class ArtifactExists:
    """``artifact:PATH``: the run has an artifact at ``pattern`` (``*``: any characters)."""

    pattern: str


Term = Union[Comparison, TextSearch, ArtifactExists]


@dataclass(frozen=True)
class RunFilter:
    """Terms that must all hold; no terms: every run."""

    terms: tuple[Term, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.terms)


@dataclass(frozen=True)
class RunQuery:
    """What a listing asks beyond notebook/status/sweep and paging."""

    sort: RunSort = RunSort()
    filter: RunFilter = RunFilter()
    keys: bool = False  # also list the parameter and metric names of the runs


def parse_sort(sort: str | None, order: str | None = None) -> RunSort:
    """``sort`` and ``order`` as given by a door (None or empty: the defaults)."""
    order_text = (order or "").strip().lower() or "desc"
    if order_text not in ORDERS:
        raise _bad(f"order must be asc or desc, not {order!r}")
    descending = order_text == "desc"
    key = (sort or "").strip()
    if not key:
        return RunSort(descending=descending, explicit=order_text != "desc")
    if key in SORT_COLUMNS:
        return RunSort(key, None, descending, explicit=True)
    prefix, dot, name = key.partition(".")
    if dot and prefix in ("metrics", "params"):
        if not name:
            raise _bad(f"sort key {key!r} needs a name after {prefix + '.'!r}")
        return RunSort(prefix, name, descending, explicit=True)
    raise _bad(f"unknown sort key {key!r}; {_SORT_HELP}")


def parse_filter(text: str | None) -> RunFilter:
    """A filter expression (see the module docstring); None, empty or blank: no filter."""
    if not text or not text.strip():
        return RunFilter()
    return RunFilter(tuple(_term(pieces) for pieces in _tokens(text)))


def parse_query(
    sort: str | None = None, order: str | None = None, filter: str | None = None, keys: bool = False
) -> RunQuery:
    """The whole query from the raw strings of a door."""
    return RunQuery(parse_sort(sort, order), parse_filter(filter), keys)


# -- the tokenizer ---------------------------------------------------------------------------
# A token is a list of (text, quoted) pieces: operators are only looked for outside quotes.
_Piece = tuple[str, bool]


def _tokens(text: str) -> list[list[_Piece]]:
    tokens: list[list[_Piece]] = []
    token: list[_Piece] = []
    plain: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char.isspace():
            if plain:
                token.append(("".join(plain), False))
                plain = []
            if token:
                tokens.append(token)
                token = []
            i += 1
        elif char == '"':
            if plain:
                token.append(("".join(plain), False))
                plain = []
            quoted, i = _quoted(text, i)
            token.append((quoted, True))
        else:
            plain.append(char)
            i += 1
    if plain:
        token.append(("".join(plain), False))
    if token:
        tokens.append(token)
    return tokens


def _quoted(text: str, start: int) -> tuple[str, int]:
    """The text of the quoted string at ``start`` and the index after its closing quote."""
    chars: list[str] = []
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in '"\\':
            chars.append(text[i + 1])
            i += 2
        elif char == '"':
            return "".join(chars), i + 1
        else:
            chars.append(char)
            i += 1
    raise _bad(f"unterminated quote in filter term {text[start:]!r}")


def _show(pieces: list[_Piece]) -> str:
    """A token as the person wrote it (near enough), for error messages."""
    return "".join(f'"{text}"' if quoted else text for text, quoted in pieces)


def _term(pieces: list[_Piece]) -> Term:
    first, quoted = pieces[0]
    if not quoted and first.startswith("artifact:"):
        pattern = first[len("artifact:"):] + "".join(text for text, _ in pieces[1:])
        if not pattern.strip("/*"):
            raise _bad(f"filter term {_show(pieces)!r} needs a path after 'artifact:' (artifact:model.pkl)")
        return ArtifactExists(pattern.strip("/"))
    for index, (text, quoted) in enumerate(pieces):
        if quoted:
            continue
        position, op = _find_operator(text)
        if op is None:
            continue
        name_pieces = [*pieces[:index], (text[:position], False)]
        value_pieces = [(text[position + len(op):], False), *pieces[index + 1:]]
        return _comparison(pieces, name_pieces, op, value_pieces)
    return TextSearch("".join(text for text, _ in pieces).lower())


def _find_operator(text: str) -> tuple[int, str | None]:
    for position in range(len(text)):
        for op in OPERATORS:
            if text.startswith(op, position):
                return position, op
    return -1, None


def _comparison(pieces: list[_Piece], name_pieces: list[_Piece], op: str, value_pieces: list[_Piece]) -> Comparison:
    shown = _show(pieces)
    name = "".join(text for text, _ in name_pieces)
    name_quoted = any(quoted for _, quoted in name_pieces)
    if not name:
        raise _bad(f"filter term {shown!r} has no name before {op!r}")
    for text, quoted in value_pieces:
        if not quoted and any(char in text for char in "=<>!"):
            raise _bad(f"filter term {shown!r} has more than one operator; quote a value with one in it")
    value = "".join(text for text, _ in value_pieces)
    if not value and not any(quoted for _, quoted in value_pieces):
        raise _bad(f'filter term {shown!r} has no value after {op!r} (use "" for an empty string)')
    number = _number(value)

    if not name_quoted and name in FIELDS:
        if name in _EQUALITY_ONLY and op not in ("=", "!="):
            raise _bad(f"filter term {shown!r}: {name} takes = or !=, not {op!r}")
        if name == "status":
            if value not in STATUSES:
                raise _bad(f"filter term {shown!r}: unknown status {value!r}; one of {', '.join(STATUSES)}")
            return Comparison("status", None, op, value)
        if name == "version":
            digits = value[1:] if value[:1] in ("v", "V") else value
            version = _number(digits)
            if version is None:
                raise _bad(f"filter term {shown!r}: version must be a number, not {value!r}")
            return Comparison("version", None, op, version)
        if name in ("backend", "notebook", "user", "tag"):
            return Comparison(name, None, op, value)
    field, dot, rest = name.partition(".")
    if not name_quoted and dot and field in ("metrics", "params"):
        if not rest:
            raise _bad(f"filter term {shown!r} needs a name after {field + '.'!r}")
        return Comparison(field, rest, op, value if number is None else number)
    return Comparison("any", name, op, value if number is None else number)


def _number(text: str) -> float | None:
    """``text`` as a finite float if it is written as a number, else None."""
    if not _NUMBER.fullmatch(text):
        return None
    number = float(text)
    return number if math.isfinite(number) else None


__all__ = [
    "Comparison",
    "RunFilter",
    "RunQuery",
    "RunSort",
    "TextSearch",
    "parse_filter",
    "parse_query",
    "parse_sort",
]
