"""Tables in outputs (pandas HTML, ``application/vnd.dataresource+json``) compared cell by cell.

HTML is read with the standard library's ``html.parser``: one ``<table>`` whose ``<thead>`` rows
(or leading all-``<th>`` rows) are the column headers and whose leading ``<th>`` cells of each
body row are the row labels; ``colspan``/``rowspan`` are expanded, so pandas' MultiIndex headers
and labels become ``"g1 / a"``. Pandas' ``...`` truncation rows and columns are ordinary cells.
Text outside the table (pandas' "200 rows × 2 columns") is the table's ``note``.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any, Sequence

from .judged import CHANGED, IDENTICAL, WITHIN_TOLERANCE, Judged
from .options import CompareOptions, close_enough
from .text import compare_text, texts_close

MAX_CELLS_CHANGED = 100
MAX_SPAN = 1000
LEVEL_SEPARATOR = " / "
_INDENTATION = re.compile(r">\s*\n\s*<")  # between tags: no text, and each costs html.parser time


@dataclass
class Table:
    """``columns``: header names (levels joined by " / "); ``index``: row labels (positions as
    strings when there are none); ``cells``: one list of texts per row; ``note``: text around the
    table (pandas' "N rows × M columns")."""

    columns: list[str]
    index: list[str]
    cells: list[list[str]]
    note: str = ""


# --- HTML ---------------------------------------------------------------------------------------

Cell = tuple[bool, str, int, int]  # (is <th>, text, colspan, rowspan)


class _TableParser(HTMLParser):
    """Collects the rows of the one table of a document and the text outside it."""

    def __init__(self) -> None:
        super().__init__()
        self.head: list[list[Cell]] = []
        self.body: list[list[Cell]] = []
        self.note: list[str] = []
        self.tables = 0
        self.in_table = False
        self.in_head = False
        self.skipping = 0  # inside <style> or <script>
        self.row: list[Cell] | None = None
        self.cell: tuple[bool, int, int] | None = None  # the open cell: (is <th>, colspan, rowspan)
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "td" or tag == "th":
            if self.in_table:
                self._start_cell(tag == "th", attrs)
        elif tag == "tr":
            if self.in_table:
                self._end_row()
                self._start_row()
        elif tag == "style" or tag == "script":
            self.skipping += 1
        elif tag == "table":
            self.tables += 1
            self.in_table = True
        elif tag == "thead" or tag == "tbody" or tag == "tfoot":
            self.in_head = tag == "thead"
        elif tag == "br":
            self.handle_data(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" or tag == "th":
            self._end_cell()
        elif tag == "tr":
            self._end_row()
        elif tag == "style" or tag == "script":
            self.skipping = max(0, self.skipping - 1)
        elif tag == "thead":
            self.in_head = False
        elif tag == "table":
            self._end_row()
            self.in_table = False

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            (self.text if self.cell is not None else self.note).append(data)

    def _start_row(self) -> None:
        self.row = []
        (self.head if self.in_head else self.body).append(self.row)

    def _start_cell(self, is_th: bool, attrs: list[tuple[str, str | None]]) -> None:
        self._end_cell()
        if self.row is None:
            self._start_row()
        colspan = rowspan = 1
        for name, value in attrs:
            if name == "colspan":
                colspan = _span(value)
            elif name == "rowspan":
                rowspan = _span(value)
        self.cell = (is_th, colspan, rowspan)

    def _end_cell(self) -> None:
        if self.cell is not None and self.row is not None:
            self.row.append((self.cell[0], " ".join("".join(self.text).split()), self.cell[1], self.cell[2]))
        self.cell = None
        self.text = []

    def _end_row(self) -> None:
        self._end_cell()
        self.row = None


def _span(value: str | None) -> int:
    try:
        return min(max(int(value or 1), 1), MAX_SPAN)
    except ValueError:
        return 1


def _grid(rows: list[list[Cell]]) -> list[list[tuple[bool, str]]]:
    """Rows with colspans repeated and rowspans carried down: (is <th>, text) per grid position."""
    carried: dict[int, tuple[int, bool, str]] = {}  # column -> (rows left, is_th, text)
    grid = []
    for row in rows:
        out: list[tuple[bool, str]] = []
        cells = iter(row)
        while True:
            while len(out) in carried:
                out.append(_carry(carried, len(out)))
            cell = next(cells, None)
            if cell is None:
                break
            is_th, text, colspan, rowspan = cell
            for _ in range(colspan):
                if rowspan > 1:
                    carried[len(out)] = (rowspan - 1, is_th, text)
                out.append((is_th, text))
        grid.append(out)
    return grid


def _carry(carried: dict[int, tuple[int, bool, str]], column: int) -> tuple[bool, str]:
    left, is_th, text = carried.pop(column)
    if left > 1:
        carried[column] = (left - 1, is_th, text)
    return is_th, text


def parse_html_table(html: str) -> Table | None:
    """The one table of an HTML document, or None (no table, several, or not rectangular)."""
    if "<table" not in html.lower():
        return None
    parser = _TableParser()
    try:
        parser.feed(_INDENTATION.sub("><", html))
        parser.close()
    except AssertionError:  # html.parser's reaction to some malformed markup (``<![foo[``)
        return None
    parser._end_row()
    if parser.tables != 1:
        return None
    head, body = parser.head, parser.body
    if not head:
        while body and len(body) > 1 and body[0] and all(cell[0] for cell in body[0]):
            head.append(body.pop(0))
    return _table(_grid(head), _grid(body), " ".join("".join(parser.note).split()))


def _table(head: list[list[tuple[bool, str]]], body: list[list[tuple[bool, str]]], note: str) -> Table | None:
    widths = {len(row) for row in head + body}
    if len(widths) != 1 or 0 in widths:
        return None
    labels = _label_count(head, body)
    head = [row for row in head if any(text for _, text in row[labels:])] or head[-1:]  # not the index names
    if head:
        columns = [LEVEL_SEPARATOR.join(t for t in texts if t) for texts in zip(*(_texts(row[labels:]) for row in head))]
    else:
        columns = [str(i) for i in range(widths.pop() - labels)]
    index = [LEVEL_SEPARATOR.join(_texts(row[:labels])) if labels else str(i) for i, row in enumerate(body)]
    return Table(columns, index, [_texts(row[labels:]) for row in body], note)


def _label_count(head: list[list[tuple[bool, str]]], body: list[list[tuple[bool, str]]]) -> int:
    """How many leading columns are row labels: the leading <th> of the first body row, or
    (no body) the leading columns empty in every header row (an empty pandas frame)."""
    rows, is_label = (body[:1], lambda cell: cell[0]) if body else (head, lambda cell: not cell[1])
    count = 0
    while count < len(rows[0]) - 1 and all(is_label(row[count]) for row in rows):
        count += 1
    return count


def _texts(cells: Sequence[tuple[bool, str]]) -> list[str]:
    return [text for _, text in cells]


# --- dataresource -------------------------------------------------------------------------------

def table_from_dataresource(data: Any) -> Table | None:
    """The table of an ``application/vnd.dataresource+json`` value (``df.to_json(orient="table")``),
    or None when it is not one; ``primaryKey`` fields are the row labels."""
    if not isinstance(data, dict) or not isinstance(data.get("schema"), dict):
        return None
    schema, rows = data["schema"], data.get("data")
    fields = schema.get("fields")
    if not isinstance(fields, list) or not isinstance(rows, list) or not all(isinstance(f, dict) and "name" in f for f in fields):
        return None
    names = [str(f["name"]) for f in fields]
    key = schema.get("primaryKey") or []
    key = [str(k) for k in ([key] if isinstance(key, str) else key) if str(k) in names]
    columns = [name for name in names if name not in key]
    known = set(names)
    if not all(isinstance(row, dict) and set(map(str, row)) <= known for row in rows):
        return None
    rows = [{str(k): v for k, v in row.items()} for row in rows]
    index = [LEVEL_SEPARATOR.join(_value(row.get(k)) for k in key) if key else str(i) for i, row in enumerate(rows)]
    return Table(columns, index, [[_value(row.get(c)) for c in columns] for row in rows])


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


# --- comparison ---------------------------------------------------------------------------------

def compare_html_tables(a_html: str, b_html: str, options: CompareOptions) -> Judged | None:
    """Compare two HTML outputs as tables; None when either is not one table."""
    a = parse_html_table(a_html)
    if a is None:
        return None
    b = a if b_html == a_html else parse_html_table(b_html)
    return None if b is None else compare_tables(a, b, options)


def compare_tables(a: Table, b: Table, options: CompareOptions) -> Judged:
    """Cell by cell: columns aligned by name and rows by label (by position where these are not
    unique); cells whose numbers (or text, see ``texts_close``) are close count as within tolerance.

    Detail: ``shape_a``/``shape_b`` ([rows, columns] as shown), ``columns_added``/``rows_added``
    (only in b), ``columns_removed``/``rows_removed`` (only in a), ``reordered`` (``"rows"``,
    ``"columns"``: common labels in another order), ``cells_changed`` (the first 100
    ``{"row", "column", "a", "b"}``), ``cells_changed_count``, ``cells_within_tolerance``,
    ``note`` (``{"a", "b"}`` when the text around the tables differs, else None).
    Symmetric: swapping a and b swaps added/removed and a/b."""
    columns, columns_removed, columns_added, columns_moved = _align(a.columns, b.columns)
    rows, rows_removed, rows_added, rows_moved = _align(a.index, b.index)
    changed: list[dict[str, str]] = []
    tolerated = 0
    for row, i, j in rows:
        cells_a, cells_b = a.cells[i], b.cells[j]
        for column, k, m in columns:
            text_a, text_b = cells_a[k], cells_b[m]
            if text_a == text_b:
                continue
            if _cells_close(text_a, text_b, options):
                tolerated += 1
            else:
                changed.append({"row": row, "column": column, "a": text_a, "b": text_b})
    note = compare_text(a.note, b.note, options)
    reordered = [name for name, moved in (("rows", rows_moved), ("columns", columns_moved)) if moved]
    if changed or columns_removed or columns_added or rows_removed or rows_added or reordered or note.judgement == CHANGED:
        judgement = CHANGED
    else:
        judgement = WITHIN_TOLERANCE if tolerated or note.judgement == WITHIN_TOLERANCE else IDENTICAL
    return Judged(judgement, {
        "shape_a": [len(a.index), len(a.columns)],
        "shape_b": [len(b.index), len(b.columns)],
        "columns_added": columns_added,
        "columns_removed": columns_removed,
        "rows_added": rows_added,
        "rows_removed": rows_removed,
        "reordered": reordered,
        "cells_changed": changed[:MAX_CELLS_CHANGED],
        "cells_changed_count": len(changed),
        "cells_within_tolerance": tolerated,
        "note": None if note.judgement == IDENTICAL else {"a": a.note, "b": b.note},
    })


Aligned = list[tuple[str, int, int]]  # (label, position in a, position in b)


def _align(a: list[str], b: list[str]) -> tuple[Aligned, list[str], list[str], bool]:
    """(pairs, labels only in a, labels only in b, whether the common labels are in another order);
    by label when the labels of both sides are unique, else by position (where the labels at a
    position differ, they count as only in a and only in b)."""
    if len(set(a)) == len(a) and len(set(b)) == len(b):
        where_b = {label: j for j, label in enumerate(b)}
        pairs = [(label, i, where_b[label]) for i, label in enumerate(a) if label in where_b]
        common = set(where_b).intersection(a)
        moved = [p[2] for p in pairs] != sorted(p[2] for p in pairs)
        return pairs, [x for x in a if x not in common], [x for x in b if x not in common], moved
    n = min(len(a), len(b))
    pairs = [(a[i] if a[i] == b[i] else f"#{i}", i, i) for i in range(n)]
    relabelled = [i for i in range(n) if a[i] != b[i]]
    return pairs, [a[i] for i in relabelled] + a[n:], [b[i] for i in relabelled] + b[n:], False


def _cells_close(a: str, b: str, options: CompareOptions) -> bool:
    try:
        return close_enough(float(a), float(b), options.rtol, options.atol)
    except ValueError:
        return texts_close(a, b, options)


def describe_table_change(detail: dict) -> str:
    """``3 cells changed, 1 row(s) added, 2 within tolerance``: a table verdict's detail in words."""
    count = detail.get("cells_changed_count", 0)
    parts = [f"{count} cell{'s' if count != 1 else ''} changed"]
    for key, noun in (("rows_added", "row(s) added"), ("rows_removed", "row(s) removed"),
                      ("columns_added", "column(s) added"), ("columns_removed", "column(s) removed")):
        if detail.get(key):
            parts.append(f"{len(detail[key])} {noun}")
    if detail.get("cells_within_tolerance"):
        parts.append(f"{detail['cells_within_tolerance']} within tolerance")
    if detail.get("reordered"):
        parts.append(" and ".join(detail["reordered"]) + " reordered")
    return ", ".join(parts)
