"""Telling a live run from one whose process died.

A run belongs to the process that recorded it (its host and pid). While that process has runs
queued or running, a ``Heartbeat`` writes "alive now" for them every few seconds, so a run whose
process is killed is recorded as ending at its last sign of life, not when the death was noticed.
Whether the process is alive is asked of the operating system (by pid, on the run's host), never
guessed from silence: a cell silent for hours is not a dead run. ``Periodic`` runs the check for
dead owners on a thread of its own (the server's, every few seconds).
"""
from __future__ import annotations

import logging
import threading
from typing import Callable, Iterable

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 2.0  # how stale a killed run's end time can be, at most
ORPHAN_CHECK_SECONDS = 5.0  # how often a server looks for runs of dead processes


class Periodic:
    """Calls ``action`` every ``interval`` seconds on a daemon thread, until ``stop``.

    ``action`` failing is logged and the next call happens as planned; ``start`` again after
    the thread ended (``until_idle`` said so) starts a new one.
    """

    def __init__(self, name: str, interval: float, action: Callable[[], object],
                 until_idle: Callable[[], bool] | None = None) -> None:
        self.name = name
        self.interval = interval
        self._action = action
        self._idle = until_idle
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._lock:
            if self._stopped.is_set() or (self._thread is not None and self._thread.is_alive()):
                return
            self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopped.set()
        with self._lock:
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _loop(self) -> None:
        while not self._stopped.wait(self.interval):
            with self._lock:
                if self._idle is not None and self._idle():
                    self._thread = None
                    return
            try:
                self._action()
            except Exception:
                log.warning("%s failed", self.name, exc_info=True)


class Heartbeat:
    """Writes ``beat(run_ids, now)`` every ``interval`` seconds while this process owns runs
    (recorded and not finished), on a thread that runs only while there are some.

    A beat names the runs running here, or, while none runs, one waiting run: the store ends every
    open run of a dead process at the last beat of any of them, so a beat stays small however many
    runs are queued.
    """

    def __init__(self, beat: Callable[[list[str], float], None], interval: float = HEARTBEAT_SECONDS) -> None:
        self._beat = beat
        self._lock = threading.Lock()
        self._runs: set[str] = set()
        self._running: set[str] = set()
        self._periodic = Periodic("mlx-heartbeat", interval, self._write, until_idle=lambda: not self._runs)

    def add(self, run_ids: Iterable[str]) -> None:
        with self._lock:
            self._runs.update(run_ids)
        self._periodic.start()

    def started(self, run_id: str) -> None:
        with self._lock:
            if run_id in self._runs:
                self._running.add(run_id)

    def discard(self, run_ids: Iterable[str]) -> None:
        with self._lock:
            self._runs.difference_update(run_ids)
            self._running &= self._runs

    def stop(self) -> None:
        self._periodic.stop()

    def _write(self) -> None:
        import time

        with self._lock:
            runs = sorted(self._running) or sorted(self._runs)[:1]
        if runs:
            self._beat(runs, time.time())
