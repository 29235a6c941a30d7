"""The ``jupyter mlx`` CLI, in-process through ``main`` and once through the real command."""
from __future__ import annotations

import getpass
import json
import os
import shutil
import subprocess
import sys

import pytest

from jupyter_mlx.cli import main
from jupyter_mlx.formatting import _seconds, format_details

from notebooks import write_failing, write_tiny


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A project with tiny.ipynb v1 (x=3) and v2 (x=4), and a failed run of nb/failing.ipynb."""
    root = tmp_path_factory.mktemp("cli")
    write_tiny(root / "tiny.ipynb")
    write_failing(root / "nb" / "failing.ipynb")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        assert main(["run", "tiny.ipynb", "-p", "x", "3", "-p", "label", "first"]) == 0
        assert main(["run", "tiny.ipynb", "-p", "x", "4", "--tag", "best"]) == 0
        assert main(["run", "nb/failing.ipynb", "-p", "n", "7"]) == 1
    return root


def run_cli(project, monkeypatch, capsys, *argv):
    monkeypatch.chdir(project)
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_run_prints_one_line_and_the_failed_run_its_error(project, monkeypatch, capsys):
    status, out, err = run_cli(project, monkeypatch, capsys, "run", "tiny.ipynb", "-p", "x", "5", "--json")
    assert status == 0
    run = json.loads(out)
    assert run["ref"] == "tiny.ipynb@v3" and run["metrics"]["score"] == 10.0
    # every parameter's value (label kept its default), and which ones the run set
    assert run["parameters"] == {"x": 5, "label": "a"} and run["overridden"] == ["x"] and run["expressions"] == []
    status, out, err = run_cli(project, monkeypatch, capsys, "show", "failing.ipynb@v1")
    assert status == 0
    assert "status     failed" in out and "ValueError in cell 4: bad n=7"  # cells count from 1, as in JupyterLab in out


def test_runs_lists_versions_newest_first(project, monkeypatch, capsys):
    status, out, _ = run_cli(project, monkeypatch, capsys, "runs", "tiny.ipynb")
    lines = out.splitlines()
    assert status == 0 and lines[0].split() == ["VERSION", "STATUS", "STARTED", "DURATION", "USER", "PARAMS", "METRICS"]
    v1 = next(line for line in lines if line.startswith("v1 "))
    assert "succeeded" in v1 and "x=3 label=first" in v1 and "score=6" in v1
    assert v1.split()[5] == getpass.getuser()  # who ran it: the OS user, from the CLI
    status, out, _ = run_cli(project, monkeypatch, capsys, "runs", "--json", "--status", "failed")
    page = json.loads(out)
    assert page["total"] == 1 and page["runs"][0]["ref"] == "nb/failing.ipynb@v1"
    status, out, _ = run_cli(project, monkeypatch, capsys, "runs", "--limit", "1")
    assert out.count("@v") == 1 and "of 3 runs" in out or "of 4 runs" in out


def test_show_has_the_full_record(project, monkeypatch, capsys):
    status, out, _ = run_cli(project, monkeypatch, capsys, "show", "tiny.ipynb@v2", "--json")
    record = json.loads(out)
    assert record["tags"] == ["best"] and record["environment"]["kernel"] == "python3"
    assert record["cell_timings"] and record["metric_history"][0] == {"name": "score", "value": 8.0, "step": None}
    started = record["kernel_start"]  # run here, on a kernel of its own
    assert started["warm"] is False and started["modules"] == [] and started["waited"] > 0
    assert started["cold"] == "not forked from a zygote (a kernel started for this run alone)"
    status, out, _ = run_cli(project, monkeypatch, capsys, "show", record["id"])
    assert "run        tiny.ipynb@v2" in out and "series     loss: 2 values" in out
    assert f"kernel     started cold after {_seconds(started['waited'])}: {started['cold']}\n" in out
    # from a subfolder, the project root is found by its .mlx folder
    status, out, _ = run_cli(project / "nb", monkeypatch, capsys, "show", "tiny.ipynb@v1")
    assert status == 0 and "x=3" in out


def test_cli_runs_record_the_os_user_or_c_mlxconfig_user(tmp_path, monkeypatch, capsys):
    write_tiny(tmp_path / "tiny.ipynb")
    monkeypatch.setenv("LOGNAME", "alice")  # getpass's first choice, as a login shell sets it
    status, out, _ = run_cli(tmp_path, monkeypatch, capsys, "run", "tiny.ipynb", "--json")
    assert status == 0 and json.loads(out)["user"] == "alice"
    (tmp_path / "jupyter_mlx_config.json").write_text(json.dumps({"MLXConfig": {"user": "ci-bot"}}))
    status, out, _ = run_cli(tmp_path, monkeypatch, capsys, "run", "tiny.ipynb", "-p", "x", "2", "--json")
    assert status == 0 and json.loads(out)["user"] == "ci-bot"
    status, out, _ = run_cli(tmp_path, monkeypatch, capsys, "runs", "--filter", "user=alice", "--json")
    assert [run["ref"] for run in json.loads(out)["runs"]] == ["tiny.ipynb@v1"]
    status, out, _ = run_cli(tmp_path, monkeypatch, capsys, "show", "tiny.ipynb@v2")
    assert "\ntags       -\nuser       ci-bot\nqueued     " in out
    status, out, _ = run_cli(tmp_path, monkeypatch, capsys, "runs")
    assert [line.split()[5] for line in out.splitlines()[1:3]] == ["ci-bot", "alice"]


def test_without_a_login_name_the_os_user_is_the_uid(tmp_path, monkeypatch):
    from jupyter_mlx.service import RunService, os_user

    def no_name() -> str:
        raise OSError("No username set in the environment")  # as getpass says it (3.13), KeyError before

    monkeypatch.setattr(getpass, "getuser", no_name)
    assert os_user() == str(os.getuid())
    assert RunService(tmp_path).default_user == str(os.getuid())
    monkeypatch.setattr(getpass, "getuser", lambda: "bob")
    assert RunService(tmp_path).default_user == "bob"


def test_a_run_recorded_before_users_were_shows_a_dash(project, monkeypatch, capsys):
    details = json.loads(run_cli(project, monkeypatch, capsys, "show", "tiny.ipynb@v1", "--json")[1])
    assert details["user"] == getpass.getuser()
    assert "\nuser       -\n" in format_details({**details, "user": None})


def test_show_says_how_the_kernel_started(project, monkeypatch, capsys):
    details = json.loads(run_cli(project, monkeypatch, capsys, "show", "tiny.ipynb@v1", "--json")[1])
    warm = {"warm": True, "modules": ["numpy", "pandas", "sklearn.linear_model"], "cold": None, "waited": 0.017,
            "left_out": {"tqdm.auto": "it adapts to the notebook frontend at import"}}
    lines = format_details({**details, "kernel_start": warm}).splitlines()
    at = lines.index("kernel     started warm (numpy, pandas, sklearn.linear_model) after 0.02 s")
    assert lines[at - 1].startswith("source     ") and lines[at + 1] == \
        "           not preloaded: tqdm.auto: it adapts to the notebook frontend at import"
    cold = {"warm": False, "modules": [], "left_out": {}, "cold": "fork failed", "waited": 1.3}
    assert "kernel     started cold after 1.3 s: fork failed" in format_details({**details, "kernel_start": cold})
    remote = {"warm": False, "modules": [], "left_out": {}, "cold": None, "waited": 12.4}
    assert "kernel     started on the gateway after 12 s" in format_details(
        {**details, "backend": "gateway", "kernel_start": remote})
    assert "\nkernel " not in format_details({**details, "kernel_start": None})  # a run with no kernel, or older


def test_open_writes_the_executed_notebook(project, monkeypatch, capsys):
    status, out, _ = run_cli(project, monkeypatch, capsys, "open", "tiny.ipynb@v1", "-o", "v1.ipynb")
    assert status == 0 and "wrote tiny.ipynb@v1" in out
    executed = json.loads((project / "v1.ipynb").read_text())
    assert executed["cells"][2]["outputs"][-1]["text"] == "hello first 3\n"
    status, _, err = run_cli(project, monkeypatch, capsys, "open", "tiny.ipynb@v1", "-o", "v1.ipynb")
    assert status == 2 and "exists; use --force" in err
    status, out, _ = run_cli(project, monkeypatch, capsys, "open", "tiny.ipynb@v1", "--source", "-o", "-")
    assert json.loads(out) == json.loads((project / "tiny.ipynb").read_text())


def test_rm_deletes_runs_and_keeps_versions_unique(project, monkeypatch, capsys):
    status, out, _ = run_cli(project, monkeypatch, capsys, "run", "tiny.ipynb", "--json")
    doomed = json.loads(out)["ref"]
    status, out, _ = run_cli(project, monkeypatch, capsys, "rm", doomed)
    assert status == 0 and out.strip() == f"deleted {doomed}"
    status, _, err = run_cli(project, monkeypatch, capsys, "show", doomed)
    assert status == 2 and "has no run" in err
    status, out, _ = run_cli(project, monkeypatch, capsys, "run", "tiny.ipynb", "--json")
    assert json.loads(out)["version"] == int(doomed.rsplit("@v", 1)[1]) + 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "missing.ipynb"], "notebook missing.ipynb does not exist"),
        (["run", "../outside.ipynb"], "is outside the project root"),
        (["run", "notes.txt"], "is not a notebook (.ipynb)"),
        (["run", "broken.ipynb"], "is not valid notebook JSON"),
        (["run", "plain.ipynb"], "is not a Jupyter notebook"),
        (["run", "noparams.ipynb", "-p", "a", "1"], "has no cell tagged 'parameters'"),
        (["run", "tiny.ipynb", "-p", "y", "1"], "unknown parameter 'y'; known parameters: x, label"),
        (["run", "tiny.ipynb", "-p", "x", "lots"], "parameter x='lots' cannot be converted to int"),
        (["run", "tiny.ipynb", "-p", "x", "1", "-p", "x", "2"], "parameter x is given twice"),
        (["show", "tiny.ipynb@v99"], "tiny.ipynb has no run v99"),
        (["show", "0" * 32], "no run with id"),
        (["show", "tiny.ipynb"], "does not name a run"),
        (["show", "other.ipynb@v1"], "no runs of a notebook named other.ipynb"),
        (["rm", "tiny.ipynb@v1", "tiny.ipynb@v99"], "tiny.ipynb has no run v99"),
        (["runs", "--status", "done"], "unknown status 'done'"),
        (["--root", "no/such/folder", "runs"], "is not a folder"),
    ],
)
def test_bad_input_is_one_readable_line_and_stores_nothing(project, monkeypatch, capsys, argv, message):
    (project / "notes.txt").write_text("x")
    (project / "broken.ipynb").write_text("{not json")
    (project / "plain.ipynb").write_text('{"a": 1}')
    (project / "noparams.ipynb").write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    before = run_cli(project, monkeypatch, capsys, "runs", "--json", "--limit", "1000")[1]
    status, out, err = run_cli(project, monkeypatch, capsys, *argv)
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1 and message in err, err
    assert run_cli(project, monkeypatch, capsys, "runs", "--json", "--limit", "1000")[1] == before


def test_the_jupyter_mlx_command(project):
    jupyter = shutil.which("jupyter", path=str(__import__("pathlib").Path(sys.executable).parent))
    if jupyter is None:
        pytest.fail("the jupyter command is not installed next to this Python")
    done = subprocess.run([jupyter, "mlx", "runs", "tiny.ipynb"], cwd=project, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "v1" in done.stdout and "succeeded" in done.stdout
    done = subprocess.run([jupyter, "mlx", "show", "nope"], cwd=project, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.startswith("jupyter mlx show: error:")
