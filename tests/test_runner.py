"""The papermill runner on real tiny notebooks and a real ipykernel."""
from __future__ import annotations

import json
from pathlib import Path

from jupyter_mlx.execute.runner import RunTask, execute_run
from jupyter_mlx.metrics import read_metrics

from notebooks import code_cell, notebook, write_failing, write_tiny


def _task(path: Path, **kwargs) -> RunTask:
    return RunTask(notebook=path.name, source=path.read_bytes(), cwd=path.parent, **{"parameters": {}, **kwargs})


def test_success_injects_parameters_and_keeps_outputs_metrics_and_timings(tmp_path):
    path = write_tiny(tmp_path / "tiny.ipynb")
    progress = []
    result = execute_run(_task(path, parameters={"x": 3}), on_cell=lambda i, n: progress.append((i, n)))
    assert result.error is None and result.status == "succeeded"
    cells = result.notebook["cells"]
    assert "injected-parameters" in cells[1]["metadata"]["tags"]
    assert cells[2]["outputs"][-1]["text"] == "hello a 3\n"
    assert {m.name: m.value for m in read_metrics(result.notebook)} == {"score": 6.0, "loss": 0.25}
    assert [t.cell_index for t in result.cell_timings] == [0, 1, 2]
    assert all(t.duration is not None and t.duration >= 0 for t in result.cell_timings)
    assert progress == [(0, 3), (1, 3), (2, 3)]
    assert result.kernel_name == "python3"


def test_kernel_runs_in_the_notebooks_folder(tmp_path):
    (tmp_path / "data.txt").write_text("42")
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(notebook(code_cell("print(open('data.txt').read())"))))
    result = execute_run(_task(path))
    assert result.status == "succeeded"
    assert result.notebook["cells"][0]["outputs"][0]["text"] == "42\n"


def test_failing_cell_is_data_with_the_partial_notebook(tmp_path):
    path = write_failing(tmp_path / "failing.ipynb")
    result = execute_run(_task(path, parameters={"n": 5}))
    assert result.status == "failed"
    assert (result.error.cell_index, result.error.ename, result.error.evalue) == (3, "ValueError", "bad n=5")
    assert result.error.traceback
    cells = result.notebook["cells"]
    assert cells[2]["outputs"][0]["text"] == "before\n"
    assert cells[4]["outputs"] == []  # never executed


def test_cell_timeout_fails_the_run_at_that_cell(tmp_path):
    path = tmp_path / "slow.ipynb"
    path.write_text(json.dumps(notebook(code_cell("a = 1"), code_cell("import time; time.sleep(30)"))))
    result = execute_run(_task(path, cell_timeout=1))
    assert result.status == "failed"
    assert (result.error.ename, result.error.cell_index) == ("CellTimeoutError", 1)
    assert result.finished_at - result.started_at < 20


def test_run_timeout_interrupts_the_run(tmp_path):
    path = tmp_path / "slow.ipynb"
    path.write_text(json.dumps(notebook(code_cell("import time"), code_cell("x = 1"), code_cell("time.sleep(60)"))))
    # the clock starts with the kernel: the two quick cells must finish in time on a loaded machine too
    result = execute_run(_task(path, run_timeout=5))
    assert result.status == "failed"
    assert (result.error.ename, result.error.cell_index) == ("RunTimeoutError", 2)
    assert result.notebook["cells"][1]["metadata"]["papermill"]["status"] == "completed"
    assert result.finished_at - result.started_at < 20


def test_unknown_kernel_is_a_failed_run_not_a_crash(tmp_path):
    path = write_tiny(tmp_path / "tiny.ipynb")
    result = execute_run(_task(path, kernel_name="no-such-kernel"))
    assert result.status == "failed"
    assert result.error.ename == "NoSuchKernel" and result.error.cell_index is None


def test_a_kernel_killed_mid_cell_leaves_the_cause_in_that_cell_and_papermill_says_failed(tmp_path):
    import os
    import signal
    import threading
    import time

    path = tmp_path / "victim.ipynb"
    path.write_text(json.dumps(notebook(
        code_cell("print('before')"),
        code_cell("import os, time\nopen('kernel.pid', 'w').write(str(os.getpid()))\ntime.sleep(60)"),
        code_cell("print('never')"),
    )))
    pid_file = tmp_path / "kernel.pid"

    def kill_the_kernel() -> None:  # kill -9 from outside, as the OOM killer or a user would
        deadline = time.monotonic() + 60
        while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(int(pid_file.read_text()), signal.SIGKILL)

    killer = threading.Thread(target=kill_the_kernel)
    killer.start()
    result = execute_run(_task(path))
    killer.join(5)
    assert result.status == "failed"
    assert (result.error.ename, result.error.cell_index) == ("DeadKernelError", 1)
    assert "the kernel died" in result.error.evalue
    cells = result.notebook["cells"]
    (error,) = [o for o in cells[1]["outputs"] if o["output_type"] == "error"]
    assert (error["ename"], error["evalue"]) == ("DeadKernelError", result.error.evalue)
    assert [c["metadata"]["papermill"]["status"] for c in cells] == ["completed", "failed", "pending"]
    assert cells[1]["metadata"]["papermill"]["exception"] is True
    assert result.notebook["metadata"]["papermill"]["exception"] is True
    assert cells[2]["outputs"] == [] and cells[2]["execution_count"] is None
