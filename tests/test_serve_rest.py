"""Managed endpoints through the server extension's REST API."""
from __future__ import annotations

import json

import pytest

from rest_client import SERVER_CONFIG, error_of, get_json

from notebooks import code_cell, write_notebook

pytest_plugins = ("pytest_jupyter.jupyter_server",)


@pytest.fixture
def jp_root_dir(tmp_path):
    write_notebook(tmp_path / "double.ipynb", code_cell("def double(x: int) -> int:\n    return 2 * x"))
    return tmp_path


@pytest.fixture
def jp_server_config():
    return SERVER_CONFIG


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
    (("endpoints", "nope"), "GET", None, 404, "no endpoint named nope"),
    (("endpoints", "nope"), "DELETE", None, 404, "no endpoint named nope"),
])
async def test_bad_requests(jp_fetch, parts, method, body, status, message):
    code, error = await error_of(jp_fetch, *parts, method=method, body=body)
    assert code == status and message in error["message"], error
