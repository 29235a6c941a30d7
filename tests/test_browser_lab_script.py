"""``scripts/lab``, the README's first command, as a newcomer meets it: the URL it prints opens
``examples/train.ipynb`` with the runs panel showing (not the Launcher)."""
from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from sandbox import stop_process
from jupyter_mlx.ports import free_port
from test_browser import ARTIFACTS, CHROMIUM_ARGS, LAB_START_TIMEOUT, lab_environment, write_lab_settings

pytestmark = pytest.mark.browser

REPOSITORY = Path(__file__).resolve().parents[1]


def printed_url(log: Path, process: subprocess.Popen[bytes], port: int) -> str:
    """The URL JupyterLab prints for its user once it is serving (a configured token shows as
    ``...``: the caller adds it)."""
    pattern = re.compile(rf"http://127\.0\.0\.1:{port}/\S*(?=\?token=)")
    deadline = time.monotonic() + LAB_START_TIMEOUT + 120  # setup-env may reinstall first
    while time.monotonic() < deadline:
        found = pattern.search(log.read_text(errors="replace"))
        if found:
            return found.group(0)
        if process.poll() is not None:
            pytest.fail(f"scripts/lab exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        time.sleep(0.25)
    pytest.fail(f"scripts/lab printed no URL:\n{log.read_text()[-3000:]}")


def test_scripts_lab_opens_the_example_notebook_with_the_runs_panel(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    project = tmp_path / "project"  # a copy: the run store the panel opens lands there, not in the checkout
    shutil.copytree(REPOSITORY / "examples", project / "examples")
    home = tmp_path / "home"
    write_lab_settings(home / "settings")
    port, token = free_port(), secrets.token_hex(16)
    env = lab_environment(home)
    argv = [str(REPOSITORY / "scripts" / "lab"), "--no-browser", "--ip=127.0.0.1", f"--port={port}",
            "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={project}"]
    log = home / "lab.log"
    with log.open("wb") as output:
        process = subprocess.Popen(argv, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        url = printed_url(log, process, port)
        assert url.endswith("/lab/workspaces/jupyter-mlx-tour"), url
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                                 args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 720})
                page.set_default_timeout(60_000)
                page.goto(f"{url}?token={token}")
                page.locator(".jp-Notebook .jp-Cell").first.wait_for()
                tab = page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel")
                assert tab.inner_text() == "train.ipynb"
                panel = page.locator("#jupyter-mlx-panel")
                panel.wait_for(state="visible")
                panel.get_by_text("No runs of examples/train.ipynb").wait_for()
                assert page.locator(".jp-Launcher").count() == 0
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "scripts-lab.png"))
            finally:
                browser.close()
    finally:
        stop_process(process)
