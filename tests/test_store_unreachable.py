"""Issue 17, bad input: a PostgreSQL run index that cannot be reached. The server still starts with
the extension, says why once in its log, in ``/mlx/info`` and in each failing request (the panel
shows that message); the CLI exits with one line. The password is never shown."""
from __future__ import annotations

import json
import logging

import pytest

from jupyter_mlx.cli import main
from jupyter_mlx.ports import free_port

from rest_client import SERVER_CONFIG, error_of, get_json

pytest_plugins = ("pytest_jupyter.jupyter_server",)

PORT = free_port()  # nothing listens there
URL = f"postgresql+psycopg://alice:s3cret@127.0.0.1:{PORT}/runs"
SHOWN = f"postgresql+psycopg://alice:***@127.0.0.1:{PORT}/runs"


@pytest.fixture
def jp_server_config():
    return {**SERVER_CONFIG, "MLXConfig": {"store_url": URL}}


async def test_the_server_starts_and_says_why_the_index_cannot_be_opened(jp_fetch, caplog):
    info = await get_json(jp_fetch, "info")
    assert info["store"]["url"] == SHOWN
    assert info["store"]["error"].startswith(f"cannot open the run store at {SHOWN}: ")
    assert "\n" not in info["store"]["error"] and "s3cret" not in json.dumps(info)
    status, body = await error_of(jp_fetch, "runs")
    assert status == 500 and body == {"error": "store_error", "message": info["store"]["error"]}
    started = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and "run store" in r.getMessage()]
    assert started and all("s3cret" not in line and "\n" not in line for line in started)


def test_the_cli_says_it_in_one_line(tmp_path, capsys):
    (tmp_path / "jupyter_mlx_config.json").write_text(json.dumps({"MLXConfig": {"store_url": URL}}))
    assert main(["--root", str(tmp_path), "runs"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "s3cret" not in err
    assert err.startswith(f"jupyter mlx runs: error: cannot open the run store at {SHOWN}: ")
