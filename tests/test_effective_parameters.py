"""Every run records every parameter's effective value (issue 13, item 9), seen through every door:
the store and service, papermill's injection, the CLI, the comparison, requeue and a served run."""
from __future__ import annotations

import json
import time

import pytest

from jupyter_mlx.cli import main
from jupyter_mlx.service import RunService
from jupyter_mlx.store import RunError, RunOutcome

from notebooks import code_cell, write_notebook


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """train.ipynb, whose ``scale`` default is an expression: v1 sets max_iter=200, v2 runs the defaults."""
    root = tmp_path_factory.mktemp("effective")
    write_notebook(
        root / "train.ipynb",
        code_cell("import math"),
        code_cell("C = 1.0\nmax_iter = 100  # iterations\nscale = math.pi  # an expression", tags=["parameters"]),
        code_cell("from jupyter_mlx import log_metric\nlog_metric('score', C * max_iter)\n"
                  "print('scale', round(scale, 3), type(scale).__name__)"),
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        assert main(["run", "train.ipynb", "-p", "max_iter", "200"]) == 0
        assert main(["run", "train.ipynb"]) == 0
    return root


@pytest.fixture
def service(project):
    service = RunService(project)
    yield service
    service.close()


def cli(project, monkeypatch, capsys, *argv):
    monkeypatch.chdir(project)
    status = main(list(argv))
    return status, capsys.readouterr().out


def _injected(notebook: dict) -> list[str]:
    return ["".join(c["source"]) for c in notebook["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]


def test_a_run_records_every_parameter_and_papermill_injects_only_the_ones_set(service):
    v1, v2 = service.get_run("train.ipynb@v1"), service.get_run("train.ipynb@v2")
    assert v1.parameters == {"C": 1.0, "max_iter": 200, "scale": "math.pi"}
    assert v1.overridden == ["max_iter"] and v1.expressions == ["scale"]
    assert v2.parameters == {"C": 1.0, "max_iter": 100, "scale": "math.pi"} and v2.overridden == []
    assert v1.metrics["score"] == 200 and v2.metrics["score"] == 100
    executed = service.executed_notebook("train.ipynb@v1")
    assert _injected(executed) == ["# Parameters\nmax_iter = 200\n"]  # never a default, never the text
    assert _injected(service.executed_notebook("train.ipynb@v2")) == []
    assert executed["cells"][-1]["outputs"][-1]["text"] == "scale 3.142 float\n"  # evaluated by the kernel


def test_the_cli_shows_every_value_and_what_was_set(project, monkeypatch, capsys):
    status, out = cli(project, monkeypatch, capsys, "runs", "train.ipynb")
    v2 = next(line for line in out.splitlines() if line.startswith("v2 "))
    assert status == 0 and "C=1 max_iter=100 scale=math.pi" in v2
    _, out = cli(project, monkeypatch, capsys, "show", "train.ipynb@v2")
    assert "parameters C=1 max_iter=100 scale=math.pi  (all defaults; expression: scale)" in out
    _, out = cli(project, monkeypatch, capsys, "show", "train.ipynb@v1")
    assert "parameters C=1 max_iter=200 scale=math.pi  (set: max_iter; expression: scale)" in out
    # a run that used the default matches a filter on it, and sorts by it
    _, out = cli(project, monkeypatch, capsys, "runs", "train.ipynb", "--filter", "max_iter=100", "--json")
    assert [run["ref"] for run in json.loads(out)["runs"]] == ["train.ipynb@v2"]
    _, out = cli(project, monkeypatch, capsys, "runs", "train.ipynb", "--sort", "params.max_iter", "--json")
    assert [run["ref"] for run in json.loads(out)["runs"]][:2] == ["train.ipynb@v1", "train.ipynb@v2"]


def test_a_default_against_an_override_is_a_change_not_a_removal(project, monkeypatch, capsys):
    status, out = cli(project, monkeypatch, capsys, "diff", "train.ipynb@v1", "train.ipynb@v2")
    assert status == 0 and "  max_iter  200 -> 100 (default)" in out and "(removed)" not in out
    _, out = cli(project, monkeypatch, capsys, "diff", "train.ipynb@v1", "train.ipynb@v2", "--json")
    rows = {row["name"]: row for row in json.loads(out)["parameters"]}
    assert rows["max_iter"] == {"name": "max_iter", "a": 200, "b": 100, "status": "changed",
                                "origin_a": "override", "origin_b": "default"}
    assert rows["scale"]["status"] == "same" and rows["scale"]["origin_a"] == "expression"
    cli(project, monkeypatch, capsys, "diff", "train.ipynb@v1", "train.ipynb@v2", "--html", "report.html")
    report = (project / "report.html").read_text()
    assert '<td class="val">100 <span class="muted small">default</span></td>' in report
    assert cli(project, monkeypatch, capsys, "baseline", "train.ipynb@v1")[0] == 0
    status, out = cli(project, monkeypatch, capsys, "check", "train.ipynb@v2")
    assert "parameters:\n  max_iter  200 -> 100 (default)\n" in out
    # a notebook file: papermill's parameters are the overrides, its parameters cell the defaults
    assert cli(project, monkeypatch, capsys, "open", "train.ipynb@v1", "-o", "v1.ipynb", "--force")[0] == 0
    _, out = cli(project, monkeypatch, capsys, "diff", "v1.ipynb", "train.ipynb", "--json")
    rows = {row["name"]: row for row in json.loads(out)["parameters"]}
    assert (rows["max_iter"]["a"], rows["max_iter"]["b"], rows["max_iter"]["origin_b"]) == (200, 100, "default")


def test_requeue_runs_again_with_the_same_effective_values(service):
    prepared = service.prepare("train.ipynb", {"C": "2"})
    service.store.finish_run(prepared.record.id, RunOutcome(
        "interrupted", None, None, time.time(), error=RunError("KeyboardInterrupt", "killed")))
    [again] = service.wait(service.requeue(prepared.record.ref), timeout=120)
    assert again.status == "succeeded" and again.parent_id == prepared.record.id
    assert again.parameters == {"C": 2.0, "max_iter": 100, "scale": "math.pi"} == prepared.record.parameters
    assert again.overridden == ["C"] and again.expressions == ["scale"]
    assert _injected(service.executed_notebook(again.ref)) == ["# Parameters\nC = 2.0\n"]


def test_a_served_run_assigns_only_the_parameters_it_set(service):
    cells = service.served_code("train.ipynb@v1").cells
    assert cells[1:3] == ["C = 1.0\nmax_iter = 100  # iterations\nscale = math.pi  # an expression",
                          "max_iter = 200"]
    assert not any("'math.pi'" in cell for cell in cells)
    assert len(service.served_code("train.ipynb@v2").cells) == 3  # the defaults are the notebook's own code
