"""Comparing runs: real runs of the example notebook, tolerances, ignores, bad input, the schema."""
from __future__ import annotations

import base64
import copy
import io
import json
import shutil
from pathlib import Path

import jsonschema
import pytest

from jupyter_mlx.cli import main
from jupyter_mlx.diff.comparison import compare_sides
from jupyter_mlx.diff.options import CompareOptions
from jupyter_mlx.diff.sides import file_side
from jupyter_mlx.errors import MLXError
from jupyter_mlx.service import RunService

from notebooks import code_cell, notebook

EXAMPLE = Path(__file__).parent.parent / "examples" / "train.ipynb"
SCHEMA = json.loads((Path(__file__).parent.parent / "jupyter_mlx" / "diff" / "comparison.schema.json").read_text())


def validate(data: dict) -> None:
    jsonschema.validate(data, SCHEMA, format_checker=jsonschema.FormatChecker())


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The example project: train.ipynb v1 and v2 with C=0.1 (same seed) run by alice, v3 with C=10 by bob."""
    root = tmp_path_factory.mktemp("compare")
    shutil.copy(EXAMPLE, root / "train.ipynb")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        for c, user in (("0.1", "alice"), ("0.1", "alice"), ("10", "bob")):
            patch.setenv("LOGNAME", user)  # the OS user the CLI records
            assert main(["run", "train.ipynb", "-p", "C", c]) == 0
    service = RunService(root)
    yield service
    service.close()


def test_same_parameters_and_seed_show_no_unexpected_change(trained):
    comparison = trained.compare("train.ipynb@v1", "train.ipynb@v2")
    data = comparison.to_json()
    validate(data)
    assert data["summary"]["unexpected"] == [] and data["summary"]["verdict"] == "as_expected"
    assert all(p["status"] == "same" for p in data["parameters"])
    assert data["metrics"] and all(m["judgement"] == "identical" for m in data["metrics"])
    assert data["environment"]["known"] and data["environment"]["packages"] == []
    kinds = {o["kind"] for cell in data["cells"] for o in cell["outputs"]}
    assert {"image", "table"} <= kinds  # the example's charts and pandas tables were compared


def test_other_parameters_show_metric_and_chart_changes(trained):
    comparison = trained.compare("train.ipynb@v1", "train.ipynb@v3")
    data = comparison.to_json()
    validate(data)
    assert {p["name"]: (p["a"], p["b"]) for p in data["parameters"] if p["status"] == "changed"} == {"C": (0.1, 10.0)}
    metrics = {m["name"]: m for m in data["metrics"]}
    assert metrics["accuracy"]["judgement"] == "changed"
    assert metrics["accuracy"]["abs_change"] == pytest.approx(metrics["accuracy"]["b"] - metrics["accuracy"]["a"])
    curve = metrics["learning_curve"]["series"]
    assert curve["steps_a"] == curve["steps_b"] == 5
    images = [o for cell in data["cells"] for o in cell["outputs"] if o["kind"] == "image"]
    changed = [o for o in images if o["judgement"] == "changed"]
    assert changed, "the confusion matrix differs between C=0.1 and C=10"
    mask = changed[0]["detail"]["mask"]
    assert base64.b64decode(mask).startswith(b"\x89PNG")
    assert 0 < changed[0]["detail"]["changed_fraction"] < 1
    assert [o for o in images if o["judgement"] == "identical"], "the data chart does not depend on C"
    assert any(line.startswith("metric accuracy") for line in data["summary"]["unexpected"])
    assert comparison.metrics_frame().loc["accuracy", "judgement"] == "changed"
    assert comparison.parameters_frame().loc["C", "b"] == 10.0


def test_a_run_compared_with_itself_is_identical(trained):
    data = trained.compare("train.ipynb@v1", "train.ipynb@v1").to_json()
    assert data["summary"]["outputs"]["changed"] == 0 and data["summary"]["unexpected"] == []
    assert {c["judgement"] for c in data["cells"]} == {"identical"}


def test_the_header_shows_who_ran_each_side(trained, tmp_path, capsys):
    from jupyter_mlx.diff.report import report_html, summary_html
    from jupyter_mlx.diff.terminal import format_comparison

    comparison = trained.compare("train.ipynb@v1", "train.ipynb@v3")
    data = comparison.to_json()
    assert (data["a"]["user"], data["b"]["user"]) == ("alice", "bob")
    a, b = format_comparison(data).splitlines()[:2]
    assert a.startswith("A  train.ipynb@v1  succeeded  ") and a.endswith("  by alice")
    assert b.startswith("B  train.ipynb@v3  succeeded  ") and b.endswith("  by bob")
    for html in (report_html(comparison), summary_html(comparison)):
        sides = html[html.index('<table class="grid sides">'):]
        sides = sides[:sides.index("</table>")]
        assert "<th>user</th>" in sides and '<td class="user">alice</td>' in sides and '<td class="user">bob</td>' in sides
    # a run recorded before users were: nothing said of it; none known: no user column at all
    older = copy.deepcopy(data)
    older["a"]["user"] = None
    assert "  by " not in format_comparison(older).splitlines()[0]
    executed = trained.executed_notebook("train.ipynb@v1")
    (tmp_path / "copy.ipynb").write_text(json.dumps(executed))
    with_file = trained.compare("train.ipynb@v3", str(tmp_path / "copy.ipynb"), anywhere=True)
    assert with_file.to_json()["b"]["user"] is None and "<td class=\"user\">–</td>" in report_html(with_file)
    files = trained.compare(str(tmp_path / "copy.ipynb"), str(tmp_path / "copy.ipynb"), anywhere=True)
    assert "<th>user</th>" not in report_html(files)
    # the CLI's diff: the same header
    assert main(["--root", str(trained.project.root), "diff", "train.ipynb@v2", "train.ipynb@v3"]) == 0
    out = capsys.readouterr()[0].splitlines()
    assert out[0].endswith("  by alice") and out[1].endswith("  by bob")


def test_a_run_against_a_notebook_file(trained, tmp_path):
    executed = trained.executed_notebook("train.ipynb@v1")
    path = tmp_path / "copy.ipynb"
    path.write_text(json.dumps(executed))
    data = trained.compare("train.ipynb@v1", str(path), anywhere=True).to_json()
    validate(data)
    assert data["b"]["kind"] == "file" and data["summary"]["unexpected"] == []
    assert not data["environment"]["known"]


@pytest.mark.parametrize("a, b, message", [
    ("train.ipynb@v9", "train.ipynb@v1", "train.ipynb has no run v9"),
    ("missing.ipynb", "train.ipynb@v1", "notebook missing.ipynb does not exist"),
    ("train.ipynb@v1", "other.ipynb@v1", "no runs of a notebook named other.ipynb"),
])
def test_missing_runs_and_files_are_clear_errors(trained, a, b, message):
    with pytest.raises(MLXError) as caught:
        trained.compare(a, b)
    assert caught.value.code == "not_found" and message in caught.value.message


def test_files_outside_the_project_only_from_the_shell(trained, tmp_path):
    outside = tmp_path / "elsewhere.ipynb"
    outside.write_text(json.dumps(notebook(code_cell("1"))))
    with pytest.raises(MLXError) as caught:
        trained.compare(str(outside), str(outside))
    assert caught.value.code == "invalid_path"
    assert trained.compare(str(outside), str(outside), anywhere=True).unexpected() == []


# -- file pairs ------------------------------------------------------------------------------
def stream(text: str) -> dict:
    return {"output_type": "stream", "name": "stdout", "text": text}


def png(color: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> dict:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return {"output_type": "display_data", "metadata": {},
            "data": {"image/png": base64.b64encode(buffer.getvalue()).decode(), "text/plain": "<Figure>"}}


def executed(*cells: tuple[str, list[dict]], tags: dict[int, list[str]] | None = None, metadata: dict | None = None) -> dict:
    nb = notebook(*(code_cell(source, tags=(tags or {}).get(i)) for i, (source, _) in enumerate(cells)))
    for cell, (_, outputs) in zip(nb["cells"], cells):
        cell["outputs"] = outputs
    if metadata:
        nb["metadata"].update(metadata)
    return nb


def compare_files(tmp_path: Path, a: dict, b: dict, **options):
    (tmp_path / "a.ipynb").write_text(json.dumps(a))
    (tmp_path / "b.ipynb").write_text(json.dumps(b))
    comparison = compare_sides(file_side("A", "a.ipynb", tmp_path), file_side("B", "b.ipynb", tmp_path),
                               CompareOptions().with_overrides(options))
    data = comparison.to_json()
    validate(data)
    return data


def output_judgements(data: dict) -> list[str]:
    return [o["judgement"] for cell in data["cells"] for o in cell["outputs"]]


@pytest.mark.parametrize("delta, judgement", [(1e-12, "within_tolerance"), (1e-2, "changed"), (0.0, "identical")])
def test_default_tolerance_of_printed_numbers(tmp_path, delta, judgement):
    value = 0.8123456789
    a = executed(("print(x)", [stream(f"accuracy {value!r}\n")]))
    b = executed(("print(x)", [stream(f"accuracy {value + delta!r}\n")]))
    data = compare_files(tmp_path, a, b)
    assert output_judgements(data) == [judgement]
    assert (data["summary"]["verdict"] == "as_expected") == (judgement != "changed")


def test_volatile_text_and_ignore_patterns(tmp_path):
    a = executed(("f", [stream("<Model object at 0x7f3a2b1c9d80> trained in 1.52 s\n")]),
                 ("g", [stream("run id 1234\n")]))
    b = executed(("f", [stream("<Model object at 0x7f00aa11bb22> trained in 1.61 s\n")]),
                 ("g", [stream("run id 9876\n")]))
    assert output_judgements(compare_files(tmp_path, a, b)) == ["within_tolerance", "changed"]
    assert output_judgements(compare_files(tmp_path, a, b, ignore_patterns=[r"run id \d+"])) == ["within_tolerance"] * 2


def test_ignore_tags_and_per_notebook_options(tmp_path):
    a = executed(("now()", [stream("12\n")]), ("x", [stream("1.0\n")]), tags={0: ["mlx:ignore-output"]})
    b = executed(("now()", [stream("13\n")]), ("x", [stream("1.05\n")]), tags={0: ["mlx:ignore-output"]})
    data = compare_files(tmp_path, a, b)
    assert output_judgements(data) == ["ignored", "changed"]
    b["metadata"]["jupyter_mlx"] = {"compare": {"rtol": 0.1}}
    assert output_judgements(compare_files(tmp_path, a, b)) == ["ignored", "within_tolerance"]


def test_images_outputs_added_removed_and_cells_aligned_by_content(tmp_path):
    a = executed(("setup", []), ("plot", [png((255, 0, 0))]), ("old", [stream("bye\n")]))
    b = executed(("new cell", [stream("hi\n")]), ("setup", []), ("plot", [png((250, 0, 0)), stream("extra\n")]))
    data = compare_files(tmp_path, a, b)
    by_source = [(c["index_a"], c["index_b"], c["judgement"]) for c in data["cells"]]
    assert (None, 0, "added") in by_source and (0, 1, "identical") in by_source and (2, None, "removed") in by_source
    plot = next(c for c in data["cells"] if c["index_a"] == 1)
    assert [(o["kind"], o["judgement"]) for o in plot["outputs"]] == [("image", "changed"), ("stream", "added")]
    assert plot["outputs"][0]["detail"]["changed_fraction"] == 1.0


def test_a_corrupt_image_is_a_clear_change_not_a_crash(tmp_path):
    broken = png((0, 0, 0))
    broken["data"]["image/png"] = base64.b64encode(b"not a png at all").decode()
    data = compare_files(tmp_path, executed(("p", [png((0, 0, 0))])), executed(("p", [broken])))
    output = data["cells"][0]["outputs"][0]
    assert output["judgement"] == "changed" and "run B" in output["detail"]["error"]


def test_a_new_error_is_unexpected(tmp_path):
    error = {"output_type": "error", "ename": "ValueError", "evalue": "bad", "traceback": ["..."]}
    data = compare_files(tmp_path, executed(("f()", [stream("ok\n")])), executed(("f()", [error])))
    assert data["summary"]["errors_added"] == 1
    assert data["summary"]["unexpected"] == ["cell 1: error changed"]


def test_bad_options_are_clear_errors():
    with pytest.raises(MLXError, match="unknown compare option"):
        CompareOptions().with_overrides({"rtoll": 1})
    with pytest.raises(MLXError, match="invalid ignore pattern"):
        CompareOptions().with_overrides({"ignore_patterns": ["("]})
    with pytest.raises(MLXError, match="rtol must be a number"):
        CompareOptions().with_overrides({"rtol": -1})


def test_not_a_notebook_is_a_clear_error(tmp_path):
    (tmp_path / "bad.ipynb").write_text("{ nope")
    with pytest.raises(MLXError) as caught:
        file_side("A", "bad.ipynb", tmp_path)
    assert caught.value.code == "invalid_notebook"


def test_swapping_sides_mirrors_the_result(tmp_path):
    a = executed(("a", [stream("x 1.0\n"), png((0, 0, 0))]), ("b", [stream("same\n")]))
    b = executed(("a", [stream("x 2.0\n")]), ("c", [stream("new\n")]), ("b", [stream("same\n")]))
    forward, backward = compare_files(tmp_path, a, b), compare_files(tmp_path, copy.deepcopy(b), copy.deepcopy(a))
    mirror = {"added": "removed", "removed": "added"}
    flip = [(c["index_b"], c["index_a"], mirror.get(c["judgement"], c["judgement"])) for c in forward["cells"]]
    assert sorted(flip, key=str) == sorted(((c["index_a"], c["index_b"], c["judgement"]) for c in backward["cells"]), key=str)


def test_the_python_api_with_a_metric_threshold(trained, monkeypatch):
    import jupyter_mlx

    monkeypatch.chdir(trained.project.root)
    comparison = jupyter_mlx.compare("train.ipynb@v1", "train.ipynb@v3", metrics={"accuracy": {"atol": 0.05}})
    metrics = {m["name"]: m for m in comparison.to_json()["metrics"]}
    assert metrics["accuracy"]["judgement"] == "within_tolerance" and metrics["f1_macro"]["judgement"] == "changed"
    assert "jupyter-mlx" in comparison._repr_html_() or "mlx" in comparison._repr_html_()


def test_runs_table_frame_and_charts(trained):
    table = trained.runs_table("train.ipynb")
    frame = table.frame()
    assert list(frame.index) == ["train.ipynb@v3", "train.ipynb@v2", "train.ipynb@v1"]
    assert frame["C"].dtype == "float64" and frame["accuracy"].dtype == "float64"
    assert frame.loc["train.ipynb@v3", "C"] == 10.0 and table.varying() == ["C"]
    figure = table.plot("accuracy")
    axes = figure.axes[0]
    assert axes.get_xlabel() == "C" and axes.get_ylabel() == "accuracy" and len(axes.lines[0].get_xdata()) == 3
    with pytest.raises(MLXError, match="no run here logged the metric 'nope'"):
        table.plot("nope")
    from jupyter_mlx.diff.table import plot_series

    histories = {run.ref: trained.store.metric_history(run.id) for run in table.runs}
    figure = plot_series("learning_curve", histories)
    assert len(figure.axes[0].lines) == 3
