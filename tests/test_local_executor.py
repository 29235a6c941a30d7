"""The local backend: pre-started kernels, the run's folder, cancel, a killed kernel."""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from jupyter_mlx.execute.executor import CancelToken
from jupyter_mlx.execute.local import LocalExecutor
from jupyter_mlx.execute.runner import RunTask

from notebooks import code_cell, notebook


@pytest.fixture(scope="module")
def executor():
    local = LocalExecutor(concurrency=2, idle_timeout=120)
    yield local
    local.close()


def _task(path: Path, **kwargs) -> RunTask:
    return RunTask(notebook=path.name, source=path.read_bytes(), cwd=path.parent, parameters={}, **kwargs)


def _write(path: Path, *sources: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(notebook(*(code_cell(s) for s in sources))))
    return path


def _wait_warm(executor: LocalExecutor, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while executor.pool.warm("python3") < count:
        assert time.monotonic() < deadline, "kernels were not pre-started in time"
        time.sleep(0.05)


def test_prestarted_kernels_run_in_the_notebooks_folder_and_are_never_reused(executor, tmp_path):
    executor.prepare(2)
    _wait_warm(executor, 2)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "data.txt").write_text("42")
    path = _write(tmp_path / "sub" / "nb.ipynb", "import os\nprint(open('data.txt').read(), os.getpid())")
    started = time.monotonic()
    first = executor.execute(_task(path), None, CancelToken())
    elapsed = time.monotonic() - started
    second = executor.execute(_task(path), None, CancelToken())
    assert first.status == second.status == "succeeded", first.error
    text_a, pid_a = first.notebook["cells"][0]["outputs"][0]["text"].split()
    text_b, pid_b = second.notebook["cells"][0]["outputs"][0]["text"].split()
    assert text_a == text_b == "42"
    assert pid_a != pid_b  # a fresh kernel per run
    assert elapsed < 5  # a warm kernel: no boot on the critical path (loose bound; see benchmarks)


def test_parallel_runs_use_separate_kernels(executor, tmp_path):
    path = _write(tmp_path / "pid.ipynb", "import os, time\ntime.sleep(0.5)\nprint(os.getpid())")
    results = [None, None]

    def run(i: int) -> None:
        results[i] = executor.execute(_task(path), None, CancelToken())

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(r is not None and r.status == "succeeded" for r in results)
    pids = {r.notebook["cells"][0]["outputs"][0]["text"] for r in results}
    assert len(pids) == 2


def test_cancel_interrupts_the_running_cell_and_keeps_the_partial_notebook(executor, tmp_path):
    path = _write(tmp_path / "slow.ipynb", "print('started')", "import time\ntime.sleep(60)", "print('never')")
    cancel = CancelToken()
    cells: list[int] = []

    def on_cell(index: int, count: int) -> None:
        cells.append(index)
        if index == 1:
            threading.Timer(0.5, cancel.cancel, kwargs={"reason": "cancelled by the test"}).start()

    started = time.monotonic()
    result = executor.execute(_task(path), on_cell, cancel)
    assert time.monotonic() - started < 20
    assert result.status == "cancelled"
    assert (result.error.ename, result.error.evalue, result.error.cell_index) == (
        "RunCancelled", "cancelled by the test", 1,
    )
    assert result.notebook["cells"][0]["outputs"][0]["text"] == "started\n"
    assert result.notebook["cells"][2]["outputs"] == []


def test_cancelled_before_start_runs_nothing(executor, tmp_path):
    path = _write(tmp_path / "x.ipynb", "print('ran')")
    cancel = CancelToken()
    cancel.cancel("cancelled while queued")
    result = executor.execute(_task(path), None, cancel)
    assert result.status == "cancelled"
    assert result.notebook["cells"][0]["outputs"] == []


def test_a_killed_kernel_fails_the_run_with_its_partial_notebook(executor, tmp_path):
    pid_file = tmp_path / "kernel.pid"
    path = _write(
        tmp_path / "victim.ipynb",
        "print('before')",
        f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(60)",
    )

    def kill_when_running() -> None:
        deadline = time.monotonic() + 30
        while not pid_file.exists() or not pid_file.read_text():
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)
        os.kill(int(pid_file.read_text()), signal.SIGKILL)

    killer = threading.Thread(target=kill_when_running)
    killer.start()
    result = executor.execute(_task(path, cell_timeout=40), None, CancelToken())
    killer.join()
    assert result.status == "failed"
    assert result.error.ename == "DeadKernelError" and result.error.cell_index == 1
    assert "died" in result.error.evalue.lower() or result.error.evalue
    assert result.notebook["cells"][0]["outputs"][0]["text"] == "before\n"


def test_forked_kernels_are_fresh_and_behave_like_started_ones(tmp_path):
    """Kernels forked from the zygote: nothing of another run, subprocesses work, Ctrl-C works."""
    from jupyter_mlx.execute.forked import Zygote

    local = LocalExecutor(concurrency=1, fork=True, preload=("json",))
    try:
        local.prepare(3)
        _wait_warm(local, 1)
        path = _write(
            tmp_path / "fresh.ipynb",
            "import os, subprocess, sys\n"
            "print('leftover' in globals(), subprocess.run(['true']).returncode, 'json' in sys.modules)\n"
            "leftover = 1\n"
            "print(os.getppid() == int(os.environ['JPY_PARENT_PID']))",
        )
        first = local.execute(_task(path), None, CancelToken())
        second = local.execute(_task(path), None, CancelToken())
        for result in (first, second):
            assert result.status == "succeeded", result.error
            assert result.notebook["cells"][0]["outputs"][0]["text"] == "False 0 True\nTrue\n"
        zygotes = [z for z in Zygote._instances.values() if z._process is not None]
        assert zygotes, "the kernels were not forked from a zygote"
    finally:
        local.close()
