"""Execute a notebook snapshot with papermill on a fresh kernel and return what happened.

The recipe: prepare the snapshot, inject parameters, start a kernel in the notebook's folder,
execute cell by cell, and turn whatever happened (success, a failing cell, a timeout, a dead
kernel) into a ``RunResult``. A failed run is data, not an exception. Never touches the store.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..store.records import CellTiming, RunError
from .deadlines import Deadline, deadlines
from .kernels import run_sync, shared_zmq_context, wait_for_kernel_shutdowns  # noqa: F401 (re-exported)
from .threads import limit_code

if TYPE_CHECKING:
    from .executor import CancelToken
    from .kernels import KernelProvider

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())  # nbclient logs timeouts we report as data

ProgressCallback = Callable[[int, int], None]
# what a kernel imports for itself once running (its debugger), not what the notebook uses
KERNEL_INTERNALS = ("debugpy", "pydev", "pydevd")
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
    run_folder: str = "auto"  # how the service makes the run's own folder (see jupyter_mlx.workdir)
    capture: bool = False  # capture the state the notebook's functions need when the run succeeds
    capture_seconds: float = 60.0
    capture_bytes: int = 2 << 30
    capture_functions: tuple[str, ...] = ()  # only these functions' state (empty: every notebook function)
    artifact_max_file_size: int = 1 << 30  # what a remote kernel sends back of the files the run wrote
    artifact_max_run_size: int = 1 << 30
    preload: tuple[str, ...] = ()  # modules the notebook imports, which a forked kernel may start with
    preload_left_out: tuple[tuple[str, str], ...] = ()  # the notebook's modules never preloaded, with why
    threads: int = 0  # BLAS/OpenMP threads of a sweep's run sharing the cores (see threads.py); 0: no limit


@dataclass
class RunResult:
    status: str  # succeeded | failed | cancelled
    notebook: dict[str, Any] | None
    kernel_name: str
    started_at: float
    finished_at: float
    cell_timings: list[CellTiming] = field(default_factory=list)
    error: RunError | None = None
    collected: Path | None = None  # a remote kernel's files of the run, copied into this local folder
    collected_notes: list[str] = field(default_factory=list)
    files: dict[str, bytes] | None = None  # the run's files, carried back from a Dask worker with no shared disk
    state: Path | None = None  # the captured state (see execute.capture), in a local temporary file
    state_manifest: dict[str, Any] | None = None
    state_bytes: bytes | None = None  # the state, carried back from a Dask worker (its file is the worker's)
    warm: dict[str, Any] | None = None  # a forked kernel's start: modules preloaded, left out, or why cold
    modules_used: list[str] | None = None  # the third-party top-level modules the run ended with (forked kernels)
    kernel_wait: float | None = None  # seconds from asking for a kernel to its first cell starting
    threads: int = 0  # the BLAS/OpenMP thread limit the run had (0: the libraries' defaults)


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


class _Watchdog:
    """Interrupts the kernel when the run exceeds its timeout or is cancelled, then kills it
    if the interrupt is ignored. Arming costs no thread (one shared timer thread serves all
    deadlines); only a deadline that fires starts a short thread, as the kernel call may block."""

    def __init__(self, km: Any, timeout: float, cancel: "CancelToken | None") -> None:
        self.km = km
        self.timed_out = False
        self._lock = threading.Lock()
        self._deadlines: list[Deadline] = []
        if timeout > 0:
            self._arm(timeout, timed_out=True)
        self._unregister = cancel.on_cancel(self._stop) if cancel is not None else (lambda: None)

    def _arm(self, delay: float, timed_out: bool) -> None:
        with self._lock:
            self._deadlines += [
                deadlines.call_later(delay, lambda: self._in_thread(self._interrupt, timed_out)),
                deadlines.call_later(delay + _INTERRUPT_GRACE, lambda: self._in_thread(self._kill)),
            ]

    @staticmethod
    def _in_thread(action: Any, *args: Any) -> None:
        threading.Thread(target=action, args=args, name="mlx-watchdog", daemon=True).start()

    def _stop(self) -> None:
        self._arm(0.0, timed_out=False)

    def _interrupt(self, timed_out: bool) -> None:
        self.timed_out = self.timed_out or timed_out
        try:
            run_sync(self.km.interrupt_kernel)()
        except Exception:  # the kernel may already be gone
            log.debug("interrupt failed", exc_info=True)

    def _kill(self) -> None:
        try:
            run_sync(self.km.signal_kernel)(9)
        except Exception:
            log.debug("kill failed", exc_info=True)

    def cancel(self) -> None:
        self._unregister()
        with self._lock:
            for deadline in self._deadlines:
                deadline.cancel()


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


def _failing_cell_error(nb: Any) -> RunError | None:
    """The error papermill raises for this executed notebook, if any.

    papermill's own ``raise_for_execution_errors`` decides: the first error output (or failed
    cell), except ``SystemExit`` without a code or with 0 (``sys.exit()``, ``sys.exit(0)``,
    ``raise SystemExit``), which ends the notebook early and successfully (the cells after it
    did not run); ``sys.exit(1)`` fails the run.
    """
    import copy

    from papermill.exceptions import PapermillExecutionError
    from papermill.execute import raise_for_execution_errors

    view = copy.copy(nb)
    view.cells = list(nb.cells)  # papermill inserts its error-marker cells into what it is given
    try:
        raise_for_execution_errors(view, None)  # output path None: papermill writes nothing
    except PapermillExecutionError as error:
        return RunError(error.ename, error.evalue, error.cell_index, list(error.traceback or []))
    return None


def _record_stop_in_cell(nb: Any, manager: Any, error: RunError) -> None:
    """The cell a run stopped in without an error of its own (the kernel died, the cell timed
    out) gets an error output naming the cause, and papermill's failed status: its metadata
    must not say ``completed``, nor those of the cells after it, which did not run."""
    import nbformat

    if error.cell_index is None or not 0 <= error.cell_index < len(nb.cells):
        return
    cell = nb.cells[error.cell_index]
    if cell.get("cell_type") != "code":
        return
    if not any(output.get("output_type") == "error" for output in cell.get("outputs", [])):
        cell.outputs.append(
            nbformat.v4.new_output(
                "error", ename=error.ename, evalue=error.evalue, traceback=[f"{error.ename}: {error.evalue}"]
            )
        )
    manager.cell_exception(cell, cell_index=error.cell_index)


def _dead_kernel_message(exc: Exception) -> str:
    detail = str(exc).strip()
    if not detail or detail.rstrip(".").lower() == "kernel died":  # nbclient's bare words
        detail = "its process ended (killed, out of memory or crashed)"
    return f"the kernel died while this cell ran: {detail}"


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


def _client_class() -> type:
    """papermill's notebook client, able to move a pre-started kernel into the run's folder."""
    global _CLIENT_CLASS
    if _CLIENT_CLASS is None:
        from papermill.clientwrap import PapermillNotebookClient

        class Client(PapermillNotebookClient):
            chdir: str | None = None
            threads: int = 0
            remote_folder: bool = False
            quick_ready: bool = False

            async def async_start_new_kernel_client(self) -> Any:
                if self.quick_ready:
                    kc = await self._quick_start_client()
                else:
                    kc = await super().async_start_new_kernel_client()
                code = f"__import__('os').chdir({self.chdir!r})\n" if self.chdir else ""
                if self.remote_folder:
                    from .remote_folder import setup_code

                    code = setup_code()
                code += limit_code(self.threads)
                if code:
                    msg_id = kc.execute(code, silent=True, store_history=False)
                    await self.async_wait_for_reply(msg_id)
                return kc

            start_new_kernel_client = run_sync(async_start_new_kernel_client)

            async def _quick_start_client(self) -> Any:
                """A client ready in milliseconds: ``wait_for_ready`` ends by draining iopub
                until it has been silent for 0.2 s, on every run. Instead: ask for kernel_info
                until its reply and the matching ``idle`` status on iopub both arrive (which
                also proves iopub is connected, so no output can be lost)."""
                self.kc = kc = self.km.client(context=shared_zmq_context())
                await ensure_async(kc.start_channels())
                try:
                    await _handshake(kc, self.km, self.startup_timeout)
                except Exception:
                    await self._async_cleanup_kernel()
                    raise
                kc.allow_stdin = False
                return kc

        _CLIENT_CLASS = Client
    return _CLIENT_CLASS


_CLIENT_CLASS: type | None = None


async def ensure_async(value: Any) -> Any:
    import inspect

    return await value if inspect.isawaitable(value) else value


async def _handshake(kc: Any, km: Any, timeout: float) -> None:
    """Wait until the kernel answers kernel_info on shell and reports idle for it on iopub."""
    from queue import Empty

    deadline = time.monotonic() + timeout
    while True:
        msg_id = kc.kernel_info()
        replied = idle = False
        attempt_end = min(deadline, time.monotonic() + 1.0)
        while not (replied and idle) and time.monotonic() < attempt_end:
            if not replied:
                try:
                    reply = await ensure_async(kc.shell_channel.get_msg(timeout=0.05))
                    replied = reply.get("parent_header", {}).get("msg_id") == msg_id
                except Empty:
                    pass
            try:
                message = await ensure_async(kc.iopub_channel.get_msg(timeout=0.01 if not replied else 0.05))
            except Empty:
                continue
            idle = idle or (
                message.get("parent_header", {}).get("msg_id") == msg_id
                and message.get("msg_type") == "status"
                and message.get("content", {}).get("execution_state") == "idle"
            )
        if replied and idle:
            return
        if not await ensure_async(km.is_alive()):
            raise RuntimeError("the kernel died before it answered kernel_info")
        if time.monotonic() >= deadline:
            raise RuntimeError(f"the kernel did not answer within {timeout:g} s")


def execute_run(
    task: RunTask,
    on_cell: ProgressCallback | None = None,
    *,
    kernels: "KernelProvider | None" = None,
    cancel: "CancelToken | None" = None,
) -> RunResult:
    """Execute ``task`` on a kernel from ``kernels`` (default: a fresh one started here).

    A failing, timed-out or cancelled run is a result; only programming errors raise.
    """
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    from .kernels import FreshKernels

    started_at = time.time()
    kernel_name = kernel_name_of(json.loads(task.source), task.kernel_name)
    nb = _prepare(task.source, task.parameters, kernel_name, task.notebook)
    manager = _execution_manager(nb, on_cell)
    stop: RunError | None = None  # why execution stopped, when no cell error of its own stopped it
    lease = client = watchdog = None
    collected: Path | None = None
    collected_notes: list[str] = []
    state: Path | None = None
    state_manifest: dict[str, Any] | None = None
    kernel_wait: float | None = None
    asked = time.time()
    modules_used: list[str] | None = None
    begun = False
    try:
        if cancel is not None and cancel.cancelled:
            raise _Cancelled()
        asked = time.time()
        lease = (kernels or FreshKernels()).acquire(kernel_name, task.cwd, task.startup_timeout, task.preload)
        kernel_wait = time.time() - asked  # until launched; until its first cell started, below
        watchdog = _Watchdog(lease.km, task.run_timeout, cancel)
        client = _client_class()(
            manager,
            km=lease.km,
            kernel_name=kernel_name,
            timeout=task.cell_timeout or None,
            startup_timeout=int(task.startup_timeout),
            log=log,
        )
        client.chdir = lease.chdir
        client.threads = task.threads
        client.remote_folder = lease.remote_folder
        client.quick_ready = lease.local
        manager.notebook_start()
        begun = True
        client.execute()
        if lease.warm is not None and not lease.warm.get("cold"):  # before the capture imports its own
            modules_used = _modules_used(client.kc, lease.km)
        if task.capture and not (cancel is not None and cancel.cancelled) and not watchdog.timed_out \
                and _failing_cell_error(nb) is None:
            state, state_manifest = _capture_state(client.kc, task, lease.remote_folder)
    except _Cancelled:
        pass
    except CellTimeoutError:
        stop = RunError(
            "CellTimeoutError",
            f"cell {manager.current_cell} ran longer than the cell timeout of {task.cell_timeout:g} s",
            manager.current_cell,
        )
    except DeadKernelError as exc:
        stop = RunError("DeadKernelError", _dead_kernel_message(exc), manager.current_cell)
    except Exception as exc:  # kernel failed to start, no such kernel, ...
        stop = RunError(type(exc).__name__, str(exc), manager.current_cell)
    finally:
        if watchdog is not None:
            watchdog.cancel()
        if client is not None and client.kc is not None:
            if lease is not None and lease.remote_folder and begun and stop is not None and stop.ename == "DeadKernelError":
                collected_notes = ["the kernel died: the files it wrote on the gateway are lost"]
            elif lease is not None and lease.remote_folder and begun:
                stopped = stop is not None or (cancel is not None and cancel.cancelled) or watchdog.timed_out
                collected, collected_notes = _collect_remote(client.kc, lease.km, task, stopped)
            client.kc.stop_channels()
        if lease is not None:
            lease.release()
    status, error = "failed", stop
    if cancel is not None and cancel.cancelled:
        status = "cancelled"
        error = RunError("RunCancelled", cancel.reason or "the run was cancelled", manager.current_cell)
    elif watchdog is not None and watchdog.timed_out:
        error = RunError(
            "RunTimeoutError",
            f"the run took longer than its timeout of {task.run_timeout:g} s",
            manager.current_cell,
        )
    if begun:
        if stop is not None and error is not None:
            _record_stop_in_cell(nb, manager, error)
        manager.notebook_complete()
    error = error or _failing_cell_error(nb)
    timings = _cell_timings(nb)
    if kernel_wait is not None and timings and timings[0].started_at is not None:
        # a kernel started for the run is launched at once but boots before the first cell runs
        kernel_wait = max(kernel_wait, timings[0].started_at - asked)
    return RunResult(
        status=status if error else "succeeded",
        notebook=_as_dict(nb),
        kernel_name=kernel_name,
        started_at=started_at,
        finished_at=time.time(),
        cell_timings=timings,
        error=error,
        collected=collected,
        collected_notes=collected_notes,
        state=state,
        state_manifest=state_manifest,
        warm=_with_left_out(lease.warm if lease is not None else None, task.preload_left_out),
        kernel_wait=None if kernel_wait is None else round(kernel_wait, 3),
        modules_used=modules_used,
        threads=task.threads if begun else 0,
    )


async def _ask(kc: Any, code: str, expressions: dict[str, str], timeout: float) -> dict[str, Any]:
    """Execute ``code`` silently and return the shell reply with ``expressions`` evaluated after it."""
    msg_id = kc.execute(code, silent=True, store_history=False, user_expressions=expressions)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            reply = await ensure_async(kc.shell_channel.get_msg(timeout=1.0))
        except Exception:  # queue.Empty: keep waiting until the deadline
            continue
        if reply.get("parent_header", {}).get("msg_id") == msg_id:
            return reply
    raise TimeoutError(f"no answer within {timeout:g} s")


def _with_left_out(warm: dict[str, Any] | None, left_out: tuple[tuple[str, str], ...]) -> dict[str, Any] | None:
    """A forked kernel's start, with the notebook's modules that were never offered to its zygote."""
    if warm is None or not left_out:
        return warm
    return {**warm, "left_out": {**dict(left_out), **(warm.get("left_out") or {})}}


def _modules_used(kc: Any, km: Any) -> list[str] | None:
    """The top-level modules the kernel ended with that any kernel starts without (what the next
    runs of the notebook may start with: the same set each time); None when the kernel does not say."""
    import ast
    import sys

    expression = "sorted({name.partition('.')[0] for name in list(__import__('sys').modules)})"
    try:
        reply = run_sync(_ask)(kc, "", {"modules": expression}, 5.0)
        result = reply["content"]["user_expressions"]["modules"]
        names = ast.literal_eval(result["data"]["text/plain"]) if result.get("status") == "ok" else None
    except Exception:  # best effort: a busy or dead kernel teaches nothing
        return None
    if not isinstance(names, list):
        return None
    baseline = getattr(km, "baseline_modules", frozenset())
    return [name for name in names if isinstance(name, str) and name not in baseline
            and name not in sys.stdlib_module_names and not name.startswith(("_", *KERNEL_INTERNALS))]


def _capture_state(kc: Any, task: RunTask, remote: bool) -> tuple[Path | None, dict[str, Any]]:
    """The state the notebook's functions need, captured by the kernel (see ``capture``); never
    raises: a failure is in the manifest."""
    import tempfile

    from .capture import capture_request, unpack_capture

    fd, name = tempfile.mkstemp(prefix="mlx-state-", suffix=".pkl")
    os.close(fd)
    path = Path(name)
    path.unlink()  # the kernel (or the answer) writes it
    code, expression = capture_request(None if remote else str(path), task.capture_seconds, task.capture_bytes,
                                       task.capture_functions)
    try:
        reply = run_sync(_ask)(kc, code, {"state": expression}, task.capture_seconds + 30.0)
        return unpack_capture(reply, path)
    except Exception as exc:
        path.unlink(missing_ok=True)
        return None, {"error": f"the state could not be captured: {type(exc).__name__}: {exc}"[:300]}


def _collect_remote(kc: Any, km: Any, task: RunTask, stopped: bool) -> tuple[Path | None, list[str]]:
    """The files of the run a remote kernel made (``remote_folder``), fetched before it goes. A run
    that stopped early (a timeout, a cancel) may leave its cell running: interrupted first."""
    from .remote_folder import collect_expression, unpack

    code, expression = collect_expression(task.artifact_max_file_size, task.artifact_max_run_size)
    timeout = 20.0 if stopped else 120.0
    try:
        if not run_sync(km.is_alive)():
            return None, ["the run's files could not be collected: its kernel on the gateway is gone"]
        if stopped:
            run_sync(km.interrupt_kernel)()
    except Exception as exc:
        return None, [f"the run's files could not be collected from the remote kernel: {exc}"]

    try:
        return unpack(run_sync(_ask)(kc, code, {"files": expression}, timeout))
    except Exception as exc:  # the kernel died or does not answer: the run's files are lost, said so
        return None, [f"the run's files could not be collected from the remote kernel: {exc}"]


class _Cancelled(Exception):
    """Cancelled before a kernel was acquired."""
