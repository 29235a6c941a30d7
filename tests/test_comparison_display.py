"""How ``jupyter_mlx.compare(a, b)`` (a ``Comparison``: ``widgets.ShownComparison``) displays: the
comparison widget in a kernel, its summary as text/html and text/plain elsewhere (no kernel,
``$JUPYTER_MLX_WIDGETS=0``)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

import jupyter_mlx
from jupyter_mlx import transport as transports
from jupyter_mlx.widgets import WIDGET_VIEW

from notebooks import write_tiny


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """tiny.ipynb@v1 (x=3) and @v2 (x=5), run in-process (no Jupyter server to find)."""
    root = tmp_path_factory.mktemp("comparison-display")
    write_tiny(root / "tiny.ipynb")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path_factory.mktemp("no-servers")))
        patch.delenv("JUPYTER_MLX_TRANSPORT", raising=False)
        patch.delenv("JUPYTER_MLX_WIDGETS", raising=False)
        patch.chdir(root)
        for x in (3, 5):
            assert jupyter_mlx.run("tiny.ipynb", {"x": x}, wait=True, timeout=120).status == "succeeded"
        transports.close_local()
        yield root


def test_importing_the_comparison_stays_cheap() -> None:
    probe = ("import sys, jupyter_mlx.diff.comparison; print(sorted(m for m in ('ipywidgets', 'IPython', "
             "'jupyter_mlx.widgets', 'jupyter_mlx.transport', 'jupyter_mlx.diff.report') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout == "[]\n", done.stderr


def test_out_of_a_kernel_the_summary_as_text_and_html(in_process_ipython: None, project: Path) -> None:
    from IPython.core.formatters import format_display_data

    comparison = jupyter_mlx.compare("tiny.ipynb@v1", "tiny.ipynb@v2")
    bundle = comparison._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"}
    assert bundle["text/plain"].startswith("A  tiny.ipynb@v1") and "tiny.ipynb@v2" in bundle["text/plain"]
    assert bundle["text/html"] == comparison._repr_html_() and "mlx-summary" in bundle["text/html"]
    assert comparison._repr_mimebundle_(include={"text/plain"}).keys() == {"text/plain"}
    assert comparison._repr_mimebundle_(exclude={"text/plain"}).keys() == {"text/html"}

    data, _ = format_display_data(comparison)  # what IPython shows: the summary, not the dataclass repr
    assert data["text/plain"] == bundle["text/plain"] and data["text/html"] == bundle["text/html"]
    assert WIDGET_VIEW not in data


def test_a_failing_view_falls_back_to_the_html_summary(in_process_ipython: None, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from IPython.core.formatters import format_display_data

    comparison = jupyter_mlx.compare("tiny.ipynb@v1", "tiny.ipynb@v2")

    def broken(self: Any) -> str:
        raise RuntimeError("no text today")

    monkeypatch.setattr("jupyter_mlx.widgets.ComparisonView.text", broken)
    assert comparison._repr_mimebundle_() is None
    data, _ = format_display_data(comparison)
    assert "mlx-summary" in data["text/html"]


def test_in_a_kernel_the_comparison_widget(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))
    code = "import jupyter_mlx\njupyter_mlx.compare('tiny.ipynb@v1', 'tiny.ipynb@v2')"
    driver = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(code),
        nbformat.v4.new_code_cell("%env JUPYTER_MLX_WIDGETS=0\n" + code),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    NotebookClient(driver, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(project)}}).execute()
    widget, plain = (cell.outputs[-1] for cell in driver.cells)

    assert widget["output_type"] == "execute_result"
    assert set(widget["data"]) == {"text/plain", "text/html", WIDGET_VIEW}
    assert widget["data"]["text/plain"].startswith("A  tiny.ipynb@v1")
    assert "mlx-summary" in widget["data"]["text/html"]
    model = widget["data"][WIDGET_VIEW]["model_id"]
    state = driver.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    assert state[model]["model_name"] == "VBoxModel"  # the ComparisonWidget

    assert set(plain["data"]) == {"text/plain", "text/html"}  # $JUPYTER_MLX_WIDGETS=0: the summary only
    assert plain["data"]["text/html"] == widget["data"]["text/html"]
