"""Cell by cell: align two notebooks' cells, diff their sources, judge each pair of outputs.

Cells are aligned by cell id where both notebooks have ids in common, else by content (the
longest matching runs of identical sources, changed cells paired in place). Within a cell,
outputs are aligned by their kind (stream name, error, MIME types), so one added print does
not shift every output after it. Only hashes and short keys go through the sequence matcher:
never a quadratic text matcher on large outputs.
"""
from __future__ import annotations

import base64
import difflib
import json
from dataclasses import dataclass, field
from typing import Any, Iterator

from .judged import ADDED, CHANGED, IDENTICAL, IGNORED, REMOVED, WITHIN_TOLERANCE, Judged
from ..metrics import METRIC_MIMETYPE
from .options import CompareOptions, close_enough

IMAGE_MIMES = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/svg+xml")
TABLE_MIMES = ("application/vnd.dataresource+json",)
# a bundle's representations in the order the richest one is compared
TEXT_MIMES = ("text/html", "text/markdown", "text/latex", "application/json", "text/plain")
_SEVERITY = {IDENTICAL: 0, IGNORED: 0, WITHIN_TOLERANCE: 1, ADDED: 2, REMOVED: 2, CHANGED: 3}


@dataclass
class OutputPair:
    """One output of A and/or B, the kind and representation compared, and the verdict."""

    index_a: int | None
    index_b: int | None
    kind: str  # stream, error, image, table, text, other
    mime: str | None
    judged: Judged

    def to_json(self) -> dict[str, Any]:
        return {
            "index_a": self.index_a,
            "index_b": self.index_b,
            "kind": self.kind,
            "mime": self.mime,
            "judgement": self.judged.judgement,
            "detail": self.judged.detail,
        }


@dataclass
class CellPair:
    """A cell of A and/or B (an added cell has no A index), its source diff and its outputs."""

    index_a: int | None
    index_b: int | None
    cell_id: str | None
    cell_type: str
    tags: list[str]
    source_changed: bool
    source_diff: str | None
    outputs: list[OutputPair] = field(default_factory=list)
    ignored: bool = False  # tagged mlx:ignore: shown, never counted

    @property
    def judgement(self) -> str:
        """The cell's overall verdict: added/removed, ignored, else its worst part."""
        if self.index_a is None:
            return ADDED
        if self.index_b is None:
            return REMOVED
        if self.ignored:
            return IGNORED
        worst = CHANGED if self.source_changed else IDENTICAL
        for output in self.outputs:
            judgement = CHANGED if output.judged.judgement in (ADDED, REMOVED) else output.judged.judgement
            if _SEVERITY[judgement] > _SEVERITY[worst]:
                worst = judgement
        return worst

    def to_json(self) -> dict[str, Any]:
        return {
            "index_a": self.index_a,
            "index_b": self.index_b,
            "id": self.cell_id,
            "cell_type": self.cell_type,
            "tags": self.tags,
            "judgement": self.judgement,
            "source": {"changed": self.source_changed, "diff": self.source_diff},
            "outputs": [output.to_json() for output in self.outputs],
        }


# -- cells -----------------------------------------------------------------------------------
def compare_cells(a: dict[str, Any], b: dict[str, Any], options: CompareOptions) -> list[CellPair]:
    """Every cell of both notebooks, aligned, with sources diffed and outputs judged."""
    cells_a, cells_b = a.get("cells") or [], b.get("cells") or []
    return [_compare_cell(cells_a, cells_b, i, j, options) for i, j in align_cells(cells_a, cells_b)]


def align_cells(cells_a: list[dict[str, Any]], cells_b: list[dict[str, Any]]) -> list[tuple[int | None, int | None]]:
    """Pairs of cell indexes (None where a cell exists on one side only), in notebook order."""
    ids_a, ids_b = [c.get("id") for c in cells_a], [c.get("id") for c in cells_b]
    common = set(filter(None, ids_a)) & set(filter(None, ids_b))
    if common and len(set(ids_a)) == len(ids_a) and len(set(ids_b)) == len(ids_b):
        keys_a: list[Any] = [i if i in common else object() for i in ids_a]  # matches nothing
        keys_b: list[Any] = [i if i in common else object() for i in ids_b]
    else:
        keys_a = [_source_key(c) for c in cells_a]
        keys_b = [_source_key(c) for c in cells_b]
    return _align(keys_a, keys_b)


def _align(keys_a: list[Any], keys_b: list[Any]) -> list[tuple[int | None, int | None]]:
    """Aligned index pairs; the matcher always sees the two sequences in a canonical order, so
    swapping A and B mirrors the alignment exactly (difflib's tie-breaking is not symmetric)."""
    if _canonical(keys_b) < _canonical(keys_a):
        return [(i, j) for j, i in _matched(keys_b, keys_a)]
    return list(_matched(keys_a, keys_b))


def _canonical(keys: list[Any]) -> list[str]:
    return [key if isinstance(key, str) else repr(key) if isinstance(key, tuple) else "" for key in keys]


def _matched(keys_a: list[Any], keys_b: list[Any]) -> Iterator[tuple[int | None, int | None]]:
    matcher = difflib.SequenceMatcher(None, keys_a, keys_b, autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            yield from zip(range(a0, a1), range(b0, b1))
            continue
        paired = min(a1 - a0, b1 - b0) if op == "replace" else 0
        yield from zip(range(a0, a0 + paired), range(b0, b0 + paired))
        yield from ((i, None) for i in range(a0 + paired, a1))
        yield from ((None, j) for j in range(b0 + paired, b1))


def _source_key(cell: dict[str, Any]) -> str:
    return cell.get("cell_type", "") + "\0" + _text(cell.get("source"))


def _compare_cell(cells_a: list[dict[str, Any]], cells_b: list[dict[str, Any]], i: int | None, j: int | None,
                  options: CompareOptions) -> CellPair:
    cell_a = cells_a[i] if i is not None else None
    cell_b = cells_b[j] if j is not None else None
    either = cell_b if cell_b is not None else cell_a
    assert either is not None
    tags = sorted({*_tags(cell_a), *_tags(cell_b)})
    source_a = _text(cell_a.get("source")) if cell_a is not None else ""
    source_b = _text(cell_b.get("source")) if cell_b is not None else ""
    changed = cell_a is not None and cell_b is not None and source_a != source_b
    pair = CellPair(
        index_a=i,
        index_b=j,
        cell_id=either.get("id"),
        cell_type=either.get("cell_type", "code"),
        tags=tags,
        source_changed=changed,
        source_diff=source_diff(source_a, source_b) if changed else None,
        ignored=any(tag in options.ignore_cell_tags for tag in tags),
    )
    ignore_outputs = pair.ignored or any(tag in options.ignore_tags for tag in tags)
    pair.outputs = compare_outputs(
        (cell_a or {}).get("outputs") or [], (cell_b or {}).get("outputs") or [], options, ignore_outputs
    )
    return pair


def _tags(cell: dict[str, Any] | None) -> list[str]:
    tags = ((cell or {}).get("metadata") or {}).get("tags") or []
    return [t for t in tags if isinstance(t, str)]


def source_diff(a: str, b: str) -> str:
    """A unified diff of two cell sources (line by line, 3 lines of context)."""
    lines = difflib.unified_diff(a.splitlines(), b.splitlines(), "A", "B", lineterm="", n=3)
    return "\n".join(lines)


# -- outputs ---------------------------------------------------------------------------------
def compare_outputs(outputs_a: list[dict[str, Any]], outputs_b: list[dict[str, Any]], options: CompareOptions,
                    ignore: bool = False) -> list[OutputPair]:
    """Judge each aligned pair of outputs (``ignored`` for all when the cell's outputs are ignored)."""
    keys_a = [_output_key(o) for o in outputs_a]
    keys_b = [_output_key(o) for o in outputs_b]
    pairs = []
    for i, j in _align(keys_a, keys_b):
        a = outputs_a[i] if i is not None else None
        b = outputs_b[j] if j is not None else None
        kind, mime = _kind(b if b is not None else a)
        if ignore:
            judged = Judged(IGNORED)
        elif a is None:
            judged = Judged(ADDED)
        elif b is None:
            judged = Judged(REMOVED)
        else:
            kind, mime, judged = compare_output(a, b, options)
        pairs.append(OutputPair(i, j, kind, mime, judged))
    return pairs


def compare_output(a: dict[str, Any], b: dict[str, Any], options: CompareOptions) -> tuple[str, str | None, Judged]:
    """(kind, MIME type compared, verdict) of two outputs of the same cell."""
    kind_a, mime_a = _kind(a)
    kind_b, mime_b = _kind(b)
    if (kind_a, mime_a) != (kind_b, mime_b):
        # named by one of the two kinds, the same whichever side is A: swapping A and B mirrors
        kind, mime = min((kind_a, mime_a), (kind_b, mime_b), key=repr)
        return kind, mime, Judged(CHANGED, {"note": f"the output changed from {kind_a} ({mime_a or a.get('output_type')}) "
                                                    f"to {kind_b} ({mime_b or b.get('output_type')})"})
    if _shown(a) == _shown(b):
        return kind_a, mime_a, Judged(IDENTICAL)
    if kind_a == "stream":
        from .text import compare_text

        return kind_a, mime_a, compare_text(_text(a.get("text")), _text(b.get("text")), options)
    if kind_a == "error":
        return kind_a, mime_a, _compare_errors(a, b, options)
    if kind_a == "metric":
        return kind_a, mime_a, _compare_metric_outputs(a["data"][mime_a], b["data"][mime_b], options)
    data_a, data_b = a.get("data") or {}, b.get("data") or {}
    if kind_a == "image":
        from .images import compare_images

        return kind_a, mime_a, compare_images(_image_bytes(data_a[mime_a], mime_a), _image_bytes(data_b[mime_b], mime_b),
                                              mime_a or "", options)
    if kind_a == "table":
        judged = _compare_tables(data_a[mime_a], data_b[mime_b], mime_a, options)
        if judged is not None:
            return kind_a, mime_a, judged
    from .text import compare_text

    return kind_a, mime_a, compare_text(_as_text(data_a.get(mime_a)), _as_text(data_b.get(mime_b)), options)


def _compare_tables(a: Any, b: Any, mime: str | None, options: CompareOptions) -> Judged | None:
    """Cell by cell, or None when either side does not parse as a table (then compared as text)."""
    from .tables import compare_html_tables, compare_tables, table_from_dataresource

    if mime == "text/html":
        return compare_html_tables(_text(a), _text(b), options)
    table_a, table_b = table_from_dataresource(a), table_from_dataresource(b)
    if table_a is None or table_b is None:
        return None
    return compare_tables(table_a, table_b, options)


def _compare_metric_outputs(a: Any, b: Any, options: CompareOptions) -> Judged:
    """A ``log_metric`` output: its value under the metric's threshold (the metrics table has it too)."""
    name = a.get("name") if isinstance(a, dict) else None
    x = a.get("value") if isinstance(a, dict) else None
    y = b.get("value") if isinstance(b, dict) else None
    detail = {"name": name, "a": x, "b": y, "step_a": (a or {}).get("step"), "step_b": (b or {}).get("step")}
    if x == y and detail["step_a"] == detail["step_b"] and name == (b or {}).get("name"):
        return Judged(IDENTICAL, detail)
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (x, y))
    rtol, atol = options.threshold(name or "")
    if numeric and name == (b or {}).get("name") and close_enough(float(x), float(y), rtol, atol):
        return Judged(WITHIN_TOLERANCE, detail)
    return Judged(CHANGED, detail)


def _compare_errors(a: dict[str, Any], b: dict[str, Any], options: CompareOptions) -> Judged:
    from .text import compare_text

    head_a = f"{a.get('ename', '')}: {a.get('evalue', '')}"
    head_b = f"{b.get('ename', '')}: {b.get('evalue', '')}"
    judged = compare_text(head_a, head_b, options)
    judged.detail = {**judged.detail, "ename_a": a.get("ename"), "ename_b": b.get("ename"),
                     "evalue_a": a.get("evalue"), "evalue_b": b.get("evalue")}
    return judged  # tracebacks differ in paths and line numbers; the error itself is what counts


def _kind(output: dict[str, Any] | None) -> tuple[str, str | None]:
    if output is None:
        return "other", None
    output_type = output.get("output_type")
    if output_type == "stream":
        return "stream", output.get("name", "stdout")
    if output_type == "error":
        return "error", None
    data = output.get("data") or {}
    if METRIC_MIMETYPE in data:
        return "metric", METRIC_MIMETYPE
    for mime in IMAGE_MIMES:
        if mime in data:
            return "image", mime
    for mime in TABLE_MIMES:
        if mime in data:
            return "table", mime
    if "<table" in _text(data.get("text/html", "")):
        return "table", "text/html"
    for mime in TEXT_MIMES:
        if mime in data:
            return "text", mime
    return "other", next(iter(sorted(data)), None)


def _output_key(output: dict[str, Any]) -> tuple[str, str | None]:
    return _kind(output)


def _shown(output: dict[str, Any]) -> Any:
    """What an output shows (execution counts and metadata left out), for an equality test."""
    if output.get("output_type") == "stream":
        return [output.get("name"), _text(output.get("text"))]
    if output.get("output_type") == "error":
        return [output.get("ename"), output.get("evalue"), output.get("traceback")]
    return output.get("data") or {}


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "".join(str(part) for part in value)
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _as_text(value: Any) -> str:
    if isinstance(value, (dict, int, float, bool)) or value is None:
        return json.dumps(value, indent=1, sort_keys=True)
    return _text(value)


def _image_bytes(value: Any, mime: str | None) -> bytes:
    """An image output's bytes: base64 for raster images, text for SVG (b'' when unreadable)."""
    text = _text(value)
    if mime == "image/svg+xml":
        return text.encode()
    try:
        return base64.b64decode(text)
    except (ValueError, TypeError):
        return text.encode()  # compare_images reports it as unreadable
