"""The function form: ``POST /<function>`` calls the notebook's function with the JSON body as
keyword arguments and answers with its return value; ``GET /openapi.json`` describes it."""
from __future__ import annotations

import json
import logging
import traceback
from typing import Any, Callable

from tornado import web

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
        try:
            body = json.loads(b"".join(self.chunks) or b"{}")
        except (ValueError, UnicodeDecodeError) as exc:
            raise RequestError(400, f"the body is not valid JSON: {exc}") from None
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


class OpenAPIHandler(EndpointHandler):
    def initialize(self, state: EndpointState, document: dict[str, Any]) -> None:
        super().initialize(state)
        self.document = document

    def get(self) -> None:
        self.write_json(self.document)


def openapi_document(state: EndpointState, function: Callable[..., Any], schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI 3 for ``POST /<function>``, its request and response from the type hints."""
    name = state.spec.function or function.__name__
    error = {"description": "an error", "content": {"application/json": {"schema": {
        "type": "object", "properties": {"error": {"type": "string"}, "message": {"type": "string"}}}}}}
    document: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {"title": f"{state.spec.name}: {name}", "version": state.spec.ref or "file",
                 "description": (function.__doc__ or "").strip() or f"{name} from {state.spec.notebook}"},
        "paths": {f"/{name}": {"post": {
            "summary": (function.__doc__ or name).strip().splitlines()[0],
            "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
            "responses": {"200": {"description": "the function's return value",
                                  "content": {"application/json": {"schema": response_schema(function)}}},
                          "400": error, "401": error, "403": error, "413": error, "500": error, "504": error},
        }}},
    }
    if state.spec.token_hash is not None:
        document["components"] = {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}}
        document["security"] = [{"bearer": []}]
    return document


def function_routes(state: EndpointState, function: Callable[..., Any]) -> list[tuple[str, type[web.RequestHandler], dict[str, Any]]]:
    schema = request_schema(function)
    name = state.spec.function or function.__name__
    return [
        (f"/{name}", FunctionHandler, {"state": state, "function": function, "schema": schema}),
        ("/openapi.json", OpenAPIHandler, {"state": state, "document": openapi_document(state, function, schema)}),
    ]
