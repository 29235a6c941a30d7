"""What a dask worker runs for the ``dask`` backend (see ``dask.py``, which runs on the server).

Workers need jupyter_mlx (``pip install 'jupyter_mlx[dask]'``) and the kernels the notebooks
use: the task is pickled by reference to this module, and the notebook runs on a local kernel
of the worker with papermill, exactly as on the local backend. Only ``RunTask`` and
``RunResult`` travel; the store stays on the server.

Coordination with the server, all keyed by a per-run token:

* progress: ``worker.log_event(PROGRESS_TOPIC, {...})`` (fire and forget) when the run starts
  on a worker and when each cell starts;
* cancel: the server sets the ``cancel_event(token)`` dask ``Event``; a watcher thread here sees
  it (or sees the run's future released) and interrupts, then kills, the kernel;
* no silent re-execution: the first attempt sets ``started_event(token)``; if the scheduler
  retries the task after its worker died, the retry finds it set and returns ``WorkerLost``
  without running anything.
"""
from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
import threading
import time
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from ..store.records import RunError
from .executor import CancelToken
from .kernels import KernelPool, wait_for_kernel_shutdowns
from .runner import RunResult, RunTask, execute_run, kernel_name_of

log = logging.getLogger(__name__)

PROGRESS_TOPIC = "jupyter-mlx-progress"
PLUGIN_NAME = "jupyter-mlx-kernels"
_WATCH_INTERVAL = 1.0  # seconds a look at the cancel event waits on the scheduler (a long poll)
_LOCAL_INTERVAL = 0.1  # seconds between two looks at the task's state on this worker


def cancel_event(token: str) -> str:
    return f"jupyter-mlx-cancel-{token}"


def started_event(token: str) -> str:
    return f"jupyter-mlx-started-{token}"


class KernelPoolPlugin(WorkerPlugin):
    """Keeps ``nthreads`` kernels pre-started on each worker (one per task slot) while runs
    come, shut down after ``idle_timeout`` seconds without any.

    Registered once per cluster by the executor (``idempotent``: registering it again, from
    another server, keeps the kernels already warm).
    """

    idempotent = True
    name = PLUGIN_NAME

    def __init__(self, kernel_name: str = "python3", startup_timeout: float = 60.0, idle_timeout: float = 600.0):
        self.kernel_name = kernel_name
        self.startup_timeout = startup_timeout
        self.idle_timeout = idle_timeout
        self.pool: KernelPool | None = None

    def setup(self, worker: Any) -> None:
        size = max(1, int(getattr(worker.state, "nthreads", 1) or 1))
        # keep_warm: ``size`` kernels stay ready until no run came for ``idle_timeout`` seconds
        self.pool = KernelPool(size, self.startup_timeout, self.idle_timeout, keep_warm=True)
        if self.kernel_name:
            self.pool.prepare(self.kernel_name, 0)  # marks the kernel in use: fills the pool

    def teardown(self, worker: Any) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None
        wait_for_kernel_shutdowns(5.0)


def run_on_worker(task: RunTask, token: str) -> RunResult:
    """The dask task: execute ``task`` on a kernel of this worker and return the result."""
    from distributed import Event, get_client, get_worker

    worker = get_worker()
    key = worker.get_current_task()
    client = get_client()
    try:
        started = Event(started_event(token), client=client)
        if started.is_set():  # an earlier attempt started on a worker that was lost
            return lost_result(task, "its worker was lost mid-run; the run was not re-executed")
        started.set()
    except Exception:  # the scheduler is unreachable: the result could not be returned anyway
        log.debug("could not mark run %s started", token, exc_info=True)
    _publish(worker, {"token": token, "started": worker.address})

    cancel = CancelToken()
    done = threading.Event()
    event = Event(cancel_event(token), client=client)
    for target, args in ((_watch_event, (event,)), (_watch_future, (worker, key))):
        threading.Thread(
            target=target, args=(*args, cancel, done), name=f"mlx-dask-cancel-{token[:8]}", daemon=True
        ).start()

    def on_cell(index: int, count: int) -> None:
        _publish(worker, {"token": token, "cell": index, "count": count})

    scratch = None
    if not task.cwd.is_dir():  # the notebook's folder is not shared with this worker
        scratch = tempfile.mkdtemp(prefix="mlx-dask-run-")
        task = dataclasses.replace(task, cwd=_path(scratch))
    try:
        if not _wanted(worker, key):  # cancelled while starting
            cancel.cancel("the run's future was cancelled")
        plugin = worker.plugins.get(PLUGIN_NAME)
        pool = getattr(plugin, "pool", None)
        result = execute_run(task, on_cell, kernels=pool, cancel=cancel)
        if result.state is not None:  # a file of this worker: its bytes go back with the result
            result.state_bytes, result.state = result.state.read_bytes(), None
        if scratch is not None:  # the run's own folder here: what it wrote goes back with the result
            from .remote_folder import gather

            result.files, notes = gather(_path(scratch), task.artifact_max_file_size, task.artifact_max_run_size)
            result.collected_notes.extend(notes)
        return result
    finally:
        done.set()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def prepare_pool(kernel_name: str, expected_runs: int, dask_worker: Any = None) -> None:
    """Run with ``client.run``: refill this worker's pool (one kernel per thread) for the coming
    runs. Runs spread over the workers, so no per-worker demand is announced: it would keep
    kernels warm on workers the runs never reach."""
    plugin = dask_worker.plugins.get(PLUGIN_NAME) if dask_worker is not None else None
    pool = getattr(plugin, "pool", None)
    if pool is not None and expected_runs > 0:
        pool.prepare(kernel_name, 0)


def lost_result(task: RunTask, message: str, started_at: float | None = None) -> RunResult:
    return failure(task, RunError("WorkerLost", message), started_at)


def failure(task: RunTask, error: RunError, started_at: float | None = None, status: str = "failed") -> RunResult:
    """A result for a run whose notebook did not come back."""
    import json

    try:
        kernel_name = kernel_name_of(json.loads(task.source), task.kernel_name)
    except Exception:
        kernel_name = task.kernel_name
    now = time.time()
    return RunResult(
        status=status,
        notebook=None,
        kernel_name=kernel_name,
        started_at=started_at if started_at is not None else now,
        finished_at=now,
        error=error,
    )


def _publish(worker: Any, message: dict[str, Any]) -> None:
    """Send progress to the server; a run never fails because progress did not get through."""
    try:
        worker.log_event(PROGRESS_TOPIC, message)
    except Exception:
        log.debug("could not send progress", exc_info=True)


def _watch_event(event: Any, cancel: CancelToken, done: threading.Event) -> None:
    """Cancel the run when the server sets its cancel event (a long poll on the scheduler)."""
    while not done.is_set():
        try:
            if event.wait(timeout=_WATCH_INTERVAL):
                cancel.cancel("cancelled from the server")
                return
        except Exception:  # scheduler unreachable for now: look again later
            log.debug("cancel watch failed", exc_info=True)
            done.wait(_WATCH_INTERVAL)


def _watch_future(worker: Any, key: Any, cancel: CancelToken, done: threading.Event) -> None:
    """Cancel the run when its future is released (the server gave up on it): a local look."""
    while not done.wait(_LOCAL_INTERVAL):
        if not _wanted(worker, key):
            cancel.cancel("the run's future was cancelled")
            return


def _wanted(worker: Any, key: Any) -> bool:
    state = getattr(worker.state.tasks.get(key), "state", None)
    return state is not None and state not in ("cancelled", "released", "forgotten")


def _path(folder: str) -> Any:
    from pathlib import Path

    return Path(folder)
