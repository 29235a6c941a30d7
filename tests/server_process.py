"""A real ``jupyter server`` process with jupyter_mlx, for tests that kill or restart it, and a
bounded wait for a condition."""
from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

import pytest

from jupyter_mlx.ports import free_port

START_TIMEOUT = 60.0


class Server:
    """A real ``jupyter server`` with jupyter_mlx on ``root``, in its own process group."""

    def __init__(self, root: Path, home: Path, extra: tuple[str, ...] = ()) -> None:
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.log = home / f"server-{self.port}.log"
        env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime")}
        argv = [
            sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root", "--ip=127.0.0.1",
            f"--port={self.port}", "--ServerApp.port_retries=0", f"--ServerApp.token={self.token}",
            f"--ServerApp.root_dir={root}",
            *(extra if any(a.startswith("--MLXConfig.concurrency=") for a in extra) else ("--MLXConfig.concurrency=2", *extra)),
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


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> None:
    """Poll ``predicate`` every 0.2 s until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
