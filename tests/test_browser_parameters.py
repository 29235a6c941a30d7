"""Every parameter's value in the Runs panel (issue 13, items 9 and 11), in a real JupyterLab and Chromium.

A notebook whose ``scale`` default is an expression, run with ``max_iter=200`` (v1) and with the
defaults (v2); then its ``max_iter`` default changes to 300, as notebooks do. The list rows,
the compare view, the metrics table and Restore Parameters must all see the value each run used.
Screenshots go to ``test-artifacts/``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from notebooks import code_cell, write_notebook
from test_browser import lab, open_panel, page, record_run, screenshot  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser

RUN = '.jp-mlx-run[data-ref="train.ipynb@v{}"]'


def write_train(path: Path, max_iter: int) -> Path:
    """``curve`` moves at steps 1 and 3 when max_iter is not 100; its last value never does."""
    return write_notebook(
        path,
        code_cell("import math"),
        code_cell(f"C = 1.0\nmax_iter = {max_iter}  # iterations\nscale = math.pi  # an expression",
                  tags=["parameters"]),
        code_cell(
            "from jupyter_mlx import log_metric\n"
            "log_metric('score', C * max_iter)\n"
            "curve = [0.5, 0.6, 0.7, 0.8, 0.85] if max_iter == 100 else [0.4, 0.6, 0.75, 0.8, 0.85]\n"
            "for step, value in enumerate(curve, start=1):\n"
            "    log_metric('curve', value, step=step)\n"
            "print('scale', round(scale, 3), type(scale).__name__)"
        ),
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("parameters-project")
    write_train(root / "train.ipynb", max_iter=100)
    record_run(root, "train.ipynb", "max_iter", "200")
    record_run(root, "train.ipynb")
    write_train(root / "train.ipynb", max_iter=300)  # the default changed since
    return root


def show_train(page: Any) -> Any:
    panel = open_panel(page)
    panel.locator(".jp-mlx-filter select").select_option("train.ipynb")
    panel.locator(".jp-mlx-count", has_text="2 runs").wait_for()
    return panel


def params_of(panel: Any, version: int) -> str:
    return panel.locator(f"{RUN.format(version)} .jp-mlx-run-params .jp-mlx-run-value").inner_text()


def test_rows_compare_and_metrics_see_every_value(lab: dict[str, Any], page: Any) -> None:  # noqa: F811
    panel = show_train(page)
    # the compact row: what differs from today's defaults (v2 ran with the old default, 100)
    page.wait_for_function(
        """() => document.querySelector('#jupyter-mlx-panel .jp-mlx-run[data-ref="train.ipynb@v2"] .jp-mlx-run-params')
                 ?.textContent.includes('max_iter=100')"""
    )
    assert params_of(panel, 1) == "max_iter=200" and params_of(panel, 2) == "max_iter=100"

    panel.locator(f"{RUN.format(2)} .jp-mlx-run-when").click()
    panel.locator(f"{RUN.format(1)} .jp-mlx-run-when").click(modifiers=["Control"])
    panel.locator(".jp-mlx-compare-button button").click()
    view = page.locator(".jp-mlx-compare")
    view.locator(".jp-mlx-compare-header").wait_for(timeout=30_000)
    parameters = view.locator(".jp-mlx-parameters")
    # a default against an override is a change, never "removed"
    assert parameters.locator('tr[data-name="max_iter"] td').all_inner_texts()[:3] == [
        "max_iter", "200", "100 (default)"]
    assert "removed" not in parameters.inner_text()
    parameters.locator(".jp-mlx-show-all").click()
    assert parameters.locator('tr[data-name="scale"] td').all_inner_texts()[:3] == [
        "scale", "math.pi (default expression)", "math.pi (default expression)"]
    assert parameters.locator('tr[data-name="C"] td').all_inner_texts()[:3] == ["C", "1 (default)", "1 (default)"]
    # item 11: the series changed while its last value did not
    curve = view.locator('.jp-mlx-metrics tr[data-name="curve"] td').all_inner_texts()
    assert curve[1] == curve[2] and curve[5] == "changed at steps 1, 3 (of 5)"
    screenshot(page, "compare-parameters.png")

    panel.locator(".jp-mlx-metrics-button .jp-ToolbarButtonComponent").click()
    table = page.locator(".jp-mlx-metrics-view .jp-mlx-metrics-table")
    table.wait_for()
    headers = table.locator("th").all_inner_texts()
    assert {"C", "max_iter", "scale"} <= set(headers)
    by_ref = {row.get_attribute("data-ref"): row.locator("td").all_inner_texts() for row in table.locator("tbody tr").all()}
    column = headers.index("C")
    assert [cells[column] for cells in by_ref.values()] == ["1", "1"]  # the default is a value in every row
    assert by_ref["train.ipynb@v2"][headers.index("max_iter")] == "100"


def test_restore_parameters_runs_again_with_the_values_the_run_used(lab: dict[str, Any], page: Any) -> None:  # noqa: F811
    panel = show_train(page)
    panel.locator(RUN.format(2)).click(button="right")
    page.locator(".lm-Menu-item", has_text="Restore Parameters").click()
    dialog = page.locator(".jp-mlx-launch-dialog")
    dialog.locator('input[name="max_iter"]').wait_for()
    assert "restored from train.ipynb@v2" in dialog.inner_text()
    # the value v2 used (the default of its day), not today's 300; the expression stays the notebook's
    assert dialog.locator('input[name="max_iter"]').input_value() == "100"
    assert dialog.locator('input[name="C"]').input_value() == "1"
    scale = dialog.locator('input[name="scale"]')
    assert scale.input_value() == "" and scale.get_attribute("placeholder") == "default: math.pi"
    screenshot(page, "restore-parameters-expression.png")
    dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
    dialog.wait_for(state="detached")
    panel.locator(f'{RUN.format(3)}[data-status="succeeded"]').wait_for(timeout=90_000)

    from jupyter_mlx.service import RunService

    service = RunService(lab["project"])
    try:
        v3 = service.get_run("train.ipynb@v3")
        assert v3.parameters == {"C": 1.0, "max_iter": 100, "scale": "math.pi"} and v3.overridden == ["max_iter"]
        output = service.executed_notebook("train.ipynb@v3")["cells"][-1]["outputs"][-1]["text"]
        assert output == "scale 3.142 float\n"  # the expression ran as code, it was not sent as text
    finally:
        service.close()
