"""Issue 16, item 2: `jupyter mlx run` and `sweep` submit through the Jupyter server that serves
the project (its queue and warm kernels) when one runs; `--local` and `--server` force a door.
A real `jupyter server` with jupyter_mlx, the CLI as the user runs it, on 127.0.0.1."""
from __future__ import annotations

import getpass
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_mlx.service import RunService
from notebooks import code_cell, write_notebook
from server_process import Server

NOTEBOOK = [
    code_cell("x = 1", tags=["parameters"]),
    code_cell("import numpy as np\nprint('total', int(np.arange(x + 1).sum()))"),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("door") / "project"
    write_notebook(root / "count.ipynb", *NOTEBOOK)
    home = tmp_path_factory.mktemp("door-home")
    server = Server(root, home)
    try:
        yield root, home, server
    finally:
        server.stop()


def cli(root: Path, home: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(home / "runtime")}  # where the server announced itself
    env.pop("JUPYTER_MLX_TRANSPORT", None)
    return subprocess.run([sys.executable, "-m", "jupyter_mlx.cli", *argv], cwd=root, env=env,
                          capture_output=True, text=True, timeout=180)


def test_run_goes_through_the_server_and_its_warm_kernels(served):
    root, home, server = served
    url = f"http://127.0.0.1:{server.port}/"
    first = cli(root, home, "run", "count.ipynb", "-p", "x", "3")
    assert first.returncode == 0, first.stderr
    assert first.stderr.strip() == f"count.ipynb@v1 queued via the Jupyter server at {url}"
    assert first.stdout.startswith("count.ipynb v1 succeeded in ")
    second = cli(root, home, "run", "count.ipynb", "-p", "x", "4", "--json")
    assert second.returncode == 0, second.stderr
    service = RunService(root)
    try:
        for ref in ("count.ipynb@v1", "count.ipynb@v2"):
            run = service.get_run(ref)
            assert run.pid == server.process.pid  # executed by the server, not by the command
            # the request's identity behind the server's bare token is anonymous: the server's own user
            assert run.user == getpass.getuser(), run.user
        warm = service.get_run("count.ipynb@v2")
        assert warm.kernel_start["warm"] is True and warm.kernel_start["modules"][0] == "numpy", warm.kernel_start
        printed = service.executed_notebook(warm.id)["cells"][-1]["outputs"][0]["text"]
        assert printed == "total 10\n"
    finally:
        service.close()


def test_local_forces_this_process_and_server_options_it_cannot_take_are_refused(served):
    root, home, server = served
    local = cli(root, home, "run", "count.ipynb", "--local")
    assert local.returncode == 0, local.stderr
    assert "via the Jupyter server" not in local.stderr
    refused = cli(root, home, "run", "count.ipynb", "--server", "--keep-folder")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1].endswith(
        "--keep-folder cannot go through a Jupyter server: drop it, or --local")
    service = RunService(root)
    try:
        runs = service.list_runs("count.ipynb", limit=50).runs
        assert len(runs) == 2 + 1 and runs[0].pid != server.process.pid  # the local one; the refused one recorded nothing
        assert runs[0].user == getpass.getuser()  # in this process: the OS user
        assert runs[0].kernel_start["cold"] == "not forked from a zygote (a kernel started for this run alone)"
    finally:
        service.close()


def test_sweep_goes_through_the_server(served):
    root, home, server = served
    swept = cli(root, home, "sweep", "count.ipynb", "-p", "x", "1,2")
    assert swept.returncode == 0, swept.stderr
    assert "runs of count.ipynb on local via the Jupyter server at http://127.0.0.1:" in swept.stderr
    lines = swept.stdout.strip().splitlines()
    assert len(lines) == 3 and lines[-1].startswith("2 runs: 2 succeeded in ")


def test_server_without_one_is_a_clear_error(tmp_path):
    root = tmp_path / "alone"
    write_notebook(root / "count.ipynb", *NOTEBOOK)
    done = cli(root, tmp_path / "no-server-home", "run", "count.ipynb", "--server")
    assert done.returncode == 2
    assert done.stderr.strip() == (f"jupyter mlx run: error: no running Jupyter server with jupyter_mlx serves "
                                   f"{root.resolve()}: start one (jupyter lab), or drop --server")
