"""The function form: ``POST /<function>`` calls the notebook's function with the JSON body as
keyword arguments and answers with its return value; ``GET /openapi.json`` describes it."""
from __future__ import annotations

import json
import logging
import math
import traceback
from typing import Any, Callable

from tornado import web

from .apidoc import Operation, json_response, openapi_document
from .base import EndpointHandler, EndpointState, RequestError, RequestTimeout, time_limit
from .responses import encode_result
from .schema import SchemaMismatch, check_body, request_schema, response_schema

log = logging.getLogger("jupyter_mlx.serve")


@web.stream_request_body
class FunctionHandler(EndpointHandler):
    """The body is streamed in, so one over the size limit is refused (413) before it is read."""

    def initialize(self, state: EndpointState, function: Callable[..., Any], schema: dict[str, Any]) -> None:
        super().initialize(state)
        self.function = function
        self.schema = schema
        self.chunks: list[bytes] = []
        self.received = 0

    def prepare(self) -> None:
        super().prepare()
        limit = self.state.spec.max_body
        declared = self.request.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise RequestError(413, f"the body is {int(declared):,} bytes; this endpoint takes at most {limit:,}")
        self.request.connection.set_max_body_size(limit + 1)  # type: ignore[union-attr]

    def data_received(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if self.received > self.state.spec.max_body:
            raise RequestError(413, f"the body is over this endpoint's limit of {self.state.spec.max_body:,} bytes")
        self.chunks.append(chunk)

    def post(self) -> None:
        body = parse_body(b"".join(self.chunks))
        try:
            check_body(body, self.schema)
        except SchemaMismatch as exc:
            raise RequestError(400, str(exc)) from None
        try:
            with time_limit(self.state.spec.timeout):
                result = self.function(**body)
                content_type, payload = encode_result(result)
        except RequestTimeout as exc:
            raise RequestError(504, str(exc)) from None
        except Exception as exc:  # the notebook's code failed: say what, keep serving
            log.error("%s raised:\n%s", self.state.spec.function, traceback.format_exc())
            self.set_status(500)
            self.write_json({"error": "function_error", "exception": type(exc).__name__,
                             "message": f"{type(exc).__name__}: {exc}"}, status=500)
            return
        self.set_header("Content-Type", content_type)
        self.finish(payload)


def parse_body(raw: bytes) -> Any:
    """The request body as standard JSON (an empty body is ``{}``); anything else is a 400 saying
    why: not UTF-8, not JSON, ``NaN``/``Infinity``, a number out of range, nested too deeply."""
    try:
        return json.loads(raw or b"{}", parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise RequestError(400, "the body is not valid JSON for this endpoint: it is nested too deeply") from None
    except ValueError as exc:  # UnicodeDecodeError too
        raise RequestError(400, f"the body is not valid JSON: {exc}") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {text[:40]} is out of range")
    return value


class OpenAPIHandler(EndpointHandler):
    def initialize(self, state: EndpointState, document: dict[str, Any]) -> None:
        super().initialize(state)
        self.document = document

    def get(self) -> None:
        self.write_json(self.document)


def function_document(state: EndpointState, function: Callable[..., Any], schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI 3 for ``POST /<function>``, its request and response from the type hints."""
    name = state.spec.function or function.__name__
    error = json_response({"type": "object", "properties": {"error": {"type": "string"}, "message": {"type": "string"}}},
                          "an error")
    operation = Operation(
        f"/{name}", "post", summary=(function.__doc__ or name).strip().splitlines()[0], body=schema,
        responses={200: json_response(response_schema(function), "the function's return value"),
                   **{status: error for status in (400, 401, 403, 413, 500, 504)}},
    )
    info = {"title": f"{state.spec.name}: {name}", "version": state.spec.ref or "file",
            "description": (function.__doc__ or "").strip() or f"{name} from {state.spec.notebook}"}
    if state.spec.token_hash is None:
        return openapi_document(info, [operation])
    return openapi_document(info, [operation], security=[{"bearer": []}],
                            components={"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}})


def function_routes(state: EndpointState, function: Callable[..., Any]) -> list[tuple[str, type[web.RequestHandler], dict[str, Any]]]:
    schema = request_schema(function)
    name = state.spec.function or function.__name__
    return [
        (f"/{name}", FunctionHandler, {"state": state, "function": function, "schema": schema}),
        ("/openapi.json", OpenAPIHandler, {"state": state, "document": function_document(state, function, schema)}),
    ]
