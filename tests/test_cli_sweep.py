"""``jupyter mlx sweep / sweeps / cancel / requeue``: in-process, and across processes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from jupyter_mlx.cli import main
from jupyter_mlx.service import RunService

from notebooks import code_cell, write_notebook, write_tiny
from server_process import wait_for


@pytest.fixture
def project(tmp_path, monkeypatch):
    root = tmp_path / "project"
    write_tiny(root / "tiny.ipynb")
    write_notebook(
        root / "slow.ipynb",
        code_cell("seconds = 60.0", tags=["parameters"]),
        code_cell("print('started', flush=True)"),
        code_cell("import os, time\nwhile os.path.exists('gate') and seconds > 0:\n    time.sleep(0.1); seconds -= 0.1"),
    )
    monkeypatch.chdir(root)
    return root


def cli(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_sweep_runs_the_grid_in_parallel_under_one_sweep_id(project, capsys):
    status, out, err = cli(capsys, "sweep", "tiny.ipynb", "-p", "x", "1,2,3", "-p", "label", "a,b")
    assert status == 0, err
    assert "6 runs of tiny.ipynb on local (2 at a time)" in err or "6 runs of tiny.ipynb on local" in err
    lines = out.splitlines()
    assert len([line for line in lines if line.startswith("tiny.ipynb v") and " succeeded in " in line]) == 6
    assert any("x=3 label=b  ->  score=6" in line for line in lines)
    assert lines[-1].startswith("6 runs: 6 succeeded in ")
    sweep_id = lines[-1].rsplit("sweep ", 1)[1].rstrip(")")

    status, out, _ = cli(capsys, "sweeps", "--json")
    (sweep,) = json.loads(out)
    assert sweep["id"] == sweep_id and sweep["size"] == 6 and sweep["counts"] == {"succeeded": 6}
    status, out, _ = cli(capsys, "sweeps")
    assert sweep_id in out and "6 succeeded" in out
    status, out, _ = cli(capsys, "runs", "tiny.ipynb", "--json")
    runs = json.loads(out)["runs"]
    assert sorted(r["version"] for r in runs) == [1, 2, 3, 4, 5, 6]
    assert {r["sweep_id"] for r in runs} == {sweep_id}
    assert sorted((r["parameters"]["x"], r["parameters"]["label"]) for r in runs) == [
        (x, label) for x in (1, 2, 3) for label in ("a", "b")
    ]


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_sweep_takes_an_explicit_list_of_parameter_sets(project, capsys, suffix):
    sets = [{"x": 4}, {"x": 5, "label": "z"}]
    path = project / f"sets{suffix}"
    path.write_text(json.dumps(sets) if suffix == ".json" else "- x: 4\n- x: 5\n  label: z\n")
    status, out, err = cli(capsys, "sweep", "tiny.ipynb", "--params-file", str(path), "--json")
    assert status == 0, err
    body = json.loads(out)
    assert [r["parameters"] for r in body["runs"]] == [{"x": 4, "label": "a"}, {"x": 5, "label": "z"}]
    assert [r["overridden"] for r in body["runs"]] == [["x"], ["x", "label"]]
    assert body["sweep"]["spec"] == {"list": sets} and body["sweep"]["status"] == "succeeded"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["sweep", "tiny.ipynb"], "the sweep grid is empty"),
        (["sweep", "tiny.ipynb", "-p", "x", "1,,2"], "malformed sweep values '1,,2'"),
        (["sweep", "tiny.ipynb", "-p", "x", ""], "malformed sweep values"),
        (["sweep", "tiny.ipynb", "-p", "x", "1", "-p", "x", "2"], "parameter x is given twice"),
        (["sweep", "tiny.ipynb", "-p", "x", "1,two"], "two"),
        (["sweep", "tiny.ipynb", "-p", "nope", "1,2"], "nope"),
        (["sweep", "tiny.ipynb", "-p", "x", ",".join(map(str, range(101))), "-p", "label", ",".join("l" + str(i) for i in range(100))], "10,100 runs"),
        (["sweep", "tiny.ipynb", "--params-file", "missing.json"], "cannot read missing.json"),
        (["sweep", "tiny.ipynb", "--params-file", "bad.json"], "bad.json is not valid JSON"),
        (["sweep", "tiny.ipynb", "--params-file", "dict.json"], "must hold a list of parameter sets"),
        (["sweep", "tiny.ipynb", "-p", "x", "1", "--params-file", "dict.json"], "not both"),
        (["sweep", "tiny.ipynb", "-p", "x", "1", "--backend", "gateway"], "needs a URL"),
        (["sweep", "tiny.ipynb", "-p", "x", "1", "--backend", "dask"], "scheduler address"),
        (["sweep", "tiny.ipynb", "-p", "x", "1", "--concurrency", "0"], "--concurrency must be 1 or more"),
        (["cancel", "tiny.ipynb@v9"], "tiny.ipynb has no run v9"),
        (["cancel", "0" * 32], "no run or sweep with id"),
        (["requeue", "0" * 32], "no run or sweep with id"),
    ],
)
def test_bad_sweep_input_is_one_readable_line_and_records_nothing(project, capsys, argv, message):
    (project / "bad.json").write_text("[{")
    (project / "dict.json").write_text('{"x": 1}')
    RunService(project).run("tiny.ipynb")  # so that tiny.ipynb is a known notebook
    status, out, err = cli(capsys, *argv)
    assert status == 2, (out, err)
    assert err.count("\n") == 1 and message in err, err
    status, out, _ = cli(capsys, "runs", "--json")
    assert json.loads(out)["total"] == 1
    status, out, _ = cli(capsys, "sweeps", "--json")
    assert json.loads(out) == []


def _command(*argv: str) -> list[str]:
    return [sys.executable, "-m", "jupyter_mlx.cli", *argv]


@pytest.fixture
def slow_sweep(project):
    """``jupyter mlx sweep`` of 3 runs that wait on a gate, in another process, 2 of them running."""
    (project / "gate").write_text("closed")
    sweeper = subprocess.Popen(
        _command("sweep", "slow.ipynb", "-p", "seconds", "60,61,62"),
        cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        # as from a terminal: Ctrl-C handled, even when these tests run in a background job (which ignores it)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    service = RunService(project)
    try:
        wait_for(lambda: service.list_runs(status="running").total == 2, what="two running runs")
        yield sweeper, service
    finally:
        if sweeper.poll() is None:
            os.killpg(sweeper.pid, signal.SIGKILL)  # the process and its kernels
            sweeper.wait(10)
        service.close()


def test_cancel_from_another_process_stops_a_running_sweep_and_requeue_finishes_it(project, slow_sweep):
    sweeper, service = slow_sweep
    sweep_id = service.list_sweeps()[0].id
    started = time.monotonic()
    cancel = subprocess.run(_command("cancel", sweep_id), cwd=project, capture_output=True, text=True, timeout=90)
    assert cancel.returncode == 0, cancel.stderr
    assert cancel.stdout.count(" cancelled") == 3, cancel.stdout
    out, err = sweeper.communicate(timeout=60)
    assert time.monotonic() - started < 45
    assert sweeper.returncode == 1  # not all succeeded
    assert out.splitlines()[-1].startswith("3 runs: 3 cancelled")
    runs = service.sweep_runs(sweep_id)
    assert [r.status for r in runs] == ["cancelled"] * 3
    assert [r.error.ename for r in runs] == ["RunCancelled"] * 3

    (project / "gate").unlink()
    again = subprocess.run(_command("requeue", sweep_id), cwd=project, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "re-queued 3 run(s)" in again.stderr
    runs = service.sweep_runs(sweep_id)
    assert [(r.version, r.status) for r in runs] == [
        (1, "cancelled"), (2, "cancelled"), (3, "cancelled"), (4, "succeeded"), (5, "succeeded"), (6, "succeeded"),
    ]
    assert [r.parent_id for r in runs[3:]] == [r.id for r in runs[:3]]


def test_ctrl_c_cancels_the_sweep_and_records_every_run(slow_sweep):
    sweeper, service = slow_sweep
    sweeper.send_signal(signal.SIGINT)
    out, err = sweeper.communicate(timeout=60)
    assert sweeper.returncode == 130, err
    assert "cancelling the runs still open" in err
    statuses = sorted(r.status for r in service.list_runs().runs)
    assert statuses == ["cancelled"] * 3


def test_a_killed_sweep_process_leaves_no_run_stuck(slow_sweep):
    sweeper, service = slow_sweep
    os.killpg(sweeper.pid, signal.SIGKILL)  # the process and its kernels
    sweeper.wait(10)
    assert service.interrupt_orphans()  # what any next command or server start does
    assert sorted(r.status for r in service.list_runs().runs) == ["interrupted"] * 3


def test_a_kernel_killed_mid_sweep_fails_only_its_run(project, capsys):
    write_notebook(
        project / "fragile.ipynb",
        code_cell("die = 0", tags=["parameters"]),
        code_cell("print('before', flush=True)"),
        code_cell("import os, signal, time\nif die:\n    os.kill(os.getpid(), signal.SIGKILL)\ntime.sleep(0.2)"),
        code_cell("print('after')"),
    )
    status, out, err = cli(capsys, "sweep", "fragile.ipynb", "-p", "die", "0,1,0", "--cell-timeout", "60")
    assert status == 1, err
    runs = {r.version: r for r in RunService(project).list_runs().runs}
    assert [runs[v].status for v in (1, 2, 3)] == ["succeeded", "failed", "succeeded"]
    dead = runs[2]
    assert dead.error.ename == "DeadKernelError" and dead.error.cell_index == 3  # cell 1 is the injected parameters
    notebook = RunService(project).executed_notebook(dead.id)
    assert notebook["cells"][2]["outputs"][0]["text"] == "before\n"
    assert notebook["cells"][4]["outputs"] == []
    assert "1 failed" in out.splitlines()[-1] and "2 succeeded" in out.splitlines()[-1]
