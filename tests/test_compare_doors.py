"""Comparing from the shell (diff, check, baseline) and over REST, on real runs of a tiny notebook."""
from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from jupyter_mlx.cli import main
from jupyter_mlx.diff.report import content_security_policy
from jupyter_mlx.service import RunService

from rest_client import SERVER_CONFIG, error_of, get_json

from notebooks import write_tiny

pytest_plugins = ("pytest_jupyter.jupyter_server",)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """tiny.ipynb v1 (x=2), v2 (x=2 again) and v3 (x=5)."""
    root = tmp_path_factory.mktemp("doors")
    write_tiny(root / "tiny.ipynb")
    service = RunService(root)
    for x in ("2", "2", "5"):
        assert service.run("tiny.ipynb", {"x": x}).status == "succeeded"
    other = json.loads((root / "tiny.ipynb").read_text())
    other["cells"].insert(1, {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                              "source": "print('setting up')"})
    (root / "other.ipynb").write_text(json.dumps(other))
    assert service.run("other.ipynb", {"x": "2"}).status == "succeeded"
    service.close()
    return root


def cli(root, monkeypatch, capsys, *argv):
    monkeypatch.chdir(root)
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


# -- shell -----------------------------------------------------------------------------------
def test_diff_prints_what_changed(runs, monkeypatch, capsys):
    status, out, _ = cli(runs, monkeypatch, capsys, "diff", "tiny.ipynb@v1", "tiny.ipynb@v3")
    assert status == 0
    assert "A  tiny.ipynb@v1  succeeded" in out and "B  tiny.ipynb@v3  succeeded" in out
    assert "x  2 -> 5" in out
    assert "score" in out and "4 -> 10" in out
    assert "-hello a 2" in out and "+hello a 5" in out
    assert "unexpected change" in out


def test_diff_json_and_html_report(runs, monkeypatch, capsys, tmp_path):
    report = tmp_path / "report.html"
    status, out, _ = cli(runs, monkeypatch, capsys, "diff", "tiny.ipynb@v1", "tiny.ipynb@v2", "--json", "--html", str(report))
    data = json.loads(out)
    assert status == 0 and data["format"] == "jupyter_mlx.comparison" and data["summary"]["unexpected"] == []
    html = report.read_text()
    assert html.lstrip().lower().startswith("<!doctype html") and "tiny.ipynb@v2" in html


def test_check_against_the_approved_baseline(runs, monkeypatch, capsys, tmp_path):
    status, _, err = cli(runs, monkeypatch, capsys, "check", "tiny.ipynb@v2")
    assert status == 2 and "tiny.ipynb has no baseline" in err and len(err.strip().splitlines()) == 1
    status, out, _ = cli(runs, monkeypatch, capsys, "baseline", "tiny.ipynb@v1", "--note", "first good run")
    assert status == 0 and "tiny.ipynb@v1 is now the baseline of tiny.ipynb" in out
    status, out, _ = cli(runs, monkeypatch, capsys, "baseline", "tiny.ipynb", "--json")
    assert json.loads(out)["ref"] == "tiny.ipynb@v1" and json.loads(out)["note"] == "first good run"

    junit = tmp_path / "check.xml"
    status, out, _ = cli(runs, monkeypatch, capsys, "check", "tiny.ipynb@v2", "--junit", str(junit))
    assert status == 0 and "no unexpected change" in out
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.get("failures") == "0" and int(suite.get("tests")) >= 3

    status, out, _ = cli(runs, monkeypatch, capsys, "check", "tiny.ipynb@v3", "--junit", str(junit))
    assert status == 1 and "unexpected change" in out
    suite = ET.parse(junit).getroot().find("testsuite")
    failed = {case.get("name"): case.find("failure").get("message")
              for case in suite.iter("testcase") if case.find("failure") is not None}
    assert "metric score" in failed and "4 -> 10" in failed["metric score"]
    assert any(name.startswith("cell ") for name in failed)  # the print of x

    # a looser threshold for the metric, and the changed print ignored: the check passes
    status, out, _ = cli(runs, monkeypatch, capsys, "check", "tiny.ipynb@v3", "--rtol", "2", "--ignore", r"hello a \d")
    assert status == 0, out


def test_runs_of_different_notebooks_are_aligned_by_content(runs, monkeypatch, capsys):
    status, out, _ = cli(runs, monkeypatch, capsys, "diff", "tiny.ipynb@v1", "other.ipynb@v1", "--json")
    data = json.loads(out)
    assert status == 0 and [c["judgement"] for c in data["cells"]].count("added") == 1
    added = next(c for c in data["cells"] if c["judgement"] == "added")
    assert added["index_a"] is None and added["outputs"][0]["judgement"] == "added"
    assert {m["judgement"] for m in data["metrics"]} == {"identical"}  # same x, same code otherwise
    status, out, _ = cli(runs, monkeypatch, capsys, "diff", "tiny.ipynb@v1", "tiny.ipynb@v2", "--json",
                         "--ignore-artifact", "logs/*", "--ignore-artifact", "*.png")
    assert status == 0 and json.loads(out)["options"]["ignore_artifacts"] == ["logs/*", "*.png"]


def test_a_run_with_itself_says_so(runs, monkeypatch, capsys):
    status, out, _ = cli(runs, monkeypatch, capsys, "diff", "tiny.ipynb@v1", "tiny.ipynb@v1")
    assert status == 0 and "A and B are the same run" in out and "no unexpected change" in out


def test_check_with_an_explicit_baseline(runs, monkeypatch, capsys):
    status, out, _ = cli(runs, monkeypatch, capsys, "check", "tiny.ipynb@v3", "--baseline", "tiny.ipynb@v3")
    assert status == 0 and "no unexpected change" in out


@pytest.mark.parametrize("argv, message", [
    (["diff", "tiny.ipynb@v1", "tiny.ipynb@v9"], "tiny.ipynb has no run v9"),
    (["diff", "tiny.ipynb@v1", "nope.ipynb"], "notebook nope.ipynb does not exist"),
    (["diff", "tiny.ipynb@v1", "tiny.ipynb@v2", "--ignore", "("], "invalid ignore pattern"),
    (["diff", "tiny.ipynb@v1", "tiny.ipynb@v2", "--rtol", "-1"], "rtol must be a number >= 0"),
    (["baseline", "tiny.ipynb@v7"], "tiny.ipynb has no run v7"),
])
def test_bad_input_is_one_line_and_exit_2(runs, monkeypatch, capsys, argv, message):
    status, out, err = cli(runs, monkeypatch, capsys, *argv)
    assert status == 2 and message in err and len(err.strip().splitlines()) == 1 and out == ""


def test_diff_of_two_files_outside_any_project(tmp_path):
    """The real command, as a user types it, on two plain notebook files."""
    from notebooks import code_cell, notebook

    for name, text in (("old.ipynb", "1.0\n"), ("new.ipynb", "1.5\n")):
        nb = notebook(code_cell("print(x)"))
        nb["cells"][0]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": text}]
        (tmp_path / name).write_text(json.dumps(nb))
    done = subprocess.run([sys.executable, "-m", "jupyter_mlx.cli", "diff", "old.ipynb", "new.ipynb"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "A  old.ipynb  (file)" in done.stdout and "-1.0" in done.stdout and "+1.5" in done.stdout
    assert not (tmp_path / ".mlx").exists()  # comparing files creates no store


# -- REST ------------------------------------------------------------------------------------
@pytest.fixture
def jp_root_dir(runs):
    return runs


@pytest.fixture
def jp_server_config():
    return SERVER_CONFIG


async def test_rest_compare_as_json_and_html(jp_fetch):
    data = await get_json(jp_fetch, "compare", a="tiny.ipynb@v1", b="tiny.ipynb@v3")
    assert data["a"]["ref"] == "tiny.ipynb@v1" and data["summary"]["verdict"] == "unexpected_changes"
    assert {m["name"] for m in data["metrics"]} == {"score", "loss"}
    response = await jp_fetch("mlx", "compare", params={"a": "tiny.ipynb@v1", "b": "tiny.ipynb@v3", "format": "html"})
    assert response.headers["Content-Type"].startswith("text/html") and b"tiny.ipynb@v3" in response.body
    assert response.headers["Content-Security-Policy"] == f"{content_security_policy()}; frame-ancestors 'self'"
    json_response = await jp_fetch("mlx", "compare", params={"a": "tiny.ipynb@v1", "b": "tiny.ipynb@v3"})
    assert "default-src 'none'" in json_response.headers["Content-Security-Policy"]  # the API's, for JSON
    loose = await get_json(jp_fetch, "compare", a="tiny.ipynb@v1", b="tiny.ipynb@v3", rtol="2", ignore=r"hello a \d")
    assert loose["summary"]["verdict"] == "as_expected"
    ignoring = await get_json(jp_fetch, "compare", a="tiny.ipynb@v1", b="tiny.ipynb@v3", ignore_artifact="out/*.csv")
    assert ignoring["options"]["ignore_artifacts"] == ["out/*.csv"] and ignoring["artifacts"] == []
    files = await get_json(jp_fetch, "compare", a="tiny.ipynb", b="tiny.ipynb")
    assert files["a"]["kind"] == "file"


async def test_rest_baseline_and_check(jp_fetch):
    response = await jp_fetch("mlx", "baselines", method="POST", body=json.dumps({"run": "tiny.ipynb@v2"}))
    assert response.code == 201 and json.loads(response.body)["ref"] == "tiny.ipynb@v2"
    assert (await get_json(jp_fetch, "baselines", notebook="tiny.ipynb"))["ref"] == "tiny.ipynb@v2"
    passing = await get_json(jp_fetch, "check", run="tiny.ipynb@v1")
    assert passing["a"]["ref"] == "tiny.ipynb@v2" and passing["summary"]["verdict"] == "as_expected"
    failing = await get_json(jp_fetch, "check", run="tiny.ipynb@v3")
    assert failing["summary"]["verdict"] == "unexpected_changes" and failing["summary"]["unexpected"]
    report = await jp_fetch("mlx", "check", params={"run": "tiny.ipynb@v3", "format": "html"})
    assert report.headers["Content-Type"].startswith("text/html") and b"unexpected change" in report.body
    assert "img-src data:" in report.headers["Content-Security-Policy"]


async def test_rest_runs_table_and_chart(jp_fetch):
    table = await get_json(jp_fetch, "table", notebook="tiny.ipynb")
    assert table["parameters"] == ["x", "label"] and table["varying"] == ["x"]  # defaults are values too
    assert [row["parameters"]["label"] for row in table["rows"]] == ["a", "a", "a"]
    assert [row["parameters"]["x"] for row in table["rows"]] == [5, 2, 2]
    assert table["rows"][0]["metrics"]["score"] == 10
    response = await jp_fetch("mlx", "table", "chart", params={"notebook": "tiny.ipynb", "metric": "score"})
    assert response.headers["Content-Type"] == "image/png" and response.body.startswith(b"\x89PNG")


@pytest.mark.parametrize("parts, params, method, body, status, message", [
    (("compare",), {"a": "tiny.ipynb@v1"}, "GET", None, 400, "'b' is required"),
    (("compare",), {"a": "tiny.ipynb@v1", "b": "tiny.ipynb@v9"}, "GET", None, 404, "no run v9"),
    (("compare",), {"a": "tiny.ipynb@v1", "b": "../outside.ipynb"}, "GET", None, 404, "does not exist"),
    (("compare",), {"a": "tiny.ipynb@v1", "b": "tiny.ipynb@v2", "rtol": "x"}, "GET", None, 400, "rtol must be a number"),
    (("compare",), {"a": "tiny.ipynb@v1", "b": "tiny.ipynb@v2", "ignore": "("}, "GET", None, 400, "invalid ignore pattern"),
    (("check",), {"run": "tiny.ipynb@v9"}, "GET", None, 404, "no run v9"),
    (("baselines",), {}, "GET", None, 400, "'notebook' is required"),
    (("table", "chart"), {"notebook": "tiny.ipynb"}, "GET", None, 400, "'metric' is required"),
    (("table", "chart"), {"notebook": "tiny.ipynb", "metric": "nope"}, "GET", None, 404, "no run here logged the metric"),
    (("table", "chart"), {"notebook": "tiny.ipynb", "metric": "score", "by": "y"}, "GET", None, 400, "not a parameter"),
    (("baselines",), {}, "POST", "{}", 400, "'run' is required"),
    (("baselines",), {}, "POST", '{"run": "tiny.ipynb@v1", "x": 1}', 400, "unknown field"),
])
async def test_rest_bad_input(jp_fetch, parts, params, method, body, status, message):
    code, error = await error_of(jp_fetch, *parts, method=method, params=params or None, body=body)
    assert code == status and message in error["message"], error
