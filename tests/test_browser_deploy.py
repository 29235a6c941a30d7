""""Deploy as Endpoint" in a real JupyterLab, driven in a real Chromium (Playwright).

A real run of examples/train.ipynb (started through REST), deployed from the cell that defines
``predict`` (its context menu); the Endpoints section shows it serving, Try it and the curl
example get predictions, Redeploy moves to a second run and Rollback back; a bad name shows
the server's message in the dialog. Screenshots go to ``test-artifacts/deploy-*.png``.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from test_browser import lab, open_panel, page, screenshot  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
DIALOG = ".jp-mlx-deploy-dialog"
ITEM = '.jp-mlx-endpoint[data-name="iris"]'
FEATURES = {"features": [[13.2, 1.78, 2.14, 4.38], [12.37, 0.94, 1.36, 1.95], [13.4, 3.91, 2.48, 9.3]]}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("browser-deploy")
    shutil.copy(EXAMPLES / "train.ipynb", root / "train.ipynb")
    shutil.copy(EXAMPLES / "api.ipynb", root / "api.ipynb")
    return root


def rest(lab: dict[str, Any], method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """``method /mlx/<path>`` with the lab's token: the status and the JSON answer."""
    request = urllib.request.Request(
        f"{lab['base']}/mlx/{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"token {lab['token']}", "Content-Type": "application/json"},
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def run_train(lab: dict[str, Any], **parameters: Any) -> str:
    """Run train.ipynb through REST and wait until it succeeds; its ref."""
    status, run = rest(lab, "POST", "runs", {"notebook": "train.ipynb", "parameters": parameters})
    assert status == 201, run
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        _, run = rest(lab, "GET", f"runs/{run['id']}")
        if run["status"] in ("succeeded", "failed", "cancelled", "interrupted"):
            break
        time.sleep(0.5)
    assert run["status"] == "succeeded", run.get("error")
    return run["ref"]


def open_notebook(page: Any, lab: dict[str, Any], name: str = "train.ipynb", cell_text: str = "def predict(") -> Any:
    """Open ``name`` and answer its code cell containing ``cell_text``."""
    workspace = page.url.split("/lab/workspaces/")[1].split("?")[0]
    page.goto(f"{lab['base']}/lab/workspaces/{workspace}/tree/{name}?token={lab['token']}")
    cell = page.locator(".jp-Notebook .jp-CodeCell", has_text=cell_text)
    cell.wait_for()
    return cell


def open_deploy_dialog(page: Any, cell: Any) -> Any:
    cell.scroll_into_view_if_needed()
    cell.locator(".jp-InputArea-editor").click(button="right")
    page.locator(".lm-Menu-item", has_text="Deploy as Endpoint…").click()
    dialog = page.locator(DIALOG)
    dialog.locator(".jp-mlx-deploy-serve select").wait_for()
    return dialog


def deploy_and_read_token(page: Any, dialog: Any) -> tuple[str, str]:
    """Deploy from the open dialog; the token and URL the result dialog shows once."""
    dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
    deployed = page.locator(".jp-mlx-deployed")
    deployed.wait_for(timeout=120_000)
    token = deployed.locator(".jp-mlx-deployed-token .jp-mlx-copy-value").inner_text()
    url = deployed.locator(".jp-mlx-deployed-url .jp-mlx-copy-value").inner_text()
    assert len(token) > 20 and re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
    return token, url


def wait_serving(item: Any, version: str, selector: str) -> None:
    item.page.wait_for_function(
        """([selector, version]) => {
            const node = document.querySelector(selector);
            return node?.dataset.state === 'serving'
              && node.querySelector('.jp-mlx-endpoint-version')?.textContent.includes(version);
        }""",
        arg=[f"#jupyter-mlx-panel {selector}", version],
        timeout=90_000,
    )


def test_deploy_try_redeploy_and_rollback(lab: dict[str, Any], page: Any) -> None:
    page.set_viewport_size({"width": 1280, "height": 900})  # room for the Endpoints section
    try:
        cell = open_notebook(page, lab)
        open_panel(page)

        # No successful run yet: the dialog says so and offers no Deploy button.
        cell.scroll_into_view_if_needed()
        cell.locator(".jp-InputArea-editor").click(button="right")
        page.locator(".lm-Menu-item", has_text="Deploy as Endpoint…").click()
        notice = page.locator(".jp-Dialog", has=page.locator(".jp-mlx-deploy-noruns"))
        notice.wait_for()
        assert "has no successful run yet" in notice.inner_text()
        assert notice.locator(".jp-Dialog-button").all_inner_texts() == ["Close"]
        screenshot(page, "deploy-noruns.png")
        notice.locator(".jp-Dialog-button").click()
        notice.wait_for(state="detached")

        v1 = run_train(lab)
        assert v1 == "train.ipynb@v1"
        dialog = open_deploy_dialog(page, cell)
        assert dialog.locator(".jp-mlx-deploy-serve select").input_value() == "predict"
        assert dialog.locator(".jp-mlx-deploy-version select").input_value() == v1
        name = dialog.locator(".jp-mlx-deploy-name input")
        assert name.input_value() == "train-predict"

        # A bad name: the server's own message, in the dialog, which stays open.
        _, expected = rest(lab, "POST", "endpoints", {"target": v1, "function": "predict", "name": "Bad Name!"})
        name.fill("Bad Name!")
        dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
        error = dialog.locator(".jp-mlx-deploy-error")
        error.wait_for(state="visible")
        assert error.inner_text() == expected["message"]
        assert "invalid endpoint name" in expected["message"]
        screenshot(page, "deploy-error.png")

        name.fill("iris")
        assert not error.is_visible()  # editing the name clears the message
        reexecute = dialog.locator(".jp-mlx-deploy-reexecute input")
        assert reexecute.is_visible() and not reexecute.is_checked()  # the run's state by default
        screenshot(page, "deploy-dialog.png")
        token, url = deploy_and_read_token(page, dialog)
        source = page.locator(".jp-mlx-deployed-source").inner_text()
        assert source.startswith("It serves the run's captured state (state "), source
        screenshot(page, "deploy-token.png")
        page.locator(".jp-Dialog", has=page.locator(".jp-mlx-deployed")).locator(".jp-mod-accept").click()
        page.locator(".jp-mlx-deployed").wait_for(state="detached")

        # The Endpoints section: serving v1, its URL, a curl example.
        item = page.locator(f"#jupyter-mlx-panel {ITEM}")
        wait_serving(item, v1, ITEM)
        assert item.locator(".jp-mlx-badge").inner_text() == "serving"
        assert item.locator(".jp-mlx-endpoint-url .jp-mlx-copy-value").inner_text() == url
        assert "predict()" in item.locator(".jp-mlx-endpoint-version").inner_text()
        assert item.locator(".jp-mlx-endpoint-source").inner_text() == "from the run’s captured state"
        assert item.locator(".jp-mlx-endpoint-source").get_attribute("title").startswith(
            "It serves the run's captured state (state ")
        screenshot(page, "deploy-endpoints.png")

        # Try it: the form is prefilled (path, example body, this session's token).
        item.locator(".jp-mlx-endpoint-try-button").click()
        form = item.locator(".jp-mlx-endpoint-try")
        assert form.locator(".jp-mlx-try-path").input_value() == "/predict"
        assert json.loads(form.locator("textarea").input_value()) == {"features": [[0]]}
        assert form.locator(".jp-mlx-try-token").input_value() == token
        form.locator("textarea").fill(json.dumps(FEATURES))
        form.locator(".jp-mlx-try-submit").click()
        answer = form.locator('.jp-mlx-try-answer[data-status="200"]')
        answer.wait_for(timeout=30_000)
        predicted = json.loads(answer.locator(".jp-mlx-try-body").inner_text())
        assert len(predicted) == 3 and set(predicted) <= {0, 1, 2}
        assert answer.locator(".jp-mlx-try-status").inner_text() == "200 OK"
        screenshot(page, "deploy-try.png")

        # The curl example, as shown, run in a shell with TOKEN set: the same answer.
        curl = item.locator(".jp-mlx-endpoint-curl .jp-mlx-copy-value").inner_text()
        assert curl.startswith(f"curl -X POST {url}/predict -H \"Authorization: Bearer $TOKEN\"")
        done = subprocess.run(["bash", "-c", curl], env={**os.environ, "TOKEN": token},
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 0 and json.loads(done.stdout) == predicted, done.stderr
        without = subprocess.run(["bash", "-c", curl + " -s -o /dev/null -w '%{http_code}'"],
                                 env={**os.environ, "TOKEN": "wrong"}, capture_output=True, text=True, timeout=30)
        assert without.stdout == "403"

        # A second run: Redeploy says which version, and moves to it; Rollback goes back.
        v2 = run_train(lab, C=0.05)
        redeploy = item.locator(".jp-mlx-endpoint-redeploy")
        page.wait_for_function(
            "selector => document.querySelector(selector)?.textContent === 'Redeploy v2'",
            arg=f"#jupyter-mlx-panel {ITEM} .jp-mlx-endpoint-redeploy",
            timeout=20_000,
        )
        redeploy.click()
        wait_serving(item, v2, ITEM)
        feedback = item.locator(".jp-mlx-endpoint-feedback")
        assert feedback.inner_text() == f"Now serving {v2}."
        assert item.locator(".jp-mlx-endpoint-rollback").inner_text() == "Rollback to v1"
        assert item.locator(".jp-mlx-endpoint-url .jp-mlx-copy-value").inner_text() == url  # same address
        form.locator(".jp-mlx-try-submit").click()
        page.wait_for_function(
            "selector => document.querySelector(selector)?.dataset.status === '200'",
            arg=f"#jupyter-mlx-panel {ITEM} .jp-mlx-try-answer",
        )
        item.locator(".jp-mlx-endpoint-logs-button").click()
        logs = item.locator(".jp-mlx-endpoint-logs")
        page.wait_for_function(
            "selector => !['', 'Loading…'].includes(document.querySelector(selector)?.textContent ?? '')",
            arg=f"#jupyter-mlx-panel {ITEM} .jp-mlx-endpoint-logs",
        )
        assert logs.inner_text().strip()
        screenshot(page, "deploy-redeploy.png")
        item.locator(".jp-mlx-endpoint-logs-button").click()

        item.locator(".jp-mlx-endpoint-rollback").click()
        wait_serving(item, v1, ITEM)
        assert feedback.inner_text() == f"Rolled back: serving {v1}."
        _, record = rest(lab, "GET", "endpoints/iris")
        assert record["serving"]["ref"] == v1 and [d["ref"] for d in record["history"]] == [v1, v2]

        # The command is in the palette too, enabled on the notebook's active code cell.
        cell.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Escape")
        page.keyboard.press("Control+Shift+C")
        page.locator(".lm-CommandPalette-input").fill("Deploy as Endpoint")
        entry = page.locator(".lm-CommandPalette-item", has_text="Deploy as Endpoint…")
        entry.wait_for()
        assert "lm-mod-disabled" not in (entry.get_attribute("class") or "")
        page.keyboard.press("Escape")

        # The same section in the dark theme (theme variables only).
        page.locator(".lm-MenuBar-item", has_text="Settings").click()
        page.locator(".lm-Menu-item", has_text=re.compile(r"^Theme$")).hover()
        page.get_by_role("menuitem", name="JupyterLab Dark", exact=True).click()
        page.wait_for_function("document.body.dataset.jpThemeLight === 'false'")
        page.wait_for_timeout(500)  # the theme's stylesheet applied
        screenshot(page, "deploy-dark.png")

        item.locator(".jp-mlx-endpoint-stop").click()
        page.wait_for_function(
            "selector => document.querySelector(selector)?.dataset.state === 'stopped'",
            arg=f"#jupyter-mlx-panel {ITEM}",
            timeout=30_000,
        )
        assert item.locator(".jp-mlx-endpoint-stop").is_disabled()
        screenshot(page, "deploy-stopped.png")
    finally:
        _, listed = rest(lab, "GET", "endpoints")
        for endpoint in (listed or {}).get("endpoints", []):
            if endpoint["desired"] != "stopped":
                rest(lab, "DELETE", f"endpoints/{endpoint['name']}")


def test_deploy_annotated_cells_from_the_saved_file(lab: dict[str, Any], page: Any) -> None:
    """api.ipynb's routes read REQUEST, so its runs fail: its saved file is served as it is."""
    page.set_viewport_size({"width": 1280, "height": 900})
    selector = '.jp-mlx-endpoint[data-name="api"]'
    try:
        cell = open_notebook(page, lab, "api.ipynb", "# GET /hello")
        open_panel(page)
        dialog = open_deploy_dialog(page, cell)
        serve = dialog.locator(".jp-mlx-deploy-serve select")
        assert serve.input_value() == ":cells"
        assert "annotated cell routes (GET /hello" in serve.locator("option:checked").inner_text()
        assert dialog.locator(".jp-mlx-deploy-version select").input_value() == "api.ipynb"
        assert dialog.locator(".jp-mlx-deploy-name input").input_value() == "api"
        assert not dialog.locator(".jp-mlx-deploy-reexecute").is_visible()  # cells always run at start
        token, url = deploy_and_read_token(page, dialog)
        assert "re-executes the notebook at start: the annotated cells run at start" in \
            page.locator(".jp-mlx-deployed-source").inner_text()
        assert page.locator(".jp-mlx-deployed-curl").count() == 0  # no single function to show
        page.locator(".jp-Dialog", has=page.locator(".jp-mlx-deployed")).locator(".jp-mod-accept").click()

        item = page.locator(f"#jupyter-mlx-panel {selector}")
        wait_serving(item, "api.ipynb (file)", selector)
        assert "annotated cells" in item.locator(".jp-mlx-endpoint-version").inner_text()
        assert item.locator(".jp-mlx-endpoint-source").inner_text() == "re-executes the notebook at start"
        assert item.locator(".jp-mlx-endpoint-redeploy").inner_text() == "Redeploy saved file"

        item.locator(".jp-mlx-endpoint-try-button").click()
        form = item.locator(".jp-mlx-endpoint-try")
        routes = form.locator(".jp-mlx-try-routes select")
        routes.wait_for()
        assert routes.locator("option").all_inner_texts() == [
            "GET /hello", "GET /items", "GET /items/:item_id", "POST /items"]
        assert (form.locator(".jp-mlx-try-method select").input_value(), form.locator(".jp-mlx-try-path").input_value()) == ("GET", "/hello")
        assert form.locator(".jp-mlx-try-token").input_value() == token
        form.locator(".jp-mlx-try-submit").click()
        answer = form.locator('.jp-mlx-try-answer[data-status="200"]')
        answer.wait_for()
        assert answer.locator(".jp-mlx-try-body").inner_text().strip() == "Hello from the items API!"

        routes.select_option("GET /items/:item_id")
        form.locator(".jp-mlx-try-path").fill("/items/2")
        form.locator(".jp-mlx-try-submit").click()
        page.wait_for_function(
            "selector => document.querySelector(selector)?.textContent.includes('bread')",
            arg=f"#jupyter-mlx-panel {selector} .jp-mlx-try-body",
        )
        curl = item.locator(".jp-mlx-endpoint-curl .jp-mlx-copy-value").inner_text()
        assert curl == f'curl {url}/items/2 -H "Authorization: Bearer $TOKEN"'
        done = subprocess.run(["bash", "-c", curl], env={**os.environ, "TOKEN": token},
                              capture_output=True, text=True, timeout=30)
        assert json.loads(done.stdout) == {"id": 2, "name": "bread", "price": 2.25}, done.stderr
        screenshot(page, "deploy-cells.png")
    finally:
        rest(lab, "DELETE", "endpoints/api")
