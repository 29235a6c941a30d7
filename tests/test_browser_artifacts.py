"""A run's artifacts in a real JupyterLab, driven in a real Chromium (Playwright): the list, the
previews, the download, and the compare view's Artifacts section.

Reuses test_browser.py's JupyterLab and Chromium fixtures with a project of its own: a notebook
that reads ``data.txt`` and writes ``predictions.csv`` and ``fig.png``, run twice with another
``scale`` (one CSV cell and the picture differ) after ``data.txt`` changed. Screenshots go to
``test-artifacts/``.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from notebooks import code_cell, write_notebook
from test_browser import lab, open_panel, page, record_run, screenshot  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser

RUN_VIEW = ".jp-mlx-run-notebook-view"
COMPARE = ".jp-mlx-compare"


def write_predict(path: Path) -> Path:
    """Parameter scale; writes a 4-row predictions.csv (row 2 depends on scale) and a 120x80 PNG."""
    return write_notebook(
        path,
        code_cell("scale = 1", tags=["parameters"]),
        code_cell(
            "offset = int(open('data.txt').read())\n"
            "rows = [(i, i * 2 + offset) for i in range(4)]\n"
            "rows[2] = (2, 4 * scale + offset)\n"
            "with open('predictions.csv', 'w') as f:\n"
            "    f.write('id,pred\\n')\n"
            "    for i, p in rows:\n"
            "        f.write(f'{i},{p}\\n')"
        ),
        code_cell(
            "from PIL import Image, ImageDraw\n"
            "img = Image.new('RGB', (120, 80), 'white')\n"
            "draw = ImageDraw.Draw(img)\n"
            "draw.rectangle([10, 10, 10 + 20 * scale, 50], fill='steelblue')\n"
            "img.save('fig.png')"
        ),
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """predict.ipynb@v1 (scale=1) and @v2 (scale=2; data.txt changed between the runs, though not
    what the notebook computes from it)."""
    root = tmp_path_factory.mktemp("artifacts-project")
    write_predict(root / "predict.ipynb")
    (root / "data.txt").write_text("0")
    record_run(root, "predict.ipynb", "scale", "1")
    (root / "data.txt").write_text("00\n")
    record_run(root, "predict.ipynb", "scale", "2")
    return root


def open_run(page: Any, ref: str) -> Any:
    """Double-click the run's row: its executed notebook opens, with its artifacts. Returns the view."""
    panel = open_panel(page)
    row = panel.locator(f'.jp-mlx-run[data-ref="{ref}"]')
    row.wait_for()
    row.locator(".jp-mlx-run-when").dblclick()
    view = page.locator(RUN_VIEW)
    view.locator(".jp-mlx-artifact-row").first.wait_for(timeout=30_000)
    return view


def test_a_runs_artifacts_are_listed_previewed_and_downloaded(
    lab: dict[str, Any], page: Any, tmp_path: Path  # noqa: F811
) -> None:
    view = open_run(page, "predict.ipynb@v1")
    section = view.locator(".jp-mlx-run-artifacts")
    rows = section.locator(".jp-mlx-artifact-row")
    assert rows.count() == 2
    assert [rows.nth(i).get_attribute("data-path") for i in range(2)] == ["fig.png", "predictions.csv"]
    assert "text/csv" in rows.nth(1).inner_text()
    assert "image/png" in rows.nth(0).inner_text()
    assert "2 files" in section.locator(".jp-mlx-run-artifacts-count").inner_text()
    assert "its own folder" in section.locator(".jp-mlx-run-folder").inner_text()
    kernel = view.locator(".jp-mlx-run-view-kernel")  # the CLI ran it here, on a kernel of its own
    assert "started cold after " in kernel.inner_text() and "not forked" in kernel.get_attribute("title")

    # The CSV: a table built from the preview's rows.
    rows.nth(1).click()
    assert rows.nth(1).get_attribute("aria-selected") == "true"
    table = section.locator(".jp-mlx-artifact-preview .jp-mlx-artifact-table")
    table.wait_for()
    assert table.locator("th").all_inner_texts() == ["id", "pred"]
    cells = [row.locator("td").all_inner_texts() for row in table.locator("tbody tr").all()]
    assert cells == [["0", "0"], ["1", "2"], ["2", "4"], ["3", "6"]]
    assert "4 rows" in section.locator(".jp-mlx-artifact-preview").inner_text()
    screenshot(page, "artifacts-run-csv.png")

    # Download: the file under its own name, with the bytes the run wrote.
    with page.expect_download() as info:
        section.locator(".jp-mlx-artifact-download").click()
    download = info.value
    assert download.suggested_filename == "predictions.csv"
    target = tmp_path / "predictions.csv"
    download.save_as(target)
    assert target.read_bytes() == b"id,pred\n0,0\n1,2\n2,4\n3,6\n"

    # The image: from its bytes, drawn at its size.
    rows.nth(0).click()
    image = section.locator(".jp-mlx-artifact-preview img.jp-mlx-artifact-image")
    image.wait_for()
    page.wait_for_function(
        "() => document.querySelector('.jp-mlx-artifact-image')?.complete"
        " && document.querySelector('.jp-mlx-artifact-image').naturalWidth > 0"
    )
    assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [120, 80]
    assert image.get_attribute("src").startswith("blob:")
    with page.expect_download() as info:
        section.locator(".jp-mlx-artifact-download").click()
    png = tmp_path / "fig.png"
    info.value.save_as(png)
    assert info.value.suggested_filename == "fig.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    listed = json.loads(
        page.evaluate(
            """async ([base, token]) => {
                 const runs = await (await fetch(`${base}/mlx/runs?notebook=predict.ipynb&token=${token}`)).json();
                 const v1 = runs.runs.find(run => run.version === 1);
                 const files = await (await fetch(`${base}/mlx/runs/${v1.id}/artifacts?token=${token}`)).json();
                 return JSON.stringify(files.artifacts);
               }""",
            [lab["base"], lab["token"]],
        )
    )
    expected = {item["path"]: item["sha256"] for item in listed}
    assert hashlib.sha256(png.read_bytes()).hexdigest() == expected["fig.png"]
    assert hashlib.sha256(target.read_bytes()).hexdigest() == expected["predictions.csv"]
    screenshot(page, "artifacts-run-image.png")


def test_the_compare_view_shows_the_changed_artifacts_and_inputs(page: Any) -> None:  # noqa: F811
    panel = open_panel(page)
    v1 = panel.locator('.jp-mlx-run[data-ref="predict.ipynb@v1"]')
    v2 = panel.locator('.jp-mlx-run[data-ref="predict.ipynb@v2"]')
    v1.wait_for()
    v2.locator(".jp-mlx-run-when").click()
    v1.locator(".jp-mlx-run-when").click(modifiers=["Control"])
    panel.locator(".jp-mlx-compare-button button").click()
    view = page.locator(COMPARE)
    section = view.locator(".jp-mlx-section.jp-mlx-artifacts")
    section.wait_for(timeout=30_000)
    assert "2 of 2 differ" in section.locator("h3").inner_text()
    assert "2 artifacts changed" in view.locator(".jp-mlx-verdict").inner_text()

    csv = section.locator('.jp-mlx-artifact[data-path="predictions.csv"]')
    assert csv.get_attribute("data-judgement") == "changed"
    assert csv.locator(".jp-mlx-badge").inner_text() == "changed"
    assert "1 cell changed" in csv.locator(".jp-mlx-output-summary").inner_text()
    changed = csv.locator(".jp-mlx-table-changes tbody tr")
    assert changed.count() == 1
    assert changed.first.locator("td").all_inner_texts() == ["2", "pred", "4", "8"]

    image = section.locator('.jp-mlx-artifact[data-path="fig.png"]')
    assert image.get_attribute("data-judgement") == "changed"
    assert "of pixels changed" in image.locator(".jp-mlx-output-summary").inner_text()
    figures = image.locator(".jp-mlx-images .jp-mlx-figure img")
    figures.nth(1).wait_for()
    page.wait_for_function(
        """() => [...document.querySelectorAll('.jp-mlx-artifact[data-path="fig.png"] .jp-mlx-figure img')]
                   .every(img => img.complete && img.naturalWidth === 120)"""
    )
    assert [figures.nth(i).get_attribute("alt") for i in range(2)] == ["A", "B"]
    assert all(figures.nth(i).get_attribute("src").startswith("blob:") for i in range(2))

    inputs = section.locator(".jp-mlx-inputs")
    assert "1 project file changed" in inputs.inner_text()
    assert inputs.locator('li[data-path="data.txt"]').get_attribute("data-status") == "changed"
    section.scroll_into_view_if_needed()
    screenshot(page, "artifacts-compare.png")

    image.locator('.jp-mlx-image-mode[data-mode="mask"]').click()
    assert image.locator(".jp-mlx-images").get_attribute("data-mode") == "mask"
    image.scroll_into_view_if_needed()
    screenshot(page, "artifacts-compare-mask.png")
