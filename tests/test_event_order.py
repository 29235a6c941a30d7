"""Run events reach subscribers in the order of the run's life: "queued" before "running".

A subscriber that applies each event as the run's latest state (the JupyterLab panel, the REST
event stream's readers) would otherwise show a running run as queued again.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from jupyter_mlx.service import RunService


def test_the_queued_event_is_out_before_the_run_can_start(project: Path) -> None:
    service = RunService(project)
    seen: list[tuple[str, str]] = []  # (event status, the run's status in the store when it was handled)
    lock = threading.Lock()

    def slow_subscriber(event: dict[str, Any]) -> None:
        if event["type"] != "run":
            return
        status = event["run"]["status"]
        if status == "queued":
            time.sleep(0.5)  # a slow reader: a queue worker would have started the run by now
        with lock:
            seen.append((status, service.store.get_run(event["run"]["id"]).status))

    unsubscribe = service.events.subscribe(slow_subscriber)
    try:
        run = service.submit("tiny.ipynb", {"x": 2})
        (final,) = service.wait([run], timeout=120)
        assert final.status == "succeeded"
    finally:
        unsubscribe()
        service.close()
    statuses = [status for status, _ in seen]
    assert statuses[0] == "queued" and statuses[-1] == "succeeded", statuses
    assert seen[0] == ("queued", "queued"), f"the run started before its queued event was handled: {seen}"
    assert statuses.index("queued") < statuses.index("running")
