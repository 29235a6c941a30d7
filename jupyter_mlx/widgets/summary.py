"""Plain-text and HTML summaries of runs: what a notebook keeps where widgets are not rendered
(nbconvert to HTML, papermill output, a terminal IPython)."""
from __future__ import annotations

import html
from typing import Any

from ..formatting import format_duration, format_pairs
from ..store.records import FINAL_STATUSES

_COLORS = {"succeeded": "#2e7d32", "failed": "#c62828", "cancelled": "#757575", "interrupted": "#ef6c00",
           "running": "#1565c0", "queued": "#616161"}


def progress_text(record: dict[str, Any], elapsed: float | None) -> str:
    """``running cell 2/5 · 3.1s`` (or the status of a run that is not running)."""
    progress = record.get("progress")
    where = f" cell {progress['cell']}/{progress['cells']}" if progress else ""
    return f"{record['status']}{where}" + (f" · {format_duration(elapsed)}" if elapsed is not None else "")


def run_text(record: dict[str, Any], link: str | None = None) -> str:
    """A run in a few lines: ref, status, duration, metrics; parameters; error; where to see it."""
    lines = [f"{record['ref']} {record['status']}"
             + (f" in {format_duration(record.get('duration'))}" if record["status"] in FINAL_STATUSES else "")
             + (f"  {format_pairs(record['metrics'])}" if record.get("metrics") else "")]
    if record.get("parameters"):
        lines.append(f"  parameters: {format_pairs(record['parameters'])}")
    error = record.get("error")
    if error and record["status"] != "succeeded":
        where = f" at cell {error['cell_index'] + 1}" if error.get("cell_index") is not None else ""
        lines.append(f"  error{where}: {error['ename']}: {error['evalue']}")
    if link:
        lines.append(f"  see: {link}")
    return "\n".join(lines)


def status_html(status: str) -> str:
    color = _COLORS.get(status, "inherit")
    return f'<span style="color:{color};font-weight:600">{html.escape(status)}</span>'


def _link_html(link: str | None) -> str:
    if not link:
        return ""
    if link.startswith("http"):
        return f' · <a href="{html.escape(link)}" target="_blank">open</a>'
    return f" · <code>{html.escape(link)}</code>"


def run_html(record: dict[str, Any], link: str | None = None) -> str:
    parts = [f"<b>{html.escape(record['ref'])}</b> {status_html(record['status'])}"]
    if record["status"] in FINAL_STATUSES and record.get("duration") is not None:
        parts.append(f" in {format_duration(record['duration'])}")
    parts.append(_link_html(link))
    rows = []
    if record.get("parameters"):
        rows.append(("parameters", format_pairs(record["parameters"])))
    if record.get("metrics"):
        rows.append(("metrics", format_pairs(record["metrics"])))
    error = record.get("error")
    if error and record["status"] != "succeeded":
        where = f"cell {error['cell_index'] + 1}: " if error.get("cell_index") is not None else ""
        rows.append(("error", f"{where}{error['ename']}: {error['evalue']}"))
    body = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
                   f"<td style='text-align:left'><code>{html.escape(v)}</code></td></tr>" for k, v in rows)
    return f'<div class="jupyter-mlx-run">{"".join(parts)}<table>{body}</table></div>'


def counts_text(records: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for record in records:
        counts[record["status"]] = counts.get(record["status"], 0) + 1
    return ", ".join(f"{n} {status}" for status, n in counts.items())


def sweep_text(sweep_id: str, records: list[dict[str, Any]]) -> str:
    notebook = records[0]["notebook"] if records else ""
    lines = [f"sweep {sweep_id}: {len(records)} runs of {notebook}: {counts_text(records)}"]
    for record in records:
        line = f"  v{record['version']} {record['status']}  {format_pairs(record['parameters'])}"
        if record.get("metrics"):
            line += f"  -> {format_pairs(record['metrics'])}"
        lines.append(line)
    return "\n".join(lines)


def sweep_html(sweep_id: str, records: list[dict[str, Any]]) -> str:
    notebook = records[0]["notebook"] if records else ""
    left = "style='text-align:left;padding-right:1em'"  # JupyterLab right-aligns table cells
    rows = "".join(
        f"<tr><td {left}>v{r['version']}</td><td {left}>{status_html(r['status'])}</td>"
        f"<td {left}><code>{html.escape(format_pairs(r['parameters']))}</code></td>"
        f"<td {left}><code>{html.escape(format_pairs(r.get('metrics') or {}))}</code></td></tr>"
        for r in records
    )
    head = "".join(f"<th {left}>{name}</th>" for name in ("run", "status", "parameters", "metrics"))
    return (f'<div class="jupyter-mlx-sweep"><b>sweep {html.escape(sweep_id)}</b>: {len(records)} runs of '
            f"{html.escape(notebook)}: {html.escape(counts_text(records))}"
            f"<table><tr>{head}</tr>{rows}</table></div>")
