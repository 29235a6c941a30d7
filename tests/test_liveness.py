"""The heartbeat of a process's runs and the periodic check, with a fake store."""
from __future__ import annotations

import threading
import time

from jupyter_mlx.liveness import Heartbeat, Periodic


def _wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_a_beat_names_the_running_runs_or_one_waiting_run_however_many_are_queued():
    beats: list[list[str]] = []
    heartbeat = Heartbeat(lambda run_ids, at: beats.append(run_ids), interval=0.02)
    try:
        heartbeat.add(f"run{i:05d}" for i in range(20_000))
        _wait_for(lambda: beats)
        assert beats[-1] == ["run00000"]
        heartbeat.started("run00007")
        heartbeat.started("run00003")
        _wait_for(lambda: beats[-1] == ["run00003", "run00007"])
        heartbeat.discard(f"run{i:05d}" for i in range(20_000))
        _wait_for(lambda: not any(t.name == "mlx-heartbeat" for t in threading.enumerate()))
        count = len(beats)
        time.sleep(0.1)
        assert len(beats) == count  # no runs: no beats, no thread
        heartbeat.add(["again"])  # a thread again
        _wait_for(lambda: beats[-1] == ["again"])
    finally:
        heartbeat.stop()


def test_a_periodic_check_goes_on_after_a_failure_and_stops():
    calls: list[float] = []

    def check() -> None:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise RuntimeError("the store is busy")

    periodic = Periodic("mlx-test-check", 0.02, check)
    periodic.start()
    _wait_for(lambda: len(calls) >= 3)
    periodic.stop()
    count = len(calls)
    time.sleep(0.1)
    assert len(calls) == count
