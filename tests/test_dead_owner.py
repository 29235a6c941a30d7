"""A ``jupyter mlx sweep`` killed mid-run (SIGKILL): its runs are never shown running.

A running Jupyter server notices within 10 s, by itself, and sends the run events; every listing
command notices too; the runs end at the last sign of life of their process, not when the death
was noticed; and a sweep whose interrupted runs were all re-queued and succeeded is succeeded.
"""
from __future__ import annotations

import http.client
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from jupyter_mlx.liveness import HEARTBEAT_SECONDS

from notebooks import write_gated
from server_process import Server, wait_for

NOTICED_WITHIN = 10.0


@pytest.fixture
def project(tmp_path) -> Path:
    root = tmp_path / "project"
    write_gated(root / "slow.ipynb")
    return root


def _cli(root: Path, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "jupyter_mlx.cli", *argv], cwd=root, capture_output=True, text=True, timeout=timeout
    )


def _runs(root: Path) -> list[dict[str, Any]]:
    done = _cli(root, "runs", "--json")
    assert done.returncode == 0, done.stderr
    return sorted(json.loads(done.stdout)["runs"], key=lambda run: run["version"])


class Sweeper:
    """``jupyter mlx sweep slow.ipynb`` of 3 runs, 2 at a time, in a process group of its own."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyter_mlx.cli", "sweep", "slow.ipynb", "-p", "seconds", "60,61,62",
             "--concurrency", "2"],
            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip

    def kill(self) -> float:
        """SIGKILL the process and its kernels; returns when (epoch seconds)."""
        killed_at = time.time()
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        (self.root / "gate").unlink(missing_ok=True)  # a kernel that outlived the kill finishes at once
        return killed_at

    def close(self) -> None:
        if self.process.poll() is None:
            self.kill()
        self.process.communicate()


@pytest.fixture
def sweeper(project):
    process = Sweeper(project)
    yield process
    process.close()


def _running_two(root: Path) -> bool:
    return [run["status"] for run in _runs(root)].count("running") == 2


def _epoch(moment: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp()


def _assert_ended_when_killed(run: dict[str, Any], killed_at: float) -> None:
    """Its end is its last sign of life: at most a heartbeat (and a write) before the kill; so a
    started run's duration is the time it ran until the kill, not until its death was noticed."""
    finished = _epoch(run["finished_at"])
    assert killed_at - HEARTBEAT_SECONDS - 1.5 <= finished <= killed_at + 0.5, (run, killed_at)
    if run["started_at"] is not None:
        until_kill = killed_at - _epoch(run["started_at"])
        assert until_kill - HEARTBEAT_SECONDS - 1.5 <= run["duration"] <= until_kill + 0.5, (run, until_kill)


def test_listing_commands_show_a_killed_sweep_interrupted_as_of_the_kill(project, sweeper):
    wait_for(lambda: _running_two(project), 90, "two running runs")
    time.sleep(HEARTBEAT_SECONDS + 1)  # a silent cell: its run is alive, and listed as running
    assert [run["status"] for run in _runs(project)] == ["running", "running", "queued"]

    killed_at = sweeper.kill()
    time.sleep(6)  # noticed well after the kill: the durations must not include this
    runs = _runs(project)  # a fresh `jupyter mlx runs`, no server anywhere
    assert [run["status"] for run in runs] == ["interrupted"] * 3
    assert {run["error"]["ename"] for run in runs} == {"Interrupted"}
    for run in runs:
        _assert_ended_when_killed(run, killed_at)
    assert runs[2]["started_at"] is None and runs[2]["duration"] is None  # it never started

    shown = _cli(project, "show", "slow.ipynb@v1")
    assert shown.returncode == 0 and "status     interrupted" in shown.stdout, shown.stdout
    listed = _cli(project, "sweeps", "--json")
    (sweep,) = json.loads(listed.stdout)
    assert sweep["status"] == "interrupted" and sweep["counts"] == {"interrupted": 3}

    # re-queued and all succeeded: the sweep succeeded (its interrupted runs are superseded)
    again = _cli(project, "requeue", sweep["id"], timeout=180)
    assert again.returncode == 0, again.stderr
    (sweep,) = json.loads(_cli(project, "sweeps", "--json").stdout)
    assert sweep["counts"] == {"interrupted": 3, "succeeded": 3} and sweep["superseded"] == {"interrupted": 3}
    assert sweep["status"] == "succeeded"
    table = _cli(project, "sweeps").stdout
    assert "3 succeeded (re-queued: 3 interrupted)" in table, table


def test_the_same_through_the_service_listing_in_process(project, sweeper):
    from jupyter_mlx.service import RunService

    service = RunService(project)
    try:
        wait_for(lambda: service.list_runs(status="running").total == 2, 90, "two running runs")
        sweep = service.list_sweeps()[0]
        sweeper.kill()
        assert [run.status for run in service.list_runs().runs] == ["interrupted"] * 3
        assert service.get_sweep(sweep.id).status == "interrupted"
    finally:
        service.close()


def test_a_killed_run_command_is_interrupted_as_of_the_kill(project):
    runner = subprocess.Popen(
        [sys.executable, "-m", "jupyter_mlx.cli", "run", "slow.ipynb"],
        cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        wait_for(lambda: [run["status"] for run in _runs(project)] == ["running"], 90, "the running run")
        time.sleep(HEARTBEAT_SECONDS + 1)
        killed_at = time.time()
        os.killpg(runner.pid, signal.SIGKILL)
        runner.wait(10)
        (project / "gate").unlink()
        time.sleep(4)
        (run,) = _runs(project)
        assert run["status"] == "interrupted"
        _assert_ended_when_killed(run, killed_at)
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
        runner.communicate()


def _events(server: Server, into: queue.Queue) -> threading.Thread:
    """Read ``GET /mlx/events`` on a thread (until the server stops); each ``run`` event's run
    goes ``into`` the queue."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.port}/mlx/events", headers={"Authorization": f"token {server.token}"}
    )
    response = urllib.request.urlopen(request, timeout=60)

    def read() -> None:
        kind = None
        with response:
            try:
                for raw in response:
                    line = raw.decode().rstrip("\n")
                    if line.startswith("event: "):
                        kind = line[len("event: "):]
                    elif line.startswith("data: ") and kind == "run":
                        into.put(json.loads(line[len("data: "):]))
            except (OSError, http.client.HTTPException):  # the server stopped
                pass

    reader = threading.Thread(target=read, name="sse-reader", daemon=True)
    reader.start()
    return reader


def test_a_running_server_notices_the_dead_sweep_within_seconds_and_tells_the_panel(project, sweeper, tmp_path):
    server = Server(project, tmp_path)
    reader = None
    try:
        wait_for(lambda: server.call("GET", "/mlx/runs?status=running")["total"] == 2, 90, "two running runs")
        events: queue.Queue = queue.Queue()
        reader = _events(server, events)
        killed_at = sweeper.kill()

        interrupted: dict[str, dict[str, Any]] = {}  # by the server's own check: no request asks it
        while len(interrupted) < 3:
            remaining = killed_at + NOTICED_WITHIN - time.time()
            assert remaining > 0, f"the server did not notice within {NOTICED_WITHIN} s: {interrupted}"
            try:
                run = events.get(timeout=remaining)
            except queue.Empty:
                continue
            if run["status"] == "interrupted":
                interrupted[run["id"]] = run
        for run in interrupted.values():
            _assert_ended_when_killed(run, killed_at)

        listed = server.call("GET", "/mlx/runs")
        assert [run["status"] for run in listed["runs"]] == ["interrupted"] * 3
        sweep_id = listed["runs"][0]["sweep_id"]
        assert server.call("GET", f"/mlx/sweeps/{sweep_id}")["sweep"]["status"] == "interrupted"
    finally:
        server.stop()
        if reader is not None:
            reader.join(10)
