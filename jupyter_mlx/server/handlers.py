"""Thin REST handlers: parse, authorize, call the service on a thread, serialize.

Every error is one JSON shape, ``{"error": <code>, "message": <text>}``, with a 4xx status
for the caller's mistakes (see ``jupyter_mlx.errors``).
"""
from __future__ import annotations

import asyncio
import functools
import json
import re
from typing import Any, Callable

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web

from ..errors import MLXError, error_code_of_status
from ..service import RunService

# jupyter_server's anonymous identity (a bare token): username uuid4().hex, name "Anonymous <moon>"
_ANONYMOUS = re.compile(r"[0-9a-f]{32}")

AUTH_RESOURCE = "jupyter_mlx"
_RUN_ID = r"(?P<run_id>[0-9a-f]{32})"


class MLXHandler(ExtensionHandlerMixin, APIHandler):
    """Base handler: service access off the event loop and the one error shape."""

    auth_resource = AUTH_RESOURCE

    @property
    def service(self) -> RunService:
        return self.settings["mlx_service"]

    @property
    def user_name(self) -> str | None:
        """Who asks, as the runs they start record it: the Jupyter identity's ``username`` (the
        JupyterHub user). None (the server's own user: ``c.MLXConfig.user``, else its OS user)
        for the anonymous identity jupyter_server makes up behind a bare token: a random id, new
        for each client without its cookie (the CLI, curl), which would name nobody."""
        user = self.current_user
        name = getattr(user, "username", None) if user is not None else None
        if name is None and isinstance(user, str):  # an identity provider of jupyter_server 1
            name = user
        if name and _ANONYMOUS.fullmatch(name) and str(getattr(user, "name", "")).startswith("Anonymous "):
            return None
        return name or None

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
            message = getattr(exc, "log_message", None) or self._reason
            if status_code >= 500:
                message = "unexpected server error; see the server log"
            body = {"error": error_code_of_status(status_code), "message": message}
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    def json_body(self, allowed: dict[str, type | tuple[type, ...]], required: tuple[str, ...] = ()) -> dict[str, Any]:
        """The request's JSON object, with known keys of the expected types; 400 otherwise."""
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError as exc:
            raise web.HTTPError(400, log_message=f"the request body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise web.HTTPError(400, log_message="the request body must be a JSON object")
        unknown = sorted(set(body) - set(allowed))
        if unknown:
            raise web.HTTPError(
                400, log_message=f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(allowed))}"
            )
        for name in required:
            if body.get(name) in (None, ""):
                raise web.HTTPError(400, log_message=f"the field {name!r} is required")
        for name, value in body.items():
            kinds = allowed[name] if isinstance(allowed[name], tuple) else (allowed[name],)
            if value is not None and (not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds)):
                names = " or ".join(kind.__name__ for kind in kinds)
                raise web.HTTPError(400, log_message=f"the field {name!r} must be {names}")
        return body

    def required_argument(self, name: str) -> str:
        """A query argument that must be given (400 otherwise)."""
        value = self.get_argument(name, "").strip()
        if not value:
            raise web.HTTPError(400, log_message=f"the query argument {name!r} is required")
        return value

    def int_argument(self, name: str, default: int) -> int:
        raw = self.get_argument(name, None)
        if raw is None:
            return default
        try:
            return int(raw)
        except ValueError:
            raise web.HTTPError(400, log_message=f"{name} must be an integer, not {raw!r}") from None


_LAUNCH_FIELDS: dict[str, Any] = {
    "notebook": str,
    "tags": list,
    "kernel": str,
    "cell_timeout": (int, float),
    "timeout": (int, float),
    "backend": str,
    "gateway_url": str,
    "gateway_token": str,
    "scheduler": str,
    "in_place": bool,
}


def _launch_options(body: dict[str, Any]) -> dict[str, Any]:
    """Service keyword arguments from a launch request body."""
    address = body.get("gateway_url") or body.get("scheduler")
    return {
        "backend": body.get("backend"),
        "backend_address": address,
        "backend_token": body.get("gateway_token"),
        "tags": [str(tag) for tag in body.get("tags") or []],
        "kernel_name": body.get("kernel"),
        "cell_timeout": body.get("cell_timeout"),
        "run_timeout": body.get("timeout"),
        "in_place": bool(body.get("in_place")),
    }


class InfoHandler(MLXHandler):
    """``GET /mlx/info``: the project whose runs this server keeps (its root folder), the
    jupyter_mlx version, so clients (the ``%mlx`` magic) map their paths onto it, and the run
    index (``store``: its URL without password, and the error if it cannot be opened)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        from .. import __version__

        store = await self.call(self.service.store_status)
        self.finish({"root": str(self.service.project.root), "version": __version__, "store": store})


class RunsHandler(MLXHandler):
    """``GET /mlx/runs?notebook=&status=&sweep=&limit=&offset=&sort=&order=&filter=&keys=1``: a
    page of runs (newest first by default), with ``keys`` (parameter and metric names) if asked.
    ``POST /mlx/runs`` queues a run: ``{"notebook", "parameters", "backend", ...}``."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        keys = self.get_argument("keys", "").strip().lower()
        if keys not in ("", "0", "1", "true", "false"):
            raise web.HTTPError(400, log_message=f"keys must be 1 or 0, not {keys!r}")
        page = await self.call(
            self.service.list_runs,
            self.get_argument("notebook", None) or None,
            self.get_argument("status", None) or None,
            self.int_argument("limit", 50),
            self.int_argument("offset", 0),
            sweep_id=self.get_argument("sweep", None) or None,
            sort=self.get_argument("sort", None) or None,
            order=self.get_argument("order", None) or None,
            filter=self.get_argument("filter", None) or None,
            keys=keys in ("1", "true"),
        )
        self.finish(page.to_json())

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.json_body({**_LAUNCH_FIELDS, "parameters": dict}, required=("notebook",))
        run = await self.call(
            self.service.submit, body["notebook"], body.get("parameters") or {}, **_launch_options(body),
            user=self.user_name,
        )
        self.set_status(201)
        self.finish(run.to_json())


class SweepsHandler(MLXHandler):
    """``GET /mlx/sweeps?notebook=&limit=&offset=``: sweeps, newest first.
    ``POST /mlx/sweeps`` queues a sweep: ``{"notebook", "grid": {name: [values]}}`` or ``"list"``."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        sweeps = await self.call(
            self.service.list_sweeps,
            self.get_argument("notebook", None) or None,
            self.int_argument("limit", 50),
            self.int_argument("offset", 0),
        )
        self.finish({"sweeps": [sweep.to_json() for sweep in sweeps]})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.json_body({**_LAUNCH_FIELDS, "grid": dict, "list": list, "confirm": bool}, required=("notebook",))
        if ("grid" in body) == ("list" in body):
            raise web.HTTPError(400, log_message='give exactly one of "grid" ({name: [values]}) or "list" ([{...}])')
        spec = {"grid": body["grid"]} if "grid" in body else {"list": body["list"]}
        sweep, runs = await self.call(
            self.service.sweep, body["notebook"], spec, confirm=bool(body.get("confirm")), **_launch_options(body),
            user=self.user_name,
        )
        self.set_status(201)
        self.finish({"sweep": sweep.to_json(), "runs": [run.to_json() for run in runs]})


class SweepHandler(MLXHandler):
    """``GET /mlx/sweeps/<id>``: a sweep with its runs."""

    @web.authenticated
    @authorized
    async def get(self, sweep_id: str) -> None:
        sweep = await self.call(self.service.get_sweep, sweep_id)
        runs = await self.call(self.service.sweep_runs, sweep_id)
        self.finish({"sweep": sweep.to_json(), "runs": [run.to_json() for run in runs]})


class CancelHandler(MLXHandler):
    """``POST /mlx/runs/<id>/cancel`` or ``/mlx/sweeps/<id>/cancel``: stop queued and running runs."""

    kind = "run"

    @web.authenticated
    @authorized
    async def post(self, target: str) -> None:
        runs = await self.call(self.service.cancel, target, kind=self.kind)
        self.finish({"runs": [run.to_json() for run in runs]})


class RequeueHandler(MLXHandler):
    """``POST /mlx/runs/<id>/requeue`` or ``/mlx/sweeps/<id>/requeue``: run interrupted or
    cancelled runs again as new versions (``{"include_failed": true}``: failed ones too)."""

    kind = "run"

    @web.authenticated
    @authorized
    async def post(self, target: str) -> None:
        body = self.json_body({"include_failed": bool})
        runs = await self.call(
            self.service.requeue, target, include_failed=bool(body.get("include_failed")), kind=self.kind,
            user=self.user_name,
        )
        self.set_status(201)
        self.finish({"runs": [run.to_json() for run in runs]})


class SweepCancelHandler(CancelHandler):
    kind = "sweep"


class SweepRequeueHandler(RequeueHandler):
    kind = "sweep"


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


class RunArtifactsHandler(MLXHandler):
    """``GET /mlx/runs/<id>/artifacts``: the files a run wrote, its notes (``?inputs=1``: and the
    project files it saw)."""

    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        files = await self.call(self.service.run_files, run_id)
        if self.get_argument("inputs", "0") not in ("1", "true"):
            files.pop("inputs")
        self.finish(files)


class RunArtifactHandler(MLXHandler):
    """``GET /mlx/runs/<id>/artifacts/<path>``: one artifact's bytes, as a download. Never rendered
    by the browser from this origin (a run's HTML or SVG could script it): an attachment, a type
    from a short list of inert ones (else ``application/octet-stream``), no sniffing, sandboxed."""

    @web.authenticated
    @authorized
    async def get(self, run_id: str, path: str) -> None:
        artifact, chunks = await self.call(self.service.artifact, run_id, path)
        self.set_header("Content-Type", artifact.media_type if artifact.media_type in INERT_TYPES
                        else "application/octet-stream")
        self.set_header("Content-Disposition", content_disposition(path))
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Security-Policy", "sandbox; default-src 'none'")
        self.set_header("Content-Length", str(artifact.size))
        while True:
            chunk = await asyncio.to_thread(next, chunks, None)
            if chunk is None:
                break
            self.write(chunk)
            await self.flush()
        self.finish()


class RunArtifactPreviewHandler(MLXHandler):
    """``GET /mlx/runs/<id>/previews/<path>``: what the panel shows of an artifact (JSON)."""

    @web.authenticated
    @authorized
    async def get(self, run_id: str, path: str) -> None:
        self.finish(await self.call(self.service.artifact_preview, run_id, path))


INERT_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "text/plain", "text/csv",
                         "text/tab-separated-values", "application/json", "text/markdown"})


def content_disposition(path: str) -> str:
    """``attachment`` with the file's name: plain ASCII (quotes, controls and ``\\`` replaced) for old
    clients, and RFC 5987's ``filename*`` with the exact UTF-8 name."""
    from urllib.parse import quote

    name = path.rsplit("/", 1)[-1] or "artifact"
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


class NotebooksHandler(MLXHandler):
    """``GET /mlx/notebooks``: notebooks with runs, with counts and last versions."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        summaries = await self.call(self.service.list_notebooks)
        self.finish({"notebooks": [summary.to_json() for summary in summaries]})


class LaunchFormHandler(MLXHandler):
    """``GET /mlx/parameters?notebook=PATH``: the notebook's parameters (name, type, default, help)
    and the backends available, for a launch form."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.finish(await self.call(self.service.launch_form, self.required_argument("notebook")))


class CompareMixin(MLXHandler):
    """Compare options from the query: ``rtol``, ``atol``, ``image_tolerance``, ``ignore``,
    ``ignore_artifact`` and ``ignore_state`` (the last three repeatable)."""

    def compare_overrides(self) -> dict[str, Any]:
        overrides: dict[str, Any] = {}
        for name, option in (("rtol", "rtol"), ("atol", "atol"), ("image_tolerance", "image_changed_fraction")):
            raw = self.get_argument(name, None)
            if raw is not None:
                try:
                    overrides[option] = float(raw)
                except ValueError:
                    raise web.HTTPError(400, log_message=f"{name} must be a number, not {raw!r}") from None
        ignore = self.get_arguments("ignore")
        if ignore:
            overrides["ignore_patterns"] = ignore
        ignore_artifacts = self.get_arguments("ignore_artifact")
        if ignore_artifacts:
            overrides["ignore_artifacts"] = ignore_artifacts
        ignore_state = self.get_arguments("ignore_state")
        if ignore_state:
            overrides["ignore_state"] = ignore_state
        return overrides

    async def finish_comparison(self, comparison: Any) -> None:
        """The comparison as JSON, or as the HTML report with ``format=html``."""
        if self.get_argument("format", "json") == "html":
            from ..diff.report import content_security_policy, report_html

            html = await asyncio.to_thread(report_html, comparison)
            # The report's own policy, not the API's ``default-src 'none'`` (which blocks its style,
            # script and images); framing stays as jupyter_server has it (a <meta> cannot say it).
            self.set_header("Content-Security-Policy", f"{content_security_policy()}; frame-ancestors 'self'")
            self.finish(html, set_content_type="text/html; charset=UTF-8")
        else:
            self.finish(await asyncio.to_thread(comparison.to_json))


class CompareHandler(CompareMixin):
    """``GET /mlx/compare?a=REF&b=REF``: the comparison of two runs (or two notebooks of the
    project) as JSON, ``format=html`` for the self-contained report."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        a, b = self.required_argument("a"), self.required_argument("b")
        comparison = await self.call(self.service.compare, a, b, self.compare_overrides())
        await self.finish_comparison(comparison)


class CheckHandler(CompareMixin):
    """``GET /mlx/check?run=REF[&baseline=REF]``: the run compared with its notebook's baseline;
    ``summary.verdict`` says whether it passes, ``summary.unexpected`` what fails it."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        run = self.required_argument("run")
        baseline = self.get_argument("baseline", None) or None
        comparison = await self.call(self.service.check, run, baseline, self.compare_overrides())
        await self.finish_comparison(comparison)


class BaselinesHandler(MLXHandler):
    """``GET /mlx/baselines?notebook=PATH``: the notebook's approved baseline (404 if none);
    ``POST /mlx/baselines`` ``{"run": REF, "note": "..."}`` approves a finished run."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        baseline = await self.call(self.service.baseline, self.required_argument("notebook"))
        self.finish(baseline.to_json())

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.json_body({"run": str, "note": str}, required=("run",))
        baseline = await self.call(self.service.approve_baseline, body["run"], body.get("note") or "")
        self.set_status(201)
        self.finish(baseline.to_json())


class RunsTableHandler(MLXHandler):
    """``GET /mlx/table?notebook=&sweep=&status=&limit=`` (or ``?runs=REF&runs=REF...``: exactly
    those runs): runs as rows, parameters and metrics as columns
    (``{"parameters", "metrics", "varying", "rows"}``), for a table across many runs."""

    async def runs_table(self) -> Any:
        return await self.call(
            self.service.runs_table,
            self.get_argument("notebook", None) or None,
            sweep_id=self.get_argument("sweep", None) or None,
            status=self.get_argument("status", None) or None,
            limit=self.int_argument("limit", 50),
            runs=self.get_arguments("runs") or None,
        )

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.finish((await self.runs_table()).to_json())

    def finish_figure(self, png: bytes) -> None:
        self.set_header("Cache-Control", "no-store")
        self.finish(png, set_content_type="image/png")


class RunsChartHandler(RunsTableHandler):
    """``GET /mlx/table/chart?metric=&by=&theme=dark&...`` (the table's selection arguments): a
    PNG of a metric across runs, against the parameter ``by`` (default: the first that varies)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        metric = self.required_argument("metric")
        table = await self.runs_table()
        by = self.get_argument("by", None) or None
        figure = await self.call(table.plot, metric, by)
        self.finish_figure(await self.call(_png, figure, self.get_argument("theme", "light")))


class RunsSeriesChartHandler(RunsTableHandler):
    """``GET /mlx/table/series?metric=&theme=&...`` (the table's selection arguments): a PNG of
    the metric's logged series (``log_metric(name, value, step=)``), one line per run."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        metric = self.required_argument("metric")
        table = await self.runs_table()
        figure = await self.call(self.service.metric_series_chart, table, metric)
        self.finish_figure(await self.call(_png, figure, self.get_argument("theme", "light")))


def _png(figure: Any, theme: str) -> bytes:
    """The figure as PNG; ``theme=dark`` draws it light-on-dark (for JupyterLab's dark theme)."""
    import io

    if theme not in ("light", "dark"):
        raise MLXError("invalid_request", f"theme must be light or dark, not {theme!r}")
    if theme == "dark":
        _darken(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", transparent=theme == "dark")
    return buffer.getvalue()


def _darken(figure: Any) -> None:
    """Light text, ticks and spines on a transparent background."""
    light = "#d8d8d8"
    figure.patch.set_alpha(0)
    for axes in figure.axes:
        axes.set_facecolor("none")
        axes.tick_params(colors=light)
        axes.xaxis.label.set_color(light)
        axes.yaxis.label.set_color(light)
        axes.title.set_color(light)
        for spine in axes.spines.values():
            spine.set_color(light)
        legend = axes.get_legend()
        if legend is not None:
            legend.get_frame().set_alpha(0.2)
            for text in legend.get_texts():
                text.set_color(light)


_DEPLOY_FIELDS: dict[str, Any] = {
    "target": str, "function": str, "name": str, "host": str, "port": int, "token": str, "no_auth": bool,
    "allow_public_unauthenticated": bool, "workers": int, "timeout": (int, float), "max_body": int, "cells": bool,
    "reexecute": bool, "allow_version_drift": bool,
}


class EndpointsHandler(MLXHandler):
    """``GET /mlx/endpoints``: managed endpoints with their status and request stats.
    ``POST /mlx/endpoints`` ``{"target": "train.ipynb@v5", "function": "predict", "name": "iris"}``
    deploys (or redeploys an existing name, zero downtime); the new token is in the answer, once.
    An endpoint listening beyond loopback is a warning in the server log and in the answer."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        found = await self.call(self.service.endpoints.list)
        self.finish({"endpoints": [record.to_json(status) for record, status in found]})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.json_body(_DEPLOY_FIELDS, required=("target",))
        options = {key: value for key, value in body.items() if key != "target" and value is not None}
        deployed = await self.call(self.service.endpoints.deploy, body["target"], **options)
        if deployed.warning:
            self.log.warning("jupyter_mlx: %s", deployed.warning)
        self.set_status(201)
        self.finish(deployed.to_json())


class EndpointDetailHandler(MLXHandler):
    """``GET /mlx/endpoints/<name>`` (with ``?logs=200``: the last log lines), ``DELETE`` stops it."""

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        record, status = await self.call(self.service.endpoints.get, name)
        body = record.to_json(status)
        lines = self.int_argument("logs", 0)
        if lines > 0:
            body["logs"] = await self.call(self.service.endpoints.logs, name, lines)
        self.finish(body)

    @web.authenticated
    @authorized
    async def delete(self, name: str) -> None:
        record = await self.call(self.service.endpoints.stop, name)
        self.finish(record.to_json())


class EndpointRollbackHandler(MLXHandler):
    """``POST /mlx/endpoints/<name>/rollback``: serve the previous version again."""

    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        record = await self.call(self.service.endpoints.rollback, name)
        self.finish(record.to_json())


class EndpointTryHandler(MLXHandler):
    """``POST /mlx/endpoints/<name>/try`` ``{"method", "path", "body", "token"}``: one request to
    the endpoint, sent from the server; answers ``{"status", "headers", "body"}`` (502 when the
    endpoint does not answer)."""

    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        body = self.json_body({"method": str, "path": str, "body": (dict, list, str, int, float, bool), "token": str},
                              required=("path",))
        send = functools.partial(self.service.endpoints.try_request, name, method=body.get("method") or "POST",
                                 path=body["path"], body=body.get("body"), token=body.get("token"))
        answer = await self.call(send)  # (call's own first parameter is named method)
        self.finish(answer)


class NotFoundHandler(MLXHandler):
    """Any other path under ``/mlx/``: 404 in the one JSON error shape (Jupyter's own answer is an
    HTML page). Authenticated like every route, so a caller without a token learns nothing of
    which routes exist: every path answers it 403 alike."""

    @web.authenticated
    @authorized
    async def get(self, path: str | None = None) -> None:
        raise web.HTTPError(404, log_message=f"no route /mlx{path or ''}: GET /mlx/openapi.json lists them")

    head = post = put = patch = delete = get


def route_handlers() -> list[tuple[str, type[APIHandler]]]:
    from .events import EventsHandler
    from .openapi import OpenAPIHandler

    return [
        (r"/mlx/info", InfoHandler),
        (r"/mlx/runs", RunsHandler),
        (rf"/mlx/runs/{_RUN_ID}", RunHandler),
        (rf"/mlx/runs/{_RUN_ID}/notebook", RunNotebookHandler),
        (rf"/mlx/runs/{_RUN_ID}/artifacts", RunArtifactsHandler),
        (rf"/mlx/runs/{_RUN_ID}/artifacts/(?P<path>.+)", RunArtifactHandler),
        (rf"/mlx/runs/{_RUN_ID}/previews/(?P<path>.+)", RunArtifactPreviewHandler),
        (r"/mlx/runs/(?P<target>[0-9a-f]{32})/cancel", CancelHandler),
        (r"/mlx/runs/(?P<target>[0-9a-f]{32})/requeue", RequeueHandler),
        (r"/mlx/sweeps", SweepsHandler),
        (r"/mlx/sweeps/(?P<sweep_id>[0-9a-f]{32})", SweepHandler),
        (r"/mlx/sweeps/(?P<target>[0-9a-f]{32})/cancel", SweepCancelHandler),
        (r"/mlx/sweeps/(?P<target>[0-9a-f]{32})/requeue", SweepRequeueHandler),
        (r"/mlx/notebooks", NotebooksHandler),
        (r"/mlx/parameters", LaunchFormHandler),
        (r"/mlx/compare", CompareHandler),
        (r"/mlx/check", CheckHandler),
        (r"/mlx/baselines", BaselinesHandler),
        (r"/mlx/table", RunsTableHandler),
        (r"/mlx/table/chart", RunsChartHandler),
        (r"/mlx/table/series", RunsSeriesChartHandler),
        (r"/mlx/endpoints", EndpointsHandler),
        (r"/mlx/endpoints/(?P<name>[a-z0-9][a-z0-9_-]{0,62})", EndpointDetailHandler),
        (r"/mlx/endpoints/(?P<name>[a-z0-9][a-z0-9_-]{0,62})/rollback", EndpointRollbackHandler),
        (r"/mlx/endpoints/(?P<name>[a-z0-9][a-z0-9_-]{0,62})/try", EndpointTryHandler),
        (r"/mlx/events", EventsHandler),
        (r"/mlx/openapi.json", OpenAPIHandler),
        (r"/mlx(?P<path>/.*)?", NotFoundHandler),  # last: what no route above matched
    ]
