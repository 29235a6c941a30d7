"""``run_query`` in SQL: the ORDER BY and WHERE of a run listing (SQLite's JSON functions).

Parameters, metrics and tags are JSON columns: a value is read with ``json_extract`` and a
quoted path (``$."name"``); a name such a path cannot address (a quote, a backslash or a
non-ASCII character, which the stored JSON escapes) is looked up with ``json_each`` instead.
"""
from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from .run_query import ArtifactExists, Comparison, RunQuery, Term, TextSearch
from .tables import artifacts, notebooks, runs

_PLAIN_NAME = re.compile(r'[ -!#-\[\]-~]+')  # printable ASCII but '"' and '\'
_NUMBERS = ("integer", "real")


class _Json:
    """SQL expressions of one named member of a JSON object column."""

    def __init__(self, column: sa.ColumnElement[Any], name: str) -> None:
        self.column, self.name = column, name

    def _each(self, what: str) -> sa.ScalarSelect[Any]:
        each = sa.func.json_each(self.column).table_valued("key", "value", "type").alias("member")
        return sa.select(each.c[what]).where(each.c.key == self.name).limit(1).scalar_subquery()

    def value(self) -> sa.ColumnElement[Any]:
        """The member's value (SQL NULL when absent or null)."""
        if _PLAIN_NAME.fullmatch(self.name):
            return sa.func.json_extract(self.column, json_path(self.name))
        return self._each("value")

    def type(self) -> sa.ColumnElement[Any]:
        """Its JSON type: integer, real, text, true, false, null, array, object (NULL when absent)."""
        if _PLAIN_NAME.fullmatch(self.name):
            return sa.func.json_type(self.column, json_path(self.name))
        return self._each("type")

    def number(self) -> sa.ColumnElement[Any]:
        """The value if it is a JSON number, else NULL."""
        return sa.case((self.type().in_(_NUMBERS), self.value()))

    def text(self) -> sa.ColumnElement[Any]:
        """The value as compared with a string: a string, or ``true``/``false``/``null``; else NULL."""
        kind = self.type()
        return sa.case(
            (kind == "text", self.value()),
            (kind.in_(("true", "false", "null")), kind),
        )


def json_path(name: str) -> str:
    """The JSON path of an object member, quoted: ``$."my name"``."""
    return '$."' + name + '"'


class SqlRunQuery:
    """The SQL of one parsed listing query.

    ``safe``: check JSON columns with ``json_valid`` first (slower), for a store where some run's
    JSON is not valid to SQLite (a NaN parameter), which fails the whole statement otherwise.
    """

    def __init__(self, query: RunQuery, notebook_given: bool, safe: bool = False) -> None:
        self.query, self.notebook_given, self.safe = query, notebook_given, safe

    def _column(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        if not self.safe:
            return column
        # Python writes NaN and Infinity, which JSON (and SQLite) lacks: read them as null
        repaired = column
        for word in ("-Infinity", "Infinity", "NaN"):
            repaired = sa.func.replace(repaired, word, "null")
        return sa.case((sa.func.json_valid(column), column), (sa.func.json_valid(repaired), repaired))

    def _json(self, column: sa.ColumnElement[Any], name: str) -> _Json:
        return _Json(self._column(column), name)

    # -- ORDER BY ---------------------------------------------------------------------------
    def order_by(self) -> list[sa.ColumnElement[Any]]:
        """The key (missing values last), then newest first, then id."""
        sort = self.query.sort
        ties = [runs.c.queued_at.desc(), runs.c.version.desc(), runs.c.id]
        if not sort.explicit:  # the historical default order
            return [runs.c.version.desc()] if self.notebook_given else ties
        key = self.sort_key()
        ordered = key.desc() if sort.descending else key.asc()
        if sort.field == "queued_at":
            return [ordered, runs.c.version.desc() if sort.descending else runs.c.version.asc(), runs.c.id]
        if sort.field in ("version", "status", "notebook"):  # never NULL
            return [ordered, *ties]
        return [ordered.nulls_last(), *ties]

    def indexed_order(self) -> bool:
        """Whether an index gives the order (the runs need not all be read to find a page)."""
        return not self.query.sort.explicit or self.query.sort.field == "queued_at"

    def sort_key(self) -> sa.ColumnElement[Any]:
        """The value the runs are sorted by (NULL for a run that lacks it)."""
        sort = self.query.sort
        if sort.field in ("metrics", "params"):
            assert sort.name is not None
            return self._json(runs.c.metrics if sort.field == "metrics" else runs.c.parameters, sort.name).value()
        if sort.field == "duration":
            return runs.c.finished_at - runs.c.started_at
        if sort.field == "notebook":
            return notebooks.c.path
        return runs.c[sort.field]

    def needs_notebooks(self) -> bool:
        """Whether the ORDER BY or WHERE reads the notebook's path (a join)."""
        sort, terms = self.query.sort, self.query.filter.terms
        return (sort.explicit and sort.field == "notebook") or any(
            isinstance(term, TextSearch) or (isinstance(term, Comparison) and term.field == "notebook") for term in terms
        )

    # -- WHERE ------------------------------------------------------------------------------
    def where(self) -> list[sa.ColumnElement[bool]]:
        """One condition per filter term (all must hold)."""
        return [self._condition(term) for term in self.query.filter.terms]

    def _condition(self, term: Term) -> sa.ColumnElement[bool]:
        if isinstance(term, TextSearch):
            return self._text_search(term.text)
        if isinstance(term, ArtifactExists):
            like = term.pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("*", "%")
            return sa.exists(sa.select(sa.literal(1)).select_from(artifacts).where(
                artifacts.c.run_id == runs.c.id,
                sa.or_(artifacts.c.path.like(like, escape="\\"), artifacts.c.path.like("%/" + like, escape="\\")),
            ))
        if term.field == "tag":
            each = sa.func.json_each(self._column(runs.c.tags)).table_valued("value").alias("tag")
            has = sa.exists(sa.select(sa.literal(1)).select_from(each).where(each.c.value == term.value))
            return has if term.op == "=" else ~has
        if term.field == "version":
            return _compare(runs.c.version, term.op, term.value)
        if term.field in ("status", "backend", "notebook"):
            column = notebooks.c.path if term.field == "notebook" else runs.c[term.field]
            return _compare(column, term.op, term.value)
        if term.field == "metrics":
            return self._json_compare(runs.c.metrics, term)
        if term.field == "params":
            return self._json_compare(runs.c.parameters, term)
        return sa.or_(self._json_compare(runs.c.parameters, term), self._json_compare(runs.c.metrics, term))

    def _json_compare(self, column: sa.ColumnElement[Any], term: Comparison) -> sa.ColumnElement[bool]:
        assert term.name is not None
        member = self._json(column, term.name)
        return _compare(member.number() if term.numeric else member.text(), term.op, term.value)

    def _text_search(self, word: str) -> sa.ColumnElement[bool]:
        """``word`` in any case in the notebook path, status, vN, parameters, tags or the error's
        name or message (``LIKE`` folds ASCII case, as SQLite's ``lower`` does; it is the cheaper)."""
        pattern = "%" + re.sub(r"([\\%_])", r"\\\1", word) + "%"

        def like(text: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
            return sa.type_coerce(text, sa.Text).like(pattern, escape="\\")

        error = self._column(runs.c.error)
        return sa.or_(
            like(runs.c.status),
            like(notebooks.c.path),
            like("v" + sa.cast(runs.c.version, sa.Text)),
            like(runs.c.parameters),
            like(runs.c.tags),
            like(sa.func.json_extract(error, "$.ename")),
            like(sa.func.json_extract(error, "$.evalue")),
        )

    # -- keys -------------------------------------------------------------------------------
    def keys(self, scope: list[sa.ColumnElement[bool]]) -> dict[str, sa.Select[Any]]:
        """The distinct parameter and metric names of the runs meeting ``scope``."""
        queries = {}
        for label, column in (("parameters", runs.c.parameters), ("metrics", runs.c.metrics)):
            each = sa.func.json_each(self._column(column)).table_valued("key").alias("member")
            queries[label] = sa.select(each.c.key).select_from(runs.join(each, sa.true())).where(*scope).distinct()
        return queries


def _compare(left: sa.ColumnElement[Any], op: str, value: Any) -> sa.ColumnElement[bool]:
    """``left <op> value``; NULL (no such value) satisfies no operator, not even ``!=``."""
    right = sa.literal(value, sa.Float if isinstance(value, float) else sa.Text)
    if op == "=":
        return left == right
    if op == "!=":
        return left != right
    if op == "<":
        return left < right
    if op == "<=":
        return left <= right
    if op == ">":
        return left > right
    return left >= right
