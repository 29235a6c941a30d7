"""Follow the runs other processes write to the same run index, and announce them.

A team's servers share one index (PostgreSQL): each announces its own runs on its event stream
as it changes them; the runs another server (or a CLI, a magic, a Dask-backed sweep) changes reach
it here. Every ``interval`` seconds the watcher reads the runs whose ``changed_at`` is newer than
the last it saw (an index on it keeps that cheap with any number of runs) and publishes each run
of another process as a ``run`` event: the panel shows another user's runs, their progress and
ends within about ``interval`` seconds (polling; the panel's own slow poll stays as a safety net).
A look back of a few seconds covers writers whose clocks lag (another host); a change seen once
is not announced twice.
"""
from __future__ import annotations

import os
import socket
import time
from typing import Any, Callable

from .errors import MLXError
from .store.base import RunStore
from .store.records import RunRecord

STORE_WATCH_SECONDS = 1.0  # how often a server reads the runs other processes changed
LOOK_BACK_SECONDS = 5.0  # writers' clocks may lag this much behind the newest change seen


class StoreWatch:
    """Reads the runs changed since its last look; ``publish`` gets each run of another process."""

    def __init__(self, store: Callable[[], RunStore], publish: Callable[[RunRecord], None]) -> None:
        self._store, self._publish = store, publish
        self._me = (socket.gethostname(), os.getpid())
        self._since: float | None = None
        self._seen: dict[tuple[str, float], float] = {}  # (run id, its changed_at) -> that changed_at

    def look(self) -> list[RunRecord]:
        """One look: the runs of other processes changed since the last one (announced)."""
        if self._since is None:  # from now on: what happened before is in the listing already
            self._since = time.time()
            return []
        try:
            changed = self._store().runs_changed_since(self._since - LOOK_BACK_SECONDS)
        except MLXError:  # the index cannot be opened: said at start and by /mlx/info, not every second
            return []
        announced = []
        for run in changed:
            changed = run.changed_at or 0.0
            if (run.id, changed) in self._seen:
                continue
            self._seen[(run.id, changed)] = changed
            self._since = max(self._since, changed)
            if (run.host, run.pid) != self._me:
                self._publish(run)
                announced.append(run)
        horizon = self._since - 2 * LOOK_BACK_SECONDS
        self._seen = {key: at for key, at in self._seen.items() if at >= horizon}
        return announced


def announce(events: Any) -> Callable[[RunRecord], None]:
    """A ``publish`` for ``StoreWatch``: the run as the event stream's ``run`` event."""
    return lambda run: events.publish({"type": "run", "run": run.to_json()})
