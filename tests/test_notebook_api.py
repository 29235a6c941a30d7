"""The notebook Python API (``jupyter_mlx.runs/run/sweep/plot_metric``), its handles and views, in process."""
from __future__ import annotations

import getpass
from pathlib import Path
from typing import Iterator

import pytest

import jupyter_mlx
from jupyter_mlx import transport as transports
from jupyter_mlx.errors import MLXError

from notebooks import code_cell, write_notebook, write_tiny
from sandbox import working_in


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """tiny.ipynb and slow.ipynb (sleeps), with no Jupyter server to find: runs are in-process."""
    root = tmp_path_factory.mktemp("api")
    write_tiny(root / "tiny.ipynb")
    write_notebook(root / "slow.ipynb", code_cell("seconds = 30", tags=["parameters"]),
                   code_cell("import time\ntime.sleep(seconds)"))
    with working_in(root, tmp_path_factory.mktemp("no-servers")):
        yield root


@pytest.fixture(scope="module")
def handles(project: Path) -> dict[str, object]:
    """tiny v1 (x=3, waited for), then a sweep over x=1,2 (v2, v3)."""
    first = jupyter_mlx.run("tiny.ipynb", {"x": 3}, wait=True, timeout=120)
    swept = jupyter_mlx.sweep("tiny.ipynb", {"x": [1, 2]}).wait(120)
    return {"run": first, "sweep": swept}


def test_the_api_is_lazy_and_in_process_without_a_server(project: Path) -> None:
    import subprocess
    import sys

    probe = ("import sys, jupyter_mlx; print(sorted(m for m in ('jupyter_mlx.notebook_api', 'jupyter_mlx.magic', "
             "'pandas', 'IPython', 'ipywidgets', 'jupyter_mlx.service') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout == "[]\n"
    from jupyter_mlx import notebook_api

    assert jupyter_mlx.run is notebook_api.run and jupyter_mlx.RunHandle is notebook_api.RunHandle
    connection = transports.connect()
    assert connection.kind == "local" and connection.describe().startswith("in-process (no Jupyter server")
    assert connection is transports.connect()  # one service per project and process


def test_a_run_handle(handles: dict[str, object]) -> None:
    run = handles["run"]
    assert run.ref == "tiny.ipynb@v1" and run.version == 1 and len(run.id) == 32
    assert run.status == "succeeded" and run.parameters == {"x": 3, "label": "a"}
    assert run.metrics == {"score": 6.0, "loss": 0.25}
    notebook = run.notebook
    assert type(notebook).__name__ == "NotebookNode" and notebook.cells[-1].outputs[-1].text == "hello a 3\n"
    assert run.elapsed() == run.record["duration"] > 0
    bundle = run._repr_mimebundle_()  # no kernel here: a summary, no widget
    assert set(bundle) == {"text/plain", "text/html"}
    assert bundle["text/plain"].startswith("tiny.ipynb@v1 succeeded in ") and "score=6" in bundle["text/html"]


def test_a_sweep_handle(handles: dict[str, object]) -> None:
    swept = handles["sweep"]
    assert len(swept) == 2 and [h.ref for h in swept] == ["tiny.ipynb@v2", "tiny.ipynb@v3"]
    assert swept.status == "succeeded" and swept.counts() == {"succeeded": 2}
    assert [h.metrics["score"] for h in swept] == [2.0, 4.0]
    frame = swept.frame()
    assert list(frame.index) == ["tiny.ipynb@v2", "tiny.ipynb@v3"] and set(frame["sweep_id"]) == {swept.id}
    assert f"sweep {swept.id}: 2 runs of tiny.ipynb: 2 succeeded" in swept._repr_mimebundle_()["text/plain"]


def test_runs_is_a_typed_dataframe(handles: dict[str, object]) -> None:
    frame = jupyter_mlx.runs("tiny.ipynb")
    assert list(frame.index) == ["tiny.ipynb@v3", "tiny.ipynb@v2", "tiny.ipynb@v1"]
    assert frame.index.name == "ref"
    assert {name: str(dtype) for name, dtype in frame.dtypes.items()} == {
        "id": "str", "version": "int64", "status": "str", "started_at": "datetime64[ns, UTC]",
        "duration": "float64", "sweep_id": "str", "user": "str", "x": "int64", "label": "str", "score": "float64",
        "loss": "float64",
    }
    assert frame["label"].tolist() == ["a", "a", "a"]  # a default is a value, not NaN
    assert frame["user"].tolist() == [getpass.getuser()] * 3  # who ran it: the OS user, in process
    assert frame["score"].tolist() == [4.0, 2.0, 6.0] and frame.loc["tiny.ipynb@v1", "id"] == handles["run"].id
    assert list(jupyter_mlx.runs("tiny.ipynb", limit=1).index) == ["tiny.ipynb@v3"]
    assert jupyter_mlx.runs(status="failed").empty
    assert list(jupyter_mlx.runs("tiny.ipynb", filter="x>=2").index) == ["tiny.ipynb@v3", "tiny.ipynb@v1"]


def test_plot_metric_is_a_figure_of_the_metric_by_a_parameter(handles: dict[str, object]) -> None:
    from matplotlib.figure import Figure

    figure = jupyter_mlx.plot_metric("score", by="x", notebook="tiny.ipynb")
    assert isinstance(figure, Figure)
    axes = figure.axes[0]
    line = axes.lines[0]
    assert list(line.get_xdata()) == [1, 2, 3] and list(line.get_ydata()) == [2.0, 4.0, 6.0]
    assert axes.get_xlabel() == "x" and axes.get_ylabel() == "score"
    swept = jupyter_mlx.plot_metric("score", sweep=handles["sweep"].id)  # by: the parameter that varies
    assert list(swept.axes[0].lines[0].get_ydata()) == [2.0, 4.0]
    with pytest.raises(MLXError, match="no run here logged the metric 'accuracy'"):
        jupyter_mlx.plot_metric("accuracy")


def started(handle: object, timeout: float = 60.0) -> object:
    """The handle once its run executes its cells (a cancel then interrupts the kernel)."""
    import time

    deadline = time.monotonic() + timeout
    while handle.refresh().progress is None and not handle.done and time.monotonic() < deadline:
        time.sleep(0.05)
    return handle


def test_waiting_times_out_and_cancel_stops_a_run(project: Path) -> None:
    slow = jupyter_mlx.run("slow.ipynb", {"seconds": 30})
    assert slow.ref == "slow.ipynb@v1" and not slow.done
    with pytest.raises(TimeoutError, match="slow.ipynb@v1 is still (queued|running) after 0.2s"):
        slow.wait(timeout=0.2)
    started(slow).cancel()
    assert slow.wait(timeout=30).status == "cancelled"
    assert slow.notebook.cells[-1].source == "import time\ntime.sleep(seconds)"  # the partial notebook is kept
    running = jupyter_mlx.run("slow.ipynb", {"seconds": 30})
    with pytest.raises(MLXError, match="slow.ipynb@v2 is (queued|running): wait\\(\\) for it first"):
        running.notebook
    assert started(running).cancel().wait(timeout=30).status == "cancelled"


def test_compare_and_the_views_fall_back_to_text_and_html(handles: dict[str, object]) -> None:
    from jupyter_mlx.widgets import ComparisonView, RunsView

    connection = transports.connect()
    view = ComparisonView(connection.compare("tiny.ipynb@v1", "tiny.ipynb@v3", {"rtol": 10.0}))
    assert view.data["a"]["ref"] == "tiny.ipynb@v1" and view.unexpected() == []  # within rtol=10
    assert len(ComparisonView(connection.compare("tiny.ipynb@v1", "tiny.ipynb@v3", {})).unexpected()) == 3
    bundle = view._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"} and bundle["text/plain"].startswith("A  tiny.ipynb@v1")
    assert "<!DOCTYPE html>" in view.result.report()[:200]
    table = RunsView(jupyter_mlx.runs("tiny.ipynb"), connection)._repr_mimebundle_()
    assert "tiny.ipynb@v2" in table["text/plain"] and "<table" in table["text/html"]


def test_the_widgets(handles: dict[str, object], capsys: pytest.CaptureFixture[str]) -> None:
    from jupyter_mlx.widgets import ComparisonView
    from jupyter_mlx.widgets.comparison import ComparisonWidget
    from jupyter_mlx.widgets.progress import RunProgress
    from jupyter_mlx.widgets.table import RunsTableWidget

    connection = transports.connect()
    progress = RunProgress(list(handles["sweep"]), handles["sweep"].id)
    assert progress.bar.value == progress.bar.max == 2 and progress.bar.bar_style == "success"
    assert progress.label.value.startswith("2/2 done · 2 succeeded")
    single = RunProgress([handles["run"]])
    assert single.label.value.startswith("succeeded · ") and single.cancel_button.disabled

    table = RunsTableWidget(jupyter_mlx.runs("tiny.ipynb"), connection)
    assert list(table.checks) == ["tiny.ipynb@v3", "tiny.ipynb@v2", "tiny.ipynb@v1"]
    assert table.compare_button.disabled
    table.checks["tiny.ipynb@v1"].value = True
    table.checks["tiny.ipynb@v3"].value = True
    assert not table.compare_button.disabled and table.selected == ["tiny.ipynb@v3", "tiny.ipynb@v1"]
    table.compare_button.click()  # the older run is A
    assert "A  tiny.ipynb@v1" in capsys.readouterr().out  # no kernel: the Output shows here

    widget = ComparisonWidget(ComparisonView(connection.compare("tiny.ipynb@v1", "tiny.ipynb@v2", {})))
    assert "mlx-summary" in widget.summary.value and widget.report.value == ""
    widget.report_button.click()
    assert widget.report.value.startswith("<iframe srcdoc=") and "tiny.ipynb@v2" in widget.report.value


def test_the_user_column_of_runs_older_ones_and_a_parameter_named_user() -> None:
    from jupyter_mlx.notebook_api import runs_frame

    def record(version: int, **fields: object) -> dict[str, object]:
        return {"id": f"{version:032x}", "ref": f"nb.ipynb@v{version}", "version": version, "status": "succeeded",
                "started_at": None, "duration": 1.0, "sweep_id": None, "parameters": {"user": "u", "C": version},
                "metrics": {"user": 0.5}, **fields}

    # v2 by alice; v1 recorded before users were (null), v0 from an older server (no "user" at all)
    frame = runs_frame([record(2, user="alice"), record(1, user=None), record(0)])
    assert list(frame.columns) == ["id", "version", "status", "started_at", "duration", "sweep_id", "user",
                                   "param:user", "C", "metric:user"]
    assert frame.loc["nb.ipynb@v2", "user"] == "alice" and frame["user"].isna().tolist() == [False, True, True]
    assert frame["param:user"].tolist() == ["u"] * 3 and frame["metric:user"].tolist() == [0.5] * 3
