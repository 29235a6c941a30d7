"""The Runs panel with many runs, run actions and multi-run views, in a real JupyterLab and Chromium.

Reuses test_browser.py's fixtures with a project of its own: 1,200 recorded runs (seeded
through the store, as in ``benchmarks/bench_list.py``) beside real runs of a tiny notebook and
a failing one. Covers the virtualized list with its filter and sort, a failed run opening at
its failing cell, Restore Parameters, the metrics of several runs, baseline approval and check
in the compare view, and the dark theme. Screenshots go to ``test-artifacts/``.
"""
from __future__ import annotations

import getpass
import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from notebooks import write_failing, write_tiny
from test_browser import lab, open_panel, page, record_run, screenshot  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser

SEEDED = 1200
TINY_RUNS = 4
RUNS = ".jp-mlx-run[data-id]"  # in the panel


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1,200 seeded runs, tiny.ipynb@v1..v4 (a sweep of x = 1..4) and a failed nb/failing.ipynb@v1."""
    root = tmp_path_factory.mktemp("browser-runs")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    with pytest.MonkeyPatch.context() as patch:  # the benchmarks' harness extends PYTHONPATH: undone after
        patch.setenv("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
        try:
            from bench_list import populate
        finally:
            sys.path.pop(0)
    from jupyter_mlx.service import RunService

    service = RunService(root)
    try:
        populate(service.store, SEEDED)
    finally:
        service.close()
    write_tiny(root / "tiny.ipynb")
    write_failing(root / "nb" / "failing.ipynb")
    record_run(root, "nb/failing.ipynb", "n", "7", status=1)
    argv = [sys.executable, "-m", "jupyter_mlx.cli", "--root", str(root), "sweep", "tiny.ipynb", "-p", "x", "1,2,3,4"]
    done = subprocess.run(argv, cwd=root, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    return root


def choose_notebook(panel: Any, notebook: str, count: int) -> None:
    panel.locator(".jp-mlx-filter select").select_option(notebook)
    panel.locator(".jp-mlx-count", has_text=f"{count} run").wait_for()


def params_of_rows(panel: Any) -> list[str]:
    return panel.locator(".jp-mlx-run[data-id] .jp-mlx-run-params .jp-mlx-run-value").all_inner_texts()


def test_the_list_is_virtualized_filtered_and_sorted(lab: dict[str, Any], page: Any) -> None:
    panel = open_panel(page)
    total = SEEDED + TINY_RUNS + 1
    panel.locator(".jp-mlx-count", has_text=f"{total} runs").wait_for()
    rendered = panel.locator(".jp-mlx-run").count()
    assert 0 < rendered < 60, f"{rendered} rows in the DOM for {total} runs: the list is not virtualized"

    # Scroll to the end: the last rows load (their pages are fetched on demand).
    panel.locator(".jp-mlx-scroller").evaluate("node => { node.scrollTop = node.scrollHeight; }")
    page.wait_for_function(
        """total => Array.from(document.querySelectorAll('#jupyter-mlx-panel .jp-mlx-run[data-id]'))
                    .some(row => Number(row.dataset.index) === total - 1)""",
        arg=total,
    )
    assert panel.locator(".jp-mlx-run").count() < 60
    screenshot(page, "runs-scrolled.png")

    # One notebook; a filter on a parameter; then sorted by a metric, lowest first.
    choose_notebook(panel, "tiny.ipynb", TINY_RUNS)
    search = panel.locator(".jp-mlx-search-input")
    search.fill("x>2")
    panel.locator(".jp-mlx-count", has_text="2 runs").wait_for()
    assert sorted(params_of_rows(panel)) == ["x=3", "x=4"]
    search.fill("")
    panel.locator(".jp-mlx-count", has_text=f"{TINY_RUNS} runs").wait_for()
    panel.locator(".jp-mlx-sort select").select_option("metrics.score")
    page.wait_for_function(
        """() => document.querySelector('#jupyter-mlx-panel .jp-mlx-run[data-id] .jp-mlx-run-metrics')
                 ?.textContent.includes('score=8')"""
    )  # descending: x=4 (score 8) first, and the sorted metric shown first
    panel.locator(".jp-mlx-order").click()
    page.wait_for_function(
        """() => document.querySelector('#jupyter-mlx-panel .jp-mlx-run[data-id]')?.dataset.ref === 'tiny.ipynb@v1'"""
    )
    # rows show only the parameters a run changed: x=1 is the notebook's default
    assert params_of_rows(panel) == ["(defaults)", "x=2", "x=3", "x=4"]
    # and who ran each (the sweep from the CLI: the OS user)
    assert panel.locator(f"{RUNS} .jp-mlx-run-user").all_inner_texts() == [f"by {getpass.getuser()}"] * 4
    screenshot(page, "runs-sorted.png")

    # A bad filter: the server's message next to the box, the list keeps what it showed.
    search.fill("x>>2")
    problem = panel.locator(".jp-mlx-filter-error")
    problem.wait_for(state="visible")
    page.wait_for_function(
        "() => document.querySelector('#jupyter-mlx-panel .jp-mlx-filter-error').textContent.length > 0"
    )
    assert "x>>2" in problem.inner_text()
    page.wait_for_function(  # the runs of the last good query again, under the message
        "() => document.querySelectorAll('#jupyter-mlx-panel .jp-mlx-run[data-id]').length === 4"
    )
    assert params_of_rows(panel) == ["(defaults)", "x=2", "x=3", "x=4"]
    assert "x>>2" in problem.inner_text()
    screenshot(page, "runs-bad-filter.png")

    # user=NAME: the server's filter; the seeded runs (recorded before users were) have none
    search.fill(f"user={getpass.getuser()}")
    panel.locator(".jp-mlx-count", has_text=f"{TINY_RUNS} runs").wait_for()
    problem.wait_for(state="hidden")
    choose_notebook(panel, "", TINY_RUNS + 1)  # every notebook: the failed run too


def test_a_failed_run_opens_at_its_failing_cell_and_restores_parameters(page: Any) -> None:
    panel = open_panel(page)
    choose_notebook(panel, "nb/failing.ipynb", 1)
    failure = panel.locator(".jp-mlx-run-failure")
    assert "ValueError: bad n=7" in failure.inner_text()
    failure.click()
    view = page.locator(".jp-mlx-run-notebook-view")
    failed = view.locator(".jp-mlx-failed-cell")
    failed.wait_for()
    assert "raise ValueError" in failed.inner_text()
    assert "ValueError: bad n=7" in failed.inner_text()  # the traceback output, rendered
    page.wait_for_function(
        """() => { const cell = document.querySelector('.jp-mlx-failed-cell').getBoundingClientRect();
                   const view = document.querySelector('.jp-mlx-run-notebook-view').getBoundingClientRect();
                   return cell.top < view.bottom && cell.bottom > view.top; }"""
    )
    header = view.locator(".jp-mlx-run-view-header")
    assert "nb/failing.ipynb@v1" in header.inner_text()
    assert "Failed in cell" in header.inner_text()
    assert view.locator(".jp-mlx-run-view-meta").inner_text().endswith(f" · by {getpass.getuser()}")  # the CLI's
    assert view.locator(".jp-mlx-executed-notebook .jp-Cell").count() >= 4  # with the injected cell
    screenshot(page, "run-notebook-failed.png")

    view.locator(".jp-mlx-restore").click()
    dialog = page.locator(".jp-mlx-launch-dialog")
    dialog.locator('input[name="n"]').wait_for()
    assert dialog.locator('input[name="n"]').input_value() == "7"
    assert "restored from nb/failing.ipynb@v1" in dialog.inner_text()
    screenshot(page, "run-restore-parameters.png")
    dialog.locator(".jp-mod-reject").click()

    # The row's context menu offers the same actions.
    panel.locator(RUNS).first.click(button="right")
    menu = page.locator(".lm-Menu")
    assert "Open Executed Notebook" in menu.inner_text()
    assert "Restore Parameters" in menu.inner_text()
    page.keyboard.press("Escape")


def select_rows(panel: Any, count: int) -> None:
    rows = panel.locator(RUNS)
    rows.nth(0).locator(".jp-mlx-run-notebook").click()
    for index in range(1, count):
        rows.nth(index).locator(".jp-mlx-run-notebook").click(modifiers=["Control"])
    panel.locator(".jp-mlx-count", has_text=f"{count} selected").wait_for()


def show_metric(page: Any, metric: str) -> None:
    """Chart ``metric`` and wait until both charts (against x, and its series) are drawn."""
    page.locator('.jp-mlx-metrics-view select[aria-label="Metric"]').select_option(metric)
    page.wait_for_function(
        """() => { const images = document.querySelectorAll('.jp-mlx-metrics-view .jp-mlx-chart img');
                   return images.length === 2 && Array.from(images).every(i => i.complete && i.naturalWidth > 0); }"""
    )


def test_metrics_table_and_charts_of_selected_runs(page: Any) -> None:
    panel = open_panel(page)
    choose_notebook(panel, "tiny.ipynb", TINY_RUNS)
    select_rows(panel, 3)
    panel.locator(".jp-mlx-metrics-button .jp-ToolbarButtonComponent").click()
    view = page.locator(".jp-mlx-metrics-view")
    table = view.locator(".jp-mlx-metrics-table")
    table.wait_for()
    assert table.locator("tbody tr").count() == 3
    headers = table.locator("th").all_inner_texts()
    assert headers[:4] == ["run", "status", "duration", "x"]
    assert "score" in headers and "loss" in headers
    assert table.locator("th.jp-mlx-varying").inner_text() == "x"
    # score was logged once per run: a chart against x, and the reason there is no series
    view.locator(".jp-mlx-chart-by img").wait_for()
    assert "once per run" in view.locator(".jp-mlx-chart-series").inner_text()
    show_metric(page, "loss")  # logged at two steps: both charts

    # Sorting by a column: click the score header twice (descending, then ascending).
    score = table.locator('th[data-key="metric:score"]')
    score.click()
    first = table.locator("tbody tr").first.get_attribute("data-ref")
    score.click()
    assert table.locator("tbody tr").last.get_attribute("data-ref") == first
    screenshot(page, "runs-metrics.png")


def test_baseline_approve_and_check_from_the_compare_view(lab: dict[str, Any], page: Any) -> None:
    panel = open_panel(page)
    choose_notebook(panel, "tiny.ipynb", TINY_RUNS)
    select_rows(panel, 2)  # the newest two: x=4 (v4) and x=3 (v3) in the default order
    panel.locator(".jp-mlx-compare-button .jp-ToolbarButtonComponent").click()
    compare = page.locator(".jp-mlx-compare-widget")
    compare.locator(".jp-mlx-verdict").wait_for()
    label = compare.locator(".jp-mlx-baseline-label")
    label.wait_for()
    page.wait_for_function("() => !document.querySelector('.jp-mlx-baseline-label').textContent.includes('…')")

    compare.locator(".jp-mlx-approve-baseline").click()
    page.locator(".Toastify__toast", has_text="is now the baseline of tiny.ipynb").wait_for()
    assert label.inner_text() == "Baseline: v4"

    compare.locator(".jp-mlx-check-baseline").click()
    page.locator(".Toastify__toast", has_text="tiny.ipynb@v4 passes the check against the baseline tiny.ipynb@v4").wait_for()

    # Approve v3 as the baseline instead: checking v4 against it fails, and says what changed.
    request = urllib.request.Request(
        f"{lab['base']}/mlx/baselines",
        data=json.dumps({"run": "tiny.ipynb@v3"}).encode(),
        headers={"Authorization": f"token {lab['token']}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201
    compare.locator(".jp-mlx-check-baseline").click()
    toast = page.locator(".Toastify__toast", has_text="fails the check against tiny.ipynb@v3")
    toast.wait_for()
    assert "unexpected change" in toast.inner_text()
    assert compare.locator(".jp-mlx-baseline-label").inner_text() == "Baseline: v3"
    page.wait_for_timeout(600)  # the toast's slide-in
    screenshot(page, "compare-baseline-check.png")


def choose_theme(page: Any, theme: str) -> None:
    """Settings > Theme > ``theme``, as a user would."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Settings").click()
    page.locator(".lm-Menu-item").filter(has_text=re.compile(r"^Theme$")).hover()
    page.get_by_role("menuitem", name=theme, exact=True).click()


def test_the_panel_and_views_follow_the_dark_theme(page: Any) -> None:
    choose_theme(page, "JupyterLab Dark")
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
    panel = open_panel(page)
    choose_notebook(panel, "tiny.ipynb", TINY_RUNS)
    select_rows(panel, 3)
    panel.locator(".jp-mlx-metrics-button .jp-ToolbarButtonComponent").click()
    page.locator(".jp-mlx-metrics-view .jp-mlx-chart-by img").wait_for()
    show_metric(page, "loss")
    luminance = """selector => { const style = getComputedStyle(document.querySelector(selector));
        const channels = (style.backgroundColor.match(/[\\d.]+/g) || []).map(Number);
        const text = (style.color.match(/[\\d.]+/g) || []).map(Number);
        const l = c => (0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]) / 255;
        return { background: l(channels), text: l(text) }; }"""
    for selector in ("#jupyter-mlx-panel .jp-mlx-runs", ".jp-mlx-metrics-view"):
        colors = page.evaluate(luminance, selector)
        assert colors["background"] < 0.3 < colors["text"], (selector, colors)
    screenshot(page, "runs-dark.png")
    # back to the light theme: the settings outlive this page
    choose_theme(page, "JupyterLab Light")
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'true'")
