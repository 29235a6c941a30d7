"""A local sweep's runs share the cores: each gets cores // runs at once BLAS/OpenMP threads, through
the environment (libraries loaded later) and threadpoolctl (libraries a warm kernel loaded already),
as joblib and Dask do for their workers. A single run and a user's own settings keep theirs."""
from __future__ import annotations

import json

import pytest

from jupyter_mlx.config import MLXConfig
from jupyter_mlx.execute.threads import THREAD_VARIABLES, threads_per_run
from jupyter_mlx.service import RunService
from notebooks import code_cell, write_notebook

REPORT = ("import os, json\nimport numpy\nfrom threadpoolctl import threadpool_info\n"
          "print(json.dumps({'env': {k: os.environ.get(k) for k in %r},\n"
          "                  'blas': sorted({p['num_threads'] for p in threadpool_info() if p['user_api'] == 'blas'})}))"
          % (THREAD_VARIABLES,))


@pytest.mark.parametrize("configured, runs, concurrency, cores, environment, expected", [
    (0, 1, 2, 2, {}, 0),  # a single run: the libraries' defaults
    (0, 32, 2, 2, {}, 1),
    (0, 32, 2, 8, {}, 4),
    (0, 3, 8, 8, {}, 2),  # three at once on eight cores
    (0, 16, 8, 4, {}, 1),  # more runs at once than cores: never below one
    (0, 32, 2, 2, {"OMP_NUM_THREADS": "3"}, 0),  # the user's choice stands
    (-1, 32, 2, 2, {}, 0),  # configured off
    (3, 1, 2, 2, {}, 3),  # configured: every run, a single one too
])
def test_the_share_of_the_cores(configured, runs, concurrency, cores, environment, expected):
    assert threads_per_run(configured, runs, concurrency, cores, environment) == expected


def _reported(service: RunService, run_id: str) -> dict:
    cells = service.executed_notebook(run_id)["cells"]
    text = "".join(o.get("text", "") for o in cells[-1]["outputs"] if o.get("name") == "stdout")
    return json.loads(text)


@pytest.mark.parametrize("warm", [True, False])
def test_a_sweeps_runs_share_the_cores_and_a_single_run_keeps_them(tmp_path, monkeypatch, warm):
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("jupyter_mlx.service.default_concurrency", lambda: 4)  # as on a 4-core machine
    write_notebook(tmp_path / "blas.ipynb", code_cell("n = 0", tags=["parameters"]), code_cell(REPORT))
    service = RunService(tmp_path, config=MLXConfig(concurrency=2, warm_runs=warm))
    try:
        _, swept = service.sweep("blas.ipynb", {"grid": {"n": [1, 2, 3]}})
        single = service.submit("blas.ipynb")
        service.wait([*swept, single])
        swept = [service.get_run(run.id) for run in swept]
        single = service.get_run(single.id)
    finally:
        service.close()
    for run in swept:
        assert run.status == "succeeded", run.error
        assert run.kernel_start["warm"] is warm, run.kernel_start
        assert run.kernel_start["threads"] == 2  # 4 cores, 2 runs at once
        assert _reported(service, run.id) == {"env": dict.fromkeys(THREAD_VARIABLES, "2"), "blas": [2]}
    assert single.status == "succeeded", single.error
    assert single.kernel_start["threads"] == 0
    assert _reported(service, single.id)["env"] == dict.fromkeys(THREAD_VARIABLES)


def test_show_says_a_run_shared_the_cores():
    from jupyter_mlx.formatting import _kernel_lines

    start = {"warm": True, "modules": ["numpy"], "left_out": {}, "cold": None, "waited": 0.01, "threads": 1}
    assert _kernel_lines(start, "local") == [
        "kernel     started warm (numpy) after 0.01 s (1 BLAS/OpenMP thread: the sweep's runs shared the cores)"]
