"""Plain-text views of runs for the terminal (the CLI's tables and records)."""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

from .store.records import RunPage, RunRecord, SweepRecord


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return value if isinstance(value, str) else json.dumps(value)


def format_pairs(values: dict[str, Any]) -> str:
    return " ".join(f"{name}={_value(value)}" for name, value in values.items())


def format_parameters(run: dict[str, Any]) -> str:
    """Every parameter's value, then which the run set: ``C=5 max_iter=100 seed=0  (set: C)``;
    a default expression is its source text, named after ``expression:``."""
    values = format_pairs(run["parameters"]) or "-"
    notes = [f"set: {', '.join(run['overridden'])}" if run.get("overridden") else "all defaults"]
    if run.get("expressions"):
        notes.append(f"{'expression' if len(run['expressions']) == 1 else 'expressions'}: "
                     f"{', '.join(run['expressions'])}")
    return f"{values}  ({'; '.join(notes)})" if run["parameters"] else values


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def format_time(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def format_run_line(run: RunRecord, with_parameters: bool = False) -> str:
    """One line for a finished run: ``train.ipynb v1 succeeded in 2.1s  accuracy=0.95``."""
    line = f"{run.notebook} v{run.version} {run.status} in {format_duration(run.duration)}"
    if with_parameters and run.parameters:
        line += f"  {format_pairs(run.parameters)}  ->"
    if run.metrics:
        line += f"  {format_pairs(run.metrics)}"
    if run.error is not None:
        where = f" at cell {run.error.cell_index + 1}" if run.error.cell_index is not None else ""
        line += f"\n  error{where}: {run.error.ename}: {run.error.evalue}"
    return line


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(header[i]), *(len(row[i]) for row in rows)) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header, *rows]]
    return "\n".join(lines)


def format_runs_table(page: RunPage, show_notebook: bool) -> str:
    if not page.runs:
        return "no runs"
    header = ["RUN" if show_notebook else "VERSION", "STATUS", "STARTED", "DURATION", "USER", "PARAMS", "METRICS"]
    rows = [
        [
            run.ref if show_notebook else f"v{run.version}",
            _status(run),
            format_time(run.started_at or run.queued_at),
            format_duration(run.duration),
            run.user or "-",  # who asked for it (a run recorded before users were: -)
            format_pairs(run.parameters),
            format_pairs(run.metrics),
        ]
        for run in page.runs
    ]
    shown = f"{page.offset + 1}-{page.offset + len(page.runs)} of {page.total}"
    return _table(header, rows) + f"\n({shown} runs)"


def _status(run: RunRecord) -> str:
    progress = run.progress
    return f"{run.status} {progress['cell']}/{progress['cells']}" if progress else run.status


def format_counts(counts: dict[str, int]) -> str:
    order = ("succeeded", "failed", "cancelled", "interrupted", "running", "queued")
    return ", ".join(f"{counts[status]} {status}" for status in order if counts.get(status))


def format_sweeps_table(sweeps: list[SweepRecord]) -> str:
    if not sweeps:
        return "no sweeps"
    header = ["SWEEP", "NOTEBOOK", "CREATED", "BACKEND", "RUNS", "STATUS"]
    rows = [
        [sweep.id, sweep.notebook, format_time(sweep.created_at), sweep.backend, str(sweep.size), _sweep_status(sweep)]
        for sweep in sweeps
    ]
    return _table(header, rows)


def _sweep_status(sweep: SweepRecord) -> str:
    """Its current runs per status; runs re-queued (superseded by their repeats) after them."""
    current = format_counts(sweep.current)
    return f"{current} (re-queued: {format_counts(sweep.superseded)})" if sweep.superseded else current


def format_details(details: dict[str, Any]) -> str:
    """The full record of a run, for ``jupyter mlx show``."""
    lines = [
        f"run        {details['ref']}",
        f"id         {details['id']}",
        f"status     {details['status']}",
        f"parameters {format_parameters(details)}",
        f"metrics    {format_pairs(details['metrics']) or '-'}",
        f"tags       {', '.join(details['tags']) or '-'}",
        f"user       {details.get('user') or '-'}",
        f"queued     {details['queued_at']}",
        f"started    {details['started_at'] or '-'}",
        f"finished   {details['finished_at'] or '-'}",
        f"duration   {format_duration(details['duration'])}",
        f"backend    {details['backend']} on {details['host']}",
    ]
    git = details["git"]
    lines.append(f"git        {git['commit'][:12]}{' (dirty)' if git['dirty'] else ''}" if git else "git        -")
    env = details["environment"]
    if env:
        lines.append(
            f"env        python {env['python']}, kernel {env['kernel']}, "
            f"{len(env['packages'])} packages, {env['platform']}"
        )
    lines.append(f"source     sha256:{details['source_hash'][:16]}")
    lines += _kernel_lines(details.get("kernel_start"), details["backend"])
    series = {}
    for point in details["metric_history"]:
        series.setdefault(point["name"], []).append(point)
    for name, points in series.items():
        if len(points) > 1:
            lines.append(f"series     {name}: {len(points)} values, last {_value(points[-1]['value'])}")
    timings = details["cell_timings"]
    if timings:
        slowest = max(timings, key=lambda t: t["duration"] or 0)
        lines.append(
            f"cells      {len(timings)} executed; slowest cell {slowest['cell_index'] + 1} "
            f"({format_duration(slowest['duration'])})"
        )
    artifacts = details.get("artifacts") or []
    if details.get("run_folder"):
        where = ("the project folder (in-place)" if details["run_folder"] == "in-place"
                 else f"its own folder ({details['run_folder']})")
        names = ", ".join(a["path"] for a in artifacts[:5]) + (", ..." if len(artifacts) > 5 else "")
        lines.append(f"artifacts  {len(artifacts)} ({format_bytes(sum(a['size'] for a in artifacts))})"
                     f"{': ' + names if artifacts else ''}; ran in {where}")
    lines += _state_lines(details.get("state"))
    for note in details.get("notes") or []:
        lines.append(f"note       {note}")
    error = details["error"]
    if error:
        where = f" in cell {error['cell_index'] + 1}" if error["cell_index"] is not None else ""
        lines.append(f"error      {error['ename']}{where}: {error['evalue']}")
    return "\n".join(lines)


_WHERE = {"gateway": "on the gateway", "dask": "on a Dask worker"}


def _kernel_lines(start: dict[str, Any] | None, backend: str) -> list[str]:
    """What ``show`` says of how the run's kernel started: warm with which modules, or cold and why."""
    if not start:
        return []
    after = f" after {_seconds(start['waited'])}" if start.get("waited") is not None else ""
    if start.get("warm"):
        line = f"kernel     started warm ({', '.join(start.get('modules') or [])}){after}"
    elif start.get("cold"):
        line = f"kernel     started cold{after}: {start['cold']}"
    else:  # a remote kernel: where, not how
        line = f"kernel     started {_WHERE.get(backend, f'by the {backend} backend')}{after}"
    if start.get("threads"):
        count = start["threads"]
        line += f" ({count} BLAS/OpenMP thread{'s' if count > 1 else ''}: the sweep's runs shared the cores)"
    return [line, *(f"           not preloaded: {module}: {why}" for module, why in (start.get("left_out") or {}).items())]


def _seconds(seconds: float) -> str:
    """``0 s``, ``0.02 s``, ``1.3 s``, ``12 s``: a wait, to the hundredth below 10 s."""
    return f"{round(seconds, 2):g} s" if seconds < 10 else f"{seconds:.0f} s"


def _state_lines(state: dict[str, Any] | None) -> list[str]:
    """What ``show`` says of the state captured for the notebook's functions."""
    if not state:
        return []
    if state.get("error"):
        return [f"state      not captured: {state['error']}"]
    objects = state.get("objects") or []
    size = sum(o.get("size") or 0 for o in objects)
    described = ", ".join(
        f"{o['name']} (module {o['module']})" if o["kind"] == "module"
        else f"{o['name']} ({o['kind']}, {format_bytes(o['size'])})" for o in objects)
    functions = ", ".join(state.get("functions") or []) or "no function"
    lines = [f"state      for {functions}: {len(objects)} object(s), {format_bytes(size)}"
             + (f": {described}" if objects else "")]
    lines += [f"           not capturable: {name}: {reason}" for name, reason in state.get("not_capturable") or []]
    return lines


def format_bytes(size: float) -> str:
    """``532 bytes``, ``1.5 KiB``, ``12.0 MiB``, ``1.0 GiB``."""
    if size < 1024:
        return f"{size:g} bytes"
    for unit in ("KiB", "MiB", "GiB"):
        size /= 1024
        if size < 1024 or unit == "GiB":
            return f"{size:.1f} {unit}"
    return f"{size} bytes"


def format_run_files(files: dict[str, Any]) -> str:
    """A run's artifacts, notes and (when asked) the project files it saw, for ``jupyter mlx artifacts``."""
    artifacts = files["artifacts"]
    folder = {None: "the project folder (before run folders)", "in-place": "the project folder (in-place)"}.get(
        files["run_folder"], f"its own folder ({files['run_folder']})")
    total = sum(a["size"] for a in artifacts)
    lines = [f"{files['ref']}: {len(artifacts)} artifact(s), {format_bytes(total)}; ran in {folder}"]
    if artifacts:
        rows = [[a["path"], format_bytes(a["size"]), a["media_type"], a["sha256"][:12]] for a in artifacts]
        lines.append(_table(["PATH", "SIZE", "TYPE", "SHA256"], rows))
    lines += [f"note: {note}" for note in files["notes"]]
    inputs = files.get("inputs")
    if inputs is not None:
        lines.append(f"inputs: {len(inputs)} project file(s) when it started")
        rows = [[f["path"], format_bytes(f["size"]), (f["sha256"] or "size+mtime only")[:16]] for f in inputs]
        if rows:
            lines.append(_table(["PATH", "SIZE", "SHA256"], rows))
    return "\n".join(lines)


def format_endpoints_table(found: list) -> str:
    """Managed endpoints: name, what they serve (from the run's state, or re-executed), where,
    state, requests and p50 latency."""
    rows = []
    for record, status in found:
        serving = record.deployment
        health = status.get("health") or {}
        latency = (health.get("latency_ms") or {}).get("p50")
        rows.append([
            record.name,
            serving.ref or serving.notebook,
            f"POST /{serving.function}" if serving.function else "cells",
            "state" if serving.serves == "state" else "re-executes",
            record.url,
            status["state"] + (f" ({status['error']})" if status.get("error") and status["state"] != "serving" else ""),
            str(health.get("requests", "")),
            f"{latency:g} ms" if latency is not None else "",
        ])
    return _table(["NAME", "VERSION", "ROUTE", "FROM", "URL", "STATUS", "REQUESTS", "P50"], rows)
