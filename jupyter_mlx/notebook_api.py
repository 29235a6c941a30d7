"""The Python API for notebooks: ``runs()``, ``run()``, ``sweep()``, ``plot_metric()``.

Every function goes through ``jupyter_mlx.transport.connect()``: the Jupyter server that serves
this project when there is one (its queue, its panel), else a ``RunService`` in this process.
Runs come back as handles that wait, cancel, and display themselves.
"""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from .errors import MLXError
from .store.records import FINAL_STATUSES

if TYPE_CHECKING:
    from .transport import Transport

WAIT_POLL = 0.25  # seconds between two looks at a running run
SWEEP_PAGE = 1000  # a sweep up to this size is refreshed with one request (the store's largest page)


def _epoch(text: str | None) -> float | None:
    return None if not text else dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True)
class RunView:
    """A run's REST JSON with the attributes ``RunsTable`` reads of a ``RunRecord``."""

    data: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.data[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def started_at(self) -> float | None:
        return _epoch(self.data.get("started_at"))


def runs_table(records: list[dict[str, Any]]) -> Any:
    """The library's ``RunsTable`` of runs given as JSON (either transport)."""
    from .diff.table import RunsTable

    return RunsTable.of([RunView(record) for record in records])  # type: ignore[arg-type]


def runs_frame(records: list[dict[str, Any]]) -> Any:
    """Runs as a pandas DataFrame indexed by ref: id, version, status, started_at (UTC), duration,
    sweep_id, then a column per parameter and per metric (numbers as numbers)."""
    frame = runs_table(records).frame()
    if len(frame):
        frame["started_at"] = frame["started_at"].dt.round("ms")  # stored in ms; float seconds add noise
    frame.insert(0, "id", [record["id"] for record in records])
    return frame


class RunHandle:
    """One run: ``.status``, ``.metrics``, ``.wait()``, ``.notebook``, ``.cancel()``.

    Reading ``status`` or ``metrics`` of an unfinished run asks the service again.
    """

    def __init__(self, transport: "Transport", record: dict[str, Any]) -> None:
        self.transport = transport
        self.record = record
        self._notebook: Any = None

    # -- identity --
    @property
    def id(self) -> str:
        return self.record["id"]

    @property
    def ref(self) -> str:
        return self.record["ref"]

    @property
    def version(self) -> int:
        return self.record["version"]

    @property
    def parameters(self) -> dict[str, Any]:
        return self.record["parameters"]

    # -- state --
    def refresh(self) -> "RunHandle":
        if not self.done:
            self.record = self.transport.get_run(self.id)
        return self

    @property
    def done(self) -> bool:
        return self.record["status"] in FINAL_STATUSES

    @property
    def status(self) -> str:
        return self.refresh().record["status"]

    @property
    def metrics(self) -> dict[str, float]:
        return self.refresh().record["metrics"]

    @property
    def error(self) -> dict[str, Any] | None:
        return self.refresh().record.get("error")

    @property
    def progress(self) -> dict[str, int] | None:
        """``{"cell": i, "cells": n}`` while running."""
        return self.record.get("progress")

    def elapsed(self) -> float | None:
        """Seconds it ran (so far)."""
        if self.record.get("duration") is not None:
            return self.record["duration"]
        started = _epoch(self.record.get("started_at"))
        return None if started is None else max(0.0, time.time() - started)

    def wait(self, timeout: float | None = None) -> "RunHandle":
        """Wait until the run is over; ``TimeoutError`` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.refresh().done:
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"{self.ref} is still {self.record['status']} after {timeout:g}s")
            time.sleep(WAIT_POLL)
        return self

    def cancel(self) -> "RunHandle":
        """Stop the run (queued or running); ``.status`` becomes ``cancelled`` once it stopped."""
        if not self.done:
            self.transport.cancel(self.id, kind="run")
        return self.refresh()

    @property
    def notebook(self) -> Any:
        """The executed notebook (an ``nbformat.NotebookNode``), once the run is over."""
        if self._notebook is None:
            if not self.refresh().done:
                raise MLXError("conflict", f"{self.ref} is {self.record['status']}: wait() for it first")
            import nbformat

            self._notebook = nbformat.from_dict(self.transport.executed_notebook(self.id))
        return self._notebook

    @property
    def artifacts(self) -> Any:
        """The files the run wrote: a pandas DataFrame (path, size, sha256, media_type), one row each."""
        import pandas as pd

        rows = self.transport.run_files(self.id)["artifacts"]
        return pd.DataFrame(rows, columns=["path", "size", "sha256", "media_type"])

    def artifact(self, path: str, to: str | Path | None = None) -> Any:
        """An artifact's bytes; with ``to``, written to that file, whose path is returned."""
        content = self.transport.artifact(self.id, path)
        if to is None:
            return content
        target = Path(to)
        target.write_bytes(content)
        return target

    def link(self) -> str:
        return self.transport.link(self.record)

    # -- display --
    def summary(self) -> str:
        from .widgets.summary import run_text

        return run_text(self.record, self.link())

    def __repr__(self) -> str:
        return f"<RunHandle {self.ref} {self.record['status']}>"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from .widgets import run_bundle

        return run_bundle([self])


def refresh_all(handles: list["RunHandle"], sweep_id: str | None = None) -> bool:
    """Bring the unfinished runs up to date (a sweep's with one request, not one per run);
    True when all of them are over."""
    open_runs = [handle for handle in handles if not handle.done]
    if not open_runs:
        return True
    if sweep_id is not None and len(handles) <= SWEEP_PAGE:
        fresh = {r["id"]: r for r in open_runs[0].transport.list_runs(None, None, len(handles), sweep_id)}
        for handle in open_runs:
            handle.record = fresh.get(handle.id, handle.record)
    else:
        for handle in open_runs:
            handle.refresh()
    return all(handle.done for handle in handles)


class SweepHandle:
    """The runs of a sweep: a list of ``RunHandle`` with ``.wait()``, ``.cancel()``, ``.frame()``."""

    def __init__(self, transport: "Transport", sweep: dict[str, Any], runs: list[dict[str, Any]]) -> None:
        self.transport = transport
        self.sweep = sweep
        self.runs = [RunHandle(transport, record) for record in runs]

    @property
    def id(self) -> str:
        return self.sweep["id"]

    def __iter__(self) -> Iterator[RunHandle]:
        return iter(self.runs)

    def __len__(self) -> int:
        return len(self.runs)

    def __getitem__(self, index: int) -> RunHandle:
        return self.runs[index]

    def refresh(self) -> "SweepHandle":
        refresh_all(self.runs, self.id)
        return self

    @property
    def done(self) -> bool:
        return all(run.done for run in self.runs)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for run in self.refresh().runs:
            counts[run.record["status"]] = counts.get(run.record["status"], 0) + 1
        return counts

    @property
    def status(self) -> str:
        counts = self.counts()
        if counts.get("queued") or counts.get("running"):
            return "running"
        return "succeeded" if counts.get("succeeded", 0) == len(self.runs) else "failed"

    def wait(self, timeout: float | None = None) -> "SweepHandle":
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.refresh().done:
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"sweep {self.id} is still running after {timeout:g}s")
            time.sleep(WAIT_POLL)
        return self

    def cancel(self) -> "SweepHandle":
        if not self.refresh().done:
            self.transport.cancel(self.id, kind="sweep")
        return self.refresh()

    def frame(self) -> Any:
        """The sweep's runs as a DataFrame (see ``runs()``)."""
        return runs_frame([run.record for run in self.refresh().runs])

    def __repr__(self) -> str:
        return f"<SweepHandle {self.id} {len(self.runs)} runs>"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from .widgets import run_bundle

        return run_bundle(self.runs, sweep_id=self.id)


def _connect(transport: "Transport | str | None") -> "Transport":
    if transport is None or isinstance(transport, str):
        from .transport import connect

        return connect(mode=transport)
    return transport


def runs(notebook: str | None = None, status: str | None = None, limit: int = 50, sweep: str | None = None,
         filter: str | None = None, transport: "Transport | str | None" = None) -> Any:
    """The newest ``limit`` runs (of ``notebook``, of a sweep, matching ``filter`` terms such as
    ``"C>0.5 status=succeeded"``) as a pandas DataFrame indexed by ref:
    ``id, version, status, started_at, duration, sweep_id``, then parameters, then metrics."""
    return runs_frame(_connect(transport).list_runs(notebook, status, limit, sweep, filter))


def run(notebook: str, parameters: dict[str, Any] | None = None, *, backend: str | None = None,
        wait: bool = False, timeout: float | None = None, transport: "Transport | str | None" = None,
        **options: Any) -> RunHandle:
    """Queue a run of ``notebook`` with ``parameters``; ``wait``: return once it is over.

    ``options``: ``tags``, ``kernel_name``, ``cell_timeout``, ``run_timeout``, ``backend_address``,
    ``backend_token`` (as ``RunService.submit``).
    """
    connection = _connect(transport)
    handle = RunHandle(connection, connection.submit(notebook, dict(parameters or {}), {"backend": backend, **options}))
    return handle.wait(timeout) if wait else handle


def sweep(notebook: str, grid: dict[str, list[Any]] | list[dict[str, Any]], *, backend: str | None = None,
          wait: bool = False, timeout: float | None = None, confirm: bool = False,
          transport: "Transport | str | None" = None, **options: Any) -> SweepHandle:
    """Run ``notebook`` over every combination of ``grid`` (``{"C": [0.1, 1, 10]}``), or over a
    list of parameter sets (``[{"C": 1}, {"C": 2}]``)."""
    spec = {"list": grid} if isinstance(grid, list) else {"grid": {k: list(v) for k, v in grid.items()}}
    connection = _connect(transport)
    found, records = connection.sweep(notebook, spec, {"backend": backend, "confirm": confirm, **options})
    handle = SweepHandle(connection, found, records)
    return handle.wait(timeout) if wait else handle


def plot_metric(metric: str, by: str | None = None, notebook: str | None = None, *, sweep: str | None = None,
                status: str | None = None, limit: int = 50, transport: "Transport | str | None" = None) -> Any:
    """A matplotlib Figure of ``metric`` across runs, against the parameter ``by`` (default: the first
    parameter that varies), as the panel's chart draws it."""
    records = _connect(transport).list_runs(notebook, status, limit, sweep)
    figure = runs_table(records).plot(metric, by)
    _show_figures_inline()
    return figure


def _show_figures_inline() -> None:
    """Let IPython render a bare ``Figure`` (no pyplot) as PNG, unless a format is set up already."""
    import sys

    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        return
    from matplotlib.figure import Figure

    formatters = shell.display_formatter.formatters
    for mime in ("image/png", "image/svg+xml", "application/pdf"):
        try:
            formatters[mime].lookup_by_type(Figure)
            return  # %matplotlib inline (or the user) chose already
        except KeyError:
            continue
    from IPython.core.pylabtools import print_figure

    formatters["image/png"].for_type(Figure, lambda figure: print_figure(figure, "png"))


def deploy(target: str, function: str | None = None, *, transport: "Transport | str | None" = None,
           **options: Any) -> dict[str, Any]:
    """Serve a notebook function from a run (``train.ipynb@v5``) as a managed endpoint: its JSON
    (``url``, ``name``, ...) with the new ``token`` (shown once)."""
    return _connect(transport).deploy(target, {"function": function, **options})
