"""Live progress and cancelling in a real JupyterLab, driven in a real Chromium (Playwright).

Reuses test_browser.py's JupyterLab and Chromium fixtures with a project of its own. Runs are
started through REST so that they execute in the JupyterLab server, which streams their events.
Screenshots go to ``test-artifacts/``.
"""
from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from notebooks import code_cell, write_notebook
from test_browser import lab, open_panel, page, screenshot  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser

RUN_LIST = re.compile(r"/mlx/runs(\?|$)")
CANCEL = "**/mlx/runs/*/cancel*"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """steps.ipynb: 6 cells of 0.7 s; slow.ipynb: 6 cells of 5 s. No runs yet."""
    root = tmp_path_factory.mktemp("browser-progress")
    write_notebook(root / "steps.ipynb", *[code_cell(f"import time\ntime.sleep(0.7)\nstep = {i}") for i in range(6)])
    write_notebook(root / "slow.ipynb", *[code_cell("import time\ntime.sleep(5)") for _ in range(6)])
    return root


def start_run(lab: dict[str, Any], notebook: str) -> dict[str, Any]:
    """``POST /mlx/runs`` with the server's token: the run executes in the JupyterLab process."""
    request = urllib.request.Request(
        f"{lab['base']}/mlx/runs",
        data=json.dumps({"notebook": notebook}).encode(),
        headers={"Authorization": f"token {lab['token']}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201
        return json.loads(response.read())


def test_rows_follow_progress_live_and_cancel(lab: dict[str, Any], page: Any) -> None:
    panel = open_panel(page)
    panel.locator(".jp-mlx-empty").wait_for()
    steps = start_run(lab, "steps.ipynb")
    slow = start_run(lab, "slow.ipynb")

    row = panel.locator(f'.jp-mlx-run[data-id="{steps["id"]}"]')
    row.wait_for(timeout=10_000)  # a `run` event of an unknown run reloads the list
    fetched: list[str] = []  # list reloads by the poll from now on: far fewer than the changes
    page.on("request", lambda request: fetched.append(request.url) if RUN_LIST.search(request.url) else None)

    seen: list[str] = []
    deadline = time.monotonic() + 60
    shot = False
    while time.monotonic() < deadline:
        status = row.get_attribute("data-status")
        text = row.locator(".jp-mlx-run-duration").inner_text()
        if re.fullmatch(r"cell \d/6", text) and (not seen or seen[-1] != text):
            seen.append(text)
            if len(seen) == 3 and not shot:
                screenshot(page, "progress.png")
                shot = True
        if status in ("succeeded", "failed"):
            break
        page.wait_for_timeout(100)
    assert row.get_attribute("data-status") == "succeeded", row.inner_text()
    assert len(seen) >= 3, f"progress seen: {seen}"
    cells = [int(text[5]) for text in seen]
    assert cells == sorted(cells), seen
    assert row.locator(".jp-mlx-run-cancel").count() == 0  # finished: nothing to cancel
    assert len(seen) > len(fetched) + 1, f"the rows must update from events: {seen}, {len(fetched)} reloads"

    slow_row = panel.locator(f'.jp-mlx-run[data-id="{slow["id"]}"]')
    cancel = slow_row.locator(".jp-mlx-run-cancel")
    assert "Cancel" in (cancel.get_attribute("title") or "")
    page.wait_for_function(
        f"""() => document.querySelector('.jp-mlx-run[data-id="{slow["id"]}"]')?.dataset.status === 'running'""",
        timeout=30_000,
    )
    cancel.click()
    page.wait_for_function(
        f"""() => document.querySelector('.jp-mlx-run[data-id="{slow["id"]}"]')?.dataset.status === 'cancelled'""",
        timeout=15_000,
    )
    assert slow_row.locator(".jp-mlx-badge").inner_text() == "cancelled"
    assert slow_row.locator(".jp-mlx-run-cancel").count() == 0
    if not shot:
        screenshot(page, "progress.png")


def test_cancel_failure_shows_the_server_message(lab: dict[str, Any], page: Any) -> None:
    panel = open_panel(page)
    slow = start_run(lab, "slow.ipynb")
    row = panel.locator(f'.jp-mlx-run[data-id="{slow["id"]}"]')
    row.wait_for(timeout=10_000)
    page.wait_for_function(
        f"""() => document.querySelector('.jp-mlx-run[data-id="{slow["id"]}"]')?.dataset.status === 'running'""",
        timeout=30_000,
    )
    error = {"error": "conflict", "message": "the run already finished"}
    page.route(
        CANCEL,
        lambda route: route.fulfill(status=409, content_type="application/json", body=json.dumps(error)),
    )
    row.locator(".jp-mlx-run-cancel").click()
    failure = row.locator(".jp-mlx-run-cancel-error")
    failure.wait_for(timeout=5_000)
    assert "the run already finished" in failure.inner_text()
    page.unroute(CANCEL)
    panel.locator(f'.jp-mlx-run[data-id="{slow["id"]}"] .jp-mlx-run-cancel').click()  # for real now
    page.wait_for_function(
        f"""() => document.querySelector('.jp-mlx-run[data-id="{slow["id"]}"]')?.dataset.status === 'cancelled'""",
        timeout=15_000,
    )
