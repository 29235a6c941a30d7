"""Thin REST handlers: parse, authorize, call the service on a thread, serialize.

Every error is one JSON shape, ``{"error": <code>, "message": <text>}``, with a 4xx status
for the caller's mistakes (see ``jupyter_mlx.errors``).
"""
from __future__ import annotations

import asyncio
import json
from http import HTTPStatus
from typing import Any, Callable

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web

from ..errors import MLXError
from ..service import RunService

AUTH_RESOURCE = "jupyter_mlx"
_RUN_ID = r"(?P<run_id>[0-9a-f]{32})"

_HTTP_CODES = {400: "invalid_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}


class MLXHandler(ExtensionHandlerMixin, APIHandler):
    """Base handler: service access off the event loop and the one error shape."""

    auth_resource = AUTH_RESOURCE

    @property
    def service(self) -> RunService:
        return self.settings["mlx_service"]

    async def call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a service call on a worker thread: SQLite and files never block the loop."""
        try:
            return await asyncio.to_thread(method, *args, **kwargs)
        except MLXError as exc:
            raise web.HTTPError(exc.http_status, reason=exc.code, log_message=exc.message) from exc

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        cause = getattr(exc, "__cause__", None)
        if isinstance(cause, MLXError):
            body = cause.to_json()
        else:
            message = getattr(exc, "log_message", None) or HTTPStatus(status_code).phrase
            if status_code >= 500:
                message = "unexpected server error; see the server log"
            body = {"error": _HTTP_CODES.get(status_code, "server_error"), "message": message}
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    def int_argument(self, name: str, default: int) -> int:
        raw = self.get_argument(name, None)
        if raw is None:
            return default
        try:
            return int(raw)
        except ValueError:
            raise web.HTTPError(400, log_message=f"{name} must be an integer, not {raw!r}") from None


class RunsHandler(MLXHandler):
    """``GET /mlx/runs?notebook=&status=&limit=&offset=``: a page of runs, newest first."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        page = await self.call(
            self.service.list_runs,
            self.get_argument("notebook", None) or None,
            self.get_argument("status", None) or None,
            self.int_argument("limit", 50),
            self.int_argument("offset", 0),
        )
        self.finish(page.to_json())


class RunHandler(MLXHandler):
    """``GET /mlx/runs/<id>``: one run with its environment and timings; ``DELETE`` removes it."""

    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        self.finish(await self.call(self.service.run_details, run_id))

    @web.authenticated
    @authorized
    async def delete(self, run_id: str) -> None:
        await self.call(self.service.delete_run, run_id)
        self.set_status(204)
        self.finish()


class RunNotebookHandler(MLXHandler):
    """``GET /mlx/runs/<id>/notebook``: the executed notebook (``?source=1``: the snapshot)."""

    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        if self.get_argument("source", "0") in ("1", "true"):
            run = await self.call(self.service.get_run, run_id)
            body = await self.call(self.service.store.source_notebook, run.id)
        else:
            body = json.dumps(await self.call(self.service.executed_notebook, run_id)).encode()
        self.finish(body)


class NotebooksHandler(MLXHandler):
    """``GET /mlx/notebooks``: notebooks with runs, with counts and last versions."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        summaries = await self.call(self.service.list_notebooks)
        self.finish({"notebooks": [summary.to_json() for summary in summaries]})


def route_handlers() -> list[tuple[str, type[MLXHandler]]]:
    return [
        (r"/mlx/runs", RunsHandler),
        (rf"/mlx/runs/{_RUN_ID}", RunHandler),
        (rf"/mlx/runs/{_RUN_ID}/notebook", RunNotebookHandler),
        (r"/mlx/notebooks", NotebooksHandler),
    ]
