"""Issue 17, item 2: two Jupyter servers (two users' servers on one hub) on one PostgreSQL index and
one blob folder. Real ``jupyter server`` processes, each with its own project folder holding the
same notebook: 64 runs submitted to each at once number 1..128, none lost; each server's event
stream announces the other's runs (store_watch.py: polling the index every second); a cancel or a
requeue asked of one server acts on the other's runs; a killed server's runs are marked
interrupted by the other, whose own running run is left alone."""
from __future__ import annotations

import json
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from notebooks import code_cell, write_notebook
from server_process import Server, wait_for

EACH = 64
# a run waits while its project's file "gate" exists (a bounded time): runs stay queued or running
GATED = [code_cell("import os, time\nfor _ in range(1200):\n    if not os.path.exists('gate'):\n        break\n"
                   "    time.sleep(0.05)\nprint('through')")]


class EventLog:
    """The ``run`` events of a server's ``/mlx/events`` stream, read on a thread."""

    def __init__(self, server: Server) -> None:
        request = urllib.request.Request(f"http://127.0.0.1:{server.port}/mlx/events",
                                         headers={"Authorization": f"token {server.token}"})
        self.response = urllib.request.urlopen(request, timeout=60)
        self.runs: list[dict] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        event = None
        try:
            for raw in self.response:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "run":
                    self.runs.append(json.loads(line[6:]))
        except (OSError, ValueError, AttributeError):
            pass  # closed (http.client's response, closed under the reader, has no file left)

    def close(self) -> None:
        self.response.close()


@pytest.fixture
def team(tmp_path, postgres):
    """Two servers on one PostgreSQL index and one blob folder, each with its project."""
    url, blobs = postgres.database(), tmp_path / "blobs"
    servers = []
    try:
        for name in ("alice", "bob"):
            root = tmp_path / name
            write_notebook(root / "gate.ipynb", *GATED)
            (root / "gate").write_text("closed")
            extra = (f"--MLXConfig.store_url={url}", f"--MLXConfig.blob_dir={blobs}", "--MLXConfig.concurrency=1",
                     "--MLXConfig.kernel_idle_timeout=30")
            home = tmp_path / f"home-{name}"
            home.mkdir()
            servers.append(Server(root, home, extra))
        yield servers
    finally:
        for server in servers:
            server.stop()
        for name in ("alice", "bob"):
            (tmp_path / name / "gate").unlink(missing_ok=True)


def _submit(server: Server) -> list[dict]:
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda _: server.call("POST", "/mlx/runs", {"notebook": "gate.ipynb"}), range(EACH)))


def _status(server: Server, run_id: str) -> str:
    return server.call("GET", f"/mlx/runs/{run_id}")["status"]


def _statuses(server: Server, run_ids: list[str]) -> set[str]:
    wanted = set(run_ids)
    listing = server.call("GET", "/mlx/runs?notebook=gate.ipynb&limit=500")["runs"]
    return {run["status"] for run in listing if run["id"] in wanted}


def test_two_servers_share_one_index(team, tmp_path):
    alice, bob = team
    bobs_events = EventLog(bob)
    try:
        with ThreadPoolExecutor(2) as both:  # 64 runs to each server at once
            submitted = list(both.map(_submit, (alice, bob)))
        alices, bobs = ([run["id"] for run in runs] for runs in submitted)
        listing = alice.call("GET", "/mlx/runs?notebook=gate.ipynb&limit=500")
        assert listing["total"] == 2 * EACH  # none lost
        assert sorted(run["version"] for run in listing["runs"]) == list(range(1, 2 * EACH + 1))  # gap-free, unique

        # bob's panel hears of alice's runs (the store watch), not only of its own
        wait_for(lambda: set(alices) & {run["id"] for run in bobs_events.runs}, 15, "bob's stream to announce alice's runs")

        # cancel across servers: bob cancels alice's running run and the rest of her queue
        wait_for(lambda: "running" in _statuses(alice, alices), 60, "alice's first run to start")
        running = next(r for r in alices if _status(alice, r) == "running")
        for run_id in alices:
            bob.call("POST", f"/mlx/runs/{run_id}/cancel")
        wait_for(lambda: _statuses(alice, alices) == {"cancelled"}, 60, "alice's runs to be cancelled")
        assert alice.call("GET", f"/mlx/runs/{running}")["error"]["ename"] == "RunCancelled"

        # requeue across servers: alice repeats one of bob's runs (a queued one bob cancels: at once), on hers
        queued = next(r for r in reversed(bobs) if _status(bob, r) == "queued")
        assert bob.call("POST", f"/mlx/runs/{queued}/cancel")["runs"][0]["status"] == "cancelled"
        again = alice.call("POST", f"/mlx/runs/{queued}/requeue", {})["runs"][0]
        assert again["parent_id"] == queued and again["version"] == 2 * EACH + 1
        (tmp_path / "alice" / "gate").unlink()
        wait_for(lambda: _status(bob, again["id"]) == "succeeded", 60, "the requeued run to succeed on alice's server")

        # alice's server dies with a run running: bob marks her runs interrupted, never his own
        (tmp_path / "alice" / "gate").write_text("closed")
        hers = alice.call("POST", "/mlx/runs", {"notebook": "gate.ipynb"})["id"]
        wait_for(lambda: _status(alice, hers) == "running", 60, "alice's run to start")
        wait_for(lambda: "running" in _statuses(bob, bobs), 60, "bob's first run to start")
        his = next(r for r in bobs if _status(bob, r) == "running")
        alice.kill()
        wait_for(lambda: _status(bob, hers) == "interrupted", 30, "bob to mark alice's run interrupted")
        time.sleep(1.0)  # another look of bob's orphan watch: his runs are still his
        assert _status(bob, his) == "running" and _statuses(bob, bobs) == {"running", "queued", "cancelled"}
        for run_id in bobs:
            bob.call("POST", f"/mlx/runs/{run_id}/cancel")
        wait_for(lambda: _statuses(bob, bobs) == {"cancelled"}, 60, "bob's runs to be cancelled")
    finally:
        bobs_events.close()


def test_a_run_blob_missing_says_where_it_looked(tmp_path, postgres):
    """Two stores on one index but different blob folders: a run recorded through one, read through
    the other, says which folder it looked in."""
    from jupyter_mlx.config import MLXConfig
    from jupyter_mlx.errors import MLXError
    from jupyter_mlx.service import RunService

    url = postgres.database()
    root = tmp_path / "project"
    write_notebook(root / "nb.ipynb", code_cell("print(1)"))
    first = RunService(root, MLXConfig(store_url=url, blob_dir=str(tmp_path / "blobs-a")))
    try:
        run = first.run("nb.ipynb")
    finally:
        first.close()
    other = RunService(root, MLXConfig(store_url=url, blob_dir=str(tmp_path / "blobs-b")))
    try:
        with pytest.raises(MLXError) as caught:
            other.executed_notebook(run.id)
    finally:
        other.close()
    assert str(tmp_path / "blobs-b") in caught.value.message and run.ref in caught.value.message
    assert Path(tmp_path / "blobs-a").is_dir()
