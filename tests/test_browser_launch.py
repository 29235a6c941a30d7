""""Run with Parameters" in a real JupyterLab, driven in a real Chromium (Playwright).

Reuses test_browser.py's JupyterLab and Chromium fixtures with a project of its own: the
dialog starts a run and a sweep through the server, and shows the server's message for a bad
value. Screenshots go to ``test-artifacts/``.
"""
from __future__ import annotations

import getpass
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from notebooks import write_tiny
from test_browser import lab, open_panel, page, record_run, screenshot  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser

DIALOG = ".jp-mlx-launch-dialog"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny.ipynb (``x = 1  # the input``, ``label = 'a'``) with one run (x=9), so the filter offers it."""
    root = tmp_path_factory.mktemp("browser-launch")
    write_tiny(root / "tiny.ipynb")
    record_run(root, "tiny.ipynb", "x", "9")
    return root


def open_dialog(page: Any, panel: Any) -> Any:
    panel.locator(".jp-mlx-launch-button .jp-ToolbarButtonComponent").click()
    dialog = page.locator(DIALOG)
    dialog.locator('input[name="x"]').wait_for()
    return dialog


def wait_for_runs(page: Any, params: list[str], timeout: float = 60_000) -> None:
    """Wait until, for each of ``params`` (e.g. ``x=5``), a succeeded row shows it."""
    page.wait_for_function(
        """wanted => wanted.every(text => Array.from(
            document.querySelectorAll('#jupyter-mlx-panel .jp-mlx-run[data-status="succeeded"]')
          ).some(row => (row.querySelector('.jp-mlx-run-params .jp-mlx-run-value')?.textContent ?? '')
                          .split(/,\\s*/).includes(text)))""",
        arg=params,
        timeout=timeout,
    )


def server_message(lab: dict[str, Any], body: dict[str, Any]) -> str:
    """The server's 400 message for ``body`` posted straight to ``/mlx/sweeps``."""
    request = urllib.request.Request(
        f"{lab['base']}/mlx/sweeps",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"token {lab['token']}", "Content-Type": "application/json"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as failure:
        urllib.request.urlopen(request, timeout=30)
    assert failure.value.code == 400
    return json.loads(failure.value.read())["message"]


def test_run_with_parameters_run_sweep_and_error(lab: dict[str, Any], page: Any) -> None:
    panel = open_panel(page)
    panel.locator('.jp-mlx-run[data-status="succeeded"]').first.wait_for()
    panel.locator(".jp-mlx-filter select").select_option("tiny.ipynb")

    # One run with x=5: the form is generated from the notebook's parameters cell.
    dialog = open_dialog(page, panel)
    x = dialog.locator('input[name="x"]')
    assert x.get_attribute("type") == "number"
    assert x.input_value() == "1"
    assert dialog.locator('input[name="label"]').input_value() == "a"
    assert "the input" in dialog.locator(".jp-mlx-launch-field").first.inner_text()
    assert dialog.locator(".jp-mlx-launch-backend select").input_value() == "local"
    x.fill("5")
    dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
    dialog.wait_for(state="detached")
    wait_for_runs(page, ["x=5"])

    # Who ran it: with a bare token the browser's Jupyter identity is an anonymous one jupyter_server
    # made up (a random id): the run from the panel is the server's own user, as the CLI's run is.
    me = page.evaluate("async base => (await (await fetch(`${base}/api/me`)).json()).identity.name", lab["base"])
    assert me.startswith("Anonymous ")
    users = panel.locator(".jp-mlx-run[data-id]").evaluate_all(
        """rows => Object.fromEntries(rows.map(row => [
             row.querySelector('.jp-mlx-run-params .jp-mlx-run-value').textContent,
             row.querySelector('.jp-mlx-run-user')?.textContent ?? null]))""")
    assert users == {"x=5": f"by {getpass.getuser()}", "x=9": f"by {getpass.getuser()}"}, (users, me)
    screenshot(page, "launch-users.png")

    # A sweep over x=2,3,4: the preview counts the runs, all three appear and succeed.
    dialog = open_dialog(page, panel)
    dialog.locator(".jp-mlx-launch-sweep input").check()
    x = dialog.locator('input[name="x"]')
    assert x.get_attribute("type") == "text"
    x.fill("2,3,4")
    preview = dialog.locator(".jp-mlx-launch-preview")
    assert preview.inner_text() == "3 runs"
    screenshot(page, "launch.png")
    dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
    dialog.wait_for(state="detached")
    wait_for_runs(page, ["x=2", "x=3", "x=4"])  # (x=1, the default, would show as "(defaults)")

    # A bad value: the server's message in the dialog, which stays open.
    expected = server_message(lab, {"notebook": "tiny.ipynb", "grid": {"x": ["abc"]}, "backend": "local"})
    dialog = open_dialog(page, panel)
    dialog.locator(".jp-mlx-launch-sweep input").check()
    dialog.locator('input[name="x"]').fill("abc")
    dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
    error = dialog.locator(".jp-mlx-launch-error")
    error.wait_for(state="visible")
    assert error.inner_text() == expected
    assert dialog.is_visible()
    screenshot(page, "launch-error.png")
    dialog.locator(".jp-Dialog-button.jp-mod-reject").click()
    dialog.wait_for(state="detached")
