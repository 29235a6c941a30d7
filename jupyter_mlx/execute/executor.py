"""The ``Executor`` interface: a backend takes a ``RunTask`` and returns a ``RunResult``.

Backends (local kernels, a Kernel Gateway, a Dask cluster) never touch the store: the service
records what they return. ``execute`` blocks; the service calls it from its own worker
threads, at most ``concurrency`` at a time per backend.
"""
from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import Any, Callable

from .runner import ProgressCallback, RunResult, RunTask


class CancelToken:
    """Set once when a run should stop; backends register how to stop what they started."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], Any]] = []
        self.reason = ""

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self, reason: str = "cancelled") -> None:
        with self._lock:
            if self._event.is_set():
                return
            self.reason = reason
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            _call_quietly(callback)

    def on_cancel(self, callback: Callable[[], Any]) -> Callable[[], None]:
        """Call ``callback`` when cancelled (now, if already); returns a function that unregisters it."""
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)
                return lambda: self._discard(callback)
        _call_quietly(callback)
        return lambda: None

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)

    def _discard(self, callback: Callable[[], Any]) -> None:
        with self._lock:
            if callback in self._callbacks:
                self._callbacks.remove(callback)


def _call_quietly(callback: Callable[[], Any]) -> None:
    import logging

    try:
        callback()
    except Exception:  # a kernel already gone, a closed connection: nothing left to stop
        logging.getLogger(__name__).debug("cancel callback failed", exc_info=True)


class Executor(ABC):
    """Where runs execute. Subclasses set ``name`` and implement ``execute``."""

    name: str = ""

    @property
    def concurrency(self) -> int:
        """How many runs this backend executes at once."""
        return 1

    def check(self) -> None:
        """Raise ``MLXError("backend_unavailable", ...)`` when runs cannot be submitted now.

        Called before anything is recorded, so an unreachable backend stores nothing.
        """

    def kernel_names(self) -> list[str] | None:
        """The kernels this backend can start, checked before a run is recorded; None when it
        cannot tell (a run with an unknown kernel then fails when it starts)."""
        return None

    def prepare(self, expected_runs: int) -> None:
        """A hint that ``expected_runs`` runs are about to come (e.g. to pre-start kernels)."""

    @abstractmethod
    def execute(
        self, task: RunTask, on_cell: ProgressCallback | None, cancel: CancelToken
    ) -> RunResult:
        """Execute ``task``; a failing or cancelled run is a result, not an exception."""

    def close(self) -> None:
        """Release every kernel, connection and thread of this backend."""
