"""The Runs sidebar in a real JupyterLab, driven in a real Chromium (Playwright).

Needs Chromium at ``/usr/bin/chromium`` (or ``$JUPYTER_MLX_CHROMIUM``); CI installs it, and the
tests fail, never skip, without it. Screenshots go to ``test-artifacts/``.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from notebooks import write_failing, write_tiny
from sandbox import stop_process
from jupyter_mlx.ports import free_port

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PANEL_TAB = '.jp-SideBar .lm-TabBar-tab[data-id="jupyter-mlx-panel"]'
LAB_START_TIMEOUT = 60.0


def record_run(project: Path, notebook: str, *params: str, status: int = 0) -> None:
    """Record a run through the real CLI, as a user would from a terminal."""
    argv = [sys.executable, "-m", "jupyter_mlx.cli", "--root", str(project), "run", notebook]
    for name, value in zip(params[::2], params[1::2]):
        argv += ["-p", name, value]
    done = subprocess.run(argv, cwd=project, capture_output=True, text=True, timeout=120)
    assert done.returncode == status, f"{' '.join(argv[2:])} exited {done.returncode}:\n{done.stderr}"


def write_lab_settings(settings_dir: Path) -> None:
    """No news or update toasts: clean, deterministic screenshots."""
    path = settings_dir / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))


def lab_environment(home: Path) -> dict[str, str]:
    """This process's environment, with Jupyter's config, runtime, settings and workspaces in ``home``."""
    return {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
    }


def wait_until_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + LAB_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"jupyter lab exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    pytest.fail(f"jupyter lab did not answer {LAB_START_TIMEOUT:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with tiny.ipynb@v1 (x=3) and a failed nb/failing.ipynb@v1, recorded by the CLI."""
    root = tmp_path_factory.mktemp("browser-project")
    write_tiny(root / "tiny.ipynb")
    write_failing(root / "nb" / "failing.ipynb")
    record_run(root, "nb/failing.ipynb", "n", "7", status=1)
    record_run(root, "tiny.ipynb", "x", "3", "label", "first")
    return root


@pytest.fixture(scope="module")
def lab(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A JupyterLab serving ``project`` on a free local port, with throwaway settings."""
    yield from running_lab(project, tmp_path_factory)


def running_lab(
    project: Path, tmp_path_factory: pytest.TempPathFactory, server_config: dict[str, Any] | None = None
) -> Iterator[dict[str, Any]]:
    """Start JupyterLab on ``project`` (``server_config``: a jupyter_server_config.json of its
    own), yield its address, stop it after."""
    home = tmp_path_factory.mktemp("lab-home")
    write_lab_settings(home / "settings")
    if server_config is not None:
        (home / "config").mkdir()
        (home / "config" / "jupyter_server_config.json").write_text(json.dumps(server_config))
    port, token = free_port(), secrets.token_hex(16)
    env = lab_environment(home)
    log = home / "lab.log"
    argv = [
        sys.executable, "-m", "jupyterlab",
        "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
        f"--ServerApp.token={token}", f"--ServerApp.root_dir={project}",
        "--ServerApp.port_retries=0",
    ]  # fmt: skip
    with log.open("wb") as output:
        process = subprocess.Popen(argv, env=env, stdout=output, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(process, f"{base}/api/status?token={token}", log)
        yield {"base": base, "token": token, "project": project, "log": log}
    finally:
        stop_process(process)


@pytest.fixture
def page(lab: dict[str, Any], request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh Chromium page on JupyterLab, in a workspace of its own (no restored layout)."""
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("JUPYTER_MLX_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).is_file():
        pytest.fail(
            f"Chromium not found at {chromium}: install it (Debian: apt-get install chromium) "
            "or set JUPYTER_MLX_CHROMIUM to its path"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 720})
            page = context.new_page()
            page.set_default_timeout(30_000)
            workspace = re.sub(r"\W", "-", request.node.name)
            page.goto(f"{lab['base']}/lab/workspaces/{workspace}?token={lab['token']}")
            # JupyterLab has restored its (empty) layout once it opens the Launcher, which takes the
            # keyboard focus: a test that clicks before then may see its focus taken away
            page.locator(".jp-Launcher").wait_for(timeout=60_000)
            yield page
        finally:
            browser.close()


def open_panel(page: Any) -> Any:
    page.locator(PANEL_TAB).click()
    panel = page.locator("#jupyter-mlx-panel")
    panel.wait_for(state="visible")
    return panel


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.mouse.move(1200, 680)  # no hover or focus highlight in the picture
    page.evaluate("document.activeElement?.blur()")
    page.screenshot(path=str(ARTIFACTS / name))


def test_panel_lists_runs_and_shows_new_ones(lab: dict[str, Any], page: Any) -> None:
    panel = open_panel(page)
    v1 = panel.locator('.jp-mlx-run[data-ref="tiny.ipynb@v1"]')
    v1.wait_for()
    assert v1.get_attribute("data-status") == "succeeded"
    assert v1.locator(".jp-mlx-badge").inner_text() == "succeeded"
    assert "x=3, label=first" in v1.locator(".jp-mlx-run-params").inner_text()
    assert "score=6" in v1.locator(".jp-mlx-run-metrics").inner_text()
    failed = panel.locator('.jp-mlx-run[data-ref="nb/failing.ipynb@v1"]')
    assert failed.get_attribute("data-status") == "failed"
    assert "ValueError: bad n=7" in failed.inner_text()
    assert panel.locator(".jp-mlx-count").inner_text() == "2 runs"

    record_run(lab["project"], "tiny.ipynb", "x", "5")  # while the page is open
    refresh = panel.locator(".jp-mlx-refresh")
    refresh.click()
    v2 = panel.locator('.jp-mlx-run[data-ref="tiny.ipynb@v2"]')
    v2.wait_for(timeout=10_000)
    assert "x=5" in v2.inner_text()
    assert panel.locator(".jp-mlx-run").first.get_attribute("data-ref") == "tiny.ipynb@v2"
    assert panel.locator(".jp-mlx-count").inner_text() == "3 runs"
    assert refresh.get_attribute("aria-pressed") != "true"  # an action, not a toggle
    screenshot(page, "panel.png")

    panel.locator(".jp-mlx-filter select").select_option("tiny.ipynb")
    page.wait_for_function(
        "() => document.querySelectorAll('#jupyter-mlx-panel .jp-mlx-run').length === 2"
    )
    refs = panel.locator(".jp-mlx-run").evaluate_all("rows => rows.map(row => row.dataset.ref)")
    assert refs == ["tiny.ipynb@v2", "tiny.ipynb@v1"]


def test_panel_shows_the_server_error(page: Any) -> None:
    error = {"error": "store_error", "message": "the run store is locked by another process"}
    page.route(
        re.compile(r"/mlx/runs(\?|$)"),
        lambda route: route.fulfill(status=500, content_type="application/json", body=json.dumps(error)),
    )
    panel = open_panel(page)
    message = panel.locator(".jp-mlx-error")
    message.wait_for()
    assert "the run store is locked by another process" in message.inner_text()
    assert panel.locator(".jp-mlx-run").count() == 0
    screenshot(page, "panel-error.png")


def test_panel_says_how_to_record_a_first_run(page: Any) -> None:
    page.route(
        re.compile(r"/mlx/notebooks(\?|$)"),
        lambda route: route.fulfill(json={"notebooks": []}),
    )
    page.route(
        re.compile(r"/mlx/runs(\?|$)"),
        lambda route: route.fulfill(json={"runs": [], "total": 0, "limit": 50, "offset": 0}),
    )
    panel = open_panel(page)
    empty = panel.locator(".jp-mlx-empty")
    empty.wait_for()
    assert "No runs yet. Run one with jupyter mlx run NOTEBOOK." in empty.inner_text()
    assert panel.locator(".jp-mlx-count").inner_text() == "0 runs"
    screenshot(page, "panel-empty.png")


def test_panel_polls_only_while_visible(page: Any) -> None:
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url) if "/mlx/runs" in request.url else None)
    open_panel(page).locator(".jp-mlx-run").first.wait_for()
    with page.expect_request(re.compile(r"/mlx/runs(\?|$)"), timeout=8_000):
        pass  # the next automatic refresh, about 5 s after the first load
    page.locator(PANEL_TAB).click()  # collapse the sidebar
    page.locator("#jupyter-mlx-panel").wait_for(state="hidden")
    page.wait_for_timeout(500)  # let a request that was already in flight land
    requests.clear()
    page.wait_for_timeout(6_000)
    assert requests == []
