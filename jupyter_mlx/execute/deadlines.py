"""One timer thread for every deadline (run timeouts, kill grace periods, idle reaping).

``threading.Timer`` starts a thread per deadline; a server running thousands of runs would
start and end thousands of threads, and each new thread fragments the allocator's arenas.
"""
from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import time
from typing import Callable

log = logging.getLogger(__name__)


class Deadline:
    """A callback due at a moment; ``cancel`` before then and it never runs."""

    __slots__ = ("when", "callback", "cancelled")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Deadlines:
    """A heap of deadlines served by one daemon thread, started on first use.

    Callbacks run on that thread, one at a time: they must be short (send a signal, queue work).
    """

    def __init__(self, name: str = "mlx-deadlines") -> None:
        self.name = name
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def call_later(self, delay: float, callback: Callable[[], None]) -> Deadline:
        """Run ``callback`` in ``delay`` seconds (at once for a delay of 0)."""
        deadline = Deadline(time.monotonic() + max(0.0, delay), callback)
        with self._cond:
            heapq.heappush(self._heap, (deadline.when, next(self._order), deadline))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name=self.name, daemon=True)
                self._thread.start()
            self._cond.notify()
        return deadline

    def _serve(self) -> None:
        while True:
            with self._cond:
                while True:
                    while self._heap and self._heap[0][2].cancelled:
                        heapq.heappop(self._heap)
                    if not self._heap:
                        self._cond.wait()
                        continue
                    wait = self._heap[0][0] - time.monotonic()
                    if wait <= 0:
                        due = heapq.heappop(self._heap)[2]
                        break
                    self._cond.wait(wait)
            if due.cancelled:
                continue
            try:
                due.callback()
            except Exception:
                log.exception("a deadline callback failed")

    def _forget_after_fork(self) -> None:
        self._cond = threading.Condition()
        self._heap.clear()
        self._thread = None


deadlines = Deadlines()
os.register_at_fork(after_in_child=deadlines._forget_after_fork)
