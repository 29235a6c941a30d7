"""``POST /mlx/endpoints/<name>/try``: one request to a managed endpoint, sent by the server."""
from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from rest_client import SERVER_CONFIG, error_of, get_json

from jupyter_mlx.errors import MLXError
from jupyter_mlx.ports import free_port
from jupyter_mlx.serve.manager import Deployment, EndpointRecord
from jupyter_mlx.serve.try_request import EndpointUnreachable, try_endpoint
from endpoint_cleanup import stop_endpoints
from notebooks import code_cell, write_notebook

pytest_plugins = ("pytest_jupyter.jupyter_server",)


def write_gone_record(root: Path, name: str) -> None:
    """An endpoint that should serve but whose process is gone: nothing listens on its port. Its
    notebook is gone too, so the server's restore at start-up cannot bring it back (it did, with
    a notebook there: three supervisors and workers outlived the tests, and the 502 was a race)."""
    folder = root / ".mlx" / "endpoints" / name
    folder.mkdir(parents=True)
    deployment = {"notebook": "deleted.ipynb", "ref": None, "run_id": None, "mode": "function",
                  "function": "double", "deployed_at": 0.0}
    folder.joinpath("record.json").write_text(json.dumps({
        "name": name, "host": "127.0.0.1", "port": free_port(), "token_hash": None, "workers": 1,
        "timeout": 5.0, "max_body": 1024, "history": [deployment], "current": 0, "desired": "running"}))


@pytest.fixture
def jp_root_dir(tmp_path: Path) -> Path:
    write_notebook(tmp_path / "double.ipynb", code_cell("def double(x: int) -> int:\n    return 2 * x"))
    write_notebook(
        tmp_path / "api.ipynb",
        code_cell("import json"),
        code_cell("# GET /hello\nprint('hello')"),
        code_cell("# POST /echo\nprint(json.dumps(json.loads(REQUEST)['body']))"),
    )
    write_gone_record(tmp_path, "gone")
    return tmp_path


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    return SERVER_CONFIG


@pytest.fixture(autouse=True)
def no_endpoint_left(jp_root_dir: Path) -> Any:
    """Whatever a test (or the server's restore) started in the project is stopped after it."""
    yield
    leftover = stop_endpoints(jp_root_dir)
    assert leftover == [], f"endpoints left serving: {leftover}"


async def post_json(jp_fetch: Any, *parts: str, body: dict[str, Any]) -> Any:
    response = await jp_fetch("mlx", *parts, method="POST", body=json.dumps(body))
    return json.loads(response.body)


async def test_try_a_function_endpoint(jp_fetch: Any) -> None:
    created = await post_json(jp_fetch, "endpoints", body={"target": "double.ipynb", "function": "double", "name": "dbl"})
    token = created["token"]
    try:
        answer = await post_json(jp_fetch, "endpoints", "dbl", "try",
                                 body={"method": "POST", "path": "/double", "body": {"x": 21}, "token": token})
        assert answer["status"] == 200 and json.loads(answer["body"]) == 42 and not answer["truncated"]
        assert answer["headers"]["Content-Type"].startswith("application/json")

        # The endpoint's own refusals come back as data, with its message.
        no_token = await post_json(jp_fetch, "endpoints", "dbl", "try", body={"path": "/double", "body": {"x": 1}})
        assert no_token["status"] == 401 and "needs a token" in json.loads(no_token["body"])["message"]
        wrong = await post_json(jp_fetch, "endpoints", "dbl", "try",
                                body={"path": "/double", "body": {"x": 1}, "token": "nope"})
        assert wrong["status"] == 403
        text = await post_json(jp_fetch, "endpoints", "dbl", "try",
                               body={"path": "/double", "body": "not json", "token": token})
        assert text["status"] == 400 and "not valid JSON" in json.loads(text["body"])["message"]
        missing = await post_json(jp_fetch, "endpoints", "dbl", "try", body={"method": "GET", "path": "/nope", "token": token})
        assert missing["status"] == 404
        health = await post_json(jp_fetch, "endpoints", "dbl", "try", body={"method": "get", "path": "/healthz"})
        assert health["status"] == 200 and json.loads(health["body"]) == {"status": "ok"}
        health = await post_json(jp_fetch, "endpoints", "dbl", "try",
                                 body={"method": "get", "path": "/healthz", "token": token})
        assert health["status"] == 200 and json.loads(health["body"])["function"] == "double"

        for body, message in [
            ({"path": "double"}, "must start with a single '/'"),
            ({"path": "//example.com/x"}, "must start with a single '/'"),
            ({"path": "/a b"}, "spaces or control characters"),
            ({"path": "/double", "method": "TRACE"}, "method must be one of"),
            ({"path": "/double", "colour": 1}, "unknown field"),
            ({"method": "POST"}, "'path' is required"),
        ]:
            code, error = await error_of(jp_fetch, "endpoints", "dbl", "try", method="POST", body=json.dumps(body))
            assert code == 400 and message in error["message"], (body, error)
    finally:
        await jp_fetch("mlx", "endpoints", "dbl", method="DELETE")
    code, error = await error_of(jp_fetch, "endpoints", "dbl", "try", method="POST", body='{"path": "/double"}')
    assert code == 409 and "is stopped" in error["message"]


async def test_try_annotated_cells(jp_fetch: Any) -> None:
    created = await post_json(jp_fetch, "endpoints", body={"target": "api.ipynb", "cells": True, "name": "api"})
    assert created["serving"]["mode"] == "cells"
    try:
        hello = await post_json(jp_fetch, "endpoints", "api", "try",
                                body={"method": "GET", "path": "/hello", "token": created["token"]})
        assert (hello["status"], hello["body"]) == (200, "hello\n")
        echo = await post_json(jp_fetch, "endpoints", "api", "try",
                               body={"path": "/echo", "body": {"a": [1, 2]}, "token": created["token"]})
        assert echo["status"] == 200 and json.loads(echo["body"]) == {"a": [1, 2]}
    finally:
        await jp_fetch("mlx", "endpoints", "api", method="DELETE")


async def test_unknown_and_unreachable_endpoints(jp_fetch: Any) -> None:
    code, error = await error_of(jp_fetch, "endpoints", "nope", "try", method="POST", body='{"path": "/x"}')
    assert code == 404 and "no endpoint named nope" in error["message"]
    code, error = await error_of(jp_fetch, "endpoints", "gone", "try", method="POST", body='{"path": "/double"}')
    assert code == 502 and error["error"] == "endpoint_unreachable"
    assert "endpoint gone did not answer at http://127.0.0.1:" in error["message"]
    listed = await get_json(jp_fetch, "endpoints")
    assert [e["name"] for e in listed["endpoints"]] == ["gone"]


class FakeManager:
    """Stands in for EndpointManager.get: one record, one status."""

    def __init__(self, port: int, state: str = "serving") -> None:
        deployment = Deployment("a.ipynb", None, None, "function", "f", 0.0)
        self.record = EndpointRecord("slow", "0.0.0.0", port, None, 1, 1.0, 1024, [deployment], 0)
        self.state = state

    def get(self, name: str) -> tuple[EndpointRecord, dict[str, Any]]:
        if name != "slow":
            raise MLXError("not_found", f"no endpoint named {name}")
        return self.record, {"state": self.state}


def test_a_silent_endpoint_times_out_as_unreachable() -> None:
    """Accepts the connection, never answers: a 502 after the timeout, on the loopback address."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        accepted: list[socket.socket] = []
        threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True).start()
        with pytest.raises(EndpointUnreachable) as caught:
            try_endpoint(FakeManager(listener.getsockname()[1]), "slow", path="/f", body={}, timeout=0.3)  # type: ignore[arg-type]
        for connection in accepted:
            connection.close()
    assert caught.value.http_status == 502
    assert caught.value.to_json() == {"error": "endpoint_unreachable", "message": "endpoint slow did not answer within 0.3 s"}


def test_the_answer_is_cut_at_one_mebibyte() -> None:
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Big(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(2 * 1024 * 1024))
            self.end_headers()
            self.wfile.write(b"x" * (2 * 1024 * 1024))

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Big)
    threading.Thread(target=server.handle_request, daemon=True).start()
    try:
        answer = try_endpoint(FakeManager(server.server_address[1]), "slow", method="GET", path="/big")  # type: ignore[arg-type]
    finally:
        server.server_close()
    assert answer["status"] == 200 and answer["truncated"] and len(answer["body"]) == 1024 * 1024
