"""A comparison as one self-contained HTML file, and as a compact HTML summary for notebooks.

``report_html`` renders ``templates/report.html.j2``: both sides' headers and the verdict, the
parameter, metric and environment differences with an overlay chart per metric series that
moved, the artifacts the runs wrote (with the same details as outputs: image A, B and mask,
changed table cells, text diffs) and the input files that differ, the objects of the captured
state that differ, then every cell in order (source diff, outputs of A and B side by side with the
kind-specific detail), then the options used. The file needs no Jupyter and no network: CSS is
inline, images are ``data:`` URIs, and the few controls (only changed cells, image modes) are CSS
radio buttons and checkboxes, so they work with JavaScript off.

Everything taken from the notebooks is escaped by Jinja's autoescape, except table HTML (embedded
after ``sanitize_html`` keeps only table markup) and image ``data:`` URIs (checked to be base64).
``content_security_policy()`` is what the page may load and run: its own inline style and script
(by hash), ``data:`` images, nothing remote. The page carries it in a ``<meta>`` (so a saved
report keeps it) and the server sends it as its header.
"""
from __future__ import annotations

import base64
import datetime as dt
import difflib
import functools
import hashlib
import json
import logging
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from markupsafe import Markup

from ..metrics import METRIC_MIMETYPE
from .sanitize import sanitize_html
from .judged import ADDED, CHANGED, IDENTICAL, IGNORED, REMOVED, WITHIN_TOLERANCE

if TYPE_CHECKING:
    from .comparison import Comparison

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
MAX_TEXT_CHARS = 100_000  # of one output shown in full (the diff shows the rest)
MAX_TEXT_LINES = 2_000
MAX_HTML_CHARS = 2_000_000  # larger table HTML is shown as a note, not embedded
MAX_LIST = 100  # changed table cells, added rows... listed per output
MAX_INLINE_CHARS = 400  # diff lines longer than this get no within-line highlighting
MAX_DATARESOURCE_ROWS = 200
MAX_INLINE_IMAGE_BYTES = 10 * 1024 * 1024  # larger image artifacts are not embedded (the mask still is)
JUDGEMENT_ORDER = (IDENTICAL, WITHIN_TOLERANCE, CHANGED, ADDED, REMOVED, IGNORED)
_QUIET = (IDENTICAL, IGNORED)  # cells collapsed by default, hidden by "only changed cells"
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\n\r\t "
_CELL_PROBLEM = re.compile(r"cell (\d+|\?):")
_TOKEN = re.compile(r"\w+|\s+|[^\w\s]")


# -- public -------------------------------------------------------------------------------------
def report_html(comparison: "Comparison") -> str:
    """The full report: one HTML document with everything inline."""
    data = comparison.to_json()
    cells = [_cell_view(comparison, cell, data_cell, position)
             for position, (cell, data_cell) in enumerate(zip(comparison.cells, data["cells"]))]
    artifacts = [_artifact_view(comparison, entry, n) for n, entry in enumerate(data["artifacts"], 1)]
    context = {
        **_head_context(data),
        "unexpected": _unexpected_links(data["summary"]["unexpected"], cells),
        "environment": _environment_view(data["environment"]),
        "charts": _charts(comparison),
        "cells": cells,
        "cells_total": len(cells),
        "cells_quiet": sum(1 for c in cells if c["quiet"]),
        "images": sum(1 for c in cells for o in c["outputs"] if o["kind"] == "image")
        + sum(1 for a in artifacts if a["kind"] == "image"),
        "artifacts": artifacts,
        "artifacts_quiet": sum(1 for a in artifacts if not a["open"]),
        "inputs": data["inputs"],
        "state": _state_view(data["state"]),
        "options": _options_view(data["options"]),
        "generated": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %z"),
        "version": _version(),
        "style": _page_style(),
        "script": _page_script(),
        "content_security_policy": content_security_policy(),
    }
    return _environment().get_template("report.html.j2").render(context)


def content_security_policy() -> str:
    """The report's Content-Security-Policy: its own ``<style>`` and ``<script>`` by hash,
    ``data:`` images, and nothing else: no other script, style sheet, font, frame, form target
    or fetch. Style *attributes* are allowed: the report sets a few (image widths, meters) and
    sanitized tables keep theirs (pandas' ``text-align``); they cannot run script, and what they
    could fetch is refused by ``img-src``/``default-src`` (hashing them would only repeat what
    the sanitizer let through). Valid in a ``<meta>`` as well as in a header."""
    return "; ".join((
        "default-src 'none'",
        f"style-src {_sha256(_page_style())}",
        "style-src-attr 'unsafe-inline'",
        f"script-src {_sha256(_page_script())}",
        "img-src data:",
        "base-uri 'none'",
        "form-action 'none'",
    ))


def write_report(comparison: "Comparison", path: Path) -> None:
    """Write ``report_html(comparison)`` to ``path`` (UTF-8)."""
    Path(path).write_text(report_html(comparison), encoding="utf-8")


def summary_html(comparison: "Comparison") -> str:
    """A compact summary (header, parameter and metric differences, counts, the unexpected
    list; no cells): ``Comparison._repr_html_``, styled under one scoped class."""
    data = comparison.to_json()
    context = {
        **_head_context(data),
        "unexpected": _unexpected_links(data["summary"]["unexpected"], None),
    }
    return _environment().get_template("summary.html.j2").render(context)


# -- template environment -----------------------------------------------------------------------
_UNDEFINED: type[jinja2.Undefined] = jinja2.Undefined  # tests use StrictUndefined


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=_UNDEFINED,
    )
    env.filters["words"] = lambda judgement: str(judgement).replace("_", " ")
    env.filters["value"] = _value
    env.filters["number"] = _number
    env.filters["change"] = _change
    env.filters["percent"] = _percent
    env.filters["plural"] = lambda n, word: f"{n} {word}{'' if n == 1 else 's'}"
    return env


@functools.lru_cache(maxsize=1)
def _page_style() -> Markup:
    """The report's CSS, exactly as it is inlined (the policy hashes this very text)."""
    return Markup("".join((TEMPLATES / name).read_text(encoding="utf-8") for name in ("common.css", "report.css")))


@functools.lru_cache(maxsize=1)
def _page_script() -> Markup:
    """The report's script (expand/collapse all, open the cell a link goes to), as inlined."""
    return Markup((TEMPLATES / "report.js").read_text(encoding="utf-8"))


def _sha256(text: str) -> str:
    """A CSP hash source for an inline element with exactly this text."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def _version() -> str:
    try:
        from .._version import __version__
    except ImportError:  # pragma: no cover - a source tree that was never built
        return ""
    return __version__


# -- header, verdict, parameters, metrics ----------------------------------------------------------
def _head_context(data: dict[str, Any]) -> dict[str, Any]:
    """What the report and the summary both show."""
    summary = data["summary"]
    parameters = data["parameters"]
    metrics = [_metric_view(m) for m in data["metrics"]]
    return {
        "a": data["a"],
        "b": data["b"],
        "sides": [_side_view(data["a"]), _side_view(data["b"])],
        "summary": summary,
        "counts": {
            "cells": _counts(summary["cells"]),
            "outputs": _counts(summary["outputs"]),
            "artifacts": _counts(summary.get("artifacts") or {}),
            "state": _counts(summary.get("state") or {}),
        },
        "parameters": parameters,
        "parameters_changed": [p for p in parameters if p["status"] != "same"],
        "metrics": metrics,
        "metrics_changed": [m for m in metrics if m["judgement"] != IDENTICAL],
    }


def _side_view(side: dict[str, Any]) -> dict[str, Any]:
    run = side["kind"] == "run"
    commit = side.get("git_commit")
    return {
        "label": side["label"],
        "ref": side["ref"],
        "kind": side["kind"],
        "notebook": side.get("notebook"),
        "status": side.get("status") if run else None,
        "started": _time(side.get("started_at")),
        "duration": _duration(side.get("duration")),
        "commit": (commit[:10] + ("+dirty" if side.get("git_dirty") else "")) if commit else None,
        "commit_full": commit,
        "user": side.get("user") if run else None,
    }


def _time(iso: str | None) -> str | None:
    """``2024-05-01 12:00:03 UTC`` from the header's ISO 8601 UTC time."""
    if not iso:
        return None
    return iso[:19].replace("T", " ") + (" UTC" if iso.endswith("Z") else "")


def _duration(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def _counts(counts: dict[str, int]) -> list[tuple[str, int]]:
    return [(k, counts[k]) for k in JUDGEMENT_ORDER if counts.get(k)]


def _metric_view(metric: dict[str, Any]) -> dict[str, Any]:
    a, b = metric["a"], metric["b"]
    digits = _digits(a, b)
    series = metric.get("series")
    return {
        **metric,
        "a_text": _number(a, digits),
        "b_text": _number(b, digits),
        "steps": _series_note(series, metric["judgement"]),
    }


def _series_note(series: dict[str, Any] | None, judgement: str) -> str | None:
    """``changed at steps 1, 3 (of 5)`` for a series that differs, else its step counts."""
    if not series:
        return None
    from .series import describe_changed_steps

    where = describe_changed_steps(series)
    counts = f"{series['steps_a']} vs {series['steps_b']} steps"
    if not where:
        return counts
    verb = "changed" if judgement == "changed" else "differs"
    return f"{verb} at {where}" + (f"; {counts}" if series["steps_a"] != series["steps_b"] else "")


def _digits(a: Any, b: Any) -> int:
    """Significant digits enough to tell two different numbers apart (6 at least, 17 at most)."""
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or a == b:
        return 6
    for digits in range(6, 18):
        if format(a, f".{digits}g") != format(b, f".{digits}g"):
            return digits
    return 17


def _unexpected_links(items: list[str], cells: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Each unexpected change with the anchor it is about (the cell, the metrics, the header)."""
    anchors: dict[str, str] = {}
    for cell in cells or ():
        if cell["problem"]:
            anchors.setdefault(cell["label"], cell["anchor"])
    result = []
    for item in items:
        match = _CELL_PROBLEM.match(item)
        if cells is None:
            href = None
        elif match:
            href = anchors.get(f"cell {match.group(1)}")
        elif item.startswith("metric "):
            href = "metrics"
        elif item.startswith("artifact "):
            href = "artifacts"
        elif item.startswith("state "):
            href = "state"
        else:
            href = "sides"
        result.append({"text": item, "href": href})
    return result


def _environment_view(env: dict[str, Any]) -> dict[str, Any]:
    rows = [{"name": key, "a": env[key]["a"], "b": env[key]["b"]} for key in ("python", "platform", "kernel")
            if env[key]["changed"]]
    git = env["git"]
    commits = git["a"]["commit"] or git["b"]["commit"]
    git_row = None
    if commits:
        git_row = {
            "a": _commit(git["a"]),
            "b": _commit(git["b"]),
            "changed": git["changed"] or git["a"]["dirty"] != git["b"]["dirty"],
        }
    return {
        "known": env["known"],
        "rows": rows,
        "packages": env["packages"],
        "git": git_row,
        "same": not rows and not env["packages"] and not (git_row and git_row["changed"]),
    }


def _commit(git: dict[str, Any]) -> str:
    if not git["commit"]:
        return "-"
    return git["commit"][:10] + ("+dirty" if git["dirty"] else "")


def _charts(comparison: "Comparison") -> list[dict[str, Any]]:
    """An overlay chart per metric series whose judgement is not ``identical``."""
    names = [name for name, judged in comparison.series.items() if judged.judgement != IDENTICAL]
    if not names:
        return []
    from .series import overlay_chart

    points: tuple[dict[str, list[tuple[int | None, float]]], ...] = ({}, {})
    for side, into in zip((comparison.a, comparison.b), points):
        for metric in side.metrics:
            if metric.name in names:
                into.setdefault(metric.name, []).append((metric.step, metric.value))
    charts = []
    for name in names:
        judged = comparison.series[name]
        chart: dict[str, Any] = {"name": name, "judgement": judged.judgement, "detail": judged.detail,
                                 "src": None, "error": None}
        try:
            png = overlay_chart(name, points[0].get(name, []), points[1].get(name, []),
                                f"A  {comparison.a.ref}", f"B  {comparison.b.ref}")
            chart["src"] = _data_uri("image/png", base64.b64encode(png).decode("ascii"))
        except Exception as exc:  # noqa: BLE001 - a chart that fails must not lose the report
            log.warning("overlay chart of %s failed: %s", name, exc)
            chart["error"] = f"{type(exc).__name__}: {exc}"
        charts.append(chart)
    return charts


def _options_view(options: dict[str, Any]) -> dict[str, Any]:
    return {
        "tolerances": [
            ("rtol", _value(options["rtol"])),
            ("atol", _value(options["atol"])),
            ("image pixel tolerance", _value(options["image_pixel_tolerance"])),
            ("image changed fraction", _value(options["image_changed_fraction"])),
            ("max text diff lines", _value(options["max_text_diff_lines"])),
        ],
        "ignore_patterns": options["ignore_patterns"],
        "volatile_patterns": options["volatile_patterns"],
        "ignore_tags": options["ignore_tags"],
        "ignore_cell_tags": options["ignore_cell_tags"],
        "metrics": options["metrics"],
        "ignore_artifacts": options.get("ignore_artifacts") or [],
        "ignore_state": options.get("ignore_state") or [],
    }


# -- artifacts --------------------------------------------------------------------------------------
def _artifact_view(comparison: "Comparison", entry: dict[str, Any], n: int) -> dict[str, Any]:
    """One artifact: its verdict in words, both images inline (data: URIs), and the details its
    kind shares with outputs (table cells, text diff, change mask) or its changed JSON values."""
    from .artifacts import describe_artifact

    judgement, detail, kind = entry["judgement"], entry["detail"] or {}, entry["kind"]
    view: dict[str, Any] = {
        "anchor": f"artifact-{n}",
        "path": entry["path"],
        "kind": kind,
        "media_type": entry["media_type"],
        "judgement": judgement,
        "summary": describe_artifact(entry),
        "open": judgement not in _QUIET,
        "files": [(label, side["size"], side["sha256"][:12]) if side else (label, None, None)
                  for label, side in (("A", entry["a"]), ("B", entry["b"]))],
        "detail": _detail_view(kind, judgement, detail),
        "json": detail.get("changes") if detail.get("compared_by") == "json" else None,
        "json_more": max(0, detail.get("changes_count", 0) - len(detail.get("changes") or [])),
        "note": detail.get("note") if isinstance(detail.get("note"), str) else None,
        "a": None,
        "b": None,
    }
    if kind == "image" and judgement not in _QUIET:
        for key, side in (("a", comparison.a), ("b", comparison.b)):
            view[key] = _artifact_image(side, entry["path"], entry[key], entry["media_type"])
    return view


def _artifact_image(side: Any, path: str, file: dict[str, Any] | None, media_type: str | None) -> dict[str, Any] | None:
    """An image artifact as ``_render`` shows an image output, or a note saying why it is not shown."""
    if file is None:
        return None
    artifact = next((a for a in side.artifacts if a.path == path), None)
    mime = "image/svg+xml" if path.lower().endswith(".svg") else media_type or ""
    if artifact is None or side.read_artifact is None:
        return {"type": "note", "text": "the file's contents are not available"}
    if file["size"] > MAX_INLINE_IMAGE_BYTES or not re.fullmatch(r"image/[\w.+-]+", mime):
        return {"type": "note", "text": f"{mime or 'image'}, {file['size']} bytes: not embedded"}
    try:
        data = side.read_artifact(artifact)
    except Exception as exc:  # noqa: BLE001 - a missing blob must not lose the report
        return {"type": "note", "text": f"could not be read: {exc}"}
    return {"type": "image", "src": _data_uri(mime, base64.b64encode(data).decode("ascii")), "width": None}


# -- state ----------------------------------------------------------------------------------------
def _state_view(state: dict[str, Any]) -> dict[str, Any] | None:
    """The captured state's objects with their verdict in words (None: nothing to show, as the
    terminal decides), the packages whose version differs, and each side's note."""
    from .state import describe_capture, describe_state_object

    missing = None if state["known"] else describe_capture(state)
    if not (state["objects"] or missing):
        return None
    objects = [{**entry, "summary": describe_state_object(entry),
                "sides": [(label, _state_side(entry[key])) for label, key in (("A", "a"), ("B", "b"))]}
               for entry in state["objects"]]
    return {
        "missing": missing,
        "objects": objects,
        "quiet": sum(1 for o in objects if o["judgement"] in _QUIET),
        "packages": state["packages"],
        "notes": [(label, state[key]["note"]) for label, key in (("A", "a"), ("B", "b"))
                  if state["known"] and state[key]["note"]],
    }


def _state_side(entry: dict[str, Any] | None) -> str:
    """``ndarray, 151 bytes, 5d41402abc4b``, ``module numpy``, ``not capturable: ...``, ``–``."""
    if entry is None:
        return "–"
    if "not_capturable" in entry:
        return f"not capturable: {entry['not_capturable']}"
    if entry["kind"] == "module":
        return f"module {entry['module']}"
    return f"{entry['kind']}, {entry['size']} bytes, {(entry['sha256'] or '')[:12]}"


# -- cells ----------------------------------------------------------------------------------------
def _cell_view(comparison: "Comparison", cell: Any, data: dict[str, Any], position: int) -> dict[str, Any]:
    from .comparison import cell_label, cell_problems

    judgement = cell.judgement
    nb_a = _nb_cell(comparison.a.notebook, cell.index_a)
    nb_b = _nb_cell(comparison.b.notebook, cell.index_b)
    source_a = _plain(_text(nb_a.get("source"))) if nb_a is not None else ""
    source_b = _plain(_text(nb_b.get("source"))) if nb_b is not None else ""
    if cell.index_a is None:
        source = {"mode": "added", "lines": _whole(source_b, "add", "+")}
    elif cell.index_b is None:
        source = {"mode": "removed", "lines": _whole(source_a, "del", "-")}
    elif cell.source_changed:
        source = {"mode": "diff", "lines": diff_lines(_plain(cell.source_diff or ""))}
    else:
        source = {"mode": "same", "text": source_b}
    outputs = [_output_view(nb_a, nb_b, output, data_output, n)
               for n, (output, data_output) in enumerate(zip(cell.outputs, data["outputs"]), 1)]
    quiet = judgement in _QUIET
    return {
        "anchor": f"cell-{position + 1}",
        "label": cell_label(cell),
        "type": cell.cell_type,
        "judgement": judgement,
        "quiet": quiet,
        "tags": cell.tags,
        "ignored": cell.ignored,
        "places": _places(cell.index_a, cell.index_b),
        "source": source,
        "outputs": outputs,
        "problem": bool(cell_problems(cell)),
        "first_line": _first_line(source_b or source_a),
    }


def _places(index_a: int | None, index_b: int | None) -> str:
    a = f"A #{index_a + 1}" if index_a is not None else "not in A"
    b = f"B #{index_b + 1}" if index_b is not None else "not in B"
    return f"{a}, {b}"


def _first_line(source: str) -> str:
    for line in source.splitlines():
        if line.strip():
            return line.strip()[:120]
    return ""


def _nb_cell(notebook: dict[str, Any], index: int | None) -> dict[str, Any] | None:
    if index is None:
        return None
    cells = notebook.get("cells") or []
    return cells[index] if 0 <= index < len(cells) and isinstance(cells[index], dict) else None


def _nb_output(cell: dict[str, Any] | None, index: int | None) -> dict[str, Any] | None:
    if cell is None or index is None:
        return None
    outputs = cell.get("outputs") or []
    return outputs[index] if 0 <= index < len(outputs) and isinstance(outputs[index], dict) else None


def _output_view(cell_a: dict[str, Any] | None, cell_b: dict[str, Any] | None, output: Any,
                 data: dict[str, Any], n: int) -> dict[str, Any]:
    out_a, out_b = _nb_output(cell_a, output.index_a), _nb_output(cell_b, output.index_b)
    judgement, detail = data["judgement"], data["detail"] or {}
    kind, mime = data["kind"], data["mime"]
    same = judgement == IDENTICAL and out_a is not None and out_b is not None
    view: dict[str, Any] = {
        "n": n,
        "kind": kind,
        "mime": mime,
        "title": _output_title(kind, mime),
        "judgement": judgement,
        "summary": _output_summary(kind, judgement, detail),
        "same": same,
        "a": None if same else _render(out_a, mime),
        "b": _render(out_b, mime),
        "open": judgement != IDENTICAL,
        "detail": _detail_view(kind, judgement, detail),
        "line": _metric_line(out_a, out_b) if kind == "metric" else None,
    }
    if view["b"] is None and same:  # pragma: no cover - identical outputs always exist on both sides
        view["b"] = _render(out_a, mime)
    return view


def _metric_line(out_a: dict[str, Any] | None, out_b: dict[str, Any] | None) -> str:
    """A ``log_metric`` output in one line: ``loss[3]: 0.3 → 0.45`` (or its one value)."""
    payloads = [((out or {}).get("data") or {}).get(METRIC_MIMETYPE) for out in (out_a, out_b)]
    payloads = [p if isinstance(p, dict) else None for p in payloads]
    either = payloads[1] or payloads[0] or {}
    step = either.get("step")
    label = f"{either.get('name', 'metric')}" + (f"[{step}]" if step is not None else "")
    values = [_number(p.get("value"), 8) if p is not None else None for p in payloads]
    if values[0] is None or values[1] is None or values[0] == values[1]:
        return f"{label} = {values[1] if values[1] is not None else values[0]}"
    return f"{label}: {values[0]} → {values[1]}"


def _output_title(kind: str, mime: str | None) -> str:
    if kind == "metric":
        return "metric"
    if kind == "stream":
        return f"stream {mime or 'stdout'}"
    if kind == "error":
        return "error"
    return mime or kind


def _output_summary(kind: str, judgement: str, detail: dict[str, Any]) -> str:
    """The one-line summary the terminal shows next to the judgement (without the judgement)."""
    if detail.get("error"):
        return str(detail["error"])
    if kind == "image" and detail.get("changed_fraction") is not None:
        text = f"{detail['changed_fraction']:.2%} of pixels changed, similarity {detail['similarity']:.3f}"
        if detail.get("size_changed"):
            text += ", size {0[0]}×{0[1]} → {1[0]}×{1[1]}".format(detail["size_a"], detail["size_b"])
        return text
    if kind == "metric":
        return ""  # the metric's own line says it
    if kind == "table" and "cells_changed_count" in detail:
        from .tables import describe_table_change

        return describe_table_change(detail)
    numbers = detail.get("numbers") or {}
    if judgement == WITHIN_TOLERANCE and numbers.get("max_abs_diff") is not None:
        text = f"numbers differ by at most {numbers['max_abs_diff']:.3g}"
        if numbers.get("max_rel_diff"):
            text += f" (relative {numbers['max_rel_diff']:.3g})"
        if numbers.get("compared"):
            text += f", {numbers['compared']} compared"
        return text
    if judgement == WITHIN_TOLERANCE and detail.get("normalized"):
        return "only volatile text differs (times, addresses, progress bars)"
    if detail.get("note") and isinstance(detail["note"], str):
        return detail["note"]
    if judgement == ADDED:
        return "only in B"
    if judgement == REMOVED:
        return "only in A"
    return ""


def _detail_view(kind: str, judgement: str, detail: dict[str, Any]) -> dict[str, Any]:
    """The kind-specific part under an output: diff lines, image mask and numbers, table changes."""
    view: dict[str, Any] = {"diff": None, "truncated": bool(detail.get("truncated")), "mask": None,
                            "image": None, "table": None, "error": None, "numbers": None}
    if detail.get("diff"):
        view["diff"] = diff_lines(_plain(detail["diff"]))
    numbers = detail.get("numbers")
    if isinstance(numbers, dict) and numbers.get("compared"):
        view["numbers"] = numbers
    if kind == "image" and detail.get("changed_fraction") is not None:
        mask = detail.get("mask")
        if isinstance(mask, str) and _is_base64(mask):
            view["mask"] = _data_uri("image/png", mask)
        view["image"] = {
            "changed_fraction": detail["changed_fraction"],
            "changed_pixels": detail.get("changed_pixels"),
            "similarity": detail.get("similarity"),
            "size_a": detail.get("size_a"),
            "size_b": detail.get("size_b"),
            "size_changed": detail.get("size_changed"),
            "bbox": detail.get("bbox"),
        }
    if kind == "table" and "cells_changed" in detail:
        changed = detail.get("cells_changed") or []
        view["table"] = {
            "cells": changed[:MAX_LIST],
            "more": max(0, (detail.get("cells_changed_count") or len(changed)) - min(len(changed), MAX_LIST)),
            "lists": [(noun, _short_list(detail.get(key) or []))
                      for key, noun in (("rows_added", "rows added"), ("rows_removed", "rows removed"),
                                        ("columns_added", "columns added"), ("columns_removed", "columns removed"))
                      if detail.get(key)],
            "shape_a": detail.get("shape_a"),
            "shape_b": detail.get("shape_b"),
            "note": detail.get("note") if isinstance(detail.get("note"), dict) else None,
        }
    if detail.get("error"):
        view["error"] = str(detail["error"])
    return view


def _short_list(items: list[Any]) -> str:
    shown = ", ".join(str(i) for i in items[:20])
    return shown + (f", … ({len(items) - 20} more)" if len(items) > 20 else "")


# -- one output of one side ------------------------------------------------------------------------
def _render(output: dict[str, Any] | None, mime: str | None) -> dict[str, Any] | None:
    """How one side's output is shown: image, html (sanitized table), text, error, or a note."""
    if output is None:
        return None
    output_type = output.get("output_type")
    if output_type == "stream":
        return _text_view(_text(output.get("text")), terminal=True)
    if output_type == "error":
        return {
            "type": "error",
            "ename": str(output.get("ename") or ""),
            "evalue": _plain(str(output.get("evalue") or "")),
            "traceback": _clip(_plain("\n".join(_text(line) for line in output.get("traceback") or [])))[0],
        }
    bundle = output.get("data") or {}
    if not isinstance(bundle, dict):
        return {"type": "note", "text": "an output without data"}
    mime = mime if mime in bundle else next(iter(bundle), None)
    if mime is None:
        return {"type": "note", "text": "an empty output"}
    value = bundle[mime]
    if mime == METRIC_MIMETYPE:  # log_metric's output: its own text line says it all
        if "text/plain" in bundle:
            return _text_view(_text(bundle["text/plain"]))
        return _text_view(json.dumps(value, sort_keys=True))
    if mime.startswith("image/"):
        return _image_view(value, mime, (output.get("metadata") or {}).get(mime))
    if mime == "application/vnd.dataresource+json":
        if "text/html" in bundle:
            return _html_view(_text(bundle["text/html"]), bundle)
        return _dataresource_view(value) or _text_view(json.dumps(value, indent=1))
    if mime == "text/html":
        return _html_view(_text(value), bundle)
    if isinstance(value, (dict, list)) or mime.endswith("json"):
        return _text_view(value if isinstance(value, str) else json.dumps(value, indent=1, sort_keys=True))
    if mime.startswith("text/") or mime == "application/javascript":
        return _text_view(_text(value))
    if "text/plain" in bundle:
        return {**_text_view(_text(bundle["text/plain"])), "note": f"{mime}, shown as text/plain"}
    return {"type": "note", "text": f"{mime} (not shown)"}


def _text_view(text: str, terminal: bool = False) -> dict[str, Any]:
    text = _plain(_terminal(text) if terminal else text)
    shown, more = _clip(text)
    return {"type": "text", "text": shown, "more": more, "note": None}


def _html_view(source: str, bundle: dict[str, Any]) -> dict[str, Any]:
    """Table HTML (pandas) embedded once sanitized; any other HTML as its text/plain (or source)."""
    if "<table" in source.lower() and len(source) <= MAX_HTML_CHARS:
        return {"type": "html", "html": Markup(sanitize_html(source))}
    if "text/plain" in bundle:
        return {**_text_view(_text(bundle["text/plain"])), "note": "text/html, shown as text/plain"}
    return {**_text_view(source), "note": "text/html source"}


def _image_view(value: Any, mime: str, metadata: Any) -> dict[str, Any]:
    text = _text(value)
    if mime == "image/svg+xml":  # in an <img>, an SVG's scripts never run
        src = _data_uri(mime, base64.b64encode(text.encode()).decode("ascii"))
    elif _is_base64(text) and re.fullmatch(r"image/[\w.+-]+", mime):
        src = _data_uri(mime, text)
    else:
        return {"type": "note", "text": f"{mime}: not base64, not shown"}
    width = metadata.get("width") if isinstance(metadata, dict) else None
    return {"type": "image", "src": src,
            "width": int(width) if isinstance(width, (int, float)) and not isinstance(width, bool) and width > 0 else None}


def _dataresource_view(value: Any) -> dict[str, Any] | None:
    from .tables import table_from_dataresource

    table = table_from_dataresource(value)
    if table is None:
        return None
    return {"type": "table", "columns": table.columns, "rows": list(zip(table.index, table.cells))[:MAX_DATARESOURCE_ROWS],
            "more": max(0, len(table.index) - MAX_DATARESOURCE_ROWS)}


def _is_base64(text: str) -> bool:
    """Only base64 characters (and whitespace): nothing in it could leave an attribute."""
    return text.isascii() and not text.encode("ascii").translate(None, _BASE64_ALPHABET)


def _data_uri(mime: str, base64_text: str) -> Markup:
    """A ``data:`` URI of checked base64 text (so it needs no escaping: large images stay cheap)."""
    if "\n" in base64_text or " " in base64_text or "\r" in base64_text or "\t" in base64_text:
        base64_text = "".join(base64_text.split())
    return Markup(f"data:{mime};base64,{base64_text}")


def _clip(text: str) -> tuple[str, int]:
    """At most MAX_TEXT_LINES lines and MAX_TEXT_CHARS characters, and how many lines were cut."""
    if len(text) <= MAX_TEXT_CHARS and text.count("\n") < MAX_TEXT_LINES:
        return text, 0
    total = text.count("\n") + (0 if text.endswith("\n") else 1)
    lines = text[:MAX_TEXT_CHARS].split("\n")[:MAX_TEXT_LINES]
    return "\n".join(lines), max(1, total - len(lines))


def _terminal(text: str) -> str:
    """Stream text as a terminal shows it: a carriage return overwrites its line (progress bars)."""
    if "\r" not in text:
        return text
    text = text.replace("\r\n", "\n")
    return "\n".join(line.rstrip("\r").rsplit("\r", 1)[-1] for line in text.split("\n"))


def _plain(text: str) -> str:
    """Text without ANSI colour codes and other control characters (tabs and newlines kept)."""
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    return _CONTROL.sub("", text)


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "".join(str(part) for part in value)
    return value if isinstance(value, str) else ("" if value is None else str(value))


# -- diffs -------------------------------------------------------------------------------------------
def diff_lines(diff: str) -> list[tuple[str, str, list[tuple[str, bool]]]]:
    """A unified diff as (css class, sign, [(text, highlighted), ...]) per line, without the
    ``---``/``+++`` header; replaced lines paired one to one get their changed characters marked."""
    lines: list[tuple[str, str, list[tuple[str, bool]]]] = []
    header = True
    removed: list[str] = []
    added: list[str] = []

    def flush() -> None:
        if removed and len(removed) == len(added):
            pairs = [_inline(x, y) for x, y in zip(removed, added)]
            lines.extend(("del", "-", segments_a) for segments_a, _ in pairs)
            lines.extend(("add", "+", segments_b) for _, segments_b in pairs)
        else:
            lines.extend(("del", "-", [(x, False)]) for x in removed)
            lines.extend(("add", "+", [(y, False)]) for y in added)
        removed.clear()
        added.clear()

    for line in diff.split("\n"):
        if header and line.startswith(("--- ", "+++ ")) or header and line in ("---", "+++"):
            continue
        if line.startswith("@@"):
            header = False
            flush()
            lines.append(("hunk", "", [(line, False)]))
        elif line.startswith("-"):
            if added:
                flush()
            removed.append(line[1:])
        elif line.startswith("+"):
            added.append(line[1:])
        elif line.startswith(" "):
            flush()
            lines.append(("ctx", " ", [(line[1:], False)]))
        elif line.startswith("\\"):
            flush()
            lines.append(("note", "", [(line, False)]))
        elif line:
            flush()
            lines.append(("note", "", [(line, False)]))
    flush()
    return lines


def _inline(a: str, b: str) -> tuple[list[tuple[str, bool]], list[tuple[str, bool]]]:
    """Both lines split into unchanged and changed pieces, word by word (numbers, words,
    punctuation); whole lines when they have little in common."""
    if len(a) > MAX_INLINE_CHARS or len(b) > MAX_INLINE_CHARS or not a or not b:
        return [(a, False)], [(b, False)]
    tokens_a, tokens_b = _TOKEN.findall(a), _TOKEN.findall(b)
    opcodes = difflib.SequenceMatcher(None, tokens_a, tokens_b, autojunk=False).get_opcodes()
    same = sum(len(t) for tag, i1, i2, _, _ in opcodes if tag == "equal" for t in tokens_a[i1:i2] if not t.isspace())
    if same < 0.35 * max(len(a.strip()), len(b.strip())):
        return [(a, False)], [(b, False)]
    pieces_a: list[tuple[str, bool]] = []
    pieces_b: list[tuple[str, bool]] = []
    for tag, i1, i2, j1, j2 in opcodes:
        if i2 > i1:
            _append(pieces_a, "".join(tokens_a[i1:i2]), tag != "equal")
        if j2 > j1:
            _append(pieces_b, "".join(tokens_b[j1:j2]), tag != "equal")
    return pieces_a, pieces_b


def _append(pieces: list[tuple[str, bool]], text: str, marked: bool) -> None:
    if pieces and pieces[-1][1] == marked:
        pieces[-1] = (pieces[-1][0] + text, marked)
    else:
        pieces.append((text, marked))


def _whole(source: str, css: str, sign: str) -> list[tuple[str, str, list[tuple[str, bool]]]]:
    return [(css, sign, [(line, False)]) for line in source.split("\n")] if source else []


# -- values ------------------------------------------------------------------------------------------
def _value(value: Any) -> str:
    """A parameter value: strings as they are, numbers in full, anything else as JSON."""
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return repr(value)
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return str(value)


def _number(value: Any, digits: int = 6) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return format(value, f".{digits}g")


def _change(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return str(value)
    if value == 0:
        return "0"
    return f"{value:+.4g}"


def _percent(value: Any) -> str:
    if value is None or not isinstance(value, (int, float)) or isinstance(value, bool):
        return ""
    if value == 0:
        return "0%"
    if not math.isfinite(value):
        return f"{value}"
    if abs(value) < 1e-4:
        return f"{value * 100:+.2e}%"
    return f"{value:+.2%}"

