"""The panel when the run index cannot be opened (an unreachable PostgreSQL), in a real JupyterLab
and Chromium: the server started, and the panel says why, with the URL but not its password.
Screenshot: ``test-artifacts/panel-store-unreachable.png``."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_mlx.ports import free_port
from test_browser import open_panel, page, running_lab, screenshot  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser

PORT = free_port()  # nothing listens there


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    project: Path = tmp_path_factory.mktemp("browser-store")
    config = {"MLXConfig": {"store_url": f"postgresql+psycopg://team:s3cret@127.0.0.1:{PORT}/runs"}}
    yield from running_lab(project, tmp_path_factory, server_config=config)


def test_the_panel_says_why_the_run_index_cannot_be_opened(page: Any) -> None:
    panel = open_panel(page)
    message = panel.locator(".jp-mlx-error")
    message.wait_for()
    text = message.inner_text()
    assert f"cannot open the run store at postgresql+psycopg://team:***@127.0.0.1:{PORT}/runs" in text
    assert "s3cret" not in page.content()
    assert message.evaluate("e => e.scrollWidth <= e.clientWidth")  # the long URL wraps, nothing cut off
    screenshot(page, "panel-store-unreachable.png")
