"""The run queue: runs wait for a slot of their backend, execute on a worker thread, and report.

One bounded thread pool per backend (its ``concurrency``), so the server's event loop never
blocks. Cancel works for queued runs (they never start, and are recorded cancelled at once, not
when their turn comes) and running ones (the backend stops the kernel), from this process
directly or from any other process through the store.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Callable

from .execute.executor import CancelToken, Executor

if TYPE_CHECKING:
    from .service import PreparedRun
    from .store import RunRecord

log = logging.getLogger(__name__)

CANCEL_POLL_SECONDS = 0.5


class RunQueue:
    """Queued runs of one process, per backend, with their cancel tokens."""

    def __init__(
        self,
        execute: Callable[[PreparedRun, Executor, CancelToken], RunRecord],
        cancel_requests: Callable[[list[str]], set[str]],
        end_cancelled: Callable[[str, str], Any] | None = None,
    ) -> None:
        """``end_cancelled(run_id, reason)`` records a run cancelled before it started (it must
        allow being called twice: the worker, reaching the run, calls it too, through ``execute``)."""
        self._execute = execute
        self._cancel_requests = cancel_requests
        self._end_cancelled = end_cancelled
        self._started: set[str] = set()
        self._lock = threading.Lock()
        self._pools: dict[int, ThreadPoolExecutor] = {}
        self._tokens: dict[str, CancelToken] = {}
        self._futures: dict[str, Future[RunRecord]] = {}
        self._watcher: threading.Thread | None = None
        self._closed = threading.Event()

    def submit(self, prepared: list[PreparedRun], executor: Executor) -> list[Future[RunRecord]]:
        """Queue runs on ``executor``; each future resolves to the recorded run."""
        futures = []
        with self._lock:
            pool = self._pools.get(id(executor))
            if pool is None:
                pool = ThreadPoolExecutor(max(1, executor.concurrency), thread_name_prefix=f"mlx-{executor.name}")
                self._pools[id(executor)] = pool
            for run in prepared:
                token = CancelToken()
                run_id = run.record.id
                self._tokens[run_id] = token
                future = pool.submit(self._start, run, executor, token)
                future.add_done_callback(lambda _f, run_id=run_id: self._forget(run_id))
                self._futures[run_id] = future
                futures.append(future)
            self._ensure_watcher()
        return futures

    def cancel(self, run_ids: list[str], reason: str = "cancelled") -> list[str]:
        """Cancel the runs of this process among ``run_ids``; returns those found here."""
        found = []
        with self._lock:
            tokens = [(run_id, self._tokens.get(run_id)) for run_id in run_ids]
        for run_id, token in tokens:
            if token is not None:
                token.cancel(reason)  # before the check below: a worker starting it now sees it
                found.append(run_id)
                with self._lock:
                    waiting = run_id not in self._started
                if waiting and self._end_cancelled is not None:
                    try:
                        self._end_cancelled(run_id, reason)
                    except Exception:
                        log.warning("could not record run %s as cancelled", run_id, exc_info=True)
        return found

    def future(self, run_id: str) -> Future[RunRecord] | None:
        with self._lock:
            return self._futures.get(run_id)

    def active(self) -> list[str]:
        with self._lock:
            return list(self._tokens)

    def close(self, reason: str = "the server stopped") -> None:
        """Cancel everything queued or running here and stop the worker threads."""
        self._closed.set()
        self.cancel(self.active(), reason)
        with self._lock:
            pools = list(self._pools.values())
            self._pools.clear()
        for pool in pools:
            pool.shutdown(wait=False, cancel_futures=False)

    # -- internals ----------------------------------------------------------------------------
    def _start(self, run: PreparedRun, executor: Executor, token: CancelToken) -> RunRecord:
        with self._lock:
            self._started.add(run.record.id)
        return self._execute(run, executor, token)

    def _forget(self, run_id: str) -> None:
        with self._lock:
            self._started.discard(run_id)
            self._tokens.pop(run_id, None)
            self._futures.pop(run_id, None)

    def _ensure_watcher(self) -> None:
        if self._watcher is None or not self._watcher.is_alive():
            self._watcher = threading.Thread(target=self._watch_cancel_requests, name="mlx-cancel-watch", daemon=True)
            self._watcher.start()

    def _watch_cancel_requests(self) -> None:
        """Honour cancel requests other processes (``jupyter mlx cancel``) left in the store."""
        while not self._closed.wait(CANCEL_POLL_SECONDS):
            active = self.active()
            if not active:
                with self._lock:
                    if not self._tokens:
                        self._watcher = None
                        return
                continue
            try:
                requested = self._cancel_requests(active)
            except Exception:
                log.debug("could not read cancel requests", exc_info=True)
                continue
            if requested:
                self.cancel(sorted(requested), "cancelled on request")


INTERRUPT_CHECK_SECONDS = 0.25  # a waiting main thread wakes this often: a signal sent to the
# process (Ctrl-C, a kernel's interrupt) may be delivered to another thread, and a thread blocked
# on a lock sees it only when it wakes up


def wait_all(futures: list[Future[Any]], timeout: float | None = None) -> None:
    """Wait for ``futures`` (bounded by ``timeout``), without raising their exceptions; a
    KeyboardInterrupt is raised within ``INTERRUPT_CHECK_SECONDS`` of Ctrl-C."""
    from concurrent.futures import TimeoutError as FutureTimeout

    deadline = None if timeout is None else time.monotonic() + timeout
    for future in futures:
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            step = INTERRUPT_CHECK_SECONDS if remaining is None else min(remaining, INTERRUPT_CHECK_SECONDS)
            try:
                future.result(step)
            except FutureTimeout:
                if remaining is not None and remaining <= step:
                    return
                continue
            except Exception:
                pass
            break
