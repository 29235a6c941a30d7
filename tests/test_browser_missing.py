"""The panel when the server side is missing or unreachable, in a real JupyterLab and Chromium.

A JupyterLab whose jupyter_mlx server extension is disabled (the lab extension still loads, as
after a broken install) must say so and how to check it; a server that stops answering must
say that, not show an empty list. Screenshots go to ``test-artifacts/``.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from test_browser import open_panel, page, running_lab, screenshot  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """JupyterLab with the jupyter_mlx server extension turned off in its own config."""
    project: Path = tmp_path_factory.mktemp("browser-missing")
    config = {"ServerApp": {"jpserver_extensions": {"jupyter_mlx": False}}}
    yield from running_lab(project, tmp_path_factory, server_config=config)


def test_the_panel_says_the_server_extension_is_missing(page: Any) -> None:
    panel = open_panel(page)
    message = panel.locator(".jp-mlx-error")
    message.wait_for()
    text = message.inner_text()
    assert "server extension is not running" in text
    assert "jupyter server extension list" in text
    screenshot(page, "panel-extension-missing.png")


def test_the_panel_says_the_server_is_unreachable(page: Any) -> None:
    page.route(re.compile(r"/mlx/"), lambda route: route.abort("connectionrefused"))
    panel = open_panel(page)
    message = panel.locator(".jp-mlx-error")
    message.wait_for()
    assert "Cannot reach the Jupyter server" in message.inner_text()
