"""Issue 13 item 7: every route of the REST API, and every HTTP method its handler implements,
refuses a caller without a token and one with a wrong token (403, no side effect), and an
authenticated user the authorizer does not allow. Generated from ``route_handlers()`` itself, so
a new route without ``@web.authenticated`` / ``@authorized`` fails here.

Three servers: the project's test configuration (``allow_unauthenticated_access: False``), the
jupyter_server default (``True``: there the handlers' own decorators are all that protects a
route), and one whose authorizer refuses the ``jupyter_mlx`` resource (only ``@authorized`` stops
a request with a valid token).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from jupyter_server.auth.authorizer import Authorizer
from tornado.httpclient import HTTPClientError

from jupyter_mlx.server.handlers import AUTH_RESOURCE, route_handlers
from jupyter_mlx.service import RunService
from jupyter_mlx.store import NewRun, NewSweep, RunError, RunOutcome

from notebooks import write_tiny
from rest_client import SERVER_CONFIG

pytest_plugins = ("pytest_jupyter.jupyter_server",)

METHODS = ("get", "head", "post", "put", "patch", "delete", "options")
XSRF = "attacker-made"  # a client that is not a browser sets the cookie and the header alike
CALLERS = {
    "no token": {"Authorization": "", "Cookie": f"_xsrf={XSRF}", "X-XSRFToken": XSRF},
    "wrong token": {"Authorization": "token not-the-token", "Cookie": f"_xsrf={XSRF}", "X-XSRFToken": XSRF},
}
# bodies that would change something if a request got through
BODIES = {
    ("RunsHandler", "post"): {"notebook": "tiny.ipynb", "parameters": {"x": 9}},
    ("SweepsHandler", "post"): {"notebook": "tiny.ipynb", "grid": {"x": [7, 8]}},
    ("BaselinesHandler", "post"): {"run": "tiny.ipynb@v2"},
    ("EndpointsHandler", "post"): {"target": "tiny.ipynb@v1", "name": "other"},
    ("EndpointTryHandler", "post"): {"path": "/hello", "method": "GET"},
    ("RequeueHandler", "post"): {"include_failed": True},
    ("SweepRequeueHandler", "post"): {"include_failed": True},
}


class DenyMLX(Authorizer):
    """Allows everything but jupyter_mlx's resource."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return resource != AUTH_RESOURCE


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """Real state every route could change: two runs (v2 the baseline), a queued run of a sweep
    (its process, this one, is alive), an interrupted run, and a stopped endpoint."""
    root = tmp_path_factory.mktemp("auth")
    write_tiny(root / "tiny.ipynb")
    service = RunService(root)
    service.run("tiny.ipynb", {"x": "2"})
    service.run("tiny.ipynb", {"x": "3"})
    service.approve_baseline("tiny.ipynb@v1")
    source = (root / "tiny.ipynb").read_bytes()
    here = {"host": socket.gethostname(), "pid": os.getpid()}
    queued = service.store.create_runs([NewRun("tiny.ipynb", source, {"x": 5}, **here)],
                                       NewSweep("tiny.ipynb", "local", {"grid": {"x": [5]}}))[0]
    interrupted = service.store.create_run(NewRun("tiny.ipynb", source, {"x": 6}, **here))
    service.store.finish_run(interrupted.id, RunOutcome("interrupted", None, None, time.time(),
                                                        error=RunError("KeyboardInterrupt", "stopped")))
    service.close()
    folder = root / ".mlx" / "endpoints" / "wine"
    folder.mkdir(parents=True)
    deployment = {"notebook": "tiny.ipynb", "ref": "tiny.ipynb@v1", "run_id": None, "mode": "cells",
                  "function": None, "deployed_at": 0.0}
    (folder / "record.json").write_text(json.dumps({
        "name": "wine", "host": "127.0.0.1", "port": 9, "token_hash": None, "workers": 1, "timeout": 5.0,
        "max_body": 1024, "history": [deployment, deployment], "current": 1, "desired": "stopped"}))
    return {"root": root, "run_id": interrupted.id, "sweep_id": queued.sweep_id, "name": "wine", "path": "/nosuch"}


@pytest.fixture
def jp_root_dir(project):
    return project["root"]


SERVERS = {
    "test config": SERVER_CONFIG,
    "jupyter_server default": {"ServerApp": {"jpserver_extensions": {"jupyter_mlx": True}}},
    "authorizer refusing jupyter_mlx": {**SERVER_CONFIG, "ServerApp": {**SERVER_CONFIG["ServerApp"],
                                                                       "authorizer_class": DenyMLX}},
}


@pytest.fixture(params=list(SERVERS))
def jp_server_config(request):
    return SERVERS[request.param]


def requests_of_the_route_table(values: dict[str, str]) -> list[tuple[str, str, str]]:
    """(handler name, method, path) for every route and every method its handler implements."""
    table = route_handlers()
    found = []
    for pattern, handler in table:
        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if name == "target":
                name = "run_id" if pattern.startswith("/mlx/runs") else "sweep_id"
            assert name in values, f"add a sample value for the path argument {name!r} of {pattern}"
            return values[name]

        path = re.sub(r"\(\?P<(\w+)>[^)]*\)\??", value, pattern)
        first = next(h for p, h in table if re.fullmatch(p, path))
        assert first is handler, f"{path} is answered by {first.__name__}, not {handler.__name__}"
        for method in METHODS:
            implementation = getattr(handler, method, None)
            if implementation is not None and (implementation.__module__ or "").startswith("jupyter_mlx"):
                found.append((handler.__name__, method.upper(), path))
    return found


def state(root: Path) -> Any:
    """Everything a request could change: runs, sweeps, the baseline, cancel requests, files."""
    service = RunService(root)
    try:
        runs = service.list_runs(limit=1000).runs
        recorded = ([(r.id, r.version, r.status) for r in runs], [s.id for s in service.list_sweeps()],
                    service.baseline("tiny.ipynb").run_id, sorted(service.store.cancel_requests([r.id for r in runs])))
    finally:
        service.close()
    files = sorted((str(p.relative_to(root)), hashlib.sha256(p.read_bytes()).hexdigest())
                   for p in root.rglob("*") if p.is_file() and not p.name.startswith("runs.sqlite"))
    return recorded, files


async def test_every_route_and_method_refuses_callers_without_a_valid_token_or_permission(
    jp_fetch, jp_server_config, project
):
    requests = requests_of_the_route_table(project)
    assert len({path for _, _, path in requests}) == len(route_handlers())
    callers = CALLERS if jp_server_config.get("ServerApp", {}).get("authorizer_class") is None else {"valid token": {}}
    before = state(project["root"])
    let_through = []
    for handler, method, path in requests:
        body = BODIES.get((handler, method.lower()), {}) if method in ("POST", "PUT", "PATCH") else None
        for caller, headers in callers.items():
            try:
                response = await jp_fetch(path.lstrip("/"), method=method, headers=dict(headers), request_timeout=10,
                                          body=None if body is None else json.dumps(body), allow_nonstandard_methods=True)
                code, payload = response.code, response.body
            except HTTPClientError as exc:
                code, payload = exc.code, exc.response.body if exc.response is not None else b""
            refused = code == 403 and (method == "HEAD" or json.loads(payload)["error"] == "forbidden")
            if not refused:
                let_through.append(f"{method} {path} ({handler}), {caller}: {code} {payload[:120]!r}")
    assert let_through == [], "routes that let the caller through:\n" + "\n".join(let_through)
    assert state(project["root"]) == before
