"""The dask backend: each run is one task on a dask.distributed cluster.

A worker executes the run with papermill on a kernel of its own (see ``dask_task.py``) and
returns the executed notebook; the store stays here. Every worker needs jupyter_mlx installed,
with the ``dask`` extra (``pip install 'jupyter_mlx[dask]'``), and the kernels the notebooks ask
for (the task and the worker plugin are pickled by reference to ``jupyter_mlx``); the simplest
is the same environment on the server, the scheduler and the workers. Each worker keeps one
pre-started kernel per thread (``KernelPoolPlugin``, registered once per cluster; pass
``prestart_kernels=False`` to start a kernel per run instead). A notebook's folder is used as the kernel's working folder when
the worker can see it (a shared file system); otherwise the run gets an empty temporary folder.

How a run is followed from here:

* progress: the worker logs ``{"token", "cell", "count"}`` events on one topic; this client
  subscribes once, queues each event for its run and wakes the thread blocked in ``execute``,
  which calls ``on_cell`` (so, as locally, on the caller's thread, in order, never after
  ``execute`` returned). A lost event costs a progress update, never the run.
* cancel: sets the run's dask ``Event``; the task's watcher interrupts, then kills, the kernel,
  and the partial notebook comes back with status ``cancelled``. A run still queued is
  cancelled as a future, and its result is built here (no notebook). A run that does not
  return within ``cancel_grace`` seconds of the cancel is given up (future released).
* worker lost: the scheduler announces removed workers; a run that started on one becomes a
  failed result ``WorkerLost`` and its future is released. Dask would re-run the task on another
  worker (``distributed.scheduler.allowed-failures``, default 3); such a retry finds the run
  marked as started and returns ``WorkerLost`` without executing anything, so a run is never
  executed twice. (Setting ``allowed-failures: 0`` on the scheduler makes dask fail it at once.)
* scheduler gone: the client cancels every future; the run is a failed result
  ``SchedulerUnavailable``. ``check()`` reconnects later.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import MLXError
from ..store.records import RunError
from .executor import CancelToken, Executor
from .runner import ProgressCallback, RunResult, RunTask

log = logging.getLogger(__name__)

EXTRA_MISSING = "the dask backend needs the jupyter_mlx[dask] extra: pip install 'jupyter_mlx[dask]'"
_POLL = 0.5  # seconds between two looks at a run's state (wake-ups are immediate anyway)
_RPC_TIMEOUT = 5.0  # seconds for small scheduler requests (events)
_CLEAR_DELAY = 60.0  # seconds before forgetting the events of a run that did not complete


def _distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise MLXError("backend_unavailable", EXTRA_MISSING) from exc
    return distributed


@dataclass
class _Run:
    """What this client knows of one submitted run."""

    token: str
    on_cell: ProgressCallback | None
    worker: str | None = None  # where it started
    lost: str | None = None  # the worker it started on was removed
    cells: collections.deque[tuple[int, int]] = field(default_factory=collections.deque)
    wake: threading.Event = field(default_factory=threading.Event)
    callback_failed: bool = False

    def deliver(self) -> None:
        """Call ``on_cell`` for the cells started since last time (on the ``execute`` thread)."""
        while self.cells:
            index, count = self.cells.popleft()
            if self.on_cell is not None:
                try:
                    self.on_cell(index, count)
                except Exception:  # say it once per run; the run goes on
                    log.log(logging.DEBUG if self.callback_failed else logging.WARNING,
                            "progress callback failed", exc_info=True)
                    self.callback_failed = True


class DaskExecutor(Executor):
    """Runs on a dask.distributed cluster at ``scheduler`` (``tcp://host:port``)."""

    name = "dask"

    def __init__(
        self,
        scheduler: str,
        concurrency: int = 0,
        connect_timeout: float = 10.0,
        *,
        kernel_name: str = "python3",
        prestart_kernels: bool = True,
        cancel_grace: float = 30.0,
    ) -> None:
        _distributed()
        self.scheduler = scheduler
        self.connect_timeout = connect_timeout
        self.kernel_name = kernel_name
        self.prestart_kernels = prestart_kernels
        self.cancel_grace = cancel_grace
        self._concurrency = concurrency
        self._client: Any = None
        self._connect_lock = threading.Lock()
        self._runs: dict[str, _Run] = {}
        self._runs_lock = threading.Lock()
        self._closed = False
        self._failed_at = -1e9  # when connecting last failed (monotonic)

    # -- Executor ---------------------------------------------------------------------------
    @property
    def concurrency(self) -> int:
        """As configured, else the cluster's worker threads when first connected (at least 1)."""
        if self._concurrency <= 0 and time.monotonic() - self._failed_at > 3 * self.connect_timeout:
            try:
                self._connect()
            except MLXError:
                return 1
        return max(1, self._concurrency)

    def check(self) -> None:
        self._connect()

    def kernel_names(self) -> list[str] | None:
        """The kernels every worker has (a run may land on any); None without workers."""
        from .local import installed_kernels

        try:
            per_worker = self._connect().run(installed_kernels)
        except Exception:  # check() says why the cluster cannot be used
            log.debug("could not list the workers' kernels", exc_info=True)
            return None
        if not per_worker:
            return None
        return sorted(set.intersection(*(set(names) for names in per_worker.values())))

    def prepare(self, expected_runs: int, kernel_name: str = "") -> None:
        """Ask every worker's kernel pool to keep kernels warm (best effort, in the background)."""
        if not self.prestart_kernels or expected_runs <= 0:
            return
        try:
            client = self._connect()
        except MLXError:
            return
        from .dask_task import prepare_pool

        def ask() -> None:
            try:
                client.run(prepare_pool, kernel_name or self.kernel_name, expected_runs, on_error="ignore")
            except Exception:
                log.debug("could not prepare the workers' kernels", exc_info=True)

        threading.Thread(target=ask, name="mlx-dask-prepare", daemon=True).start()

    def execute(self, task: RunTask, on_cell: ProgressCallback | None, cancel: CancelToken) -> RunResult:
        from .dask_task import failure

        started_at = time.time()
        if cancel.cancelled:
            return _cancelled(task, cancel, started_at)
        try:
            client = self._connect()
        except MLXError as exc:
            return failure(task, RunError("SchedulerUnavailable", exc.message), started_at)
        from .dask_task import run_on_worker

        run = _Run(uuid.uuid4().hex, on_cell)
        with self._runs_lock:
            self._runs[run.token] = run
        unregister = cancel.on_cancel(run.wake.set)
        future = None
        try:
            future = client.submit(
                run_on_worker, task, run.token, key=f"jupyter-mlx-run-{run.token}", pure=False, retries=0
            )
            future.add_done_callback(lambda _: run.wake.set())
            return self._follow(client, future, run, task, cancel, started_at)
        except Exception as exc:  # the connection broke while submitting, ...
            log.debug("dask run failed", exc_info=True)
            return failure(task, _connection_error(self.scheduler, exc), started_at)
        finally:
            unregister()
            with self._runs_lock:
                self._runs.pop(run.token, None)
            self._forget(client, future, run)

    def close(self) -> None:
        """Close this server's client (the cluster keeps running)."""
        with self._connect_lock:
            self._closed = True
            client, self._client = self._client, None
        if client is not None:
            _close_client(client, self.connect_timeout)

    # -- following a run ---------------------------------------------------------------------
    def _follow(
        self, client: Any, future: Any, run: _Run, task: RunTask, cancel: CancelToken, started_at: float
    ) -> RunResult:
        from .dask_task import cancel_event, failure, lost_result

        give_up_at: float | None = None
        while not future.done():
            if run.lost:
                future.cancel()
                return lost_result(task, f"worker {run.lost} was lost mid-run", started_at)
            if client.status != "running":
                return failure(task, _scheduler_gone(self.scheduler), started_at)
            if cancel.cancelled:
                if give_up_at is None:
                    self._scheduler_call(client, "event_set", name=cancel_event(run.token))
                    if run.worker is None:  # still queued (a start in flight is stopped by the
                        future.cancel()  # worker, which sees the event or the released future)
                        return _cancelled(task, cancel, started_at)
                    give_up_at = time.monotonic() + self.cancel_grace
                elif time.monotonic() > give_up_at:
                    future.cancel()
                    return _cancelled(task, cancel, started_at)
            run.wake.wait(_POLL)
            run.wake.clear()
            run.deliver()
        run.deliver()
        status = future.status
        if status == "finished":
            try:
                result = future.result(timeout=max(30.0, self.connect_timeout))
            except Exception as exc:  # the worker holding the result died before it came here
                return lost_result(task, f"the result was lost with its worker: {exc}", started_at)
            if result.state_bytes is not None:
                import tempfile

                fd, name = tempfile.mkstemp(prefix="mlx-state-", suffix=".pkl")
                with open(fd, "wb") as handle:
                    handle.write(result.state_bytes)
                result.state, result.state_bytes = Path(name), None
            if result.files is not None:  # written on a worker that shares no disk with this process
                from .remote_folder import unpack_files

                result.collected, result.files = unpack_files(result.files), None
            if result.status == "cancelled":
                result.error = RunError(
                    "RunCancelled",
                    cancel.reason or "the run was cancelled",
                    result.error.cell_index if result.error else None,
                )
            return result
        if status == "cancelled":
            if cancel.cancelled:
                return _cancelled(task, cancel, started_at)
            return failure(task, _scheduler_gone(self.scheduler), started_at)
        exc = _exception(future)
        if type(exc).__name__ == "KilledWorker":
            return lost_result(task, f"its worker was lost mid-run: {exc}", started_at)
        return failure(task, RunError(type(exc).__name__, f"the dask task failed: {exc}"), started_at)

    def _forget(self, client: Any, future: Any, run: _Run) -> None:
        """Drop what the scheduler keeps for this run (its result, its two events).

        When the task did not complete (cancelled while queued, worker lost, given up), an
        attempt may be starting on a worker right now: its events are cleared later, so that it
        still sees the run as cancelled or as already started.
        """
        from .dask_task import cancel_event, started_event

        completed = future is not None and future.status in ("finished", "error")
        if future is not None:
            try:
                future.release()
            except Exception:
                pass

        def clear() -> None:
            if client.status == "running":
                for name in (started_event(run.token), cancel_event(run.token)):
                    self._scheduler_call(client, "event_clear", name=name)

        if completed:
            clear()
        else:
            timer = threading.Timer(_CLEAR_DELAY, clear)
            timer.daemon = True
            timer.start()

    def _scheduler_call(self, client: Any, op: str, **kwargs: Any) -> Any:
        try:
            return client.sync(getattr(client.scheduler, op), callback_timeout=_RPC_TIMEOUT, **kwargs)
        except Exception:
            log.debug("scheduler call %s failed", op, exc_info=True)
            return None

    # -- connection --------------------------------------------------------------------------
    def _connect(self) -> Any:
        """The cached client, connected (again) if needed; ``backend_unavailable`` if impossible."""
        with self._connect_lock:
            if self._closed:
                raise MLXError("backend_unavailable", "the dask backend is closed")
            if self._client is not None and self._client.status == "running":
                return self._client
            old, self._client = self._client, None
            if old is not None:
                _close_client(old, 1.0)
            distributed = _distributed()
            from .dask_task import PROGRESS_TOPIC, KernelPoolPlugin

            try:
                client = distributed.Client(
                    self.scheduler, timeout=self.connect_timeout, set_as_default=False
                )
            except Exception as exc:
                self._failed_at = time.monotonic()
                raise MLXError(
                    "backend_unavailable",
                    f"cannot reach the dask scheduler at {self.scheduler}: {exc}",
                ) from exc
            try:
                client.subscribe_topic(PROGRESS_TOPIC, self._on_progress)
                client.subscribe_topic("all", self._on_cluster_event)
                if self.prestart_kernels:
                    client.register_plugin(KernelPoolPlugin(self.kernel_name))
                if self._concurrency <= 0:
                    self._concurrency = sum(client.nthreads().values())
            except Exception as exc:
                self._failed_at = time.monotonic()
                _close_client(client, 1.0)
                raise MLXError(
                    "backend_unavailable",
                    f"cannot use the dask cluster at {self.scheduler} (its workers need jupyter_mlx "
                    f"installed): {type(exc).__name__}: {exc}",
                ) from exc
            self._client = client
            return client

    # -- events from the scheduler (called on the client's event loop: keep them short) -------
    def _on_progress(self, event: Any) -> None:
        try:
            _, message = event
            with self._runs_lock:
                run = self._runs.get(message.get("token"))
            if run is None:
                return
            if "started" in message:
                run.worker = message["started"]
                run.wake.set()
            elif "cell" in message:
                run.cells.append((int(message["cell"]), int(message["count"])))
                run.wake.set()
        except Exception:
            log.debug("bad progress event %r", event, exc_info=True)

    def _on_cluster_event(self, event: Any) -> None:
        try:
            _, message = event
            if not isinstance(message, dict) or message.get("action") != "remove-worker":
                return
            gone = message.get("worker")
            with self._runs_lock:
                runs = [run for run in self._runs.values() if run.worker and run.worker == gone]
            for run in runs:
                run.lost = gone
                run.wake.set()
        except Exception:
            log.debug("bad cluster event %r", event, exc_info=True)


def _close_client(client: Any, timeout: float) -> None:
    """Unsubscribe first (else the scheduler complains it cannot tell this client it left)."""
    from .dask_task import PROGRESS_TOPIC

    for topic in (PROGRESS_TOPIC, "all"):
        try:
            client.unsubscribe_topic(topic)
        except Exception:
            pass
    try:
        client.close(timeout=timeout)
    except Exception:
        log.debug("closing the dask client failed", exc_info=True)


def _cancelled(task: RunTask, cancel: CancelToken, started_at: float) -> RunResult:
    from .dask_task import failure

    error = RunError("RunCancelled", cancel.reason or "the run was cancelled")
    return failure(task, error, started_at, status="cancelled")


def _scheduler_gone(address: str) -> RunError:
    return RunError("SchedulerUnavailable", f"lost the connection to the dask scheduler at {address}")


def _connection_error(address: str, exc: Exception) -> RunError:
    return RunError("SchedulerUnavailable", f"the dask scheduler at {address} failed: {type(exc).__name__}: {exc}")


def _exception(future: Any) -> BaseException:
    try:
        return future.exception(timeout=_RPC_TIMEOUT)
    except Exception as exc:
        return exc


__all__ = ["DaskExecutor", "EXTRA_MISSING"]
