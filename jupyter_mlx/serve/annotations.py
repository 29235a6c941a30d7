"""Kernel Gateway's notebook-http annotations: which code cells are routes, which are set-up.

A cell whose source *starts* with ``# GET /path`` (or ``PUT``, ``POST``, ``DELETE``: the only
verbs Kernel Gateway recognises) answers that method on that path; ``/items/:id`` segments are
path parameters. A cell starting with ``# ResponseInfo GET /path`` runs after the handler cell and
prints ``{"status": ..., "headers": {...}}``. Every other code cell is set-up, run once at start.

This mirrors ``kernel_gateway.notebook_http.cell.parser`` (3.0) rule for rule, without importing
it (Kernel Gateway is not a dependency): the same regular expressions anchored at the first
character of the cell, cells of the same method and path concatenated in notebook order (each
followed by a newline), routes ordered as KG sorts them, the same Swagger 2.0 document.
"""
from __future__ import annotations

import json
import logging
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Iterator

from .apidoc import Operation
from .apidoc import swagger_document as build_swagger

log = logging.getLogger("jupyter_mlx.serve")

METHODS = ("GET", "PUT", "POST", "DELETE")  # Kernel Gateway's list; PATCH & co. are plain code
# kernel_gateway.notebook_http.cell.parser.APICellParser.api_indicator / api_response_indicator,
# formatted with the Python comment prefix, used with re.match (so: the cell's first characters)
API_INDICATOR = re.compile(r"#\s+(GET|PUT|POST|DELETE)\s+(\/.*)+")
RESPONSE_INDICATOR = re.compile(r"#\s+ResponseInfo\s+(GET|PUT|POST|DELETE)\s+(\/.*)+")
_NAMED_PARAM = re.compile(r"(:([^/\s]*))")  # kernel_gateway.notebook_http.request_utils
_OTHER_METHOD = re.compile(r"#\s+(?:ResponseInfo\s+)?(PATCH|HEAD|OPTIONS)\s+/")


class NoRoutesError(ValueError):
    """No code cell is annotated: KG refuses to start such a notebook. (Not ``MLXError``: this
    module is copied into exported services, which have no jupyter_mlx.)"""

    code = "invalid_notebook"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def is_api_cell(source: str) -> bool:
    """The cell answers a route (``# GET /path`` as its first characters)."""
    return API_INDICATOR.match(source) is not None


def is_response_cell(source: str) -> bool:
    """The cell is a ``# ResponseInfo GET /path`` cell."""
    return RESPONSE_INDICATOR.match(source) is not None


def cell_endpoint_and_method(source: str) -> tuple[str | None, str | None]:
    """``("/items/:id", "GET")`` for a route cell, ``(None, None)`` otherwise."""
    matched = API_INDICATOR.match(source)
    if matched is None:
        return None, None
    return matched.group(2).strip(), matched.group(1)


def first_path_param_index(endpoint: str) -> int:
    """The depth of the first ``:param`` segment (``/foo/:bar`` -> 1), ``sys.maxsize`` without
    one: KG sorts endpoints by it, deepest first, so fixed paths win over parameterised ones."""
    index = sys.maxsize
    if endpoint.find(":") >= 0:
        index = endpoint.count("/", 0, endpoint.find(":")) - 1
    return index


def parameterize_path(path: str) -> str:
    """The tornado pattern of an annotated path: ``:name`` becomes ``(?P<name>[^\\/]+)``. The rest
    of the path is used as a regular expression, as in KG."""
    for whole, name in re.findall(_NAMED_PARAM, path):
        path = path.replace(whole, rf"(?P<{name}>[^\/]+)")
    return path.strip()


def url_path_join(*pieces: str) -> str:
    """``jupyter_server.utils.url_path_join``: how KG joins its base URL and an endpoint path."""
    initial = pieces[0].startswith("/")
    final = pieces[-1].endswith("/")
    stripped = [piece.strip("/") for piece in pieces]
    result = "/".join(piece for piece in stripped if piece)
    if initial:
        result = "/" + result
    if final:
        result = result + "/"
    if result == "//":
        result = "/"
    return result


@dataclass(frozen=True)
class Route:
    """One annotated path: the code each method runs, and its ResponseInfo code if any."""

    path: str  # as annotated: /items/:id
    sources: dict[str, str]  # method -> the handler cells of that method, concatenated
    responses: dict[str, str] = field(default_factory=dict)  # method -> its ResponseInfo cells

    @property
    def pattern(self) -> str:
        """The tornado URL pattern (``/items/(?P<id>[^\\/]+)``)."""
        return url_path_join("/", parameterize_path(self.path))

    @property
    def methods(self) -> list[str]:
        return list(self.sources)

    @property
    def params(self) -> list[str]:
        return [name for _, name in re.findall(_NAMED_PARAM, self.path)]


@dataclass(frozen=True)
class CellRoutes:
    """The routes of a notebook in KG's precedence order (tornado takes the first match), and the
    cell sources its Swagger document is built from."""

    routes: list[Route]
    swagger_sources: list[str]

    def __iter__(self) -> Iterator[Route]:
        return iter(self.routes)

    def __len__(self) -> int:
        return len(self.routes)

    def swagger(self, title_path: str) -> dict[str, Any]:
        return swagger_document(self.swagger_sources, title_path)


def _concatenated(cells: list[str], indicator: re.Pattern[str]) -> dict[str, dict[str, str]]:
    """path -> method -> the matching cells' sources, each followed by a newline, in cell order."""
    found: dict[str, dict[str, str]] = {}
    for source in cells:
        matched = indicator.match(source)
        if matched is not None:
            path, method = matched.group(2).strip(), matched.group(1)
            found.setdefault(path, {}).setdefault(method, "")
            found[path][method] += source + "\n"
    return found


def parse_routes(cells: list[str], swagger_sources: list[str] | None = None) -> CellRoutes:
    """The notebook's routes, ordered as KG registers them: sorted by the depth of the first path
    parameter, deepest (or none) first, ties in notebook order. ResponseInfo cells attach to the
    route with exactly the same path string; one for a path no handler cell has is ignored."""
    endpoints = _concatenated(cells, API_INDICATOR)
    responses = _concatenated(cells, RESPONSE_INDICATOR)
    ordered = sorted(endpoints, key=first_path_param_index, reverse=True)
    routes = [Route(path, endpoints[path], responses.get(path, {})) for path in ordered]
    return CellRoutes(routes, list(cells if swagger_sources is None else swagger_sources))


def split_cells(cells: list[str], swagger_sources: list[str] | None = None) -> tuple[list[str], CellRoutes]:
    """``(set-up cells, routes)``: the cells to run once at start-up (neither route nor
    ResponseInfo cells, in order) and the routes. When no cell is annotated: the
    error KG refuses to start with (``NoRoutesError``, a ``ValueError`` with ``code`` and ``message``).

    ``swagger_sources``: the cells ``/_api/spec/swagger.json`` is built from; KG reads *every*
    cell of the notebook there, markdown included (a markdown ``# GET /x`` heading is listed), so
    pass all cell sources in order to match it exactly; the default is the code cells.
    """
    setup = []
    for index, source in enumerate(cells):
        if is_api_cell(source) or is_response_cell(source):
            continue
        setup.append(source)
        looks = _OTHER_METHOD.match(source)
        if looks is not None:
            log.warning("code cell %d starts like a %s route, a method Kernel Gateway does not route: "
                        "it runs once at start-up, as under Kernel Gateway", index + 1, looks.group(1))
    routes = parse_routes(cells, swagger_sources)
    if not routes.routes:
        raise NoRoutesError("No endpoints were discovered. Check your notebook to make sure your cells are "
                            "annotated correctly (a code cell starting with '# GET /path').")
    return setup, routes


def swagger_document(sources: list[str], title_path: str) -> dict[str, Any]:
    """KG's ``SwaggerSpecBuilder`` output: Swagger 2.0, every annotated (path, method) with a
    ``200 Success`` response, titled with the notebook file name up to its first dot."""
    operations = []
    for source in sources:
        path, method = cell_endpoint_and_method(source)
        if path is not None and method is not None:
            operations.append(Operation(path, method, responses={200: {"description": "Success"}}))
    basename = os.path.basename(title_path)
    title = basename.split(".")[0] if basename.find(".") > 0 else basename
    return build_swagger({"version": "0.0.0", "title": title}, operations)


def swagger_json(sources: list[str], title_path: str) -> str:
    """The document as KG serialises it (``json.dumps`` defaults, so ``200`` becomes ``"200"``)."""
    return json.dumps(swagger_document(sources, title_path))
