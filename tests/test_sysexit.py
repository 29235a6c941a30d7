"""``sys.exit`` in a notebook means what it means to papermill, on a real kernel.

papermill takes ``sys.exit()``, ``sys.exit(0)`` and ``raise SystemExit`` as the notebook ending
early and successfully (the cells after it do not run) and ``sys.exit(1)`` as a failure. Each
notebook of its test suite is run here by papermill itself and by jupyter_mlx, and the two must
agree on the outcome, the cells that ran, their outputs and papermill's cell metadata.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from jupyter_mlx.service import RunService

from notebooks import SYSTEM_EXITS, code_cell, write_notebook, write_system_exit


def _papermill(path: Path, output: Path) -> tuple[bool, dict[str, Any]]:
    """Whether papermill's ``execute_notebook`` succeeds, and the notebook it wrote."""
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    try:
        papermill.execute_notebook(str(path), str(output), kernel_name="python3", progress_bar=False)
        succeeded = True
    except PapermillExecutionError:
        succeeded = False
    return succeeded, nbformat.read(str(output), as_version=4)


def _what_ran(nb: dict[str, Any]) -> list[tuple[bool, list[tuple[Any, ...]], str]]:
    """Per code cell: whether it ran, its outputs (kind, text or error) and papermill's status."""
    return [
        (
            cell["execution_count"] is not None,
            [
                (o["output_type"], o.get("ename"), o.get("evalue"), "".join(o.get("text", "")))
                for o in cell["outputs"]
            ],
            cell["metadata"]["papermill"]["status"],
        )
        for cell in nb["cells"]
        if cell["cell_type"] == "code"  # papermill adds markdown error markers to a failed notebook
    ]


@pytest.mark.parametrize("name", list(SYSTEM_EXITS))
def test_an_early_exit_ends_the_run_as_papermill_ends_it(tmp_path, name):
    exit_line, papermill_succeeds = SYSTEM_EXITS[name]
    root = tmp_path / "project"
    path = write_system_exit(root / f"{name}.ipynb", exit_line)

    succeeded, reference = _papermill(path, tmp_path / "papermill-output.ipynb")
    assert succeeded is papermill_succeeds  # papermill still behaves as its own tests say

    service = RunService(root)
    try:
        run = service.run(f"{name}.ipynb")
        executed = service.executed_notebook(run.ref)
    finally:
        service.close()
    assert run.status == ("succeeded" if succeeded else "failed"), run.error
    assert _what_ran(executed) == _what_ran(reference)
    assert _what_ran(executed)[2] == (False, [], "pending")  # the cell after the exit did not run
    if succeeded:
        assert run.error is None and run.finished_at is not None
    else:
        assert (run.error.ename, run.error.evalue, run.error.cell_index) == ("SystemExit", "1", 1)


def test_a_sweep_on_the_local_backend_ends_each_run_as_papermill_would(tmp_path):
    root = tmp_path / "project"
    write_notebook(
        root / "exits.ipynb",
        code_cell("exit_line = 'sys.exit()'", tags=["parameters"]),
        code_cell("import sys\nexec(exit_line)"),
        code_cell("print('after the exit')"),
    )
    service = RunService(root)
    try:
        sweep, runs = service.sweep(
            "exits.ipynb", {"list": [{"exit_line": line} for line, _ in SYSTEM_EXITS.values()]}, backend="local"
        )
        final = service.wait(runs, timeout=180)
        by_line = {run.parameters["exit_line"]: run for run in final}
        for line, succeeds in SYSTEM_EXITS.values():
            run = by_line[line]
            assert run.status == ("succeeded" if succeeds else "failed"), (line, run.error)
            cells = service.executed_notebook(run.id)["cells"]
            assert cells[3]["execution_count"] is None and cells[3]["outputs"] == []  # 1: the parameters
        assert service.get_sweep(sweep.id).status == "failed"  # sys.exit(1) failed
    finally:
        service.close()
