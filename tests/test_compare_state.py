"""The state runs captured for their functions (issue 15) compared: manifests built directly on run
sides (no store, kernel or server), then two real runs through the service, the CLI and REST."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from jupyter_mlx.diff.comparison import Comparison, compare_sides
from jupyter_mlx.diff.options import CompareOptions
from jupyter_mlx.diff.report import report_html
from jupyter_mlx.diff.sides import Side, run_side
from jupyter_mlx.diff.terminal import format_comparison
from jupyter_mlx.store.records import RunRecord
from notebooks import code_cell, write_notebook
from rest_client import SERVER_CONFIG, get_json

pytest_plugins = ("pytest_jupyter.jupyter_server",)

SCHEMA = json.loads((Path(__file__).parent.parent / "jupyter_mlx" / "diff" / "comparison.schema.json").read_text())
NOTEBOOK: dict[str, Any] = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def obj(name: str, kind: str, size: int, sha: str, package: str | None = None) -> dict[str, Any]:
    return {"name": name, "kind": kind, "size": size, "sha256": sha * 64, "package": package}


def module(name: str, of: str) -> dict[str, Any]:
    return {"name": name, "kind": "module", "module": of, "size": 0, "sha256": None}


MANIFEST: dict[str, Any] = {
    "functions": ["predict"],
    "objects": [module("np", "numpy"), obj("predict", "function", 683, "a"), obj("weights", "ndarray", 151, "b", "numpy"),
                obj("OFFSET", "float", 20, "c")],
    "not_capturable": [["connection", "TypeError: cannot pickle 'socket' object"]],
    "packages": {"numpy": "1.26.4"},
    "truncated": None,
    "seconds": 0.01,
}


def run(version: int, state: dict[str, Any] | None) -> RunRecord:
    return RunRecord(id=f"run{version}", notebook="train.ipynb", version=version, status="succeeded", parameters={},
                     source_hash="s", notebook_hash=None, git_commit=None, git_dirty=None, environment_id=None,
                     backend="local", host="h", pid=None, queued_at=0.0, started_at=1.0, finished_at=2.0,
                     cell_timings=[], error=None, metrics={}, tags=[], sweep_id=None, parent_id=None,
                     run_folder="overlay", state=state)


def side(label: str, state: dict[str, Any] | None, notebook: dict[str, Any] | None = None) -> Side:
    return run_side(label, run(1 if label == "A" else 2, state), notebook or NOTEBOOK, [], None)


def compare(a: dict[str, Any] | None, b: dict[str, Any] | None, **options: Any) -> Comparison:
    comparison = compare_sides(side("A", a), side("B", b), CompareOptions(**options))
    jsonschema.validate(comparison.to_json(), SCHEMA, format_checker=jsonschema.FormatChecker())
    return comparison


def by_name(comparison: Comparison) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in comparison.to_json()["state"]["objects"]}


def changed(**edits: Any) -> dict[str, Any]:
    """MANIFEST with objects replaced or dropped (None) by name, and other keys replaced."""
    manifest = copy.deepcopy(MANIFEST)
    for name, value in edits.pop("objects", {}).items():
        manifest["objects"] = [o for o in manifest["objects"] if o["name"] != name] + ([value] if value else [])
    manifest.update(edits)
    return manifest


def test_the_same_state_is_identical_and_nothing_is_unexpected() -> None:
    comparison = compare(MANIFEST, copy.deepcopy(MANIFEST))
    assert {e["judgement"] for e in by_name(comparison).values()} == {"identical"}
    assert set(by_name(comparison)) == {"OFFSET", "connection", "np", "predict", "weights"}
    assert comparison.unexpected() == [] and comparison.summary()["state"]["identical"] == 5
    text = format_comparison(comparison.to_json())
    assert "\nstate: 5 identical\n\n" in text  # as artifacts say it; no line per object


def test_added_removed_and_changed_objects_are_unexpected_as_artifacts_are() -> None:
    b = changed(objects={"weights": obj("weights", "ndarray", 160, "d", "numpy"), "OFFSET": None,
                         "scale": obj("scale", "int", 5, "e"), "np": module("np", "jax.numpy")})
    comparison = compare(MANIFEST, b)
    found = by_name(comparison)
    assert (found["weights"]["judgement"], found["weights"]["change"]) == ("changed", "content")
    assert (found["np"]["judgement"], found["np"]["change"]) == ("changed", "module")
    assert found["OFFSET"]["judgement"] == "removed" and found["OFFSET"]["b"] is None
    assert found["scale"]["judgement"] == "added" and found["scale"]["a"] is None
    assert found["predict"]["judgement"] == "identical"
    assert comparison.unexpected() == [
        "state OFFSET: removed (only in A, float, 20 bytes)",
        "state np: changed (module numpy -> jax.numpy)",
        "state scale: added (only in B, int, 5 bytes)",
        "state weights: changed (ndarray, different content, 151 bytes -> 160 bytes)",
    ]
    summary = comparison.summary()
    assert summary["state"]["changed"] == 2 and summary["verdict"] == "unexpected_changes"


def test_a_name_that_became_or_stopped_being_not_capturable() -> None:
    refused = "TypeError: cannot pickle '_thread.lock' object"
    b = changed(objects={"weights": None, "connection": obj("connection", "Connection", 40, "f")},
                not_capturable=[["weights", refused]])
    found = by_name(compare(MANIFEST, b))
    assert (found["weights"]["judgement"], found["weights"]["change"]) == ("changed", "not_capturable")
    assert found["weights"]["b"] == {"not_capturable": refused}
    assert (found["connection"]["judgement"], found["connection"]["change"]) == ("changed", "capturable")
    comparison = compare(MANIFEST, b)
    assert f"state weights: changed (no longer capturable: {refused})" in comparison.unexpected()
    assert ("state connection: changed (captured now, Connection, 40 bytes (was not capturable: "
            "TypeError: cannot pickle 'socket' object))") in comparison.unexpected()
    gone = by_name(compare(MANIFEST, changed(not_capturable=[])))["connection"]
    assert gone["judgement"] == "removed" and gone["a"] == {"not_capturable": MANIFEST["not_capturable"][0][1]}


def test_package_versions_of_the_state_are_listed_and_never_unexpected() -> None:
    comparison = compare(MANIFEST, changed(packages={"numpy": "2.0.1", "scikit-learn": "1.5.0"}))
    assert comparison.to_json()["state"]["packages"] == [
        {"name": "numpy", "a": "1.26.4", "b": "2.0.1", "status": "changed"},
        {"name": "scikit-learn", "a": None, "b": "1.5.0", "status": "added"}]
    assert comparison.unexpected() == []


@pytest.mark.parametrize("missing", [None, {"error": "the kernel died"},
                                     {**MANIFEST, "functions": [], "objects": [], "not_capturable": [],
                                      "truncated": "cloudpickle is not installed in the kernel's environment"}])
def test_a_side_that_captured_nothing_is_not_captured_never_removed(missing: dict[str, Any] | None) -> None:
    for a, b, label in ((MANIFEST, missing, "B"), (missing, MANIFEST, "A")):
        comparison = compare(a, b)
        state = comparison.to_json()["state"]
        assert state["known"] is False and state["objects"] == [] and state["packages"] == []
        assert comparison.unexpected() == []
        text = format_comparison(comparison.to_json())
        note = state[label.lower()]["note"]
        assert f"state: {label}: {note}; nothing compared" in text
    assert "not captured" in compare(MANIFEST, None).to_json()["state"]["b"]["note"]
    assert "the kernel died" in compare(MANIFEST, {"error": "the kernel died"}).to_json()["state"]["b"]["note"]
    assert "state" not in format_comparison(compare(None, None).to_json())  # capture off for both: silent


def test_notebook_files_have_no_state_and_old_callers_still_work() -> None:
    data = compare_sides(Side("A", "a.ipynb", "file", NOTEBOOK), Side("B", "b.ipynb", "file", NOTEBOOK)).to_json()
    jsonschema.validate(data, SCHEMA)
    assert data["state"]["known"] is False and data["state"]["a"]["note"] == "a notebook file has no captured state"
    assert data["summary"]["state"]["changed"] == 0 and "state" not in format_comparison(data)
    assert Comparison(side("A", None), side("B", None), CompareOptions(), [], [], {}, []).to_json()["state"]["known"] is False


def test_ignored_names_pass_from_the_options_and_the_notebooks_metadata() -> None:
    b = changed(objects={"weights": obj("weights", "ndarray", 160, "d"), "predict": obj("predict", "function", 1, "9")})
    comparison = compare(MANIFEST, b, ignore_state=("weights", "pred*"))
    assert {by_name(comparison)[n]["judgement"] for n in ("weights", "predict")} == {"ignored"}
    assert comparison.unexpected() == []
    notebook = {**NOTEBOOK, "metadata": {"jupyter_mlx": {"compare": {"ignore_state": ["weights"]}}}}
    comparison = compare_sides(side("A", MANIFEST), side("B", b, notebook),
                               CompareOptions().with_overrides({"ignore_state": ["predict"]}))
    assert comparison.options.ignore_state == ("predict", "weights") and comparison.unexpected() == []


def test_swapping_the_runs_mirrors_the_state() -> None:
    b = changed(objects={"weights": None, "OFFSET": obj("OFFSET", "float", 21, "9"), "k": obj("k", "int", 5, "7")},
                not_capturable=[["weights", "refused"]], packages={"numpy": "2.0.1"})
    forward, backward = by_name(compare(MANIFEST, b)), by_name(compare(b, MANIFEST))
    mirror = {"added": "removed", "removed": "added", "not_capturable": "capturable", "capturable": "not_capturable"}
    assert forward.keys() == backward.keys()
    for name, entry in forward.items():
        assert backward[name]["judgement"] == mirror.get(entry["judgement"], entry["judgement"]), name
        assert backward[name]["change"] == mirror.get(entry["change"], entry["change"]), name
        assert (backward[name]["a"], backward[name]["b"]) == (entry["b"], entry["a"])


def test_the_terminal_and_the_report_show_the_state() -> None:
    b = changed(objects={"weights": obj("weights", "ndarray", 160, "d", "numpy")}, packages={"numpy": "2.0.1"},
                not_capturable=[["connection", "TypeError: cannot pickle 'socket' object"], ["slow", "took too long"]],
                truncated="the capture took longer than 5 s")
    comparison = compare(MANIFEST, b)
    text = format_comparison(comparison.to_json())
    assert "\nstate: 4 identical, 1 changed, 1 added\n" in text
    assert "  weights  changed: ndarray, different content, 151 bytes -> 160 bytes" in text
    assert "  slow     added: only in B, not capturable: took too long" in text
    assert "  package numpy: 1.26.4 -> 2.0.1" in text and "  B: the capture took longer than 5 s" in text
    assert "  state weights: changed (ndarray, different content, 151 bytes -> 160 bytes)" in text
    assert "  predict" not in text.split("\nstate:")[1].split("\n\n")[0]  # identical: not listed
    html = report_html(comparison)
    assert 'id="state"' in html and 'data-name="weights"' in html and 'href="#state"' in html
    assert "ndarray, 151 bytes, bbbbbbbbbbbb" in html and "2.0.1" in html


def test_a_run_from_before_captures_against_one_with_them_in_the_report() -> None:
    html = report_html(compare(None, MANIFEST))
    assert 'id="state"' in html and "A: not captured" in html


# -- end to end: two real runs, the CLI and REST ---------------------------------------------------
TINY = [code_cell("k = 2", tags=["parameters"]), code_cell("import math\nweights = [k, k + 1]"),
        code_cell("def predict(x):\n    return [math.floor(w * x) for w in weights]")]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A tiny notebook run twice, the second time with another parameter: ``weights`` differs."""
    from jupyter_mlx.service import RunService

    root = tmp_path_factory.mktemp("state") / "project"
    write_notebook(root / "tiny.ipynb", *TINY)
    service = RunService(root)
    try:
        one, two = service.run("tiny.ipynb"), service.run("tiny.ipynb", {"k": 3})
        assert one.status == two.status == "succeeded", (one.error, two.error)
        assert one.state is not None and two.state is not None
    finally:
        service.close()
    return root, one.ref, two.ref


def test_jupyter_mlx_diff_lists_the_changed_object(two_runs, capsys, monkeypatch) -> None:
    from jupyter_mlx.cli import main

    root, one, two = two_runs
    monkeypatch.chdir(root)
    assert main(["diff", one, two]) == 0  # diff shows; check fails, as for a changed artifact
    out = capsys.readouterr().out
    # predict's bytes hold the globals it uses (cloudpickle): it changes with weights
    assert "\nstate: 1 identical, 2 changed\n" in out, out
    assert "  weights  changed: list, different content, same size, 20 bytes" in out
    assert "  predict  changed: function, different content" in out
    assert "  state weights: changed (list, different content, same size, 20 bytes)" in out
    assert main(["diff", one, two, "--ignore-state", "weights", "--ignore-state", "pred*", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["options"]["ignore_state"] == ["weights", "pred*"] and data["summary"]["unexpected"] == []
    assert main(["check", two, "--baseline", one]) != 0
    capsys.readouterr()


@pytest.fixture
def jp_root_dir(two_runs):
    return two_runs[0]


@pytest.fixture
def jp_server_config():
    return SERVER_CONFIG


async def test_rest_compare_lists_the_changed_object(two_runs, jp_fetch) -> None:
    _, one, two = two_runs
    data = await get_json(jp_fetch, "compare", a=one, b=two)
    jsonschema.validate(data, SCHEMA)
    found = {entry["name"]: entry for entry in data["state"]["objects"]}
    assert found["weights"]["judgement"] == "changed" and found["weights"]["change"] == "content"
    assert found["math"]["judgement"] == "identical" and found["math"]["b"]["module"] == "math"
    assert found["predict"]["judgement"] == "changed"  # it holds weights
    ignoring = await get_json(jp_fetch, "compare", a=one, b=two, ignore_state="*")
    assert ignoring["options"]["ignore_state"] == ["*"] and ignoring["summary"]["unexpected"] == []
    assert data["state"]["a"]["functions"] == ["predict"]
    assert any(line.startswith("state weights: changed") for line in data["summary"]["unexpected"])


def test_a_run_against_a_notebook_file_says_the_file_has_no_state(two_runs, capsys, monkeypatch) -> None:
    from jupyter_mlx.cli import main

    root, one, _ = two_runs
    monkeypatch.chdir(root)
    assert main(["diff", one, "tiny.ipynb"]) == 0
    out = capsys.readouterr().out
    assert "state: B: a notebook file has no captured state; nothing compared" in out
    assert "state weights" not in out


def test_the_runs_table_has_a_column_per_name_of_the_state() -> None:
    from jupyter_mlx.diff.table import RunsTable

    b = changed(objects={"weights": obj("weights", "ndarray", 160, "d")}, not_capturable=[])
    table = RunsTable.of([run(3, None), run(2, b), run(1, MANIFEST)])
    assert table.state == ["OFFSET", "connection", "np", "predict", "weights"]
    assert table.varying_state() == ["connection", "weights"]  # the run without a capture is not compared
    rows = {row["ref"]: row["state"] for row in table.to_json()["rows"]}
    assert rows["train.ipynb@v1"]["weights"] == "b" * 12 and rows["train.ipynb@v2"]["weights"] == "d" * 12
    assert rows["train.ipynb@v1"]["np"] == "module numpy" and rows["train.ipynb@v1"]["connection"] == "not capturable"
    assert rows["train.ipynb@v2"]["connection"] is None and set(rows["train.ipynb@v3"].values()) == {None}
    assert table.frame().loc["train.ipynb@v2", "state:weights"] == "d" * 12
