"""The files two runs wrote (artifacts) compared by path, and the project's files they started from.

Each artifact path of either side is ``added``, ``removed``, ``identical`` (same SHA-256),
``ignored`` (an ``ignore_artifacts`` glob matches it) or, its content read, ``within_tolerance``
or ``changed`` with the detail of the comparer its kind shares with outputs: CSV/TSV/parquet as
tables (``tables.compare_tables``), PNG/JPEG/GIF/WebP/SVG as images (``images.compare_images``),
text as text (``text.compare_text``), JSON value by value, anything else by hash and size.
Files above ``MAX_COMPARE_BYTES`` are compared by hash only, and say so.

Input fingerprints are informational: which project files were added, removed or changed
between the two runs' starts. They never make a comparison unexpected.
"""
from __future__ import annotations

import csv
import fnmatch
import io
import json
import math
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, Callable

from ..formatting import format_bytes
from .judged import ADDED, CHANGED, IDENTICAL, IGNORED, REMOVED, WITHIN_TOLERANCE, Judged
from .options import CompareOptions, close_enough

if TYPE_CHECKING:
    from ..store.records import Artifact, InputFile
    from .sides import Side

MAX_COMPARE_BYTES = 50 * 1024 * 1024  # larger artifacts are compared by hash only
MAX_JSON_CHANGES = 100  # changed values listed per JSON artifact (all are counted)
MAX_JSON_VALUE_CHARS = 200  # an object or array in a JSON change is shown as its JSON text, cut
KINDS = ("table", "image", "json", "text", "binary")

_TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
_TABLE_TYPES = {"text/csv": ",", "text/tab-separated-values": "\t"}
_PARQUET_SUFFIXES = (".parquet", ".pq")
_IMAGE_SUFFIXES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
                   ".webp": "image/webp", ".svg": "image/svg+xml"}
_TEXT_SUFFIXES = (".txt", ".md", ".rst", ".py", ".log", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".html",
                  ".htm", ".xml", ".tex", ".sql", ".sh", ".r", ".jl", ".js", ".ts", ".css", ".out", ".err")
_TEXT_TYPES = ("application/xml", "application/x-yaml", "application/yaml", "application/toml",
               "application/javascript", "application/x-sh")


@dataclass
class ArtifactPair:
    """One artifact path, its file in A and/or B, the kind it was compared as, and the verdict."""

    path: str
    a: "Artifact | None"
    b: "Artifact | None"
    kind: str  # one of KINDS
    judged: Judged

    @property
    def media_type(self) -> str | None:
        either = self.b if self.b is not None else self.a
        return either.media_type if either is not None else None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "media_type": self.media_type,
            "a": _file(self.a),
            "b": _file(self.b),
            "judgement": self.judged.judgement,
            "detail": self.judged.detail,
        }


def _file(artifact: "Artifact | None") -> dict[str, Any] | None:
    return None if artifact is None else {"size": artifact.size, "sha256": artifact.sha256}


# -- artifacts ------------------------------------------------------------------------------------
def compare_artifacts(a: "Side", b: "Side", options: CompareOptions) -> list[ArtifactPair]:
    """Every artifact path of either side (sorted), judged; none when a side cannot tell what it
    wrote (a notebook file, a run from before run folders): absence there is not removal."""
    if not (a.records_files and b.records_files):
        return []
    by_path_a = {artifact.path: artifact for artifact in a.artifacts}
    by_path_b = {artifact.path: artifact for artifact in b.artifacts}
    pairs = []
    for path in sorted(by_path_a.keys() | by_path_b.keys()):
        x, y = by_path_a.get(path), by_path_b.get(path)
        either = y if y is not None else x
        assert either is not None
        kind = artifact_kind(path, either.media_type)
        if is_ignored(path, options):
            judged = Judged(IGNORED)
        elif x is None:
            judged = Judged(ADDED)
        elif y is None:
            judged = Judged(REMOVED)
        elif x.sha256 == y.sha256:
            judged = Judged(IDENTICAL)
        else:
            judged = _compare_contents(x, y, kind, a.read_artifact, b.read_artifact, options)
        pairs.append(ArtifactPair(path, x, y, kind, judged))
    return pairs


def is_ignored(path: str, options: CompareOptions) -> bool:
    """Whether an ``ignore_artifacts`` glob matches the path (case-sensitive, ``*`` crosses ``/``)."""
    return any(fnmatch.fnmatchcase(path, pattern) for pattern in options.ignore_artifacts)


def artifact_kind(path: str, media_type: str | None) -> str:
    """How an artifact is compared: by its file name's suffix, else by its media type."""
    suffix = PurePosixPath(path).suffix.lower()
    media = (media_type or "").split(";")[0].strip().lower()
    if suffix in _TABLE_SUFFIXES or suffix in _PARQUET_SUFFIXES or media in _TABLE_TYPES:
        return "table"
    if suffix in _IMAGE_SUFFIXES or media in _IMAGE_SUFFIXES.values():
        return "image"
    if suffix == ".json" or media == "application/json" or media.endswith("+json"):
        return "json"
    if suffix in _TEXT_SUFFIXES or media.startswith("text/") or media in _TEXT_TYPES:
        return "text"
    return "binary"


def _compare_contents(x: "Artifact", y: "Artifact", kind: str, read_a: Callable[["Artifact"], bytes] | None,
                      read_b: Callable[["Artifact"], bytes] | None, options: CompareOptions) -> Judged:
    """Two different files at one path: by content where it can be read, else by hash."""
    if max(x.size, y.size) > MAX_COMPARE_BYTES:
        return _by_hash(f"larger than {MAX_COMPARE_BYTES // (1024 * 1024)} MB: compared by hash only")
    if kind == "binary":
        return _by_hash(None)
    if read_a is None or read_b is None:
        return _by_hash("the contents are not available: compared by hash only")
    try:
        data_a = _read(read_a, x, "A")
        data_b = _read(read_b, y, "B")
    except _Unreadable as exc:
        return Judged(CHANGED, {"compared_by": "hash", "error": str(exc)})
    return _COMPARERS[kind](x.path, x.media_type, data_a, data_b, options)


class _Unreadable(Exception):
    """An artifact whose bytes could not be read; the message names the path and the run."""


def _read(read: Callable[["Artifact"], bytes], artifact: "Artifact", run: str) -> bytes:
    try:
        return read(artifact)
    except Exception as exc:  # noqa: BLE001 - whatever the store raises, the comparison goes on
        raise _Unreadable(f"{artifact.path} of run {run} could not be read: {exc}") from None


def _by_hash(note: str | None) -> Judged:
    detail: dict[str, Any] = {"compared_by": "hash"}
    if note:
        detail["note"] = note
    return Judged(CHANGED, detail)


def _compare_table(path: str, media_type: str, a: bytes, b: bytes, options: CompareOptions) -> Judged:
    """Cell by cell, as table outputs are (``tables.compare_tables``); as text if unparsable."""
    from .tables import compare_tables

    try:
        table_a, table_b = _read_table(path, media_type, a), _read_table(path, media_type, b)
    except _NoParquet as exc:
        return _by_hash(str(exc))
    if table_a is None or table_b is None:
        judged = _compare_text(path, media_type, a, b, options)
        judged.detail.setdefault("note", "not a table: compared as text")
        return judged
    judged = compare_tables(table_a, table_b, options)
    judged.detail["compared_by"] = "table"
    return judged


class _NoParquet(Exception):
    pass


def _read_table(path: str, media_type: str, data: bytes) -> Any:
    """A ``tables.Table`` of CSV/TSV or parquet bytes, or None when they do not parse."""
    from .tables import Table

    suffix = PurePosixPath(path).suffix.lower()
    if suffix in _PARQUET_SUFFIXES:
        return _parquet_table(data)
    delimiter = _TABLE_SUFFIXES.get(suffix) or _TABLE_TYPES.get(media_type.split(";")[0].strip().lower(), ",")
    try:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=delimiter))
    except (UnicodeDecodeError, csv.Error):
        return None
    if not rows:
        return Table([], [], [])
    width = max(len(row) for row in rows)
    header, body = rows[0] + [f"#{i}" for i in range(len(rows[0]), width)], [row + [""] * (width - len(row)) for row in rows[1:]]
    if header[0] == "" and width > 1:  # pandas' to_csv with its index: the first column labels the rows
        return Table(header[1:], [row[0] for row in body], [row[1:] for row in body])
    return Table(header, [str(i) for i in range(len(body))], body)


def _parquet_table(data: bytes) -> Any:
    from .tables import Table

    try:
        import pandas as pd
        import pyarrow  # noqa: F401 - pandas' parquet engine
    except ImportError:
        raise _NoParquet("parquet compared by hash only (install pyarrow to compare it cell by cell)") from None
    try:
        frame = pd.read_parquet(io.BytesIO(data))
    except Exception:  # noqa: BLE001 - a corrupt file is compared as bytes
        return None
    return Table([str(c) for c in frame.columns], [str(i) for i in frame.index],
                 [[_cell_text(v) for v in row] for row in frame.itertuples(index=False, name=None)])


def _cell_text(value: Any) -> str:
    """A parquet value as text that ``float()`` reads back exactly (numbers) or as it prints."""
    if isinstance(value, float) or type(value).__name__.startswith("float"):
        return repr(float(value))
    return str(value)


def _compare_image(path: str, media_type: str, a: bytes, b: bytes, options: CompareOptions) -> Judged:
    """Pixel by pixel with the image tolerances and the change mask, as image outputs are."""
    from .images import compare_images

    suffix = PurePosixPath(path).suffix.lower()
    mime = _IMAGE_SUFFIXES.get(suffix) or media_type
    return compare_images(a, b, mime, options)


def _compare_text(path: str, media_type: str, a: bytes, b: bytes, options: CompareOptions) -> Judged:
    """A unified diff with volatile text and numbers tolerated, as text outputs are."""
    from .text import compare_text

    try:
        text_a, text_b = a.decode("utf-8"), b.decode("utf-8")
    except UnicodeDecodeError:
        return _by_hash("not UTF-8 text: compared by hash only")
    return compare_text(text_a, text_b, options)


def _compare_json(path: str, media_type: str, a: bytes, b: bytes, options: CompareOptions) -> Judged:
    """Value by value: the JSON Pointer of each changed, added or removed value; numbers within
    the tolerances count as within tolerance. Text that is not JSON is compared as text."""
    try:
        value_a, value_b = json.loads(a), json.loads(b)
    except (ValueError, RecursionError):
        judged = _compare_text(path, media_type, a, b, options)
        judged.detail.setdefault("note", "not valid JSON: compared as text")
        return judged
    changes, tolerated = json_changes(value_a, value_b, options)
    detail: dict[str, Any] = {"compared_by": "json", "changes": changes[:MAX_JSON_CHANGES],
                              "changes_count": len(changes), "values_within_tolerance": tolerated}
    if changes:
        return Judged(CHANGED, detail)
    if not tolerated:
        detail["note"] = "the same values, written differently"
    return Judged(WITHIN_TOLERANCE, detail)


def json_changes(a: Any, b: Any, options: CompareOptions) -> tuple[list[dict[str, Any]], int]:
    """([{path, change, a, b}, ...], how many numbers differ within tolerance) of two JSON values;
    ``path`` is a JSON Pointer (``/metrics/0/value``), ``change`` changed, added or removed.
    Walked with a stack, so deep documents cannot exhaust the recursion limit."""
    changes: list[dict[str, Any]] = []
    tolerated = 0
    stack: list[tuple[str, Any, Any]] = [("", a, b)]
    while stack:
        path, x, y = stack.pop()
        if isinstance(x, dict) and isinstance(y, dict):
            for key in sorted(x.keys() | y.keys(), reverse=True):  # popped in sorted order
                child = f"{path}/{_pointer(key)}"
                if key not in y:
                    changes.append(_change(child, REMOVED, x[key], None))
                elif key not in x:
                    changes.append(_change(child, ADDED, None, y[key]))
                else:
                    stack.append((child, x[key], y[key]))
        elif isinstance(x, list) and isinstance(y, list):
            common = min(len(x), len(y))
            changes.extend(_change(f"{path}/{i}", REMOVED, x[i], None) for i in range(common, len(x)))
            changes.extend(_change(f"{path}/{i}", ADDED, None, y[i]) for i in range(common, len(y)))
            stack.extend((f"{path}/{i}", x[i], y[i]) for i in reversed(range(common)))
        elif _number(x) and _number(y):
            if x != y and not (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y)):
                if close_enough(float(x), float(y), options.rtol, options.atol):
                    tolerated += 1
                else:
                    changes.append(_change(path, CHANGED, x, y))
        elif type(x) is not type(y) or x != y:
            changes.append(_change(path, CHANGED, x, y))
    return changes, tolerated


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _pointer(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _change(path: str, change: str, a: Any, b: Any) -> dict[str, Any]:
    return {"path": path or "/", "change": change, "a": _shown(a), "b": _shown(b)}


def _shown(value: Any) -> Any:
    """Scalars as they are; objects and arrays as their JSON text, cut (a change lists no subtrees)."""
    if isinstance(value, (dict, list)):
        text = json.dumps(value, sort_keys=True)
        return text if len(text) <= MAX_JSON_VALUE_CHARS else text[:MAX_JSON_VALUE_CHARS] + "…"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # NaN and Infinity are not JSON
    return value


_COMPARERS: dict[str, Callable[[str, str, bytes, bytes, CompareOptions], Judged]] = {
    "table": _compare_table,
    "image": _compare_image,
    "json": _compare_json,
    "text": _compare_text,
}


# -- in words ---------------------------------------------------------------------------------------
def describe_artifact(entry: dict[str, Any]) -> str:
    """What an artifact's verdict (its ``to_json()``) comes to, in a few words, without the judgement:
    ``1 cell changed``, ``0.52% of pixels changed``, ``2 values changed``, ``-1 +1 lines``."""
    detail, judgement = entry.get("detail") or {}, entry["judgement"]
    if judgement == ADDED:
        return f"only in B, {_size((entry['b'] or {}).get('size'))}"
    if judgement == REMOVED:
        return f"only in A, {_size((entry['a'] or {}).get('size'))}"
    if judgement in (IDENTICAL, IGNORED):
        return ""
    if detail.get("error"):
        return str(detail["error"])
    if detail.get("compared_by") == "hash":
        return (f"different content, {size_change(entry['a']['size'], entry['b']['size'])}"
                + (f"; {detail['note']}" if detail.get("note") else ""))
    if "cells_changed_count" in detail:
        from .tables import describe_table_change

        return describe_table_change(detail)
    if "changed_fraction" in detail:
        text = f"{detail['changed_fraction']:.2%} of pixels changed, similarity {detail['similarity']:.3f}"
        if detail.get("size_changed"):
            text += ", size {0[0]}x{0[1]} -> {1[0]}x{1[1]}".format(detail["size_a"], detail["size_b"])
        return text
    if "changes_count" in detail:
        count, tolerated = detail["changes_count"], detail.get("values_within_tolerance", 0)
        parts = [f"{count} value{'s' if count != 1 else ''} changed"] if count else []
        if tolerated:
            parts.append(f"{tolerated} within tolerance")
        return ", ".join(parts) or str(detail.get("note", ""))
    if detail.get("diff"):
        lines = detail["diff"].split("\n")[2:]
        removed = sum(1 for line in lines if line.startswith("-"))
        added = sum(1 for line in lines if line.startswith("+"))
        return f"-{removed} +{added} lines" + (" (diff cut)" if detail.get("truncated") else "")
    numbers = detail.get("numbers") or {}
    if numbers.get("max_abs_diff") is not None:
        return f"numbers differ by at most {numbers['max_abs_diff']:.3g}"
    if detail.get("normalized"):
        return "only volatile text differs"
    return str(detail.get("note") or "")


def artifact_problem(entry: dict[str, Any]) -> str | None:
    """``artifact predictions.csv: changed (1 cell changed)``, or None when it is no problem."""
    judgement = entry["judgement"]
    if judgement not in (CHANGED, ADDED, REMOVED):
        return None
    what = describe_artifact(entry)
    return f"artifact {entry['path']}: {judgement}" + (f" ({what})" if what else "")


def _size(size: int | None) -> str:
    return "?" if size is None else format_bytes(size)


def size_change(a: int | None, b: int | None) -> str:
    """``1.4 KiB -> 2.0 KiB``; exact bytes when the rounded sizes would read the same."""
    if a is not None and b is not None and _size(a) == _size(b):
        return f"same size, {_size(a)}" if a == b else f"{a} -> {b} bytes"
    return f"{_size(a)} -> {_size(b)}"


# -- inputs ---------------------------------------------------------------------------------------
def compare_inputs(a: "list[InputFile] | None", b: "list[InputFile] | None") -> dict[str, Any]:
    """The project files added, removed or changed between the two runs' starts.

    Changed: a different SHA-256; where either side has none (a file above the fingerprint's size
    limit), a different size or modification time. ``known``: both sides recorded their inputs."""
    if a is None or b is None:
        return {"known": False, "changes": [], "unchanged": 0}
    by_path_a = {f.path: f for f in a}
    by_path_b = {f.path: f for f in b}
    changes = []
    unchanged = 0
    for path in sorted(by_path_a.keys() | by_path_b.keys()):
        x, y = by_path_a.get(path), by_path_b.get(path)
        if x is None or y is None:
            status = ADDED if x is None else REMOVED
        elif _input_changed(x, y):
            status = CHANGED
        else:
            unchanged += 1
            continue
        changes.append({"path": path, "status": status, "a": _input(x), "b": _input(y)})
    return {"known": True, "changes": changes, "unchanged": unchanged}


def _input_changed(x: "InputFile", y: "InputFile") -> bool:
    if x.sha256 is not None and y.sha256 is not None:
        return x.sha256 != y.sha256
    return x.size != y.size or x.mtime != y.mtime


def _input(f: "InputFile | None") -> dict[str, Any] | None:
    return None if f is None else {"size": f.size, "mtime": f.mtime, "sha256": f.sha256}


def describe_inputs(inputs: dict[str, Any], limit: int = 20) -> list[str]:
    """``data/train.csv changed``, one line per input file that differs (at most ``limit``)."""
    lines = [f"{change['path']} {change['status']}" for change in inputs.get("changes", [])[:limit]]
    more = len(inputs.get("changes", [])) - limit
    return lines + ([f"... {more} more"] if more > 0 else [])
