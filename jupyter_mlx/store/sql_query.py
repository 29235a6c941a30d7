"""``run_query`` in SQL: the ORDER BY and WHERE of a run listing, on SQLite and PostgreSQL.

Parameters, metrics and tags are JSON columns. On SQLite a value is read with ``json_extract`` and
a quoted path (``$."name"``); a name such a path cannot address (a quote, a backslash or a
non-ASCII character, which the stored JSON escapes) is looked up with ``json_each`` instead. On
PostgreSQL with the ``->``/``->>`` operators and ``json_typeof``. Both give the same answers: a
number compares as a number, a string as a string, ``true``/``false``/``null`` as those words, and
a sort puts numbers (booleans as 1 and 0, as SQLite reads them) before strings, missing values last.
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
    """SQL expressions of one named member of a JSON object column (SQLite)."""

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


    def order(self, descending: bool) -> list[sa.ColumnElement[Any]]:
        """ORDER BY terms: by the value (SQLite orders numbers before strings), missing last."""
        value = self.value()
        return [(value.desc() if descending else value.asc()).nulls_last()]


class _PgJson:
    """The same expressions on PostgreSQL (``json`` columns)."""

    def __init__(self, column: sa.ColumnElement[Any], name: str) -> None:
        self.column, self.name = column, name

    def _member(self) -> sa.ColumnElement[Any]:
        return self.column.op("->")(sa.literal(self.name, sa.Text))

    def _text(self) -> sa.ColumnElement[Any]:
        return sa.type_coerce(self.column.op("->>")(sa.literal(self.name, sa.Text)), sa.Text)

    def type(self) -> sa.ColumnElement[Any]:
        """``json_typeof``: number, string, boolean, null, array, object (NULL when absent)."""
        return sa.func.json_typeof(self._member())

    def number(self) -> sa.ColumnElement[Any]:
        return sa.case((self.type() == "number", sa.cast(self._text(), sa.Float)))

    def text(self) -> sa.ColumnElement[Any]:
        kind = self.type()
        return sa.case((kind.in_(("string", "boolean")), self._text()), (kind == "null", sa.literal("null")))

    def order(self, descending: bool) -> list[sa.ColumnElement[Any]]:
        """As SQLite orders ``json_extract``: numbers (booleans as 1 and 0), then strings; missing last."""
        kind = self.type()
        rank = sa.case((kind.in_(("number", "boolean")), 0), (kind == "string", 1))
        number = sa.case((kind == "number", sa.cast(self._text(), sa.Float)),
                         (kind == "boolean", sa.case((self._text() == "true", 1.0), else_=0.0)))
        string = sa.case((kind == "string", self._text()))
        terms = [rank, number, string]
        return [(term.desc() if descending else term.asc()).nulls_last() for term in terms]


def json_path(name: str) -> str:
    """The JSON path of an object member, quoted: ``$."my name"``."""
    return '$."' + name + '"'


class SqlRunQuery:
    """The SQL of one parsed listing query.

    ``safe``: check JSON columns with ``json_valid`` first (slower), for a store where some run's
    JSON is not valid to SQLite (a NaN parameter), which fails the whole statement otherwise.
    """

    def __init__(self, query: RunQuery, notebook_given: bool, safe: bool = False, dialect: str = "sqlite") -> None:
        self.query, self.notebook_given, self.safe = query, notebook_given, safe
        self.postgresql = dialect == "postgresql"

    def _column(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        if not self.safe or self.postgresql:  # PostgreSQL's json is always valid (NaN is stored tagged)
            return column
        # Python writes NaN and Infinity, which JSON (and SQLite) lacks: read them as null
        repaired = column
        for word in ("-Infinity", "Infinity", "NaN"):
            repaired = sa.func.replace(repaired, word, "null")
        return sa.case((sa.func.json_valid(column), column), (sa.func.json_valid(repaired), repaired))

    def _json(self, column: sa.ColumnElement[Any], name: str) -> _Json | _PgJson:
        return (_PgJson if self.postgresql else _Json)(self._column(column), name)

    def _as_text(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        """A JSON column's stored text (what a text search reads)."""
        return sa.cast(column, sa.Text) if self.postgresql else sa.type_coerce(column, sa.Text)

    # -- ORDER BY ---------------------------------------------------------------------------
    def order_by(self) -> list[sa.ColumnElement[Any]]:
        """The key (missing values last), then newest first, then id."""
        sort = self.query.sort
        ties = [runs.c.queued_at.desc(), runs.c.version.desc(), runs.c.id]
        if not sort.explicit:  # the historical default order
            return [runs.c.version.desc()] if self.notebook_given else ties
        if sort.field in ("metrics", "params"):
            assert sort.name is not None
            member = self._json(runs.c.metrics if sort.field == "metrics" else runs.c.parameters, sort.name)
            return [*member.order(sort.descending), *ties]
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
        """The value the runs are sorted by (NULL for a run that lacks it), but for a parameter or
        metric (see ``order_by``)."""
        sort = self.query.sort
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
            if self.postgresql:
                each = sa.func.json_array_elements_text(runs.c.tags).table_valued("value").render_derived("tag")
            else:
                each = sa.func.json_each(self._column(runs.c.tags)).table_valued("value").alias("tag")
            has = sa.exists(sa.select(sa.literal(1)).select_from(each).where(each.c.value == term.value))
            return has if term.op == "=" else ~has
        if term.field == "version":
            return _compare(runs.c.version, term.op, term.value)
        if term.field in ("status", "backend", "notebook", "user"):  # user: NULL (an older run) never matches
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
        """``word`` in any case in the notebook path, status, vN, user, parameters, tags or the error's
        name or message (``LIKE`` folds ASCII case, as SQLite's ``lower`` does; it is the cheaper)."""
        pattern = "%" + re.sub(r"([\\%_])", r"\\\1", word) + "%"

        def like(text: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
            text = sa.type_coerce(text, sa.Text)
            # SQLite's LIKE folds ASCII case; PostgreSQL's ILIKE folds it (and more)
            return text.ilike(pattern, escape="\\") if self.postgresql else text.like(pattern, escape="\\")

        error = self._column(runs.c.error)
        if self.postgresql:
            name, message = (error.op("->>")(sa.literal(k, sa.Text)) for k in ("ename", "evalue"))
        else:
            name, message = (sa.func.json_extract(error, f"$.{k}") for k in ("ename", "evalue"))
        return sa.or_(
            like(runs.c.status),
            like(notebooks.c.path),
            like("v" + sa.cast(runs.c.version, sa.Text)),
            like(runs.c.user),
            like(self._as_text(runs.c.parameters)),
            like(self._as_text(runs.c.tags)),
            like(name),
            like(message),
        )

    # -- keys -------------------------------------------------------------------------------
    def keys(self, scope: list[sa.ColumnElement[bool]]) -> dict[str, sa.Select[Any]]:
        """The distinct parameter and metric names of the runs meeting ``scope``."""
        queries = {}
        for label, column in (("parameters", runs.c.parameters), ("metrics", runs.c.metrics)):
            if self.postgresql:
                each = sa.func.json_object_keys(column).table_valued("key").render_derived("member")
            else:
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
