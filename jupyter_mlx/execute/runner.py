"""Execute a notebook snapshot with papermill on a fresh kernel and return what happened.

The recipe: prepare the snapshot, inject parameters, start a kernel in the notebook's folder,
execute cell by cell, and turn whatever happened (success, a failing cell, a timeout, a dead
kernel) into a ``RunResult``. A failed run is data, not an exception. Never touches the store.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..store.records import CellTiming, RunError

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())  # nbclient logs timeouts we report as data

ProgressCallback = Callable[[int, int], None]
_INTERRUPT_GRACE = 10.0


@dataclass(frozen=True)
class RunTask:
    """Everything needed to execute one run, and nothing of the store."""

    notebook: str
    source: bytes
    parameters: dict[str, Any]
    cwd: Path
    kernel_name: str = ""
    cell_timeout: float = 0.0
    run_timeout: float = 0.0
    startup_timeout: float = 60.0


@dataclass
class RunResult:
    status: str  # succeeded | failed
    notebook: dict[str, Any] | None
    kernel_name: str
    started_at: float
    finished_at: float
    cell_timings: list[CellTiming] = field(default_factory=list)
    error: RunError | None = None


def kernel_name_of(source: dict[str, Any], configured: str = "") -> str:
    """The kernel to use: configured, else the notebook's kernelspec, else python3."""
    spec = (source.get("metadata") or {}).get("kernelspec") or {}
    return configured or spec.get("name") or "python3"


def _prepare(source: bytes, parameters: dict[str, Any], kernel_name: str, notebook: str) -> Any:
    """Read the snapshot as papermill's ``load_notebook_node`` does, then parameterize it."""
    import nbformat
    from papermill.execute import prepare_notebook_metadata, remove_error_markers
    from papermill.parameterize import parameterize_notebook

    with warnings.catch_warnings():  # old notebooks lack cell ids; papermill accepts them too
        warnings.simplefilter("ignore")
        nb = nbformat.reads(source.decode("utf-8"), as_version=4)
    nb = nbformat.v4.upgrade(nb) or nb
    nb.metadata.setdefault("papermill", {})
    for cell in nb.cells:
        cell.metadata.setdefault("tags", [])
        cell.metadata.setdefault("papermill", {})
    if parameters:
        nb = parameterize_notebook(nb, parameters, report_mode=False, kernel_name=kernel_name)
    nb = prepare_notebook_metadata(nb, notebook, None, False)
    return remove_error_markers(nb)


def run_sync(coroutine_function: Callable[..., Any]) -> Callable[..., Any]:
    from jupyter_core.utils import run_sync as _run_sync

    return _run_sync(coroutine_function)


class _Watchdog:
    """Interrupts the kernel when the run exceeds its timeout, and kills it if that is ignored."""

    def __init__(self, km: Any, timeout: float) -> None:
        self.km = km
        self.fired = False
        self._timers = []
        if timeout > 0:
            self._timers = [
                threading.Timer(timeout, self._interrupt),
                threading.Timer(timeout + _INTERRUPT_GRACE, self._kill),
            ]
            for timer in self._timers:
                timer.daemon = True
                timer.start()

    def _interrupt(self) -> None:
        self.fired = True
        try:
            run_sync(self.km.interrupt_kernel)()
        except Exception:  # the kernel may already be gone
            log.debug("interrupt after run timeout failed", exc_info=True)

    def _kill(self) -> None:
        try:
            run_sync(self.km.signal_kernel)(9)
        except Exception:
            log.debug("kill after run timeout failed", exc_info=True)

    def cancel(self) -> None:
        for timer in self._timers:
            timer.cancel()


def _execution_manager(nb: Any, on_cell: ProgressCallback | None) -> Any:
    """papermill's execution manager, also tracking the cell in progress."""
    from papermill.engines import NotebookExecutionManager

    class Tracker(NotebookExecutionManager):
        current_cell: int | None = None

        def cell_start(self, cell: Any, cell_index: int | None = None, **kwargs: Any) -> None:
            self.current_cell = cell_index
            super().cell_start(cell, cell_index, **kwargs)
            if on_cell is not None and cell_index is not None:
                on_cell(cell_index, len(self.nb.cells))

    return Tracker(nb, output_path=None, progress_bar=False, log_output=False, autosave_cell_every=0)


def _start_kernel(kernel_name: str, cwd: Path, startup_timeout: float) -> Any:
    from jupyter_client.manager import AsyncKernelManager

    # IPC sockets in a private folder: no TCP ports to collide between parallel runs,
    # nothing on the network, and nothing left in the notebook's folder
    sockets = tempfile.mkdtemp(prefix="mlx-kernel-")
    km = AsyncKernelManager(
        kernel_name=kernel_name,
        transport="ipc",
        ip=os.path.join(sockets, "kernel"),
        connection_file=os.path.join(sockets, "connection.json"),
    )
    run_sync(km.start_kernel)(cwd=str(cwd), extra_arguments=["--HistoryManager.hist_file=:memory:"])
    return km


def _failing_cell_error(nb: Any) -> RunError | None:
    """The error papermill recorded on the failing cell, if any."""
    for index, cell in enumerate(nb.cells):
        if not cell.metadata.get("papermill", {}).get("exception"):
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return RunError(
                    output.get("ename", ""),
                    output.get("evalue", ""),
                    index,
                    list(output.get("traceback", [])),
                )
        return RunError("CellExecutionError", "the cell failed", index)
    return None


def _cell_timings(nb: Any) -> list[CellTiming]:
    import datetime as dt

    def epoch(value: str | None) -> float | None:
        return dt.datetime.fromisoformat(value).timestamp() if value else None

    timings = []
    for index, cell in enumerate(nb.cells):
        meta = cell.metadata.get("papermill", {})
        if cell.cell_type == "code" and meta.get("start_time"):
            timings.append(CellTiming(index, epoch(meta.get("start_time")), epoch(meta.get("end_time"))))
    return timings


def _as_dict(nb: Any) -> dict[str, Any]:
    return json.loads(json.dumps(nb))


def execute_run(task: RunTask, on_cell: ProgressCallback | None = None) -> RunResult:
    """Execute ``task`` and describe the outcome; only programming errors raise."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.clientwrap import PapermillNotebookClient

    started_at = time.time()
    kernel_name = kernel_name_of(json.loads(task.source), task.kernel_name)
    nb = _prepare(task.source, task.parameters, kernel_name, task.notebook)
    manager = _execution_manager(nb, on_cell)
    error: RunError | None = None
    km = client = watchdog = None
    try:
        km = _start_kernel(kernel_name, task.cwd, task.startup_timeout)
        watchdog = _Watchdog(km, task.run_timeout)
        client = PapermillNotebookClient(
            manager,
            km=km,
            kernel_name=kernel_name,
            timeout=task.cell_timeout or None,
            startup_timeout=int(task.startup_timeout),
            log=log,
        )
        manager.notebook_start()
        try:
            client.execute()
        finally:
            manager.notebook_complete()
    except CellTimeoutError:
        error = RunError(
            "CellTimeoutError",
            f"cell {manager.current_cell} ran longer than the cell timeout of {task.cell_timeout:g} s",
            manager.current_cell,
        )
    except DeadKernelError as exc:
        error = RunError("DeadKernelError", str(exc) or "the kernel died", manager.current_cell)
    except Exception as exc:  # kernel failed to start, no such kernel, ...
        error = RunError(type(exc).__name__, str(exc), manager.current_cell)
    finally:
        if watchdog is not None:
            watchdog.cancel()
        if client is not None and client.kc is not None:
            client.kc.stop_channels()
        if km is not None:
            _shutdown_in_background(km)
    if watchdog is not None and watchdog.fired:
        error = RunError(
            "RunTimeoutError",
            f"the run took longer than its timeout of {task.run_timeout:g} s",
            manager.current_cell,
        )
    error = error or _failing_cell_error(nb)
    return RunResult(
        status="failed" if error else "succeeded",
        notebook=_as_dict(nb),
        kernel_name=kernel_name,
        started_at=started_at,
        finished_at=time.time(),
        cell_timings=_cell_timings(nb),
        error=error,
    )


_shutdowns: list[threading.Thread] = []


def _shutdown_in_background(km: Any) -> None:
    """Shut the kernel down now, off the critical path (a graceful shutdown costs ~0.5 s)."""

    def shutdown() -> None:
        try:
            run_sync(km.shutdown_kernel)(now=True)
        except Exception:
            log.debug("kernel shutdown failed", exc_info=True)
        finally:
            shutil.rmtree(os.path.dirname(km.connection_file), ignore_errors=True)
            _close_thread_event_loop()

    thread = threading.Thread(target=shutdown, name="mlx-kernel-shutdown", daemon=True)
    thread.start()
    _shutdowns.append(thread)


def _close_thread_event_loop() -> None:
    """Close the loop jupyter_core's ``run_sync`` made for this thread (else it warns at exit)."""
    import asyncio

    try:
        asyncio.get_event_loop_policy().get_event_loop().close()
    except RuntimeError:
        pass


def wait_for_kernel_shutdowns(timeout: float = 10.0) -> None:
    """Join pending kernel shutdowns (before a CLI process exits)."""
    deadline = time.monotonic() + timeout
    while _shutdowns:
        _shutdowns.pop().join(max(0.0, deadline - time.monotonic()))
