"""The dask backend on a real scheduler and two single-threaded workers (subprocesses)."""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from jupyter_mlx.errors import MLXError
from jupyter_mlx.execute.dask import EXTRA_MISSING, DaskExecutor
from jupyter_mlx.execute.executor import CancelToken
from jupyter_mlx.execute.runner import RunTask
from jupyter_mlx.metrics import read_metrics
from jupyter_mlx.ports import free_port

from jupyter_mlx.service import RunService
from notebooks import SYSTEM_EXITS, code_cell, write_clobber, write_failing, write_notebook, write_system_exit, write_tiny
from sandbox import tree_hash

WORKER_ENV = "MLX_TEST_DASK_WORKER"


def _dask(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("dask")
    if script.exists():
        return [str(script), *args]
    module = {"scheduler": "distributed.cli.dask_scheduler", "worker": "distributed.cli.dask_worker"}[args[0]]
    return [sys.executable, "-m", module, *args[1:]]


class Cluster:
    """A scheduler (and optionally workers) started as subprocesses; logs in ``log``."""

    def __init__(self, folder: Path, workers: int) -> None:
        self.log = folder / "dask-cluster.log"
        self.address = f"tcp://127.0.0.1:{free_port()}"
        self._out = self.log.open("ab")
        self.procs: list[subprocess.Popen] = []
        port = self.address.rsplit(":", 1)[1]
        self.scheduler = self._start(
            "scheduler", "--host", "127.0.0.1", "--port", port, "--dashboard-address", "127.0.0.1:0"
        )
        if workers:
            self._start(
                "worker", self.address, "--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0",
                "--nthreads", "1", "--nworkers", str(workers),
            )
        self.wait_for_workers(workers)

    def _start(self, *args: str) -> subprocess.Popen:
        env = {**os.environ, WORKER_ENV: "1", "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            _dask(*args), stdout=self._out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        self.procs.append(proc)
        return proc

    def logs(self, tail: int = 60) -> str:
        lines = self.log.read_text(errors="replace").splitlines()
        return f"--- {self.log} (last {tail} lines) ---\n" + "\n".join(lines[-tail:])

    def wait_for_workers(self, count: int, timeout: float = 60.0) -> None:
        from distributed import Client

        deadline = time.monotonic() + timeout
        while True:
            try:
                with Client(self.address, timeout=5, set_as_default=False) as client:
                    if count:
                        client.wait_for_workers(count, timeout=max(1.0, deadline - time.monotonic()))
                return
            except Exception as exc:
                if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                    self.stop()
                    pytest.fail(f"the dask cluster did not start: {exc}\n{self.logs()}")
                time.sleep(0.3)

    def stop(self) -> None:
        for proc in reversed(self.procs):  # workers first: they shut their kernels down
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(5)
        self._out.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = Cluster(tmp_path_factory.mktemp("dask"), workers=2)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def executor(cluster):
    executor = DaskExecutor(cluster.address, connect_timeout=10)
    executor.check()
    yield executor
    executor.close()


def _task(path: Path, parameters: dict | None = None, **kwargs) -> RunTask:
    return RunTask(
        notebook=path.name, source=path.read_bytes(), parameters=parameters or {}, cwd=path.parent, **kwargs
    )


def _text(result, cell: int) -> str:
    return "".join(o.get("text", "") for o in result.notebook["cells"][cell]["outputs"])


def _explain(result, cluster: Cluster) -> str:
    return f"{result.status}: {result.error}\n{cluster.logs()}"


def test_dask_runs_a_parameterized_notebook_on_a_worker_with_live_progress(executor, cluster, tmp_path):
    assert executor.name == "dask"
    assert executor.concurrency == 2  # two workers of one thread
    path = write_tiny(tmp_path / "tiny.ipynb")
    probe = code_cell(f"import os\nprint(os.environ.get({WORKER_ENV!r}), os.getppid())")
    nb = json.loads(path.read_text())
    nb["cells"].append(probe)
    path.write_text(json.dumps(nb))
    progress: list[tuple[int, int, str]] = []

    def on_cell(index: int, count: int) -> None:
        progress.append((index, count, threading.current_thread().name))

    result = executor.execute(_task(path, {"x": 5, "label": "dask"}), on_cell, CancelToken())
    assert result.status == "succeeded", _explain(result, cluster)
    assert result.kernel_name == "python3"
    metrics = {(m.name, m.step): m.value for m in read_metrics(result.notebook)}
    assert metrics == {("score", None): 10.0, ("loss", 0): 0.2, ("loss", 1): 1 / 6}
    assert "hello dask 5" in _text(result, 2)  # cell 1 is papermill's injected parameters
    marker, parent = _text(result, 3).split()
    assert marker == "1"  # the kernel's environment is the worker's, not ours
    assert int(parent) not in (os.getpid(), os.getppid())  # its parent is a worker process
    assert [i for i, _, _ in progress] == [0, 1, 2, 3] and {c for _, c, _ in progress} == {4}
    assert [t.cell_index for t in result.cell_timings] == [0, 1, 2, 3]


def test_dask_failing_cell_fails_the_run_with_its_cell_index(executor, cluster, tmp_path):
    path = write_failing(tmp_path / "failing.ipynb")
    result = executor.execute(_task(path, {"n": 5}), None, CancelToken())
    assert result.status == "failed", _explain(result, cluster)
    assert (result.error.ename, result.error.evalue, result.error.cell_index) == ("ValueError", "bad n=5", 3)
    assert "before" in _text(result, 2)
    assert result.notebook["cells"][4]["outputs"] == []


def test_dask_early_exits_end_runs_as_papermill_ends_them(executor, cluster, tmp_path):
    """sys.exit() / sys.exit(0) / raise SystemExit succeed, sys.exit(1) fails: as locally (test_sysexit.py)."""
    for name, (exit_line, succeeds) in SYSTEM_EXITS.items():
        path = write_system_exit(tmp_path / f"{name}.ipynb", exit_line)
        result = executor.execute(_task(path), None, CancelToken())
        assert result.status == ("succeeded" if succeeds else "failed"), (name, _explain(result, cluster))
        cells = result.notebook["cells"]
        assert cells[1]["outputs"][0]["ename"] == "SystemExit"
        assert cells[2]["execution_count"] is None and cells[2]["outputs"] == []


def test_dask_runs_from_four_threads_all_come_back(executor, cluster, tmp_path):
    path = write_tiny(tmp_path / "tiny.ipynb")
    results: dict[int, object] = {}

    def run(x: int) -> None:
        results[x] = executor.execute(_task(path, {"x": x}), None, CancelToken())

    threads = [threading.Thread(target=run, args=(x,)) for x in range(1, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert sorted(results) == [1, 2, 3, 4]
    for x, result in results.items():
        assert result.status == "succeeded", _explain(result, cluster)
        assert read_metrics(result.notebook)[0].value == 2 * x


def test_dask_cancel_stops_running_and_queued_runs_and_workers_stay_usable(executor, cluster, tmp_path):
    slow = write_notebook(
        tmp_path / "slow.ipynb",
        code_cell("print('started')"),
        code_cell("import time\ntime.sleep(120)"),
        code_cell("print('never')"),
    )
    running = threading.Barrier(3)
    tokens = [CancelToken() for _ in range(3)]
    results: dict[int, object] = {}

    def on_cell(index: int, count: int) -> None:
        if index == 1:
            running.wait(60)

    def run(i: int, callback) -> None:
        results[i] = executor.execute(_task(slow), callback, tokens[i])

    threads = [threading.Thread(target=run, args=(i, on_cell)) for i in range(2)]
    for thread in threads:
        thread.start()
    running.wait(60)  # both workers are inside the sleeping cell
    queued = threading.Thread(target=run, args=(2, None))
    queued.start()
    time.sleep(0.5)
    started = time.monotonic()
    tokens[2].cancel("cancelled while queued")
    queued.join(15)
    assert 2 in results and time.monotonic() - started < 10
    assert results[2].status == "cancelled" and results[2].notebook is None
    assert (results[2].error.ename, results[2].error.evalue) == ("RunCancelled", "cancelled while queued")

    started = time.monotonic()
    for token in tokens[:2]:
        token.cancel("cancelled by the test")
    for thread in threads:
        thread.join(30)
    assert time.monotonic() - started < 25
    for i in range(2):
        result = results[i]
        assert result.status == "cancelled", _explain(result, cluster)
        assert (result.error.ename, result.error.evalue, result.error.cell_index) == (
            "RunCancelled", "cancelled by the test", 1,
        )
        assert _text(result, 0) == "started\n" and result.notebook["cells"][2]["outputs"] == []

    tiny = write_tiny(tmp_path / "tiny.ipynb")
    after = [executor.execute(_task(tiny, {"x": x}), None, CancelToken()) for x in (1, 2)]
    assert [r.status for r in after] == ["succeeded", "succeeded"], _explain(after[0], cluster)


def test_dask_progress_callback_errors_do_not_fail_the_run(executor, cluster, tmp_path):
    path = write_tiny(tmp_path / "tiny.ipynb")

    def broken(index: int, count: int) -> None:
        raise RuntimeError("progress sink is down")

    result = executor.execute(_task(path), broken, CancelToken())
    assert result.status == "succeeded", _explain(result, cluster)


def test_dask_cancelled_before_submission_runs_nothing(executor, tmp_path):
    path = write_tiny(tmp_path / "tiny.ipynb")
    cancel = CancelToken()
    cancel.cancel("never mind")
    result = executor.execute(_task(path), None, cancel)
    assert (result.status, result.notebook, result.error.ename) == ("cancelled", None, "RunCancelled")


class _Deaf(DaskExecutor):
    """Misses the scheduler's "worker removed" events: dask's retry elsewhere must not re-run."""

    def _on_cluster_event(self, event) -> None:
        pass


@pytest.mark.parametrize("seen", [True, False], ids=["removal-seen", "retried-by-dask"])
def test_dask_lost_worker_fails_the_run_without_rerunning_it(seen, executor, cluster, tmp_path):
    if not seen:
        executor = _Deaf(cluster.address)
    pids = tmp_path / "pids.txt"
    ran = tmp_path / "ran.txt"
    path = write_notebook(
        tmp_path / "victim.ipynb",
        code_cell(
            "import os, time\n"
            f"open({str(ran)!r}, 'a').write('x')\n"
            f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{os.getppid()}}')\n"
            "time.sleep(120)"
        ),
    )
    box: dict[str, object] = {}
    thread = threading.Thread(target=lambda: box.update(r=executor.execute(_task(path), None, CancelToken())))
    thread.start()
    deadline = time.monotonic() + 30
    while not (pids.exists() and len(pids.read_text().split()) == 2):
        assert time.monotonic() < deadline, cluster.logs()
        time.sleep(0.1)
    kernel, worker = map(int, pids.read_text().split())
    started = time.monotonic()
    os.kill(worker, signal.SIGKILL)  # the worker process (its nanny restarts it)
    os.kill(kernel, signal.SIGKILL)  # its orphaned kernel
    thread.join(30)
    assert "r" in box and time.monotonic() - started < 20
    result = box["r"]
    assert result.status == "failed" and result.error.ename == "WorkerLost", _explain(result, cluster)
    expected = "was lost mid-run" if seen else "not re-executed"
    assert expected in result.error.evalue
    time.sleep(1)  # a retry on the other worker would have started by now
    assert ran.read_text() == "x"  # executed once
    if not seen:
        executor.close()
    cluster.wait_for_workers(2)


def test_dask_scheduler_gone_mid_run_is_a_failed_run(tmp_path):
    lonely = Cluster(tmp_path, workers=0)  # nothing runs: the run stays queued
    executor = DaskExecutor(lonely.address, connect_timeout=2)
    try:
        executor.check()
        assert executor.concurrency == 1
        path = write_tiny(tmp_path / "tiny.ipynb")
        box: dict[str, object] = {}
        thread = threading.Thread(target=lambda: box.update(r=executor.execute(_task(path), None, CancelToken())))
        thread.start()
        time.sleep(1)
        started = time.monotonic()
        os.killpg(lonely.scheduler.pid, signal.SIGKILL)
        thread.join(20)
        assert "r" in box and time.monotonic() - started < 15
        result = box["r"]
        assert (result.status, result.error.ename) == ("failed", "SchedulerUnavailable")
        assert lonely.address in result.error.evalue
        with pytest.raises(MLXError) as raised:
            executor.check()
        assert raised.value.code == "backend_unavailable"
    finally:
        executor.close()
        lonely.stop()


def test_dask_unreachable_scheduler_is_backend_unavailable_quickly():
    address = f"tcp://127.0.0.1:{free_port()}"
    executor = DaskExecutor(address, connect_timeout=1)
    started = time.monotonic()
    with pytest.raises(MLXError) as raised:
        executor.check()
    assert time.monotonic() - started < 8
    assert raised.value.code == "backend_unavailable" and raised.value.http_status == 503
    assert address in raised.value.message
    executor.close()


def test_dask_missing_distributed_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # ``import distributed`` now fails
    with pytest.raises(MLXError) as raised:
        DaskExecutor("tcp://127.0.0.1:8786")
    assert raised.value.code == "backend_unavailable"
    assert raised.value.message == EXTRA_MISSING
    assert "pip install 'jupyter_mlx[dask]'" in raised.value.message


# -- through the service: the CLI a user types --------------------------------------------------
def _cli(root: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "jupyter_mlx.cli", *argv], cwd=root, capture_output=True, text=True, timeout=180
    )


def test_dask_sweep_from_the_cli_records_runs_executed_on_the_cluster(cluster, tmp_path):
    write_tiny(tmp_path / "tiny.ipynb")
    done = _cli(tmp_path, "sweep", "tiny.ipynb", "-p", "x", "2,3", "--backend", "dask", "--scheduler", cluster.address)
    assert done.returncode == 0, done.stderr + cluster.logs()
    assert "2 runs of tiny.ipynb on dask (2 at a time)" in done.stderr
    runs = json.loads(_cli(tmp_path, "runs", "--json").stdout)["runs"]
    assert sorted((r["parameters"]["x"], r["metrics"]["score"], r["backend"]) for r in runs) == [
        (2, 4.0, "dask"), (3, 6.0, "dask"),
    ]


def test_dask_unreachable_scheduler_is_one_line_and_records_nothing(tmp_path):
    write_tiny(tmp_path / "tiny.ipynb")
    address = f"tcp://127.0.0.1:{free_port()}"
    done = _cli(tmp_path, "sweep", "tiny.ipynb", "-p", "x", "1,2", "--backend", "dask", "--scheduler", address)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert address in done.stderr
    assert json.loads(_cli(tmp_path, "runs", "--json").stdout)["total"] == 0


def test_dask_unknown_kernel_is_refused_naming_the_workers_kernels(executor, cluster, tmp_path):
    assert "python3" in executor.kernel_names()  # the kernels every worker has
    write_tiny(tmp_path / "tiny.ipynb")
    done = _cli(tmp_path, "sweep", "tiny.ipynb", "-p", "x", "1,2", "--backend", "dask", "--scheduler", cluster.address,
                "--kernel", "nosuch")
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "kernel 'nosuch' is not on the dask backend" in done.stderr and "python3" in done.stderr
    assert json.loads(_cli(tmp_path, "runs", "--json").stdout)["total"] == 0


def test_dask_sweep_of_a_notebook_that_writes_files_gets_each_run_its_own_folder(cluster, tmp_path):
    """The workers share this machine's files: each run executes in its own folder (an overlay or a
    copy made by the service) and what it wrote comes back as its artifacts."""
    write_clobber(tmp_path / "clobber.ipynb")
    (tmp_path / "input.txt").write_text("in")
    before = tree_hash(tmp_path)
    done = _cli(tmp_path, "sweep", "clobber.ipynb", "-p", "x", "1,2,3,4", "--backend", "dask",
                "--scheduler", cluster.address)
    assert done.returncode == 0, done.stderr + cluster.logs()
    service = RunService(tmp_path)
    try:
        for run in service.list_runs().runs:
            assert run.status == "succeeded" and run.backend == "dask"
            assert b"".join(service.artifact(run.ref, "result.txt")[1]) == str(run.parameters["x"]).encode()
    finally:
        service.close()
    assert tree_hash(tmp_path) == before


def test_dask_worker_without_the_notebooks_folder_sends_the_runs_files_back(executor, tmp_path):
    """A worker on another machine runs in a scratch folder of its own; what the run wrote there
    comes back with the result (the service stores it as the run's artifacts)."""
    path = write_notebook(tmp_path / "writes.ipynb", code_cell(
        "import os\nopen('out.txt', 'w').write('from the worker')\n"
        "os.makedirs('sub', exist_ok=True); open('sub/big.bin', 'wb').write(b'x' * 5000)"))
    task = dataclasses.replace(_task(path), cwd=Path("/nonexistent/on/this/worker"), artifact_max_file_size=1000)
    result = executor.execute(task, None, CancelToken())
    assert result.status == "succeeded", result.error
    try:
        assert result.files is None and result.collected is not None
        assert (result.collected / "out.txt").read_text() == "from the worker"
        assert not (result.collected / "sub" / "big.bin").exists()
        assert any("sub/big.bin skipped" in note for note in result.collected_notes), result.collected_notes
    finally:
        shutil.rmtree(result.collected, ignore_errors=True)


def test_dask_worker_captures_the_functions_state_and_sends_it_back(executor, tmp_path):
    from jupyter_mlx.serve.state import load_state

    path = write_notebook(tmp_path / "fn.ipynb", code_cell("import numpy as np\nweights = np.arange(3.0)"),
                          code_cell("def predict(rows):\n    return (np.asarray(rows) @ weights).tolist()"))
    result = executor.execute(dataclasses.replace(_task(path), capture=True), None, CancelToken())
    assert result.status == "succeeded", result.error
    try:
        assert result.state_bytes is None and result.state_manifest["functions"] == ["predict"]
        assert load_state(result.state.read_bytes())["predict"]([[1, 1, 1]]) == [3.0]
    finally:
        result.state.unlink()
