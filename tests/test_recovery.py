"""A Jupyter server killed mid-sweep: after a restart no run is stuck, and re-queue finishes them."""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from notebooks import code_cell, write_notebook

START_TIMEOUT = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A real ``jupyter server`` with jupyter_mlx on ``root``, in its own process group."""

    def __init__(self, root: Path, home: Path) -> None:
        self.port, self.token = _free_port(), secrets.token_hex(16)
        self.log = home / f"server-{self.port}.log"
        env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime")}
        argv = [
            sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root", "--ip=127.0.0.1",
            f"--port={self.port}", "--ServerApp.port_retries=0", f"--ServerApp.token={self.token}",
            f"--ServerApp.root_dir={root}", "--MLXConfig.concurrency=2",
        ]  # fmt: skip
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(argv, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"jupyter server exited {self.process.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                self.call("GET", "/mlx/runs")
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    self.kill()
                    pytest.fail(f"jupyter server did not answer:\n{self.log.read_text()[-3000:]}")
                time.sleep(0.25)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, as when the machine or the process dies."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_server_killed_mid_sweep_leaves_no_run_running_and_requeue_finishes_the_sweep(tmp_path):
    root = tmp_path / "project"
    write_notebook(
        root / "slow.ipynb",
        code_cell("seconds = 60.0", tags=["parameters"]),
        code_cell("print('started', flush=True)"),
        code_cell("import os, time\nwhile os.path.exists('gate') and seconds > 0:\n    time.sleep(0.1); seconds -= 0.1"),
    )
    gate = root / "gate"
    gate.write_text("closed")
    first = Server(root, tmp_path)
    try:
        created = first.call("POST", "/mlx/sweeps", {"notebook": "slow.ipynb", "grid": {"seconds": [60, 61, 62]}})
        sweep_id = created["sweep"]["id"]
        _wait_for(lambda: first.call("GET", f"/mlx/sweeps/{sweep_id}")["sweep"]["counts"].get("running") == 2, 60, "two running runs")
    finally:
        first.kill()
        gate.unlink()  # kernels orphaned by the kill finish at once (ipykernel also exits with its parent)

    second = Server(root, tmp_path)
    try:
        body = second.call("GET", f"/mlx/sweeps/{sweep_id}")
        assert body["sweep"]["counts"] == {"interrupted": 3} and body["sweep"]["status"] == "interrupted"
        assert {run["error"]["ename"] for run in body["runs"]} == {"Interrupted"}
        assert second.call("GET", "/mlx/runs?status=running")["total"] == 0

        again = second.call("POST", f"/mlx/sweeps/{sweep_id}/requeue", {})
        assert [run["version"] for run in again["runs"]] == [4, 5, 6]
        _wait_for(
            lambda: second.call("GET", f"/mlx/sweeps/{sweep_id}")["sweep"]["counts"].get("succeeded") == 3, 90, "the re-queued runs"
        )
        body = second.call("GET", f"/mlx/sweeps/{sweep_id}")
        assert body["sweep"]["counts"] == {"interrupted": 3, "succeeded": 3}
        assert [run["parent_id"] for run in body["runs"][3:]] == [run["id"] for run in body["runs"][:3]]
    finally:
        second.stop()
