"""Managed endpoints through the server extension's REST API."""
from __future__ import annotations

import http.client
import json
import logging
from pathlib import Path

import psutil
import pytest

from rest_client import SERVER_CONFIG, error_of, get_json

from endpoint_cleanup import stop_endpoints
from notebooks import code_cell, write_notebook

pytest_plugins = ("pytest_jupyter.jupyter_server",)


@pytest.fixture
def jp_root_dir(tmp_path):
    write_notebook(tmp_path / "double.ipynb", code_cell("def double(x: int) -> int:\n    return 2 * x"))
    return tmp_path


@pytest.fixture
def jp_server_config():
    return SERVER_CONFIG


@pytest.fixture(autouse=True)
def no_endpoint_left(jp_root_dir):
    yield
    assert stop_endpoints(jp_root_dir) == []


def _supervisors_of(root: Path) -> list[int]:
    return [process.pid for process in psutil.process_iter(["cmdline"])
            if any(str(root) in part for part in process.info["cmdline"] or [])]


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def test_deploy_list_inspect_and_stop(jp_fetch):
    response = await jp_fetch("mlx", "endpoints", method="POST",
                              body=json.dumps({"target": "double.ipynb", "function": "double", "name": "double"}))
    created = json.loads(response.body)
    assert response.code == 201 and created["name"] == "double" and created["auth"] and len(created["token"]) > 20
    try:
        listed = await get_json(jp_fetch, "endpoints")
        assert [e["name"] for e in listed["endpoints"]] == ["double"]
        assert listed["endpoints"][0]["status"]["state"] == "serving" and "token" not in listed["endpoints"][0]
        one = await get_json(jp_fetch, "endpoints", "double", logs="50")
        assert one["serving"]["function"] == "double" and one["url"].startswith("http://127.0.0.1:")
        assert one["serving"]["serves"] == "reexecution"  # a notebook file: nothing captured, and it says so
        assert one["serving"]["source"] == ("re-executes the notebook at start: double.ipynb is a notebook file, "
                                            "not a run: nothing was captured")
        assert isinstance(one["logs"], str)
        code, error = await error_of(jp_fetch, "endpoints", "double", "rollback", method="POST", body="")
        assert code == 409 and "no earlier version" in error["message"]
    finally:
        stopped = json.loads((await jp_fetch("mlx", "endpoints", "double", method="DELETE")).body)
    assert stopped["desired"] == "stopped"
    assert (await get_json(jp_fetch, "endpoints", "double"))["status"]["state"] == "stopped"


@pytest.mark.parametrize("parts, method, body, status, message", [
    (("endpoints",), "POST", "{}", 400, "'target' is required"),
    (("endpoints",), "POST", '{"target": "double.ipynb", "colour": 1}', 400, "unknown field"),
    (("endpoints",), "POST", '{"target": "missing.ipynb", "function": "f"}', 404, "does not exist"),
    (("endpoints",), "POST", '{"target": "double.ipynb", "function": "double", "workers": "2"}', 400, "must be int"),
    (("endpoints",), "POST", '{"target": "double.ipynb", "function": "double", "reexecute": "yes"}', 400, "must be bool"),
    (("endpoints", "nope"), "GET", None, 404, "no endpoint named nope"),
    (("endpoints", "nope"), "DELETE", None, 404, "no endpoint named nope"),
    (("endpoints", "nope", "rollback"), "POST", "", 404, "no endpoint named nope"),
    (("endpoints",), "POST", '{"target": "double.ipynb", "function": "nosuch"}', 400,
     "double.ipynb defines no function 'nosuch'; it defines double"),
    (("endpoints",), "POST", '{"target": "double.ipynb", "function": "double", "host": "0.0.0.0", "no_auth": true}',
     400, 'confirm with --allow-public-unauthenticated (REST: "allow_public_unauthenticated": true)'),
    (("endpoints",), "POST", '{"target": "double.ipynb", "function": "double", "host": "", "no_auth": true, '
     '"allow_public_unauthenticated": false}', 400, "refusing to serve on every interface without a token"),
])
async def test_bad_requests(jp_fetch, jp_root_dir, parts, method, body, status, message):
    code, error = await error_of(jp_fetch, *parts, method=method, body=body)
    assert code == status and message in error["message"], error
    assert not (jp_root_dir / ".mlx" / "endpoints").exists() or not any((jp_root_dir / ".mlx" / "endpoints").iterdir())
    assert _supervisors_of(jp_root_dir) == []  # refused before any process started


async def test_a_public_endpoint_without_a_token_when_confirmed_warns(jp_fetch, jp_serverapp, jp_root_dir):
    recorder = Recorder()
    server_log = next(iter(jp_serverapp.extension_manager.extension_apps["jupyter_mlx"])).log  # what handlers log to
    server_log.addHandler(recorder)
    try:
        response = await jp_fetch("mlx", "endpoints", method="POST", body=json.dumps({
            "target": "double.ipynb", "function": "double", "name": "open", "host": "0.0.0.0", "no_auth": True,
            "allow_public_unauthenticated": True}))
    finally:
        server_log.removeHandler(recorder)
    created = json.loads(response.body)
    assert response.code == 201 and created["token"] is None and created["allow_public_unauthenticated"]
    expected = f"endpoint open listens on 0.0.0.0:{created['port']}, beyond loopback: other machines may reach it, " \
               "and it has NO token: anyone who can connect may call it"
    assert created["warning"] == expected
    assert any(expected in message for message in recorder.messages), recorder.messages  # the server log
    log = (jp_root_dir / ".mlx" / "endpoints" / "open" / "endpoint.log").read_text()
    assert f"WARNING {expected}" in log
    connection = http.client.HTTPConnection("127.0.0.1", created["port"], timeout=10)
    connection.request("POST", "/double", body=b'{"x": 4}')
    assert connection.getresponse().read() == b"8"  # no token asked
    connection.close()
    await jp_fetch("mlx", "endpoints", "open", method="DELETE")


async def test_a_run_is_served_from_its_state_unless_reexecute_is_asked(jp_fetch):
    import asyncio
    import time

    response = await jp_fetch("mlx", "runs", method="POST", body=json.dumps({"notebook": "double.ipynb"}))
    run_id = json.loads(response.body)["id"]
    deadline = time.monotonic() + 90
    while (run := await get_json(jp_fetch, "runs", run_id))["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, run
        await asyncio.sleep(0.2)
    assert run["status"] == "succeeded"
    body = {"target": "double.ipynb@v1", "function": "double", "name": "double", "no_auth": True}
    created = json.loads((await jp_fetch("mlx", "endpoints", method="POST", body=json.dumps(body))).body)
    try:
        assert created["serving"]["serves"] == "state" and created["serving"]["source"].startswith(
            "serves the run's captured state (state ")
        again = json.loads((await jp_fetch("mlx", "endpoints", method="POST",
                                           body=json.dumps({**body, "reexecute": True}))).body)
        assert again["serving"]["serves"] == "reexecution"
        assert again["serving"]["source"] == "re-executes the notebook at start: asked for (--reexecute)"
        listed = await get_json(jp_fetch, "endpoints", "double")
        assert [d["serves"] for d in listed["history"]] == ["state", "reexecution"]
    finally:
        await jp_fetch("mlx", "endpoints", "double", method="DELETE")
