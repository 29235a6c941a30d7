"""``GET /mlx/openapi.json``: the OpenAPI 3 description of the REST API.

Its operations are written next to the routes and tested against them (every route and method
is described, nothing else is); ``serve.apidoc`` lays them out, as it does for the endpoints'
own documents.
"""
from __future__ import annotations

from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from .._version import __version__
from ..serve.apidoc import Operation, json_response
from ..serve.apidoc import openapi_document as build_openapi
from .handlers import MLXHandler

_ID = {"type": "string", "pattern": "^[0-9a-f]{32}$"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_json = json_response


def _errors(*codes: int) -> dict[str, Any]:
    texts = {400: "bad request", 403: "not authenticated or not allowed", 404: "not found",
             409: "conflict with the run's state", 503: "backend unavailable"}
    return {code: _json(_ref("Error"), texts[code]) for code in (*codes, 403)}


def _path_id(name: str, what: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": _ID, "description": what}


def _query(name: str, kind: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": {"type": kind}, "description": description}


_PAGING = [_query("limit", "integer", "page size, 1..1000 (default 50)"), _query("offset", "integer", "runs to skip")]
_LAUNCH = {
    "notebook": {"type": "string", "description": "path of the notebook, relative to the project root"},
    "tags": {"type": "array", "items": {"type": "string"}},
    "kernel": {"type": "string", "description": "kernel name (default: the notebook's)"},
    "cell_timeout": {"type": "number", "description": "seconds a cell may run (0: no limit)"},
    "timeout": {"type": "number", "description": "seconds the run may take (0: no limit)"},
    "backend": {"type": "string", "enum": ["local", "gateway", "dask"]},
    "gateway_url": {"type": "string", "description": "gateway backend: base URL (default: the configured one; "
                    "another must be listed in c.MLXConfig.allowed_gateways)"},
    "gateway_token": {"type": "string", "description": "gateway backend: auth token (the configured token is only "
                      "sent to the configured URL)"},
    "scheduler": {"type": "string", "description": "dask backend: scheduler address (default: the configured one; another must be listed in c.MLXConfig.allowed_schedulers)"},
    "in_place": {"type": "boolean", "description": "run in the project folder itself instead of a folder of its own "
                 "(refused for a sweep that runs more than one run at a time)"},
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error", "message"],
        "properties": {"error": {"type": "string", "description": "stable code"}, "message": {"type": "string"}},
    },
    "Run": {
        "type": "object",
        "required": ["id", "notebook", "version", "ref", "status", "parameters", "metrics"],
        "properties": {
            "id": _ID,
            "notebook": {"type": "string"},
            "version": {"type": "integer"},
            "ref": {"type": "string", "example": "train.ipynb@v3"},
            "status": {"type": "string", "enum": ["queued", "running", "succeeded", "failed", "cancelled", "interrupted"]},
            "parameters": {"type": "object", "description": "every parameter's effective value: the overrides, "
                           "else the notebook's default (a default expression: its source text)"},
            "overridden": {"type": "array", "items": {"type": "string"},
                           "description": "the parameters the request set (the others are defaults)"},
            "expressions": {"type": "array", "items": {"type": "string"},
                            "description": "the parameters whose value is a default expression's source text"},
            "metrics": {"type": "object", "additionalProperties": {"type": "number"}},
            "tags": {"type": "array", "items": {"type": "string"}},
            "queued_at": {"type": "string", "format": "date-time"},
            "started_at": {"type": "string", "format": "date-time", "nullable": True},
            "finished_at": {"type": "string", "format": "date-time", "nullable": True},
            "duration": {"type": "number", "nullable": True},
            "error": {"type": "object", "nullable": True},
            "backend": {"type": "string"},
            "user": {"type": "string", "nullable": True,
                     "description": "who asked for it: the Jupyter user (REST, the panel; a requeued run: who asked "
                     "again), else the OS user or c.MLXConfig.user (CLI, magic); null for runs recorded before users were"},
            "sweep_id": {**_ID, "nullable": True},
            "parent_id": {**_ID, "nullable": True},
            "progress": {
                "type": "object",
                "nullable": True,
                "properties": {"cell": {"type": "integer"}, "cells": {"type": "integer"}},
            },
            "run_folder": {"type": "string", "nullable": True, "description": "in-place, or how its own folder was made"},
            "notes": {"type": "array", "items": {"type": "string"}, "description": "what the run says of its files"},
            "kernel_start": {
                "type": "object", "nullable": True,
                "description": "how its kernel started: warm (forked with the notebook's modules imported) or cold, and "
                               "how long the run waited for it (seconds, until its first cell started)",
                "properties": {"warm": {"type": "boolean"}, "modules": {"type": "array", "items": {"type": "string"}},
                               "left_out": {"type": "object", "additionalProperties": {"type": "string"}},
                               "cold": {"type": "string", "nullable": True}, "waited": {"type": "number", "nullable": True},
                               "threads": {"type": "integer", "description": "BLAS/OpenMP threads a sweep's run "
                                           "had, sharing the cores with the others (0: the libraries' defaults)"}},
            },
        },
    },
    "RunPage": {
        "type": "object",
        "properties": {
            "runs": {"type": "array", "items": _ref("Run")},
            "total": {"type": "integer"},
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
            "keys": {
                "type": "object",
                "description": "with keys=1 only: the parameter and metric names of every run of the "
                "notebook/status/sweep (whatever the filter), sorted",
                "properties": {
                    "parameters": {"type": "array", "items": {"type": "string"}},
                    "metrics": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
    "Runs": {"type": "object", "properties": {"runs": {"type": "array", "items": _ref("Run")}}},
    "Sweep": {
        "type": "object",
        "properties": {
            "id": _ID,
            "notebook": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"},
            "backend": {"type": "string"},
            "spec": {"type": "object"},
            "size": {"type": "integer"},
            "counts": {
                "type": "object", "additionalProperties": {"type": "integer"},
                "description": "runs per status, re-queued ones included",
            },
            "superseded": {
                "type": "object", "additionalProperties": {"type": "integer"},
                "description": "of those, the runs re-queued (superseded by the run repeating them), per status",
            },
            "status": {"type": "string", "description": "of the runs not superseded"},
        },
    },
    "SweepWithRuns": {
        "type": "object",
        "properties": {"sweep": _ref("Sweep"), "runs": {"type": "array", "items": _ref("Run")}},
    },
    "Comparison": {
        "type": "object",
        "description": "The comparison of two runs: the JSON Schema is jupyter_mlx/diff/comparison.schema.json",
        "required": ["format", "version", "a", "b", "parameters", "metrics", "environment", "cells", "summary"],
    },
    "Baseline": {
        "type": "object",
        "properties": {
            "notebook": {"type": "string"},
            "run_id": _ID,
            "version": {"type": "integer"},
            "ref": {"type": "string"},
            "approved_at": {"type": "string", "format": "date-time"},
            "note": {"type": "string"},
        },
    },
    "RunsTable": {
        "type": "object",
        "properties": {
            "parameters": {"type": "array", "items": {"type": "string"}},
            "metrics": {"type": "array", "items": {"type": "string"}},
            "varying": {"type": "array", "items": {"type": "string"}, "description": "parameters whose value differs"},
            "rows": {"type": "array", "items": {"type": "object"}},
        },
    },
    "Endpoint": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "url": {"type": "string"},
            "auth": {"type": "boolean", "description": "clients must send Authorization: Bearer <token>"},
            "serving": {"type": "object", "description": "the deployed version: notebook, ref, mode, function; "
                        "serves (state: the run's captured objects, or reexecution), reexecute_reason, state_hash, "
                        "and source (that, in one line)"},
            "history": {"type": "array", "items": {"type": "object"}},
            "status": {"type": "object", "nullable": True, "description": "state, error, and health (request counts, latencies)"},
            "token": {"type": "string", "nullable": True, "description": "in the answer to a new deployment only"},
            "warning": {"type": "string", "nullable": True, "description": "in the answer to a deployment: it "
                        "listens beyond loopback (other machines may reach it), and whether it needs its token"},
            "allow_public_unauthenticated": {"type": "boolean", "description": "it was confirmed to serve beyond "
                                             "loopback without a token"},
        },
    },
    "LaunchRun": {
        "type": "object",
        "required": ["notebook"],
        "additionalProperties": False,
        "properties": {**_LAUNCH, "parameters": {"type": "object"}},
    },
    "LaunchSweep": {
        "type": "object",
        "required": ["notebook"],
        "additionalProperties": False,
        "description": "exactly one of grid or list",
        "properties": {
            **_LAUNCH,
            "grid": {"type": "object", "additionalProperties": {"type": "array"}, "example": {"C": [0.1, 1, 10]}},
            "list": {"type": "array", "items": {"type": "object"}},
            "confirm": {"type": "boolean", "description": "required for more than 10,000 runs"},
        },
    },
}


_COMPARE_OPTIONS = [
    _query("rtol", "number", "relative tolerance of numbers (default 1e-9)"),
    _query("atol", "number", "absolute tolerance of numbers (default 1e-12)"),
    _query("image_tolerance", "number", "fraction of an image's pixels that may change"),
    {**_query("ignore", "string", "a regex of output text to ignore (repeatable)"), "explode": True},
    {**_query("ignore_artifact", "string", "a glob of artifact paths to ignore (repeatable)"), "explode": True},
    {**_query("ignore_state", "string", "a glob of names in the captured state to ignore (repeatable)"), "explode": True},
    {"name": "format", "in": "query", "required": False, "schema": {"type": "string", "enum": ["json", "html"]},
     "description": "html: the self-contained report instead of JSON"},
]


_TABLE_QUERY = [
    _query("notebook", "string", "only this notebook"),
    _query("sweep", "string", "only the runs of this sweep"),
    _query("status", "string", "only this status"),
    _query("limit", "integer", "the newest N runs (default 50)"),
    {**_query("runs", "string", "exactly these runs (refs or ids; repeat the argument), instead of the above"),
     "schema": {"type": "array", "items": {"type": "string"}}, "style": "form", "explode": True},
]


def _comparison(description: str) -> dict[str, Any]:
    return {"description": description, "content": {
        "application/json": {"schema": _ref("Comparison")},
        "text/html": {"schema": {"type": "string"}},
    }}


_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_PNG = {"description": "the chart", "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}}
_REQUEUE = {"type": "object", "properties": {"include_failed": {"type": "boolean"}}}
_ARTIFACTS = {
    "type": "object",
    "required": ["ref", "run_id", "run_folder", "artifacts", "notes"],
    "properties": {
        "ref": {"type": "string"},
        "run_id": {"type": "string"},
        "run_folder": {"type": ["string", "null"], "enum": ["overlay", "copy", "in-place", "remote", None],
                       "description": "how the run's folder was made; null: before run folders"},
        "artifacts": {"type": "array", "items": {
            "type": "object", "required": ["path", "size", "sha256", "media_type"],
            "properties": {"path": {"type": "string"}, "size": {"type": "integer"}, "sha256": {"type": "string"},
                           "media_type": {"type": "string"}}}},
        "notes": {"type": "array", "items": {"type": "string"}},
        "inputs": {"type": ["array", "null"], "items": {
            "type": "object", "required": ["path", "size", "mtime", "sha256"],
            "properties": {"path": {"type": "string"}, "size": {"type": "integer"}, "mtime": {"type": "number"},
                           "sha256": {"type": ["string", "null"]}}}},
    },
}
_DEPLOY = {
    "type": "object", "required": ["target"], "additionalProperties": False,
    "properties": {
        "target": {"type": "string", "example": "train.ipynb@v5"},
        "function": {"type": "string", "description": "serve POST /<function>; without it, the annotated cells"},
        "name": {"type": "string"}, "host": {"type": "string"}, "port": {"type": "integer"},
        "token": {"type": "string"}, "no_auth": {"type": "boolean"},
        "allow_public_unauthenticated": {"type": "boolean", "description": "confirms no_auth on a host beyond "
                                         "loopback (0.0.0.0, an interface): refused without it"},
        "workers": {"type": "integer"}, "timeout": {"type": "number"}, "max_body": {"type": "integer"},
        "cells": {"type": "boolean", "description": "serve the notebook's '# GET /path' annotated cells"},
        "reexecute": {"type": "boolean", "description": "run the notebook's code at start instead of loading the "
                      "objects the run captured"},
        "allow_version_drift": {"type": "boolean", "description": "load a state captured with other package "
                                "versions (major.minor) than the server's"},
    },
}
_TRY = {
    "type": "object", "required": ["path"], "additionalProperties": False,
    "properties": {
        "method": {"type": "string", "enum": ["GET", "POST", "PUT", "PATCH", "DELETE"], "default": "POST"},
        "path": {"type": "string", "pattern": "^/(?!/)", "example": "/predict"},
        "body": {"description": "a string is sent as text/plain, any other value as JSON; none: no body"},
        "token": {"type": "string", "description": "the endpoint's bearer token"},
    },
}
_TRY_ANSWER = {"type": "object", "required": ["status", "headers", "body"], "properties": {
    "status": {"type": "integer", "description": "the endpoint's HTTP status"},
    "headers": {"type": "object", "additionalProperties": {"type": "string"}},
    "body": {"type": "string", "description": "the endpoint's body as text (at most 1 MiB)"},
    "truncated": {"type": "boolean"},
}}


def operations() -> list[Operation]:
    """Every route and method of the REST API (a test checks them against ``route_handlers``)."""
    run_id = _path_id("run_id", "run id")
    sweep_id = _path_id("sweep_id", "sweep id")
    return [
        Operation("/mlx/info", "get", "The project this server keeps runs of, the jupyter_mlx version and the run index",
                  responses={200: _json({"type": "object", "required": ["root", "version", "store"], "properties": {
                      "root": {"type": "string"}, "version": {"type": "string"},
                      "store": {"type": "object", "required": ["url", "error"], "properties": {
                          "url": {"type": "string", "description": "the run index's URL, without its password"},
                          "error": {"type": "string", "nullable": True,
                                    "description": "why it cannot be opened (null: it is open)"}}}}},
                      "the project"), **_errors()}),
        Operation("/mlx/runs", "get", "List runs, newest first (or sorted), optionally filtered", parameters=[
            _query("notebook", "string", "only this notebook (path or unique file name)"),
            _query("status", "string", "only this status"),
            _query("sweep", "string", "only the runs of this sweep"),
            *_PAGING,
            _query("sort", "string", "queued_at (default), version, duration, status, notebook, "
                   "metrics.<name> or params.<name>; runs without the value come last"),
            {"name": "order", "in": "query", "required": False,
             "schema": {"type": "string", "enum": ["desc", "asc"]}, "description": "default desc"},
            _query("filter", "string", "whitespace-separated terms, all must hold: name<op>value "
                   "(op = != < <= > >=; name status, version, backend, notebook, user, tag, metrics.X, "
                   'params.X or X: the parameter or metric X; "quoted values" may have spaces), '
                   "or a bare word found (any case) in the notebook, status, vN, user, parameters, tags "
                   "or error"),
            _query("keys", "boolean", "1: also answer keys, the parameter and metric names"),
        ], responses={200: _json(_ref("RunPage"), "a page of runs"), **_errors(400, 404)}),
        Operation("/mlx/runs", "post", "Queue a run", body=_ref("LaunchRun"),
                  responses={201: _json(_ref("Run"), "the queued run"), **_errors(400, 404, 503)}),
        Operation("/mlx/runs/{run_id}", "get", "One run with its environment, cell timings and metric history",
                  parameters=[run_id], responses={200: _json(_ref("Run"), "the run"), **_errors(404)}),
        Operation("/mlx/runs/{run_id}", "delete", "Delete a run and the blobs no other run uses", parameters=[run_id],
                  responses={204: {"description": "deleted"}, **_errors(404, 409)}),
        Operation("/mlx/runs/{run_id}/notebook", "get", "The executed notebook (nbformat 4 JSON)",
                  parameters=[run_id, _query("source", "boolean", "the snapshot before execution")],
                  responses={200: _json({"type": "object"}, "the notebook"), **_errors(404)}),
        Operation("/mlx/runs/{run_id}/artifacts", "get", "The files a run wrote (artifacts), its notes about them "
                  "and how its folder was made", parameters=[run_id, _query("inputs", "boolean",
                                                                             "1: also the project's files it saw")],
                  responses={200: _json(_ARTIFACTS, "the run's files"), **_errors(404)}),
        Operation("/mlx/runs/{run_id}/artifacts/{path}", "get", "Download one artifact (an attachment; a path "
                  "that is not one of the run's artifacts is 404)",
                  parameters=[run_id, {"name": "path", "in": "path", "required": True, "schema": {"type": "string"},
                                       "description": "the artifact's path, as the list gives it"}],
                  responses={200: {"description": "the file's bytes",
                                   "content": {"application/octet-stream": {"schema": {"type": "string",
                                                                                       "format": "binary"}}}},
                             **_errors(404)}),
        Operation("/mlx/runs/{run_id}/previews/{path}", "get", "What the panel shows of an artifact: the first "
                  "rows of a CSV/TSV/parquet table, a JSON value, the start of a text; images and other files are "
                  "described (download them for their bytes)",
                  parameters=[run_id, {"name": "path", "in": "path", "required": True, "schema": {"type": "string"},
                                       "description": "the artifact's path, as the list gives it"}],
                  responses={200: _json({"type": "object", "required": ["kind", "path", "size", "media_type"],
                                         "properties": {"kind": {"enum": ["table", "json", "text", "image", "binary"]}}},
                                        "the preview"), **_errors(404)}),
        Operation("/mlx/runs/{run_id}/cancel", "post", "Cancel a queued or running run", parameters=[run_id],
                  responses={200: _json(_ref("Runs"), "the runs that were still open"), **_errors(404)}),
        Operation("/mlx/runs/{run_id}/requeue", "post", "Run an interrupted or cancelled run again, as a new version",
                  parameters=[run_id], body=_REQUEUE, body_required=False,
                  responses={201: _json(_ref("Runs"), "the new runs"), **_errors(400, 404, 409, 503)}),
        Operation("/mlx/sweeps", "get", "List sweeps, newest first",
                  parameters=[_query("notebook", "string", "only this notebook"), *_PAGING], responses={
                      200: _json({"type": "object", "properties": {"sweeps": {"type": "array", "items": _ref("Sweep")}}},
                                 "sweeps"), **_errors(400, 404)}),
        Operation("/mlx/sweeps", "post", "Queue a sweep over a parameter grid or list", body=_ref("LaunchSweep"),
                  responses={201: _json(_ref("SweepWithRuns"), "the sweep and its queued runs"), **_errors(400, 404, 503)}),
        Operation("/mlx/sweeps/{sweep_id}", "get", "A sweep with its runs", parameters=[sweep_id],
                  responses={200: _json(_ref("SweepWithRuns"), "the sweep"), **_errors(404)}),
        Operation("/mlx/sweeps/{sweep_id}/cancel", "post", "Cancel every queued or running run of a sweep",
                  parameters=[sweep_id], responses={200: _json(_ref("Runs"), "the runs that were still open"), **_errors(404)}),
        Operation("/mlx/sweeps/{sweep_id}/requeue", "post", "Run a sweep's interrupted or cancelled runs again",
                  parameters=[sweep_id], body=_REQUEUE, body_required=False,
                  responses={201: _json(_ref("Runs"), "the new runs"), **_errors(400, 404, 409, 503)}),
        Operation("/mlx/notebooks", "get", "Notebooks with runs",
                  responses={200: _json({"type": "object"}, "notebooks with run counts")}),
        Operation("/mlx/events", "get", "Server-sent events: `run` on every status change, `progress` per cell",
                  parameters=[_query("run", "string", "only this run"), _query("sweep", "string", "only this sweep"),
                              _query("notebook", "string", "only this notebook")],
                  responses={200: {"description": "an event stream",
                                   "content": {"text/event-stream": {"schema": {"type": "string"}}}}}),
        Operation("/mlx/parameters", "get",
                  "A notebook's parameters (name, type, default, help) and the backends available: a launch form",
                  parameters=[{**_query("notebook", "string", "the notebook's path"), "required": True}],
                  responses={200: _json({"type": "object", "properties": {
                      "notebook": {"type": "string"},
                      "parameters": {"type": "array", "items": {"type": "object", "properties": {
                          "name": {"type": "string"}, "type": {"type": "string"}, "default": {}, "help": {"type": "string"},
                          "expression": {"type": "string", "nullable": True,
                                         "description": "a default that is not a JSON literal, as source text"}}}},
                      "backends": {"type": "array", "items": {"type": "object"}},
                      "default_backend": {"type": "string"}}}, "the form"), **_errors(400, 404)}),
        Operation("/mlx/compare", "get", "Compare two runs (or two notebooks of the project): parameters, metrics, "
                  "environment, sources, outputs", parameters=[
                      {**_query("a", "string", "NOTEBOOK@vN, a run id, or a notebook path"), "required": True},
                      {**_query("b", "string", "NOTEBOOK@vN, a run id, or a notebook path"), "required": True},
                      *_COMPARE_OPTIONS,
                  ], responses={200: _comparison("the comparison"), **_errors(400, 404, 409)}),
        Operation("/mlx/check", "get", "Compare a run with its notebook's approved baseline; summary.verdict says "
                  "whether it passes", parameters=[
                      {**_query("run", "string", "the run to check"), "required": True},
                      _query("baseline", "string", "compare with this run instead of the approved baseline"),
                      *_COMPARE_OPTIONS,
                  ], responses={200: _comparison("the comparison with the baseline"), **_errors(400, 404, 409)}),
        Operation("/mlx/baselines", "get", "A notebook's approved baseline",
                  parameters=[{**_query("notebook", "string", "the notebook"), "required": True}],
                  responses={200: _json(_ref("Baseline"), "the baseline"), **_errors(400, 404)}),
        Operation("/mlx/baselines", "post", "Approve a finished run as its notebook's baseline",
                  body={"type": "object", "required": ["run"], "additionalProperties": False,
                        "properties": {"run": {"type": "string"}, "note": {"type": "string"}}},
                  responses={201: _json(_ref("Baseline"), "the new baseline"), **_errors(400, 404, 409)}),
        Operation("/mlx/table", "get", "Runs as rows, their parameters and metrics as columns", parameters=_TABLE_QUERY,
                  responses={200: _json(_ref("RunsTable"), "the table"), **_errors(400, 404)}),
        Operation("/mlx/table/chart", "get", "A PNG chart of a metric across runs, against a parameter", parameters=[
            {**_query("metric", "string", "the metric"), "required": True},
            _query("by", "string", "the parameter on the x axis (default: the first that varies)"),
            _query("theme", "string", "light (default) or dark: light lines on a transparent background"),
            *_TABLE_QUERY,
        ], responses={200: _PNG, **_errors(400, 404)}),
        Operation("/mlx/table/series", "get", "A PNG chart of a metric's logged series (steps), one line per run",
                  parameters=[
                      {**_query("metric", "string", "the metric"), "required": True},
                      _query("theme", "string", "light (default) or dark: light lines on a transparent background"),
                      *_TABLE_QUERY,
                  ], responses={200: _PNG, **_errors(400, 404)}),
        Operation("/mlx/endpoints", "get", "Managed endpoints with their status and request stats", responses={
            200: _json({"type": "object", "properties": {"endpoints": {"type": "array", "items": _ref("Endpoint")}}},
                       "endpoints"), **_errors()}),
        Operation("/mlx/endpoints", "post", "Deploy a run (or notebook) as a named endpoint, or redeploy a name with "
                  "zero downtime", body=_DEPLOY,
                  responses={201: _json(_ref("Endpoint"), "the endpoint, serving"), **_errors(400, 404, 409)}),
        Operation("/mlx/endpoints/{name}", "get", "One endpoint (with ?logs=N, its last N log lines)",
                  parameters=[_NAME, _query("logs", "integer", "log lines to include")],
                  responses={200: _json(_ref("Endpoint"), "the endpoint"), **_errors(404)}),
        Operation("/mlx/endpoints/{name}", "delete", "Stop an endpoint", parameters=[_NAME],
                  responses={200: _json(_ref("Endpoint"), "stopped"), **_errors(404)}),
        Operation("/mlx/endpoints/{name}/rollback", "post", "Serve the previous version again", parameters=[_NAME],
                  responses={200: _json(_ref("Endpoint"), "the endpoint"), **_errors(404, 409)}),
        Operation("/mlx/endpoints/{name}/try", "post", "Send one request to the endpoint from the server (its host "
                  "and port only), as a test", parameters=[_NAME], body=_TRY, responses={
                      200: _json(_TRY_ANSWER, "the endpoint's answer, whatever its status"),
                      **_errors(400, 404, 409),
                      502: _json(_ref("Error"), "the endpoint did not answer"),
                  }),
        Operation("/mlx/openapi.json", "get", "This document", responses={200: _json({"type": "object"}, "OpenAPI 3")}),
    ]


def openapi_document() -> dict[str, Any]:
    return build_openapi(
        {"title": "jupyter_mlx", "version": __version__, "description": "Versioned, parameterized notebook runs."},
        operations(),
        security=[{"token": []}],
        components={
            "schemas": SCHEMAS,
            "securitySchemes": {
                "token": {"type": "apiKey", "in": "header", "name": "Authorization", "description": "token <your Jupyter token>"}
            },
        },
    )


class OpenAPIHandler(MLXHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.finish(openapi_document())
