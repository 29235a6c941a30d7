"""The ``%mlx`` magic's widgets in a real JupyterLab, driven in a real Chromium (Playwright).

Reuses test_browser.py's JupyterLab and Chromium fixtures with a project of its own. A driver
notebook runs ``%mlx run/sweep/runs/diff`` through the UI (Run All Cells); its kernel runs under
the lab, so the magic goes through the lab's jupyter_mlx service and the runs show in the panel.
Screenshots go to ``test-artifacts/widgets-*.png``.
"""
from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from notebooks import code_cell, notebook, write_notebook, write_tiny
from test_browser import ARTIFACTS, lab, open_panel, page  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser

DRIVER = [
    "%load_ext jupyter_mlx",
    "%mlx run steps.ipynb -p seconds 0.5",
    "%mlx run tiny.ipynb -p x 3",
    "%mlx sweep tiny.ipynb -p x 1,2",
    "%mlx runs tiny.ipynb",
    "%mlx diff tiny.ipynb@v1 tiny.ipynb@v3",
]
LOAD, STEPS, RUN, SWEEP, RUNS, DIFF = range(len(DRIVER))
BUSY_PROMPT = ("() => [...document.querySelectorAll('.jp-Notebook .jp-InputArea-prompt')]"
               ".some(p => p.textContent.includes('*'))")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny.ipynb (x -> score = 2x), steps.ipynb (5 cells of `seconds` each: progress to see) and
    driver.ipynb (the magic, not run yet). No runs yet."""
    root = tmp_path_factory.mktemp("browser-widgets")
    write_tiny(root / "tiny.ipynb")
    write_notebook(
        root / "steps.ipynb",
        code_cell("seconds = 1.0", tags=["parameters"]),
        *[code_cell(f"import time\ntime.sleep(seconds)\nfrom jupyter_mlx import log_metric\n"
                    f"log_metric('accuracy', {0.5 + i / 10})") for i in range(4)],
    )
    (root / "driver.ipynb").write_text(json.dumps(notebook(*[code_cell(source) for source in DRIVER]), indent=1))
    return root


def rest(lab: dict[str, Any], method: str, path: str) -> Any:
    request = urllib.request.Request(f"{lab['base']}/{path}", method=method,
                                     headers={"Authorization": f"token {lab['token']}"})
    with urllib.request.urlopen(request, timeout=15) as response:
        text = response.read()
    return json.loads(text) if text else None


def shoot(target: Any, name: str) -> None:
    """An element's screenshot (small PNGs, for the docs too)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page = getattr(target, "page", target)
    page.mouse.move(5, 700)  # no hover highlight in the picture
    target.screenshot(path=str(ARTIFACTS / name), animations="disabled")


def run_all(page: Any, first_prompt: Any) -> None:
    """Run > Run All Cells; again if the notebook was not ready to take it (the first cell did not start)."""
    for _attempt in range(3):
        dialog = page.locator(".jp-Dialog")
        if dialog.count():  # once seen under load (the menu click timed out behind it): say which one
            shoot(page, "widgets-dialog.png")
            raise AssertionError(f"a JupyterLab dialog covers the notebook: {dialog.first.inner_text()[:300]!r}")
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        try:
            page.wait_for_function("p => /\\[(\\*|\\d+)\\]/.test(p.textContent)", arg=first_prompt.element_handle(),
                                   timeout=5_000)
            return
        except Exception:
            page.keyboard.press("Escape")
    raise AssertionError("Run All Cells did not start the driver notebook")


def test_the_magic_widgets_in_jupyterlab(lab: dict[str, Any], page: Any) -> None:
    page.set_viewport_size({"width": 1280, "height": 1000})
    page.goto(f"{lab['base']}/lab/workspaces/widgets/tree/driver.ipynb?token={lab['token']}")
    try:
        cells = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-CodeCell")
        cells.nth(len(DRIVER) - 1).wait_for(timeout=30_000)
        page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle'], "
                     ".jp-Toolbar-kernelStatus[data-status='idle']").first.wait_for(timeout=30_000)
        run_all(page, cells.first.locator(".jp-InputArea-prompt"))

        # -- the progress widget of the running run, then its summary
        steps = cells.nth(STEPS)
        label = steps.locator(".widget-label", has_text=re.compile(r"running cell \d/\d"))
        label.wait_for(timeout=60_000)
        assert steps.locator(".widget-hprogress, .widget-progress").count() >= 1
        assert "steps.ipynb@v1" in steps.locator(".widget-html").first.inner_text()
        cancel = steps.locator("button", has_text="Interrupt the kernel to cancel")
        assert cancel.is_disabled()  # the cell blocks: the kernel's stop button cancels
        shoot(steps.locator(".jp-OutputArea-output").last, "widgets-progress.png")
        summary = steps.locator(".jupyter-mlx-run")
        summary.wait_for(timeout=60_000)  # the widget gave way to the run's summary
        text = summary.inner_text()
        assert "steps.ipynb@v1" in text and "succeeded" in text
        assert re.search(r"metrics\s+accuracy=0\.8", text), text
        assert steps.locator(".widget-hprogress, .widget-progress").count() == 0
        shoot(steps.locator(".jp-OutputArea-output").last, "widgets-run-summary.png")
        output = steps.locator(".jp-Cell-outputArea").inner_text()
        assert output.startswith(f"via Jupyter server {lab['base']}/"), f"{output}\n{lab['log'].read_text()[-3000:]}"

        # -- every cell ran, through the lab's service
        page.wait_for_function(f"() => !({BUSY_PROMPT})()", timeout=120_000)
        for index in (RUN, SWEEP, RUNS, DIFF):
            cell = cells.nth(index)
            assert cell.locator(".jp-OutputArea-executeResult, .jp-OutputArea-output").count() > 0
            assert "via Jupyter server" in cell.locator(".jp-Cell-outputArea").inner_text()
            assert cell.locator(".jp-RenderedText[data-mime-type='application/vnd.jupyter.stderr']").count() == 0, \
                cell.locator(".jp-Cell-outputArea").inner_text()
        assert "tiny.ipynb@v1 succeeded" in cells.nth(RUN).locator(".jupyter-mlx-run").inner_text()
        sweep = cells.nth(SWEEP).locator(".jupyter-mlx-sweep").inner_text()
        assert re.search(r"sweep \w+: 2 runs of tiny.ipynb: 2 succeeded", sweep), sweep
        shoot(cells.nth(SWEEP).locator(".jp-OutputArea-output").last, "widgets-sweep-summary.png")

        # -- the runs table: select two rows, Compare
        table = cells.nth(RUNS)
        grid = table.locator(".widget-gridbox")
        grid.wait_for()
        grid_text = grid.inner_text()
        for ref in ("tiny.ipynb@v3", "tiny.ipynb@v2", "tiny.ipynb@v1"):
            assert ref in grid_text
        assert "score" in grid_text and "x" in grid_text
        checks = grid.locator(".widget-checkbox input[type=checkbox]")
        assert checks.count() == 3
        compare = table.locator("button", has_text="Compare")
        assert compare.is_disabled()
        checks.nth(0).check()  # v3
        assert compare.is_disabled()
        checks.nth(2).check()  # v1
        page.wait_for_function("b => !b.disabled", arg=compare.element_handle(), timeout=10_000)
        assert "compare the older with the newer" in table.inner_text()
        shoot(table.locator(".jp-OutputArea-output").last, "widgets-runs-table.png")
        compare.click()
        compared = table.locator(".mlx-summary")
        compared.wait_for(timeout=30_000)
        compared_text = compared.inner_text()
        assert "tiny.ipynb@v1" in compared_text and "tiny.ipynb@v3" in compared_text
        assert "score" in compared_text
        shoot(table.locator(".jp-OutputArea-output").last, "widgets-comparison-from-table.png")

        # -- the diff: the comparison widget; the full report on request
        diff = cells.nth(DIFF)
        diff_summary = diff.locator(".mlx-summary")
        diff_summary.wait_for()
        diff_text = diff_summary.inner_text()
        assert "tiny.ipynb@v1" in diff_text and "tiny.ipynb@v3" in diff_text and "score" in diff_text
        shoot(diff.locator(".jp-OutputArea-output").last, "widgets-comparison.png")
        diff.locator("button", has_text="Show cells and outputs").click()
        frame = diff.locator("iframe")
        frame.wait_for(timeout=30_000)
        report = diff.frame_locator("iframe").locator("body")
        report.wait_for(timeout=30_000)
        assert "tiny.ipynb@v3" in report.inner_text()
        shoot(diff.locator(".jp-OutputArea-output").last, "widgets-report.png")

        # -- the runs went through the lab's service: its panel lists them
        panel = open_panel(page)
        panel.locator("select[aria-label='Notebook']").select_option("")  # it follows the open notebook
        for ref in ("steps.ipynb@v1", "tiny.ipynb@v1", "tiny.ipynb@v2", "tiny.ipynb@v3"):
            row = panel.locator(f'.jp-mlx-run[data-ref="{ref}"]')
            row.wait_for(timeout=15_000)
            assert row.get_attribute("data-status") == "succeeded"
        shoot(page, "widgets-panel.png")
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "widgets-failure.png"))
        raise
    finally:
        for kernel in rest(lab, "GET", "api/kernels"):
            rest(lab, "DELETE", f"api/kernels/{kernel['id']}")
    assert rest(lab, "GET", "api/kernels") == []
