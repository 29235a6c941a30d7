"""The HTML report of a comparison: self-contained, escaped, and showing what changed."""
from __future__ import annotations

import base64
import io
import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from jupyter_mlx.diff import report
from jupyter_mlx.diff.comparison import Comparison, compare_sides
from jupyter_mlx.diff.report import report_html, sanitize_html, summary_html, write_report
from jupyter_mlx.diff.sides import file_side
from jupyter_mlx.metrics import METRIC_MIMETYPE

XSS = "<script>alert(1)</script>"


# -- notebooks -----------------------------------------------------------------------------------
def png(shift: int = 0, size: tuple[int, int] = (160, 100)) -> str:
    """A small chart-like PNG (base64): a bar whose place moves with ``shift``."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    draw.line([(10, 90), (150, 90)], fill="black")
    draw.rectangle([30 + shift, 30, 60 + shift, 89], fill=(31, 119, 180))
    draw.rectangle([90, 50, 120, 89], fill=(255, 127, 14))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def table_html(value: float, evil: bool = False) -> str:
    import pandas as pd

    frame = pd.DataFrame({"name": ["a", "b", "c"], "score": [0.5, 0.25, value]}, index=[10, 11, 12])
    html = frame.to_html()
    if evil:  # what a hostile notebook could put in its HTML
        html = html.replace("<table", '<table onclick="alert(2)"', 1)
        html += "<script>alert('table')</script><img src=\"https://example.com/x.png\" onerror=\"alert(3)\">"
    return html


def cell(cell_type: str, source: str, outputs: list[dict[str, Any]] | None = None, cell_id: str | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {"cell_type": cell_type, "metadata": {}, "source": source}
    if cell_id:
        result["id"] = cell_id
    if cell_type == "code":
        result.update(execution_count=1, outputs=outputs or [])
    return result


def stream(text: str, name: str = "stdout") -> dict[str, Any]:
    return {"output_type": "stream", "name": name, "text": text}


def display(data: dict[str, Any]) -> dict[str, Any]:
    return {"output_type": "display_data", "data": data, "metadata": {}}


def metric(name: str, value: float, step: int | None = None) -> dict[str, Any]:
    return display({METRIC_MIMETYPE: {"name": name, "value": value, "step": step}, "text/plain": f"{name} = {value}"})


def make_notebook(version: str) -> dict[str, Any]:
    b = version == "b"
    losses = [1.0, 0.6, 0.4, 0.3] if not b else [1.0, 0.7, 0.5, 0.45]
    cells = [
        cell("markdown", "# Training report\n\nThe " + ("second" if b else "first") + " try.", cell_id="md"),
        cell("code", "import math\nprint('hello')", [stream("hello\n")], "same"),
        cell("code", "print(f'loss {loss:.2f}')\nprint(danger)",
             [stream(f"epoch 1\nloss {'0.47' if b else '0.51'}\n{XSS}\ndone\n")], "text"),
        cell("code", "plot()", [display({"image/png": png(12 if b else 0), "text/plain": "<Figure>"})], "image"),
        cell("code", "df", [{"output_type": "execute_result", "execution_count": 1, "metadata": {},
                             "data": {"text/html": table_html(0.75 if b else 0.125, evil=b),
                                      "text/plain": "   name  score"}}], "table"),
        cell("code", "1 / n", [stream("ok\n")] + ([{
            "output_type": "error", "ename": "ZeroDivisionError", "evalue": "division by zero",
            "traceback": ["\x1b[0;31mZeroDivisionError\x1b[0m: division by zero"]}] if b else []), "error"),
        cell("code", "for step, loss in enumerate(losses): log_metric('loss', loss, step)\nlog_metric('acc', acc)",
             [metric("loss", v, i) for i, v in enumerate(losses)] + [metric("acc", 0.91 if b else 0.9)], "metrics"),
    ]
    return {
        "cells": cells,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                     "papermill": {"parameters": {"lr": 0.05 if b else 0.1, "epochs": 3, "note": XSS if b else "-"}}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def make_comparison(folder: Path) -> Comparison:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("a", "b"):
        (folder / f"{name}.ipynb").write_text(json.dumps(make_notebook(name)))
    return compare_sides(file_side("A", "a.ipynb", folder), file_side("B", "b.ipynb", folder))


@pytest.fixture(autouse=True)
def strict_templates(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Templates fail on any missing value in tests (users get an empty string instead)."""
    import jinja2

    monkeypatch.setattr(report, "_UNDEFINED", jinja2.StrictUndefined)
    report._environment.cache_clear()
    yield
    report._environment.cache_clear()


@pytest.fixture(scope="module")
def comparison(tmp_path_factory: pytest.TempPathFactory) -> Comparison:
    return make_comparison(tmp_path_factory.mktemp("nb"))


# -- the report -----------------------------------------------------------------------------------
def test_report_is_one_self_contained_file(comparison: Comparison, tmp_path: Path) -> None:
    path = tmp_path / "out" / "report.html"
    path.parent.mkdir()
    write_report(comparison, path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["report.html"]
    html = path.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert "<style>" in html and "<link" not in html
    # no external resource of any kind: scripts, styles, images, fonts
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.IGNORECASE)
    assert "@import" not in html and "url(http" not in html
    assert not re.search(r"<script[^>]*\bsrc=", html, re.IGNORECASE)
    assert "example.com" not in html


def test_report_shows_images_mask_and_text_changes(comparison: Comparison) -> None:
    html = report_html(comparison)
    # both images, as data URIs, and the change mask
    assert f'src="data:image/png;base64,{png(0)}"' in html
    assert f'src="data:image/png;base64,{png(12)}"' in html
    image = next(o for c in comparison.cells for o in c.outputs if o.kind == "image")
    assert image.judged.judgement == "changed" and image.judged.detail["mask"]
    assert f'src="data:image/png;base64,{image.judged.detail["mask"]}"' in html
    assert "change mask" in html and "similarity" in html
    # the changed text lines, coloured as removed / added, the changed characters marked
    assert '<span class="l del"><span class="sign">-</span>loss 0.<mark>51</mark></span>' in html
    assert '<span class="l add"><span class="sign">+</span>loss 0.<mark>47</mark></span>' in html
    # the markdown cell's source diff, the error added in B on B's side only
    assert "second" in html and "first" in html
    assert "ZeroDivisionError" in html and "no output in A" in html
    assert "\x1b" not in html
    # table: both rendered, the changed cell listed
    assert html.count('<table border="1">') == 2  # pandas' tables, sanitized (no class: see sanitize.py)
    assert "0.125" in html and "0.75" in html and "<td>0.75</td>" in html
    # parameters, metrics, the series chart of the moved loss
    assert "lr" in html and "0.05" in html
    assert 'id="metrics"' in html and "acc" in html
    assert "Series that moved" in html and 'alt="loss: A and B overlaid"' in html
    # the options footer
    assert "rtol" in html and "Generated" in html


def test_report_escapes_notebook_text_and_sanitizes_tables(comparison: Comparison) -> None:
    html = report_html(comparison)
    assert XSS not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "alert('table')" not in html and "alert(2)" not in html and "alert(3)" not in html
    assert not re.search(r"<[^>]+\son\w+\s*=", html, re.IGNORECASE)  # no event handler attribute anywhere
    # the only script is the report's own (a few lines, no src)
    assert len(re.findall(r"<script", html, re.IGNORECASE)) == 1


def test_verdict_lists_unexpected_changes(comparison: Comparison) -> None:
    html = report_html(comparison)
    unexpected = comparison.unexpected()
    assert unexpected
    assert f"{len(unexpected)} unexpected changes" in html
    assert 'class="verdict bad"' in html
    for item in unexpected:
        assert item.replace("->", "-&gt;") in html
    assert re.search(r'<a href="#cell-\d+">cell 6: [^<]*error[^<]*</a>', html)  # linked to its cell


def test_verdict_without_change(tmp_path: Path) -> None:
    folder = tmp_path / "same"
    folder.mkdir()
    (folder / "a.ipynb").write_text(json.dumps(make_notebook("a")))
    same = compare_sides(file_side("A", "a.ipynb", folder), file_side("B", "a.ipynb", folder))
    html = report_html(same)
    assert "no unexpected change" in html and 'class="verdict ok"' in html
    assert "Series that moved" not in html
    # every cell identical: all collapsed
    assert "<details open>" not in html and html.count('class="cell j-identical quiet"') == 7
    assert "no unexpected change" in summary_html(same)


def test_summary_is_compact(comparison: Comparison) -> None:
    html = summary_html(comparison)
    assert html == comparison._repr_html_()
    assert html.lstrip().startswith('<div class="mlx-cmp mlx-summary">')
    assert "unexpected change" in html and "lr" in html and "acc" in html
    assert 'class="cell' not in html and "data:image" not in html
    assert XSS not in html and "&lt;script&gt;" in html  # the parameter "note"
    # its styles cannot leak into the notebook: every selector is under .mlx-cmp
    style = html.split("<style>")[1].split("</style>")[0]
    selectors = [s.strip() for block in re.findall(r"([^{}]+)\{", re.sub(r"/\*.*?\*/", "", style, flags=re.S))
                 for s in block.split(",")]
    assert selectors and all(s.startswith(".mlx-cmp") for s in selectors), selectors


def test_sanitize_html_keeps_tables_only() -> None:
    dirty = ('<style>td{color:red}</style><table class="dataframe" onclick="x()" id="t">'
             '<tr style="text-align: right;"><th colspan="2" onmouseover="y()">a &amp; b</th></tr>'
             '<tr><td style="background: url(https://evil/x)">1<script>bad()</script></td>'
             '<td><a href="javascript:z()">link</a><img src=x onerror=w()></td></tr>'
             '<tr><td><iframe src="https://evil"></iframe>2</td><td><div>unclosed</td></tr>')
    clean = sanitize_html(dirty)
    assert clean == ('<table><tbody><tr style="text-align:right"><th colspan="2">a &amp; b</th></tr>'
                     '<tr><td>1</td><td>link<img></td></tr><tr><td>2</td><td><div>unclosed</div></td></tr>'
                     '</tbody></table>')


def test_identical_and_added_cells(tmp_path: Path) -> None:
    a = make_notebook("a")
    b = make_notebook("a")
    b["cells"].insert(2, cell("code", "print('new')", [stream("new\n")], "new"))
    del b["cells"][6]  # the cell that divides by zero
    for name, nb in (("a", a), ("b", b)):
        (tmp_path / f"{name}.ipynb").write_text(json.dumps(nb))
    html = report_html(compare_sides(file_side("A", "a.ipynb", tmp_path), file_side("B", "b.ipynb", tmp_path)))
    assert "cell only in B" in html and "cell only in A" in html
    assert '<span class="l add"><span class="sign">+</span>print(&#39;new&#39;)</span>' in html
    assert '<span class="l del"><span class="sign">-</span>1 / n</span>' in html


def test_other_kinds_of_outputs(tmp_path: Path) -> None:
    """Dataresource tables, SVG, removed images, non-table HTML, progress bars, tolerated numbers,
    unknown MIME types, ignored cells and long outputs all render."""
    def notebook(b: bool) -> dict[str, Any]:
        resource = {"schema": {"fields": [{"name": "index"}, {"name": "v"}], "primaryKey": ["index"]},
                    "data": [{"index": 0, "v": 1.5}, {"index": 1, "v": 3.5 if b else 2.5}]}
        svg = f'<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20"><circle r="{9 if b else 5}" cx="10" cy="10"/></svg>'
        ignored = cell("code", "now()", [stream("12:00" if b else "11:00")], "ignored")
        ignored["metadata"]["tags"] = ["mlx:ignore"]
        return {"cells": [
            cell("code", "train()", [stream(f"epoch 1 00:0{'3' if b else '1'}\rdone\nmean 0.1000000000{'2' if b else '1'}\n")], "tol"),
            cell("code", "df", [{"output_type": "execute_result", "execution_count": 1, "metadata": {},
                                 "data": {"application/vnd.dataresource+json": resource, "text/plain": "table"}}], "res"),
            cell("code", "svg", [display({"image/svg+xml": svg})], "svg"),
            cell("code", "plot()", [display({"image/png": png(0)})] + ([] if b else [display({"image/png": png(4)})]), "gone"),
            cell("code", "html", [display({"text/html": f"<b>{'bold' if b else 'plain'}</b>{XSS}",
                                           "text/plain": f"<{'bold' if b else 'plain'}>"})], "html"),
            cell("code", "widget", [display({"application/x-widget": {"id": 1}, "text/plain": "Widget(...)"})], "widget"),
            ignored,
            cell("code", "long", [stream("".join(f"line {i}\n" for i in range(report.MAX_TEXT_LINES + 50)))], "long"),
        ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}

    for name in ("a", "b"):
        (tmp_path / f"{name}.ipynb").write_text(json.dumps(notebook(name == "b")))
    comparison = compare_sides(file_side("A", "a.ipynb", tmp_path), file_side("B", "b.ipynb", tmp_path))
    html = report_html(comparison)
    judgements = [c.judgement for c in comparison.cells]
    assert judgements[0] == "within_tolerance" and judgements[6] == "ignored"
    assert "epoch 1 00:01" not in html and "done" in html  # a carriage return overwrites its line
    assert "numbers differ by at most 1e-11" in html
    assert "<td>3.5</td>" in html and "<td>2.5</td>" in html
    assert html.count("data:image/svg+xml;base64,") == 2
    assert "only in A" in html and "no output in B" in html
    assert XSS not in html and "&lt;bold&gt;" in html and "text/html, shown as text/plain" in html
    assert "Widget(...)" in html
    assert "50 more lines not shown" in html
    assert 'class="cell j-ignored quiet"' in html


def test_render_time_of_a_large_notebook(tmp_path: Path) -> None:
    """60 cells with 30 PNGs of ~70 KB each: the report renders well under half a second."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (160, 150, 3), dtype=np.uint8)

    def big_png(seed: int) -> str:
        pixels = noise.copy()
        pixels[seed % 100: seed % 100 + 20, :40] = 0
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
        return base64.b64encode(buffer.getvalue()).decode("ascii")

    images = [big_png(i) for i in range(31)]
    assert 50_000 < len(base64.b64decode(images[0])) < 100_000
    notebooks = []
    for side in ("a", "b"):
        cells = []
        for i in range(60):
            if i % 2:
                cells.append(cell("code", f"plot({i})", [display({"image/png": images[i // 2 + (side == "b" and i % 4 == 1)]})], f"c{i}"))
            else:
                cells.append(cell("code", f"print({i})", [stream(f"value {i} {side if i % 6 == 0 else ''}\n" * 20)], f"c{i}"))
        notebooks.append({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
        (tmp_path / f"{side}.ipynb").write_text(json.dumps(notebooks[-1]))
    comparison = compare_sides(file_side("A", "a.ipynb", tmp_path), file_side("B", "b.ipynb", tmp_path))
    report_html(comparison)  # the template compiled once
    started = time.perf_counter()
    html = report_html(comparison)
    elapsed = time.perf_counter() - started
    assert html.count("data:image/png") >= 30
    assert elapsed < 0.5, f"rendering took {elapsed:.3f}s"


def test_chart_failure_keeps_the_report(comparison: Comparison, monkeypatch: pytest.MonkeyPatch) -> None:
    from jupyter_mlx.diff import series

    def broken(*args: Any) -> bytes:
        raise RuntimeError("no matplotlib")

    monkeypatch.setattr(series, "overlay_chart", broken)
    html = report_html(comparison)
    assert "chart not available: RuntimeError: no matplotlib" in html


# -- in a browser -----------------------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_report_in_chromium(comparison: Comparison, tmp_path: Path) -> None:
    """The page renders without errors or requests, the CSS-only controls work; a screenshot
    goes to /tmp/report.png for a look."""
    sync_api = pytest.importorskip("playwright.sync_api")
    path = tmp_path / "report.html"
    write_report(comparison, path)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"))
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            errors: list[str] = []
            requests: list[str] = []
            console: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("request", lambda request: requests.append(request.url))
            page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
            page.goto(path.as_uri())
            page.wait_for_load_state("load")
            assert errors == []
            assert [url for url in requests if not url.startswith(("file:", "data:"))] == []
            # the page's own <meta> policy lets its style, script and images through, and nothing complains
            assert console == []
            assert page.evaluate("document.documentElement.classList.contains('js')")  # its script ran
            images = page.eval_on_selector_all(".pair .side > img, .mask-fig img", "els => els.map(e => e.naturalWidth)")
            assert len(images) >= 3 and all(w > 0 for w in images)
            page.screenshot(path="/tmp/report.png", full_page=True)
            identical = page.locator(".cell.quiet").first
            assert identical.is_visible()
            page.click("label[for=only-changed]")
            assert not identical.is_visible()
            assert page.locator(".mask-fig").first.is_visible()
            page.click("label[for=img-pair]")
            assert not page.locator(".mask-fig").first.is_visible()
            page.click("label[for=img-mask]")
            assert page.locator(".mask-fig").first.is_visible()
            assert not page.locator(".image-pair").first.is_visible()
        finally:
            browser.close()
