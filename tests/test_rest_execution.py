"""Launching, watching and cancelling runs and sweeps through the REST API of a real server."""
from __future__ import annotations

import asyncio
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from tornado.httpclient import HTTPClientError

from jupyter_mlx.ports import free_port
from jupyter_mlx.service import os_user

from conftest import STORE_BACKENDS, store_url
from jupyter_mlx.server.handlers import NotFoundHandler, route_handlers
from jupyter_mlx.server.openapi import openapi_document

from notebooks import code_cell, write_notebook, write_tiny

pytest_plugins = ("pytest_jupyter.jupyter_server",)

FINAL = {"succeeded", "failed", "cancelled", "interrupted"}


@pytest.fixture
def jp_root_dir(tmp_path):
    root = tmp_path / "project"
    write_tiny(root / "tiny.ipynb")
    write_notebook(root / "one.ipynb", code_cell("n = 0", tags=["parameters"]), code_cell("print(n)"))
    write_notebook(
        root / "slow.ipynb",
        code_cell("seconds = 30.0", tags=["parameters"]),
        code_cell("print('started', flush=True)"),
        code_cell("import os, time\nwhile os.path.exists('gate') and seconds > 0:\n    time.sleep(0.1); seconds -= 0.1"),
        code_cell("print('done')"),
    )
    (root / "gate").write_text("closed")
    return root


UNREACHABLE_GATEWAY = f"http://127.0.0.1:{free_port()}"  # allowed, nothing listens there


@pytest.fixture(params=STORE_BACKENDS)
def jp_server_config(tmp_path, request):
    """Every test on a SQLite index, then on a PostgreSQL one."""
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_mlx": True}, "allow_unauthenticated_access": False},
        "MLXConfig": {"concurrency": 2, "kernel_idle_timeout": 30, "allowed_gateways": [UNREACHABLE_GATEWAY],
                      "store_url": store_url(request.param, tmp_path, request)},
    }


async def _call(jp_fetch, method, *parts, body=None, **params):
    kwargs = {"method": method, "params": params or None}
    if method == "POST":
        kwargs["body"] = json.dumps(body if body is not None else {})
    response = await jp_fetch("mlx", *parts, **kwargs)
    return response.code, (json.loads(response.body) if response.body else None)


async def _error(jp_fetch, method, *parts, body=None, raw=None):
    with pytest.raises(HTTPClientError) as caught:
        kwargs = {"method": method}
        if method == "POST":
            kwargs["body"] = raw if raw is not None else json.dumps(body)
        await jp_fetch("mlx", *parts, **kwargs)
    payload = json.loads(caught.value.response.body)
    assert set(payload) == {"error", "message"}, payload
    return caught.value.code, payload["message"]


async def _wait_final(jp_fetch, run_ids, timeout=90.0):
    deadline = time.monotonic() + timeout
    while True:
        runs = [(await _call(jp_fetch, "GET", "runs", run_id))[1] for run_id in run_ids]
        if all(run["status"] in FINAL for run in runs):
            return runs
        assert time.monotonic() < deadline, [(r["ref"], r["status"]) for r in runs]
        await asyncio.sleep(0.2)


async def _until(condition, what, timeout=30.0):
    """Wait (bounded) until ``condition()`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"no {what} in {timeout:.0f} s"
        await asyncio.sleep(0.05)


def _events(chunks):
    """The (type, data) of each complete server-sent event in ``chunks``."""
    events = []
    for block in b"".join(chunks).decode().split("\n\n")[:-1]:
        lines = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        if lines:
            events.append((lines["event"], json.loads(lines["data"])))
    return events


async def _wait_status(jp_fetch, run_id, status, timeout=30.0):
    deadline = time.monotonic() + timeout
    while (await _call(jp_fetch, "GET", "runs", run_id))[1]["status"] != status:
        assert time.monotonic() < deadline, f"run never became {status}"
        await asyncio.sleep(0.1)


async def test_launch_a_run_and_watch_its_progress_as_server_sent_events(jp_fetch):
    chunks: list[bytes] = []
    stream = asyncio.ensure_future(
        jp_fetch("mlx", "events", params={"notebook": "tiny.ipynb"}, streaming_callback=chunks.append, request_timeout=120)
    )
    await _until(lambda: chunks, "the event stream's first line")  # subscribed before the run starts
    code, run = await _call(jp_fetch, "POST", "runs", body={"notebook": "tiny.ipynb", "parameters": {"x": 4}, "tags": ["rest"]})
    assert code == 201 and run["status"] == "queued" and run["parameters"] == {"x": 4, "label": "a"}
    assert run["backend"] == "local" and run["tags"] == ["rest"]
    (final,) = await _wait_final(jp_fetch, [run["id"]])
    assert final["status"] == "succeeded" and final["metrics"]["score"] == 8.0
    await _until(lambda: [d["status"] for k, d in _events(chunks) if k == "run"][-1:] == ["succeeded"], "the last event")
    stream.cancel()
    events = _events(chunks)
    statuses = [data["status"] for kind, data in events if kind == "run"]
    assert statuses[0] == "queued" and "running" in statuses and statuses[-1] == "succeeded"
    progress = [(data["cell"], data["cells"]) for kind, data in events if kind == "progress"]
    assert progress == [(1, 3), (2, 3), (3, 3)]


async def test_a_sweep_groups_its_runs_and_lists_them(jp_fetch):
    code, body = await _call(jp_fetch, "POST", "sweeps", body={"notebook": "tiny.ipynb", "grid": {"x": [1, 2], "label": ["a", "b"]}})
    assert code == 201
    sweep, runs = body["sweep"], body["runs"]
    assert sweep["size"] == 4 and sweep["spec"] == {"grid": {"x": [1, 2], "label": ["a", "b"]}}
    assert {run["sweep_id"] for run in runs} == {sweep["id"]}
    assert sorted(run["version"] for run in runs) == [1, 2, 3, 4]
    assert [run["parameters"] for run in runs] == [
        {"x": 1, "label": "a"}, {"x": 1, "label": "b"}, {"x": 2, "label": "a"}, {"x": 2, "label": "b"},
    ]
    finals = await _wait_final(jp_fetch, [run["id"] for run in runs])
    assert [run["metrics"]["score"] for run in finals] == [2.0, 2.0, 4.0, 4.0]
    _, listed = await _call(jp_fetch, "GET", "sweeps")
    assert [s["id"] for s in listed["sweeps"]] == [sweep["id"]]
    assert listed["sweeps"][0]["counts"] == {"succeeded": 4} and listed["sweeps"][0]["status"] == "succeeded"
    _, one = await _call(jp_fetch, "GET", "sweeps", sweep["id"])
    assert [r["id"] for r in one["runs"]] == [r["id"] for r in runs]
    _, page = await _call(jp_fetch, "GET", "runs", sweep=sweep["id"])
    assert page["total"] == 4

    code, body = await _call(jp_fetch, "POST", "sweeps", body={"notebook": "tiny.ipynb", "list": [{"x": 7}, {"label": "z"}]})
    finals = await _wait_final(jp_fetch, [run["id"] for run in body["runs"]])
    assert [run["parameters"] for run in finals] == [{"x": 7, "label": "a"}, {"x": 1, "label": "z"}]
    assert [run["overridden"] for run in finals] == [["x"], ["label"]]
    assert [run["metrics"]["score"] for run in finals] == [14.0, 2.0]


async def test_cancel_a_sweep_stops_running_and_queued_runs_then_requeue_runs_them_again(jp_fetch, jp_root_dir):
    _, body = await _call(jp_fetch, "POST", "sweeps", body={"notebook": "slow.ipynb", "grid": {"seconds": [30, 31, 32]}})
    sweep_id, runs = body["sweep"]["id"], body["runs"]
    await _wait_status(jp_fetch, runs[0]["id"], "running")
    started = time.monotonic()
    code, cancelled = await _call(jp_fetch, "POST", "sweeps", sweep_id, "cancel")
    assert code == 200 and len(cancelled["runs"]) == 3
    finals = await _wait_final(jp_fetch, [run["id"] for run in runs], timeout=30)
    assert time.monotonic() - started < 20
    assert [run["status"] for run in finals] == ["cancelled"] * 3
    assert all(run["error"]["ename"] == "RunCancelled" for run in finals)
    assert finals[2]["started_at"] is None  # the third was still queued: it never started
    notebook = json.loads((await jp_fetch("mlx", "runs", runs[0]["id"], "notebook")).body)
    assert notebook["cells"][2]["outputs"][0]["text"] == "started\n"  # the partial notebook is kept

    code, nothing = await _call(jp_fetch, "POST", "runs", runs[0]["id"], "cancel")
    assert code == 200 and nothing == {"runs": []}  # already over: nothing to cancel
    code, _ = await _error(jp_fetch, "POST", "runs", sweep_id, "cancel", body={})
    assert code == 404  # a sweep id is not a run id
    (jp_root_dir / "gate").unlink()
    code, again = await _call(jp_fetch, "POST", "sweeps", sweep_id, "requeue")
    assert code == 201 and len(again["runs"]) == 3
    assert [r["parent_id"] for r in again["runs"]] == [r["id"] for r in runs]
    assert {r["sweep_id"] for r in again["runs"]} == {sweep_id}
    assert [r["version"] for r in again["runs"]] == [4, 5, 6]
    finals = await _wait_final(jp_fetch, [run["id"] for run in again["runs"]])
    assert [run["status"] for run in finals] == ["succeeded"] * 3
    code, message = await _error(jp_fetch, "POST", "sweeps", sweep_id, "requeue", body={})
    assert code == 409 and "no interrupted or cancelled runs" in message


async def test_each_run_records_the_jupyter_user_who_asked_for_it(jp_fetch, jp_serverapp, jp_root_dir, monkeypatch):
    from jupyter_server.auth import User

    # a bare token: jupyter_server's anonymous identity, a new random username (32 hex digits) per
    # request without its cookie, names nobody: the run is the server's own user's (its OS user here)
    me = json.loads((await jp_fetch("api", "me")).body)["identity"]
    assert re.fullmatch(r"[0-9a-f]{32}", me["username"]) and me["name"].startswith("Anonymous ")
    code, run = await _call(jp_fetch, "POST", "runs", body={"notebook": "tiny.ipynb"})
    assert code == 201 and run["user"] == os_user()
    # a named identity, as JupyterHub's gives (here: the token's user, named by a header)
    monkeypatch.setattr(jp_serverapp.identity_provider, "generate_anonymous_user",
                        lambda handler: User(handler.request.headers.get("X-Test-User", "nobody")))

    async def call(user, *parts, body=None):
        response = await jp_fetch("mlx", *parts, method="POST", body=json.dumps(body or {}),
                                  headers={"X-Test-User": user})
        return json.loads(response.body)

    alone = await call("alice", "runs", body={"notebook": "tiny.ipynb", "parameters": {"x": 2}})
    swept = await call("bob", "sweeps", body={"notebook": "tiny.ipynb", "grid": {"x": [3, 4]}})
    assert alone["user"] == "alice" and [r["user"] for r in swept["runs"]] == ["bob", "bob"]
    slow = await call("alice", "runs", body={"notebook": "slow.ipynb"})
    await _wait_status(jp_fetch, slow["id"], "running")
    await call("bob", "runs", slow["id"], "cancel")
    await _wait_final(jp_fetch, [alone["id"], slow["id"], *(r["id"] for r in swept["runs"])])
    (jp_root_dir / "gate").unlink()
    (again,) = (await call("carol", "runs", slow["id"], "requeue"))["runs"]
    assert again["parent_id"] == slow["id"] and again["user"] == "carol"  # who asked for it again
    (final,) = await _wait_final(jp_fetch, [again["id"]])
    assert final["status"] == "succeeded" and final["user"] == "carol"
    _, page = await _call(jp_fetch, "GET", "runs", filter="user=bob")
    assert sorted(r["version"] for r in page["runs"]) == [3, 4]
    _, page = await _call(jp_fetch, "GET", "runs", notebook="slow.ipynb")
    assert [(r["version"], r["user"], r["status"]) for r in page["runs"]] == [
        (2, "carol", "succeeded"), (1, "alice", "cancelled")]


async def test_64_runs_from_8_threads_get_versions_1_to_64(jp_fetch, jp_serverapp, jp_base_url, jp_auth_header):
    from tornado.httpclient import HTTPClient

    url = f"http://127.0.0.1:{jp_serverapp.port}{jp_base_url}mlx/runs"

    def submit(i: int) -> dict:
        client = HTTPClient()
        try:
            response = client.fetch(url, method="POST", headers=jp_auth_header, body=json.dumps({"notebook": "one.ipynb", "parameters": {"n": i}}), request_timeout=60)
            return json.loads(response.body)
        finally:
            client.close()

    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(8) as threads:
        runs = await asyncio.gather(*(loop.run_in_executor(threads, submit, i) for i in range(64)))
    assert len({run["id"] for run in runs}) == 64
    assert sorted(run["version"] for run in runs) == list(range(1, 65))
    finals = await _wait_final(jp_fetch, [run["id"] for run in runs], timeout=240)
    assert [run["status"] for run in finals] == ["succeeded"] * 64
    assert sorted(run["parameters"]["n"] for run in finals) == list(range(64))
    _, page = await _call(jp_fetch, "GET", "runs", notebook="one.ipynb", limit="100")
    assert page["total"] == 64


@pytest.mark.parametrize(
    "route, body, expected",
    [
        ("runs", None, "not valid JSON"),
        ("runs", [], "must be a JSON object"),
        ("runs", {"parameters": {}}, "'notebook' is required"),
        ("runs", {"notebook": "tiny.ipynb", "colour": 1}, "unknown field(s) colour"),
        ("runs", {"notebook": "tiny.ipynb", "parameters": [1]}, "'parameters' must be dict"),
        ("runs", {"notebook": "tiny.ipynb", "parameters": {"nope": 1}}, "nope"),
        ("runs", {"notebook": "tiny.ipynb", "parameters": {"x": "many"}}, "x"),
        ("runs", {"notebook": "missing.ipynb"}, "missing.ipynb"),
        ("runs", {"notebook": "../outside.ipynb"}, "outside"),
        ("runs", {"notebook": "tiny.ipynb", "backend": "cloud"}, "unknown backend 'cloud'"),
        ("runs", {"notebook": "tiny.ipynb", "backend": "gateway"}, "needs a URL"),
        ("runs", {"notebook": "tiny.ipynb", "backend": "dask"}, "scheduler address"),
        ("runs", {"notebook": "tiny.ipynb", "timeout": -1}, "timeouts"),
        ("sweeps", {"notebook": "tiny.ipynb"}, "exactly one of"),
        ("sweeps", {"notebook": "tiny.ipynb", "grid": {}}, "grid is empty"),
        ("sweeps", {"notebook": "tiny.ipynb", "grid": {"x": []}}, "non-empty list"),
        ("sweeps", {"notebook": "tiny.ipynb", "grid": {"x": 3}}, "non-empty list"),
        ("sweeps", {"notebook": "tiny.ipynb", "list": []}, "list is empty"),
        ("sweeps", {"notebook": "tiny.ipynb", "list": [1, 2]}, "object of parameter values"),
        ("sweeps", {"notebook": "tiny.ipynb", "grid": {"x": list(range(101)), "label": list(range(100))}}, "10,100 runs"),
        ("sweeps", {"notebook": "tiny.ipynb", "grid": {"x": [1, "two"]}}, "two"),
    ],
)
async def test_bad_launch_requests_get_400_and_record_nothing(jp_fetch, route, body, expected):
    raw = "{not json" if body is None else json.dumps(body)
    code, message = await _error(jp_fetch, "POST", route, raw=raw)
    assert code == (404 if "missing" in expected else 400) and expected in message, message
    _, page = await _call(jp_fetch, "GET", "runs")
    _, sweeps = await _call(jp_fetch, "GET", "sweeps")
    assert page["total"] == 0 and sweeps["sweeps"] == []


async def test_unknown_ids_are_404(jp_fetch):
    for parts in (("runs", "0" * 32, "cancel"), ("sweeps", "0" * 32, "cancel"), ("sweeps", "0" * 32, "requeue")):
        code, _ = await _error(jp_fetch, "POST", *parts, body={})
        assert code == 404
    code, _ = await _error(jp_fetch, "GET", "sweeps", "0" * 32)
    assert code == 404


@pytest.mark.parametrize("parts", [("runs",), ("sweeps",), ("sweeps", "0" * 32, "cancel"), ("runs", "0" * 32, "requeue")])
async def test_launch_and_control_routes_require_authentication(jp_fetch, parts):
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch("mlx", *parts, method="POST", body="{}", headers={"Authorization": ""})
    assert caught.value.code == 403


async def test_openapi_document_describes_exactly_the_real_routes(jp_fetch):
    import re

    _, served = await _call(jp_fetch, "GET", "openapi.json")
    assert served == json.loads(json.dumps(openapi_document()))
    verbs = ("get", "post", "put", "patch", "delete")
    routes = set()
    for pattern, handler in route_handlers():
        if handler is NotFoundHandler:  # the JSON 404 of every other path: not a route
            continue
        template = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: "{" + ("run_id" if m.group(1) in ("run_id",) else m.group(1)) + "}", pattern)
        template = template.replace("{target}", "{run_id}" if template.startswith("/mlx/runs") else "{sweep_id}")
        for verb in verbs:
            if verb in handler.__dict__ or any(verb in base.__dict__ for base in handler.__mro__[1:] if base.__module__.startswith("jupyter_mlx")):
                routes.add((template, verb))
    documented = {(path, verb) for path, item in served["paths"].items() for verb in item if verb in verbs}
    assert documented == routes
    for path, item in served["paths"].items():
        for verb in verbs:
            if verb in item:
                assert "403" in item[verb]["responses"] or path in ("/mlx/notebooks", "/mlx/events", "/mlx/openapi.json")


async def test_an_unreachable_gateway_is_503_and_records_nothing(jp_fetch):
    url = UNREACHABLE_GATEWAY
    for route, extra in (("runs", {}), ("sweeps", {"grid": {"x": [1, 2]}})):
        code, message = await _error(
            jp_fetch, "POST", route, body={"notebook": "tiny.ipynb", "backend": "gateway", "gateway_url": url, **extra}
        )
        assert code == 503 and url in message, message
    _, page = await _call(jp_fetch, "GET", "runs")
    _, sweeps = await _call(jp_fetch, "GET", "sweeps")
    assert page["total"] == 0 and sweeps["sweeps"] == []
