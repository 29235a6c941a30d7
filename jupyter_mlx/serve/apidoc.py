"""API description documents built from route descriptions: OpenAPI 3 for the REST API
(``/mlx/openapi.json``) and for a function endpoint (``/openapi.json``), Swagger 2.0 for an
annotated-cell endpoint (``/_api/spec/swagger.json``, as Kernel Gateway writes it).

Each door lists its routes as ``Operation`` values; this module alone knows how the documents
are laid out. Part of the endpoint runtime copied into exported services: no jupyter_mlx imports.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence


@dataclass(frozen=True)
class Operation:
    """One method on one path. ``path`` in the document's template form (``/runs/{run_id}``);
    ``body`` the JSON Schema of a JSON request body (OpenAPI 3 only); ``responses`` maps a status
    to its response object (see ``json_response``)."""

    path: str
    method: str
    summary: str = ""
    description: str = ""
    parameters: Sequence[dict[str, Any]] = ()
    body: dict[str, Any] | None = None
    body_required: bool = True
    responses: Mapping[Any, dict[str, Any]] = field(default_factory=dict)


def json_response(schema: dict[str, Any], description: str) -> dict[str, Any]:
    """A response object whose body is JSON of ``schema``."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def openapi_document(info: dict[str, Any], operations: Iterable[Operation], *,
                     components: dict[str, Any] | None = None,
                     security: list[dict[str, list[str]]] | None = None) -> dict[str, Any]:
    """An OpenAPI 3.0 document: ``info`` (title, version, description), the operations' paths in
    the order given, and the shared ``components`` and ``security`` requirement, if any."""
    paths: dict[str, dict[str, Any]] = {}
    for operation in operations:
        item: dict[str, Any] = {}
        if operation.summary:
            item["summary"] = operation.summary
        if operation.description:
            item["description"] = operation.description
        if operation.parameters:
            item["parameters"] = list(operation.parameters)
        if operation.body is not None:
            item["requestBody"] = {"required": operation.body_required,
                                   "content": {"application/json": {"schema": operation.body}}}
        item["responses"] = {str(status): response for status, response in operation.responses.items()}
        paths.setdefault(operation.path, {})[operation.method.lower()] = item
    document: dict[str, Any] = {"openapi": "3.0.3", "info": info}
    if security is not None:
        document["security"] = security
    if components:
        document["components"] = components
    document["paths"] = paths
    return document


def swagger_document(info: dict[str, Any], operations: Iterable[Operation]) -> dict[str, Any]:
    """A Swagger 2.0 document laid out as Kernel Gateway's ``SwaggerSpecBuilder`` lays it out
    (``swagger``, ``paths``, ``info``: clients compare it byte for byte), responses as given."""
    paths: dict[str, dict[str, Any]] = {}
    for operation in operations:
        paths.setdefault(operation.path, {})[operation.method.lower()] = {"responses": dict(operation.responses)}
    return {"swagger": "2.0", "paths": paths, "info": info}
