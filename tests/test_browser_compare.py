"""Comparing two runs in a real JupyterLab, driven in a real Chromium (Playwright).

Reuses test_browser.py's JupyterLab and Chromium fixtures with a project of its own: two runs of
a small notebook with a chart, a table and metrics, recorded with different parameters.
Screenshots go to ``test-artifacts/``.
"""
from __future__ import annotations

import getpass
import json
import re
from pathlib import Path
from typing import Any

import pytest

from notebooks import code_cell, write_notebook
from test_browser import lab, open_panel, page, record_run, screenshot  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser

COMPARE = ".jp-mlx-compare"


def write_chart(path: Path) -> Path:
    """Parameters scale and label; logs slope and area, prints, defines a function (the state its
    run captures holds scale), draws a line and shows a table."""
    return write_notebook(
        path,
        code_cell("scale = 1.0\nlabel = 'base'", tags=["parameters"]),
        code_cell(
            "import matplotlib.pyplot as plt\n"
            "import pandas as pd\n"
            "from jupyter_mlx import log_metric"
        ),
        code_cell("log_metric('slope', scale)\nlog_metric('area', scale * 8)\nprint(f'slope {scale}')\n\n"
                  "def slope_at(x):\n    return scale * x"),
        code_cell(
            "fig, ax = plt.subplots(figsize=(4, 2.5), dpi=80)\n"
            "ax.plot(range(5), [scale * x for x in range(5)], marker='o')\n"
            "ax.set_ylim(0, 9); ax.set_title('a line')\n"
            "plt.show()"
        ),
        code_cell("pd.DataFrame({'x': range(3), 'y': [scale * i for i in range(3)]})"),
        code_cell("log_metric('steps', 5)\nprint('the same in both runs')"),
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """chart.ipynb@v1 (scale=1) and @v2 (scale=2), both with label=base."""
    root = tmp_path_factory.mktemp("compare-project")
    write_chart(root / "chart.ipynb")
    record_run(root, "chart.ipynb", "scale", "1", "label", "base")
    record_run(root, "chart.ipynb", "scale", "2", "label", "base")
    return root


def select_two_runs(page: Any) -> Any:
    """Click v2, Ctrl-click v1: two runs selected. Returns the panel."""
    panel = open_panel(page)
    v1 = panel.locator('.jp-mlx-run[data-ref="chart.ipynb@v1"]')
    v2 = panel.locator('.jp-mlx-run[data-ref="chart.ipynb@v2"]')
    v1.wait_for()
    v2.locator(".jp-mlx-run-when").click()
    assert v2.get_attribute("aria-selected") == "true"
    v1.locator(".jp-mlx-run-when").click(modifiers=["Control"])
    assert v1.get_attribute("aria-selected") == "true"
    assert v2.get_attribute("aria-selected") == "true"
    return panel


def wait_for_comparison(page: Any) -> Any:
    view = page.locator(COMPARE)
    view.locator(".jp-mlx-compare-header").wait_for(timeout=30_000)
    return view


def test_compare_two_selected_runs(lab: dict[str, Any], page: Any) -> None:  # noqa: F811
    panel = select_two_runs(page)
    button = panel.locator(".jp-mlx-compare-button button")
    assert button.is_enabled()
    button.click()
    view = wait_for_comparison(page)

    sides = view.locator(".jp-mlx-side")
    assert "chart.ipynb@v1" in sides.nth(0).inner_text()  # the older run is A
    assert "chart.ipynb@v2" in sides.nth(1).inner_text()
    # who ran each side (here the CLI: the OS user)
    assert sides.locator(".jp-mlx-side-user").all_inner_texts() == [f"by {getpass.getuser()}"] * 2
    assert "Unexpected changes" in view.locator(".jp-mlx-verdict").inner_text()

    parameters = view.locator(".jp-mlx-parameters")
    scale = parameters.locator('tr[data-name="scale"]')
    assert scale.locator("td").all_inner_texts() == ["scale", "1", "2"]
    assert parameters.locator('tr[data-name="label"]').count() == 0  # the same: on demand
    parameters.locator(".jp-mlx-show-all").click()
    assert parameters.locator('tr[data-name="label"]').count() == 1
    parameters.locator(".jp-mlx-show-all").click()

    slope = view.locator('.jp-mlx-metrics tr[data-name="slope"]')
    assert slope.get_attribute("data-judgement") == "changed"
    assert slope.locator("td").all_inner_texts()[:4] == ["slope", "1", "2", "+1 (+100.00%)"]
    assert view.locator('.jp-mlx-metrics tr[data-name="steps"]').count() == 0

    state = view.locator('.jp-mlx-state tr[data-name="scale"]')  # slope_at's captured state
    assert state.get_attribute("data-judgement") == "changed" and "different content" in state.inner_text()

    # Only changed cells by default: the imports and the unchanged print are hidden.
    assert view.locator(".jp-mlx-cell").count() == 4  # injected parameters, print, chart, table
    image = view.locator('.jp-mlx-output[data-kind="image"]')
    assert image.get_attribute("data-judgement") == "changed"
    for side in ("a", "b"):
        src = image.locator(f".jp-mlx-image-{side} img").get_attribute("src")
        assert src and src.startswith("data:image/png;base64,iVBOR")
    assert "of pixels changed" in image.locator(".jp-mlx-output-summary").inner_text()
    table = view.locator('.jp-mlx-output[data-kind="table"]')
    assert "2 cells changed" in table.inner_text()
    assert view.locator(".jp-mlx-source .jp-mlx-diff-add").first.inner_text() == "+ scale = 2.0"
    screenshot(page, "compare.png")  # the State section shows in it

    image.locator('button[data-mode="mask"]').click()
    mask = image.locator(".jp-mlx-image-mask img").get_attribute("src")
    assert mask and mask.startswith("data:image/png;base64,")
    image.scroll_into_view_if_needed()
    screenshot(page, "compare-mask.png")
    image.locator('button[data-mode="onion"]').click()
    assert image.locator(".jp-mlx-onion-slider").count() == 1
    image.scroll_into_view_if_needed()
    screenshot(page, "compare-onion.png")

    page.locator(".jp-mlx-only-changed input").uncheck()
    assert view.locator(".jp-mlx-cell").count() == 7
    page.locator(".jp-mlx-next-change").click()
    page.locator(".jp-mlx-next-change").click()
    assert view.locator(".jp-mlx-cell.jp-mlx-current").get_attribute("data-key") == "cell-3"

    with page.context.expect_page() as opened:
        page.locator(".jp-mlx-open-report").click()
    report = opened.value
    report.wait_for_load_state()
    assert "format=html" in report.url and "a=chart.ipynb%40v1" in report.url
    assert "chart.ipynb@v2" in report.content()


def test_compare_from_the_keyboard_shows_the_server_error(page: Any) -> None:  # noqa: F811
    error = {"error": "not_found", "message": "no run chart.ipynb@v1 in this project"}
    page.route(
        re.compile(r"/mlx/compare\?"),
        lambda route: route.fulfill(status=404, content_type="application/json", body=json.dumps(error)),
    )
    select_two_runs(page)
    page.keyboard.press("Control+Enter")
    message = page.locator(".jp-mlx-compare-error")
    message.wait_for()
    assert "Cannot compare chart.ipynb@v1 with chart.ipynb@v2" in message.inner_text()
    assert "no run chart.ipynb@v1 in this project" in message.inner_text()
    screenshot(page, "compare-error.png")


# Recorded by every page of the context before its own scripts run (a policy cannot stop it).
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', event => {
  window.__violations.push(`${event.effectiveDirective} ${event.blockedURI}`);
});
"""


def test_the_html_report_opened_from_the_panel_renders_under_its_policy(page: Any) -> None:  # noqa: F811
    """The "Open HTML report" tab shows the report as the file on disk shows it: its images load,
    its CSS applies, its script runs, and the browser reports no Content-Security-Policy
    violation (the API policy, ``default-src 'none'``, blocked all three)."""
    page.context.add_init_script(RECORD_VIOLATIONS)
    panel = select_two_runs(page)
    panel.locator(".jp-mlx-compare-button button").click()
    wait_for_comparison(page)
    console: list[str] = []
    page.context.on("page", lambda opened: opened.on("console", lambda m: console.append(f"{m.type}: {m.text}")))
    served: list[Any] = []
    page.context.on("response", lambda response: served.append(response) if "format=html" in response.url else None)
    with page.context.expect_page() as opened:
        page.locator(".jp-mlx-open-report").click()
    report = opened.value
    report.wait_for_load_state("load")
    assert "format=html" in report.url

    policy = served[0].header_value("content-security-policy")
    assert "img-src data:" in policy and "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    images = report.eval_on_selector_all(
        ".pair .side > img, .mask-fig img", "els => els.map(e => [e.complete, e.naturalWidth])"
    )
    assert len(images) >= 3 and all(done and width > 0 for done, width in images), images
    # report.css: the page's background, the header's white band, the verdict box
    assert report.evaluate("getComputedStyle(document.documentElement).backgroundColor") == "rgb(246, 248, 250)"
    assert report.evaluate("getComputedStyle(document.querySelector('.page-head')).backgroundColor") == "rgb(255, 255, 255)"
    # pandas' own style attribute on the table's header row is kept, and applies
    assert report.evaluate("getComputedStyle(document.querySelector('.html-out thead tr')).textAlign") == "right"
    # report.js ran: it marks the page, and "collapse all" closes every cell
    assert report.evaluate("document.documentElement.classList.contains('js')")
    report.locator('button[data-open="0"]').click()
    assert report.locator(".cell > details[open]").count() == 0
    assert report.evaluate("window.__violations") == []
    assert [line for line in console if "Content Security Policy" in line or line.startswith("error")] == []
    screenshot(report, "compare-report.png")
