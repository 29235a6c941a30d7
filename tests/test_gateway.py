"""The gateway backend against a real Jupyter Kernel Gateway (one subprocess for the module)."""
from __future__ import annotations

import dataclasses
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from jupyter_mlx.errors import MLXError
from jupyter_mlx.execute.executor import CancelToken
from jupyter_mlx.execute.gateway import GatewayExecutor
from jupyter_mlx.execute.runner import RunTask
from jupyter_mlx.metrics import read_metrics
from jupyter_mlx.ports import free_port
from jupyter_mlx.service import RunService

from notebooks import SYSTEM_EXITS, code_cell, notebook, write_clobber, write_failing, write_system_exit, write_tiny
from sandbox import tree_hash

pytest.importorskip("kernel_gateway")


class Gateway:
    """A ``jupyter kernelgateway`` subprocess with an auth token, logging to a file."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log_path = folder / "gateway.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "kernel_gateway",
                "--ip", "127.0.0.1", "--port", self.url.rsplit(":", 1)[1],
                f"--KernelGatewayApp.auth_token={self.token}",
                "--JupyterWebsocketPersonality.list_kernels=True",
            ],
            cwd=folder,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the kernel gateway exited ({self.process.returncode}):\n{self.log()}")
            try:
                self.get("/api/kernelspecs")
                return
            except (OSError, urllib.error.URLError):
                time.sleep(0.1)
        pytest.fail(f"the kernel gateway did not answer within {timeout} s:\n{self.log()}")

    def get(self, path: str):
        request = urllib.request.Request(self.url + path, headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())

    def kernel_ids(self) -> set[str]:
        return {kernel["id"] for kernel in self.get("/api/kernels")}

    def log(self, start: int = 0) -> str:
        return self.log_path.read_bytes()[start:].decode("utf-8", "replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self._log.close()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    gw = Gateway(tmp_path_factory.mktemp("gateway"))
    try:
        gw.wait_ready()
        yield gw
    finally:
        gw.stop()


@pytest.fixture(scope="module")
def executor(gateway):
    backend = GatewayExecutor(
        gateway.url, gateway.token, concurrency=2, startup_timeout=30, request_timeout=5
    )
    backend.prepare(2)
    yield backend
    backend.close()


@pytest.fixture(autouse=True)
def _gateway_log_on_failure(request):
    """Print the gateway's log of this test at teardown: pytest shows it when the test failed."""
    if "gateway" not in request.fixturenames:
        yield
        return
    gw = request.getfixturevalue("gateway")
    start = gw.log_path.stat().st_size
    yield
    print(f"---- kernel gateway log ({gw.log_path}) ----\n{gw.log(start)}")


def _task(path: Path, **kwargs) -> RunTask:
    return RunTask(notebook=path.name, source=path.read_bytes(), cwd=path.parent, **{"parameters": {}, **kwargs})


def _write(path: Path, *sources: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(notebook(*(code_cell(s) for s in sources))))
    return path


def _wait_warm(executor: GatewayExecutor, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while executor.kernels.warm("python3") < count:
        assert time.monotonic() < deadline, "gateway kernels were not pre-started in time"
        time.sleep(0.05)


# -- check() ---------------------------------------------------------------------------------
def test_gateway_check_passes_with_the_right_token(gateway, executor):
    executor.check()


def test_gateway_check_reports_an_unreachable_url():
    url = f"http://127.0.0.1:{free_port()}"
    backend = GatewayExecutor(url, "token")
    started = time.monotonic()
    with pytest.raises(MLXError) as raised:
        backend.check()
    assert raised.value.code == "backend_unavailable" and raised.value.http_status == 503
    assert url in raised.value.message and "\n" not in raised.value.message
    assert time.monotonic() - started < 10
    backend.close()


def test_gateway_check_reports_a_url_that_is_not_http():
    with pytest.raises(MLXError) as raised:
        GatewayExecutor("localhost:8888").check()
    assert raised.value.code == "backend_unavailable" and "localhost:8888" in raised.value.message


@pytest.mark.parametrize("token", ["wrong-token", ""])
def test_gateway_check_reports_a_refused_token(gateway, token):
    backend = GatewayExecutor(gateway.url, token)
    with pytest.raises(MLXError) as raised:
        backend.check()
    assert raised.value.code == "backend_unavailable"
    assert gateway.url in raised.value.message and "token" in raised.value.message
    assert "401" in raised.value.message
    backend.close()


def test_gateway_check_reports_a_server_that_is_not_a_gateway(tmp_path):
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class NotAGateway(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html>hello</html>")

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), NotAGateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with pytest.raises(MLXError) as raised:
            GatewayExecutor(url, "t").check()
        assert raised.value.code == "backend_unavailable" and "Gateway" in raised.value.message
    finally:
        server.shutdown()


# -- runs ------------------------------------------------------------------------------------
def test_gateway_runs_a_parameterized_notebook_with_outputs_metrics_and_progress(executor, tmp_path):
    from jupyter_server.gateway.gateway_client import GatewayClient

    singleton = GatewayClient._instance
    _wait_warm(executor, 2)
    path = write_tiny(tmp_path / "tiny.ipynb")
    progress: list[tuple[int, int]] = []
    started = time.monotonic()
    result = executor.execute(
        _task(path, parameters={"x": 3}), lambda i, n: progress.append((i, n)), CancelToken()
    )
    elapsed = time.monotonic() - started
    assert result.status == "succeeded", result.error
    cells = result.notebook["cells"]
    assert "injected-parameters" in cells[1]["metadata"]["tags"]
    assert cells[2]["outputs"][-1]["text"] == "hello a 3\n"
    assert {m.name: m.value for m in read_metrics(result.notebook)} == {"score": 6.0, "loss": 0.25}
    assert [t.cell_index for t in result.cell_timings] == [0, 1, 2]
    assert progress == [(0, 3), (1, 3), (2, 3)]
    assert result.kernel_name == "python3"
    assert elapsed < 10  # a warm kernel (typically ~0.5 s)
    assert GatewayClient._instance is singleton  # the process-wide gateway settings are untouched


def test_gateway_failing_cell_fails_the_run_at_that_cell(executor, tmp_path):
    path = write_failing(tmp_path / "failing.ipynb")
    result = executor.execute(_task(path, parameters={"n": 5}), None, CancelToken())
    assert result.status == "failed"
    assert (result.error.cell_index, result.error.ename, result.error.evalue) == (3, "ValueError", "bad n=5")
    assert result.error.traceback
    cells = result.notebook["cells"]
    assert cells[2]["outputs"][0]["text"] == "before\n"
    assert cells[4]["outputs"] == []


def test_gateway_early_exits_end_runs_as_papermill_ends_them(executor, tmp_path):
    """sys.exit() / sys.exit(0) / raise SystemExit succeed, sys.exit(1) fails: as locally (test_sysexit.py)."""
    for name, (exit_line, succeeds) in SYSTEM_EXITS.items():
        path = write_system_exit(tmp_path / f"{name}.ipynb", exit_line)
        result = executor.execute(_task(path), None, CancelToken())
        assert result.status == ("succeeded" if succeeds else "failed"), (name, result.error)
        cells = result.notebook["cells"]
        assert cells[1]["outputs"][0]["ename"] == "SystemExit"
        assert cells[2]["execution_count"] is None and cells[2]["outputs"] == []


def test_gateway_parallel_runs_use_two_kernels_in_the_gateways_folder(executor, gateway, tmp_path):
    executor.prepare(2)
    _wait_warm(executor, 2)
    (gateway.folder / "shared.txt").write_text("the gateway's")
    path = _write(tmp_path / "pid.ipynb", "import os, time\ntime.sleep(1)\n"
                  "print(os.getpid(), os.getcwd(), open('shared.txt').read() == \"the gateway's\")")
    results = [None, None]

    def run(i: int) -> None:
        results[i] = executor.execute(_task(path), None, CancelToken())

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    elapsed = time.monotonic() - started
    assert all(r is not None and r.status == "succeeded" for r in results), results
    lines = [r.notebook["cells"][0]["outputs"][0]["text"].split() for r in results]
    assert lines[0][0] != lines[1][0]  # two kernels
    # each in a folder of its own, where the gateway's folder's files are at the same relative paths
    assert lines[0][1] != lines[1][1] and str(gateway.folder) not in (lines[0][1], lines[1][1])
    assert [line[2] for line in lines] == ["True", "True"]
    assert elapsed < 1.9  # at the same time


def test_gateway_cancel_interrupts_the_running_cell_and_keeps_the_partial_notebook(executor, tmp_path):
    path = _write(tmp_path / "slow.ipynb", "print('started')", "import time\ntime.sleep(60)", "print('never')")
    cancel = CancelToken()

    def on_cell(index: int, count: int) -> None:
        if index == 1:
            threading.Timer(0.5, cancel.cancel, kwargs={"reason": "cancelled by the test"}).start()

    started = time.monotonic()
    result = executor.execute(_task(path), on_cell, cancel)
    assert time.monotonic() - started < 10
    assert result.status == "cancelled"
    assert (result.error.ename, result.error.evalue, result.error.cell_index) == (
        "RunCancelled", "cancelled by the test", 1,
    )
    assert result.notebook["cells"][0]["outputs"][0]["text"] == "started\n"
    assert result.notebook["cells"][2]["outputs"] == []


def test_gateway_cancelled_before_start_runs_nothing(executor, tmp_path):
    path = _write(tmp_path / "x.ipynb", "print('ran')")
    cancel = CancelToken()
    cancel.cancel("cancelled while queued")
    result = executor.execute(_task(path), None, cancel)
    assert result.status == "cancelled"
    assert result.notebook["cells"][0]["outputs"] == []


def test_gateway_cell_timeout_fails_the_run_at_that_cell(executor, tmp_path):
    path = _write(tmp_path / "slow.ipynb", "a = 1", "import time; time.sleep(30)")
    result = executor.execute(_task(path, cell_timeout=1), None, CancelToken())
    assert result.status == "failed"
    assert (result.error.ename, result.error.cell_index) == ("CellTimeoutError", 1)
    assert result.finished_at - result.started_at < 10


def test_gateway_silent_cell_outlives_the_connect_timeout_without_busy_waiting(gateway, tmp_path):
    """A websocket timeout that also applied to receiving would fail a cell silent for longer."""
    backend = GatewayExecutor(gateway.url, gateway.token, concurrency=1, startup_timeout=2, request_timeout=2)
    try:
        backend.prepare(1)
        _wait_warm(backend, 1)
        path = _write(tmp_path / "quiet.ipynb", "import time; time.sleep(2.5)\nprint('done')")
        cpu = time.process_time()
        result = backend.execute(_task(path), None, CancelToken())
        cpu = time.process_time() - cpu
    finally:
        backend.close()
    assert result.status == "succeeded", result.error
    assert result.notebook["cells"][0]["outputs"][0]["text"] == "done\n"
    assert cpu < 1.0  # the stock channel queue spins: ~1.5 s of CPU for such a run


def test_gateway_kernel_that_dies_fails_the_run_instead_of_hanging(executor, tmp_path):
    """The gateway restarts a dead kernel; the run must fail, not wait for a reply forever."""
    path = _write(tmp_path / "die.ipynb", "print('before')", "import os\nos._exit(1)", "print('never')")
    started = time.monotonic()
    result = executor.execute(_task(path), None, CancelToken())  # no cell or run timeout
    assert time.monotonic() - started < 20
    assert result.status == "failed"
    assert (result.error.ename, result.error.cell_index) == ("DeadKernelError", 1)
    assert "restarted" in result.error.evalue
    assert result.notebook["cells"][0]["outputs"][0]["text"] == "before\n"


def test_gateway_kernel_deleted_behind_the_runs_back_fails_the_run(executor, gateway, tmp_path, monkeypatch):
    """Someone (a culler, an admin) deletes the kernel mid-cell: the run fails within seconds."""
    path = _write(tmp_path / "victim.ipynb", "print('before')", "import time\ntime.sleep(60)")
    acquire, used = executor.kernels.acquire, []

    def recording_acquire(*args, **kwargs):
        lease = acquire(*args, **kwargs)
        used.append(lease.km.kernel_id)
        return lease

    monkeypatch.setattr(executor.kernels, "acquire", recording_acquire)

    def delete_when_running(index: int, count: int) -> None:
        if index == 1:
            request = urllib.request.Request(
                f"{gateway.url}/api/kernels/{used[0]}", method="DELETE",
                headers={"Authorization": f"token {gateway.token}"},
            )
            threading.Timer(0.3, urllib.request.urlopen, args=(request,)).start()

    started = time.monotonic()
    result = executor.execute(_task(path), delete_when_running, CancelToken())
    assert time.monotonic() - started < 20
    assert result.status == "failed"
    assert (result.error.ename, result.error.cell_index) == ("DeadKernelError", 1)
    assert "no longer exists" in result.error.evalue or "closed" in result.error.evalue


def test_gateway_unknown_kernel_is_a_failed_run(executor, tmp_path):
    path = write_tiny(tmp_path / "tiny.ipynb")
    result = executor.execute(_task(path, kernel_name="no-such-kernel", startup_timeout=10), None, CancelToken())
    assert result.status == "failed"
    assert result.error.ename == "NoSuchKernel" and result.error.cell_index is None


def test_gateway_leaves_no_kernels_behind(executor, gateway, tmp_path, monkeypatch):
    """Last in the module: a run's kernel is deleted after the run, every kernel on close()."""
    used: list[str] = []
    acquire = executor.kernels.acquire

    def recording_acquire(*args, **kwargs):
        lease = acquire(*args, **kwargs)
        used.append(lease.km.kernel_id)
        return lease

    monkeypatch.setattr(executor.kernels, "acquire", recording_acquire)
    executor.prepare(3)  # one more than will come: a warm kernel stays until close()
    assert executor.execute(_task(write_tiny(tmp_path / "tiny.ipynb")), None, CancelToken()).status == "succeeded"
    failing = executor.execute(_task(write_failing(tmp_path / "failing.ipynb")), None, CancelToken())
    assert failing.status == "failed" and len(used) == 2
    deadline = time.monotonic() + 10
    while set(used) & gateway.kernel_ids():
        assert time.monotonic() < deadline, "a run's kernel was not deleted after the run"
        time.sleep(0.05)
    _wait_warm(executor, 1)
    assert gateway.kernel_ids() == executor.kernels.kernel_ids() and len(gateway.kernel_ids()) >= 1
    started = time.monotonic()
    executor.close()
    assert time.monotonic() - started < 5
    assert gateway.kernel_ids() == set()


# -- through the service: the CLI a user types --------------------------------------------------
def _cli(root: Path, *argv: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "jupyter_mlx.cli", *argv],
        cwd=root, capture_output=True, text=True, timeout=180, env={**os.environ, **env},
    )


def test_gateway_sweep_from_the_cli_records_runs_executed_on_the_gateway(gateway, tmp_path):
    write_tiny(tmp_path / "tiny.ipynb")
    done = _cli(
        tmp_path, "sweep", "tiny.ipynb", "-p", "x", "2,3", "--backend", "gateway",
        JUPYTER_MLX_GATEWAY_URL=gateway.url, JUPYTER_MLX_GATEWAY_TOKEN=gateway.token,
    )
    assert done.returncode == 0, done.stderr
    assert "2 runs of tiny.ipynb on gateway" in done.stderr
    runs = json.loads(_cli(tmp_path, "runs", "--json").stdout)["runs"]
    assert sorted((r["parameters"]["x"], r["metrics"]["score"], r["backend"]) for r in runs) == [
        (2, 4.0, "gateway"), (3, 6.0, "gateway"),
    ]


def test_gateway_unreachable_or_refusing_is_one_line_and_records_nothing(gateway, tmp_path):
    write_tiny(tmp_path / "tiny.ipynb")
    for url, token in ((f"http://127.0.0.1:{free_port()}", "x"), (gateway.url, "wrong-token")):
        done = _cli(tmp_path, "run", "tiny.ipynb", "--backend", "gateway", "--gateway-url", url, "--gateway-token", token)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert url in done.stderr
    assert json.loads(_cli(tmp_path, "runs", "--json").stdout)["total"] == 0


def test_gateway_sweep_of_a_notebook_that_writes_files_brings_each_runs_files_back(gateway, tmp_path):
    """The kernel makes the run's folder on the gateway and sends what the run wrote back with the
    run: four parallel runs, each its own result.txt; nothing written to the gateway's folder."""
    write_clobber(tmp_path / "clobber.ipynb")
    before, gateway_files = tree_hash(tmp_path), sorted(p.name for p in gateway.folder.iterdir())
    done = _cli(
        tmp_path, "sweep", "clobber.ipynb", "-p", "x", "1,2,3,4", "--backend", "gateway",
        JUPYTER_MLX_GATEWAY_URL=gateway.url, JUPYTER_MLX_GATEWAY_TOKEN=gateway.token,
    )
    assert done.returncode == 0, done.stderr
    service = RunService(tmp_path)
    try:
        runs = service.list_runs().runs
        assert len(runs) == 4
        for run in runs:
            assert run.status == "succeeded" and run.run_folder == "remote"
            assert b"".join(service.artifact(run.ref, "result.txt")[1]) == str(run.parameters["x"]).encode()
    finally:
        service.close()
    assert tree_hash(tmp_path) == before
    assert sorted(p.name for p in gateway.folder.iterdir()) == gateway_files


def test_gateway_kernel_captures_the_functions_state_and_sends_it_back(gateway, tmp_path):
    from jupyter_mlx.serve.state import load_state

    path = _write(tmp_path / "fn.ipynb", "import numpy as np\nweights = np.arange(3.0)",
                  "def predict(rows):\n    return (np.asarray(rows) @ weights).tolist()")
    backend = GatewayExecutor(gateway.url, gateway.token, concurrency=1, startup_timeout=30, request_timeout=5)
    try:  # its own executor: the module's is closed by the leak test before this one
        result = backend.execute(dataclasses.replace(_task(path), capture=True), None, CancelToken())
    finally:
        backend.close()
    assert result.status == "succeeded", result.error
    try:
        assert result.state_manifest["functions"] == ["predict"]
        assert load_state(result.state.read_bytes())["predict"]([[1, 1, 1]]) == [3.0]
    finally:
        result.state.unlink()
