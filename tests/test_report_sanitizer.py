"""Hostile HTML in notebook outputs: the report shows it without running or fetching anything.

The unit test runs the sanitizer over the payload corpus (tests/hostile_html.py); the browser
test puts every payload in a table output of two compared notebooks, writes the report and opens
the file in Chromium as a user who saved it would, with the page's own Content-Security-Policy
switched off (``bypass_csp``): the sanitizer alone must hold.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from hostile_html import DATA_PNG, EVIL, PANDAS_TABLE, PAYLOADS
from jupyter_mlx.diff.comparison import compare_sides
from jupyter_mlx.diff.report import write_report
from jupyter_mlx.diff.sanitize import TAGS, sanitize_html
from jupyter_mlx.diff.sides import file_side

URL_ATTRIBUTES = {"src", "href", "xlink:href", "srcset", "action", "formaction", "background", "poster", "data",
                  "ping", "srcdoc", "content"}


class _Elements(HTMLParser):
    """Every start tag with its attributes, as a browser's parser would see them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {name: value or "" for name, value in attrs}))


def elements(html: str) -> list[tuple[str, dict[str, str]]]:
    parser = _Elements()
    parser.feed(html)
    parser.close()
    return parser.elements


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_the_sanitizer_leaves_nothing_that_runs_or_fetches(name: str) -> None:
    clean = sanitize_html(PAYLOADS[name] + PANDAS_TABLE)
    for tag, attributes in elements(clean):
        assert tag in TAGS, clean
        for attribute, value in attributes.items():
            assert not attribute.startswith("on"), clean
            if attribute in URL_ATTRIBUTES:
                assert attribute == "src" and tag == "img" and value.startswith("data:image/"), clean
            if attribute == "style":
                assert not re.search(r"url|image|\\|@|var\(|evil", value, re.IGNORECASE), clean
            if attribute not in ("title", "alt", "src"):  # text, or a data: image (an SVG one fetches nothing)
                assert EVIL not in value and "ran(" not in value, clean
    assert "<script" not in clean and "<style" not in clean


def test_the_sanitizer_keeps_what_tables_need() -> None:
    clean = sanitize_html(PANDAS_TABLE + f'<table><tr><td colspan="2"><b>x</b><img src="{DATA_PNG}" alt="dot"></td></tr></table>')
    found = elements(clean)
    assert ("table", {"border": "1"}) in found
    assert ("tr", {"style": "text-align:right"}) in found  # pandas' header row
    assert ("td", {"colspan": "2"}) in found and ("b", {}) in found
    assert ("img", {"src": DATA_PNG, "alt": "dot"}) in found
    assert "<th>score</th>" in clean and "<td>0.5</td>" in clean
    assert "vertical-align" not in clean  # the <style> block went, with its text


def hostile_notebook(path: Path, shift: int) -> None:
    """A cell per payload; its output: the payload and a small table (which makes the report
    embed it as HTML), a number apart between A and B so both sides are shown."""
    cells = []
    for number, (name, payload) in enumerate(sorted(PAYLOADS.items())):
        table = f"<table><tr><th>{name}</th><td>{number + shift}</td></tr></table>"
        output = {"output_type": "display_data", "metadata": {},
                  "data": {"text/html": payload + table, "text/plain": f"{name} {number + shift}"}}
        cells.append({"cell_type": "code", "execution_count": 1, "metadata": {}, "id": f"c{number}",
                      "source": f"show({name!r})", "outputs": [output]})
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))


RECORD_SCRIPTS = "window.ran = name => (window.__ran = window.__ran || []).push(name);"


@pytest.mark.browser
def test_the_saved_report_of_hostile_outputs_makes_no_request_and_runs_no_script(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    from test_browser import CHROMIUM_ARGS

    hostile_notebook(tmp_path / "a.ipynb", 0)
    hostile_notebook(tmp_path / "b.ipynb", 1)
    comparison = compare_sides(file_side("A", "a.ipynb", tmp_path), file_side("B", "b.ipynb", tmp_path))
    assert sum(o.kind == "table" and o.judged.judgement == "changed" for c in comparison.cells for o in c.outputs) == len(PAYLOADS)
    report = tmp_path / "saved" / "report.html"
    report.parent.mkdir()
    write_report(comparison, report)

    chromium = os.environ.get("JUPYTER_MLX_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 2000})
            context.add_init_script(RECORD_SCRIPTS)
            requests: list[str] = []
            context.on("request", lambda request: requests.append(request.url))
            context.route(re.compile(r"^(https?|wss?|ftp):"), lambda route: route.abort())
            page = context.new_page()
            page.goto(report.as_uri())
            page.wait_for_load_state("load")
            page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
            height = page.evaluate("document.documentElement.scrollHeight")
            for top in range(0, height + 2000, 1500):  # what is lazy loads when it comes into view
                page.evaluate(f"window.scrollTo(0, {top})")
                page.wait_for_timeout(50)
            page.wait_for_timeout(500)  # a refresh or a timer a payload might have set
            assert page.url == report.as_uri()
            assert [url for url in requests if url != report.as_uri() and not url.startswith(("data:", "about:"))] == []
            assert [frame.evaluate("window.__ran || []") for frame in page.frames] == [[]]
            shown = set(page.locator(".html-out th").all_inner_texts())
            assert sorted(set(PAYLOADS) - shown) == []  # every payload's output was on the page
        finally:
            browser.close()
