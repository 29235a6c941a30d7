"""The annotated-cell endpoint form (Kernel Gateway's notebook-http mode without a kernel).

1. The annotation parser, rule for rule against Kernel Gateway's own parser.
2. A differential test: the same notebook (``examples/api.ipynb`` plus edge-case cells) served by
   a real ``jupyter kernelgateway`` process and by the jupyter_mlx cells app (in-process, on a
   thread), the same requests sent to both in the same order, the answers compared (status,
   reason, headers but Date and Server, body).
3. What KG does not have: the request timeout, the bearer token, request stats.
"""
from __future__ import annotations

import asyncio
import http.client
import io
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from jupyter_mlx.serve.annotations import (
    CellRoutes,
    NoRoutesError,
    first_path_param_index,
    is_api_cell,
    is_response_cell,
    parameterize_path,
    parse_routes,
    split_cells,
    swagger_document,
    swagger_json,
    url_path_join,
)
from jupyter_mlx.serve.base import EndpointState, hash_token
from jupyter_mlx.serve.cells_app import make_cells_app
from jupyter_mlx.serve.setup import make_shell, run_cells
from jupyter_mlx.serve.source import code_cells
from jupyter_mlx.serve.spec import EndpointSpec
from jupyter_mlx.serve.stats import SharedStats
from jupyter_mlx.ports import free_port

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "api.ipynb"


# ---------------------------------------------------------------- 1. the annotation parser

def test_annotations_are_the_first_characters_of_a_cell():
    assert is_api_cell("# GET /items\nprint(1)")
    assert is_api_cell("#   POST   /items/:id  \nx")
    assert is_api_cell("#\tDELETE /a")
    assert is_api_cell("#\nGET /a")  # \s+ spans lines, as KG's regex does
    assert not is_api_cell("\n# GET /items")  # not the first line
    assert not is_api_cell(" # GET /items")
    assert not is_api_cell("#GET /items")
    assert not is_api_cell("# get /items")
    assert not is_api_cell("# GET items")
    assert not is_api_cell("# PATCH /items")  # KG routes GET, PUT, POST and DELETE only
    assert not is_api_cell("# ResponseInfo GET /items")
    assert is_response_cell("# ResponseInfo GET /items\nprint('{}')")
    assert not is_response_cell("# GET /items")


def test_split_cells_keeps_setup_in_order_and_concatenates_routes():
    cells = [
        "import json",
        "# GET /items\nprint('a')",
        "x = 1",
        "# ResponseInfo GET /items\nprint('{}')",
        "# GET /items\nprint('b')",
        "# POST /items\nprint('c')",
        "# ResponseInfo GET /nowhere\nprint('{}')",
        "# PATCH /items\npatched = True",
    ]
    setup, routes = split_cells(cells)
    assert setup == ["import json", "x = 1", "# PATCH /items\npatched = True"]
    assert isinstance(routes, CellRoutes) and len(routes) == 1
    (route,) = routes
    assert route.path == "/items" and route.pattern == "/items" and route.methods == ["GET", "POST"]
    assert route.sources["GET"] == "# GET /items\nprint('a')\n# GET /items\nprint('b')\n"
    assert route.responses == {"GET": "# ResponseInfo GET /items\nprint('{}')\n"}


def test_a_cell_for_a_method_kg_does_not_route_is_setup_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="jupyter_mlx.serve"):
        setup, _ = split_cells(["# GET /a\nprint(1)", "# PATCH /a\nprint(2)"])
    assert setup == ["# PATCH /a\nprint(2)"]
    assert "PATCH" in caplog.text and "code cell 2" in caplog.text


def test_no_annotated_cell_is_refused_as_kg_does():
    with pytest.raises(NoRoutesError) as raised:
        split_cells(["import json", "# a comment\nx = 1"])
    assert raised.value.code == "invalid_notebook" and "No endpoints were discovered" in raised.value.message


def test_routes_are_ordered_fixed_paths_first_then_deepest_parameter():
    cells = [f"# GET {path}\npass" for path in
             ["/a/:x", "/a/:x/b", "/a/b/:y", "/a/fixed", "/:top", "/c/d/e/:z", "/a/:x/:y"]]
    routes = parse_routes(cells)
    assert [route.path for route in routes] == ["/a/fixed", "/c/d/e/:z", "/a/b/:y", "/a/:x", "/a/:x/b", "/a/:x/:y", "/:top"]
    assert first_path_param_index("/foo/:bar") == 1 and first_path_param_index("/foo") == sys.maxsize
    route = routes.routes[2]
    assert route.pattern == r"/a/b/(?P<y>[^\/]+)" and route.params == ["y"]


def test_swagger_document_is_kgs():
    sources = ["# GET /items\n", "# POST /items\n", "x = 1", "# GET /items/:id\n", "# ResponseInfo GET /items\n"]
    document = swagger_document(sources, "some/dir/api.v2.ipynb")
    assert document == {"swagger": "2.0", "info": {"version": "0.0.0", "title": "api"}, "paths": {
        "/items": {"get": {"responses": {200: {"description": "Success"}}}, "post": {"responses": {200: {"description": "Success"}}}},
        "/items/:id": {"get": {"responses": {200: {"description": "Success"}}}}}}
    assert json.loads(swagger_json(sources, ".hidden"))["info"]["title"] == ".hidden"


def test_swagger_sources_may_include_markdown_as_kg_reads_every_cell():
    code = ["# GET /items\nprint(1)"]
    everything = ["# GET /docs\nA markdown heading KG lists too", *code]
    _, routes = split_cells(code, swagger_sources=everything)
    assert list(routes.swagger("api.ipynb")["paths"]) == ["/docs", "/items"]
    assert [route.path for route in routes] == ["/items"]


# the same rules as Kernel Gateway's own parser, on generated notebooks
_segment = st.sampled_from(["items", "a", "b", ":id", ":name", "x.y", ":p"])
_path = st.lists(_segment, min_size=0, max_size=4).map(lambda parts: "/" + "/".join(parts))
_cell = st.one_of(
    st.tuples(st.sampled_from(["GET", "PUT", "POST", "DELETE", "PATCH"]), _path, st.sampled_from(["", "ResponseInfo "]),
              st.sampled_from([" ", "  ", "\t"]), st.sampled_from(["", "  ", " # note"]))
    .map(lambda t: f"#{t[3]}{t[2]}{t[0]} {t[1]}{t[4]}\nprint({t[1]!r})"),
    st.sampled_from(["import json", "x = 1", "\n# GET /late", "#GET /tight", "# get /lower"]),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_cell, min_size=1, max_size=10))
def test_parse_routes_matches_kernel_gateways_parser(cells):
    kg_parser = pytest.importorskip("kernel_gateway.notebook_http.cell.parser")
    kg_request_utils = pytest.importorskip("kernel_gateway.notebook_http.request_utils")
    kg = kg_parser.APICellParser(comment_prefix="#")
    routes = parse_routes(cells)
    assert [(route.path, route.sources) for route in routes] == kg.endpoints(cells)
    kg_responses = kg.endpoint_responses(cells)
    assert all(route.responses == kg_responses.get(route.path, {}) for route in routes)
    for route in routes:
        assert route.pattern == url_path_join("/", "/", kg_request_utils.parameterize_path(route.path))
    setup, _ = split_cells(cells) if routes.routes else (None, None)
    if setup is not None:
        assert setup == [cell for cell in cells if not kg.is_api_cell(cell) and not kg.is_api_response_cell(cell)]
    builder_module = pytest.importorskip("kernel_gateway.notebook_http.swagger.builders")
    builder = builder_module.SwaggerSpecBuilder(kg)
    for cell in cells:
        builder.add_cell(cell)
    builder.set_default_title("/tmp/api.ipynb")
    assert swagger_json(cells, "api.ipynb") == json.dumps(builder.build())


def test_url_helpers_match_jupyter_server_and_kg():
    from jupyter_server.utils import url_path_join as server_join

    kg_request_utils = pytest.importorskip("kernel_gateway.notebook_http.request_utils")

    for pieces in [("/", "/items"), ("/", "/", "/items/"), ("/", "//a//"), ("/", "/"), ("/", "")]:
        assert url_path_join(*pieces) == server_join(*pieces)
    for path in ["/items/:id", "/a/:x/b/:y ", "/:a:b", "/plain"]:
        assert parameterize_path(path) == kg_request_utils.parameterize_path(path)


# ---------------------------------------------------------------- 2. differential: KG vs jupyter_mlx

# cells appended to a copy of examples/api.ipynb: the corners of KG's behaviour
EDGE_CELLS = [
    "# GET /items/count\nprint(len(ITEMS))",  # after /items/:item_id in the notebook, matched first
    "# DELETE /items/:item_id\nreq = json.loads(REQUEST)\nprint(json.dumps(ITEMS.pop(int(req['path']['item_id']), None)))",
    "# POST /echo\nprint(REQUEST)",
    "# PUT /echo\nprint(REQUEST)",
    "# GET /error\nraise ValueError('boom')",
    "# GET /result\n{'answer': 42, 'items': len(ITEMS)}",
    "# GET /quiet\n1 + 1;",
    "# GET /syntax\nx = = 1",
    "# GET /usage\n%not_a_magic",
    "# GET /display\ndisplay('shown elsewhere')\nprint('printed')",
    "# GET /stderr\nimport sys\nprint('to stderr', file=sys.stderr)\nprint('to stdout')",
    "# GET /await\nimport asyncio\nawait asyncio.sleep(0.01)\nprint('awaited')",
    "# GET /frame\nimport pandas as pd\npd.DataFrame({'a': [1, 2], 'b': ['x', 'y']})",
    "# GET /badinfo\nprint('this body is lost')",
    "# ResponseInfo GET /badinfo\npass",
    "# GET /infoerror\nprint('neither is this one')",
    "# ResponseInfo GET /infoerror\nraise KeyError('status')",
    "# GET /counted\nprint('a,b')",
    "# ResponseInfo GET /counted\nprint(json.dumps({'status': 202, 'headers': {'Content-Type': 'text/csv', 'X-Count': 3}}))",
    "# GET /env\nimport os\nprint(os.environ.get('KERNEL_GATEWAY'))",
    "# GET /multi\nprint('first')",
    "# GET /multi\nprint('second')",
    "# GET /trailing/\nprint('slash')",
    "# GET /state\ncounter = globals().get('counter', 0) + 1\nprint(counter)",
]

BOUNDARY = "----mlxboundary"
MULTIPART = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"field\"\r\n\r\nvalue \u00e9\r\n"
             f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"a.txt\"\r\n"
             f"Content-Type: text/plain\r\n\r\nfile content\r\n--{BOUNDARY}--\r\n").encode()
JSON = [("Content-Type", "application/json")]

# (id, method, path, body, headers): sent in this order to both servers (the store changes)
CASES: list[tuple[str, str, str, bytes | None, list[tuple[str, str]]]] = [
    ("hello", "GET", "/hello", None, []),
    ("list", "GET", "/items", None, []),
    ("list-args", "GET", "/items?max_price=3&sort=price", None, []),
    ("list-repeated-arg", "GET", "/items?sort=id&sort=price", None, []),
    ("item", "GET", "/items/2", None, []),
    ("item-missing", "GET", "/items/99", None, []),
    ("item-not-a-number", "GET", "/items/abc", None, []),
    ("fixed-path-wins", "GET", "/items/count", None, []),
    ("create", "POST", "/items", b'{"name": "dates", "price": 4}', JSON),
    ("create-invalid", "POST", "/items", b'{"price": 1}', JSON),
    ("create-text-body", "POST", "/items", b'{"name": "figs"}', [("Content-Type", "text/plain")]),
    ("create-json-charset", "POST", "/items", b'{"name": "figs"}', [("Content-Type", "application/json; charset=utf-8")]),
    ("created-item", "GET", "/items/4", None, []),
    ("count-after-create", "GET", "/items/count", None, []),
    ("known-path-other-method", "DELETE", "/items", None, []),
    ("put-on-get-only", "PUT", "/hello", b"x", []),
    ("patch-not-a-kg-method", "PATCH", "/items", b"{}", JSON),
    ("head", "HEAD", "/items", None, []),
    ("options", "OPTIONS", "/items", None, []),
    ("unknown-path", "GET", "/nope", None, []),
    ("unknown-nested", "POST", "/items/2/extra", b"", []),
    ("trailing-slash-missing", "GET", "/hello/", None, []),
    ("trailing-slash-route", "GET", "/trailing/", None, []),
    ("swagger-post", "POST", "/_api/spec/swagger.json", b"", []),
    ("echo-json", "POST", "/echo?q=1&q=2&empty=", b'{"a": [1, 2.5, null], "b": "\xc3\xa9"}',
     [*JSON, ("X-Repeat", "one"), ("X-Repeat", "two")]),
    ("echo-form", "POST", "/echo", b"a=1&a=2&b=%C3%A9&c=", [("Content-Type", "application/x-www-form-urlencoded")]),
    ("echo-form-charset", "POST", "/echo", b"a=1", [("Content-Type", "application/x-www-form-urlencoded; charset=UTF-8")]),
    ("echo-multipart", "POST", "/echo", MULTIPART, [("Content-Type", f"multipart/form-data; boundary={BOUNDARY}")]),
    ("echo-bad-json", "POST", "/echo", b"{not json", JSON),
    ("echo-text", "PUT", "/echo?name=%E2%9C%93", "plain text \u2713".encode(), [("Content-Type", "text/plain; charset=utf-8")]),
    ("echo-empty", "POST", "/echo", b"", []),
    ("echo-binary-body", "POST", "/echo", b"\xff\xfe", [("Content-Type", "application/octet-stream")]),
    ("echo-bad-query", "POST", "/echo?x=%FF", b"", []),
    ("bad-unicode-path", "GET", "/items/%FF", None, []),
    ("unicode-path", "GET", "/items/%E2%9C%93", None, []),
    ("error", "GET", "/error", None, []),
    ("result-bundle", "GET", "/result", None, []),
    ("quiet-result", "GET", "/quiet", None, []),
    ("syntax-error", "GET", "/syntax", None, []),
    ("usage-error", "GET", "/usage", None, []),
    ("display-ignored", "GET", "/display", None, []),
    ("stderr-ignored", "GET", "/stderr", None, []),
    ("top-level-await", "GET", "/await", None, []),
    ("dataframe-bundle", "GET", "/frame", None, []),
    ("responseinfo-not-json", "GET", "/badinfo", None, []),
    ("responseinfo-raises", "GET", "/infoerror", None, []),
    ("responseinfo-status-headers", "GET", "/counted", None, []),
    ("env", "GET", "/env", None, []),
    ("concatenated-cells", "GET", "/multi", None, []),
    ("globals-persist-1", "GET", "/state", None, []),
    ("globals-persist-2", "GET", "/state", None, []),
    ("delete", "DELETE", "/items/4", None, []),
    ("count-after-delete", "GET", "/items/count", None, []),
    ("swagger", "GET", "/_api/spec/swagger.json", None, []),
]
IGNORED_HEADERS = {"date", "server"}


@dataclass
class Answer:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def content_type(self) -> str | None:
        return next((value for name, value in self.headers if name == "content-type"), None)


def _call(port: int, method: str, path: str, body: bytes | None = None,
          headers: list[tuple[str, str]] | None = None, timeout: float = 30) -> Answer:
    """One request with exactly these headers (and Host: api.test: the two servers' ports differ)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", "api.test")
        for name, value in headers or []:
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        data = response.read()
        kept = sorted((name.lower(), value) for name, value in response.getheaders() if name.lower() not in IGNORED_HEADERS)
        return Answer(response.status, response.reason, kept, data)
    finally:
        connection.close()


def _write_test_notebook(folder: Path) -> Path:
    notebook = nbformat.read(EXAMPLE, as_version=4)
    for source in EDGE_CELLS:
        notebook.cells.append(nbformat.v4.new_code_cell(source))
    path = folder / "api.ipynb"
    nbformat.write(notebook, path)
    return path


class KernelGateway:
    """``jupyter kernelgateway`` in notebook-http mode on a seed notebook, logging to a file."""

    def __init__(self, notebook: Path) -> None:
        self.port = free_port()
        self.log_path = notebook.parent / "kernelgateway.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kernel_gateway",
             "--KernelGatewayApp.api=kernel_gateway.notebook_http",
             f"--KernelGatewayApp.seed_uri={notebook}",
             "--KernelGatewayApp.ip=127.0.0.1", f"--KernelGatewayApp.port={self.port}",
             "--KernelGatewayApp.port_retries=0"],
            cwd=notebook.parent, stdout=self._log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Listening, then the seeded kernel answering (KG listens before its kernel is up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the kernel gateway exited ({self.process.returncode}):\n{self.log()}")
            try:
                if _call(self.port, "GET", "/_api/spec/swagger.json", timeout=2).status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            pytest.fail(f"the kernel gateway did not listen within {timeout} s:\n{self.log()}")
        try:
            answer = _call(self.port, "GET", "/hello", timeout=max(1.0, deadline - time.monotonic()))
        except OSError as exc:
            pytest.fail(f"the kernel gateway's kernel did not answer ({exc}):\n{self.log()}")
        assert answer.status == 200, self.log()

    def log(self) -> str:
        return self.log_path.read_bytes().decode("utf-8", "replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self._log.close()


class InProcessServer:
    """A tornado application on a free port, served by its own IOLoop on a background thread."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.sockets = bind_sockets(0, "127.0.0.1")
        self.port = self.sockets[0].getsockname()[1]
        self.loop: asyncio.AbstractEventLoop | None = None
        self._started = threading.Event()
        self.thread = threading.Thread(target=self._run, name="cells-endpoint", daemon=True)
        self.thread.start()
        if not self._started.wait(10):
            raise RuntimeError("the in-process endpoint did not start")

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self.loop = loop
        server = HTTPServer(self.app)
        server.add_sockets(self.sockets)
        loop.call_soon(self._started.set)
        try:
            loop.run_forever()
        finally:
            server.stop()
            loop.run_until_complete(server.close_all_connections())
            loop.close()

    def stop(self) -> None:
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module", autouse=True)
def _keep_main_module():
    """IPython's shell makes its namespace ``sys.modules["__main__"]`` (as a kernel does), and
    ``make_shell`` sets ``MPLBACKEND=Agg``; the endpoint process wants both, but later tests of
    this pytest process need the real ``__main__`` back (multiprocessing's spawn) and kernels that
    draw charts inline (they inherit the environment)."""
    main = sys.modules["__main__"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MPLBACKEND", "Agg")  # as make_shell sets it; as it was again after the module
        yield
    sys.modules["__main__"] = main


def _endpoint(cells: list[str], notebook: str = "api.ipynb", **settings: Any) -> tuple[Any, EndpointState, Any]:
    """What the endpoint process does for the cells form: set-up cells once, then the app."""
    spec = EndpointSpec(name=Path(notebook).stem, notebook=notebook, ref=None, cells=cells, mode="cells", **settings)
    state = EndpointState(spec, SharedStats(1), time.time())
    shell = make_shell()
    setup, routes = split_cells(spec.cells)
    run_cells(shell, setup)
    return make_cells_app(shell, routes, state), state, shell


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    pytest.importorskip("kernel_gateway")
    folder = tmp_path_factory.mktemp("cells")
    notebook = _write_test_notebook(folder)
    gateway = KernelGateway(notebook)
    mlx = None
    previous_env = os.environ.get("KERNEL_GATEWAY")
    try:
        # the endpoint process sets this for the cells form, as KG does in its kernels' environment
        os.environ["KERNEL_GATEWAY"] = "1"
        make_shell().reset(new_session=False)  # a fresh namespace, as KG's fresh kernel
        app, state, _ = _endpoint(code_cells(nbformat.read(notebook, as_version=4), {}))
        mlx = InProcessServer(app)
        gateway.wait_ready()
        yield gateway, mlx, state
    finally:
        if mlx is not None:
            mlx.stop()
        gateway.stop()
        if previous_env is None:
            os.environ.pop("KERNEL_GATEWAY", None)
        else:
            os.environ["KERNEL_GATEWAY"] = previous_env


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_same_answer_as_kernel_gateway(servers, case):
    gateway, mlx, _ = servers
    _name, method, path, body, headers = case
    expected = _call(gateway.port, method, path, body, headers)
    actual = _call(mlx.port, method, path, body, headers)
    assert (actual.status, actual.reason, actual.content_type) == (expected.status, expected.reason, expected.content_type)
    assert actual.body == expected.body
    assert actual.headers == expected.headers


def test_the_differential_cases_cover_the_promised_behaviours(servers):
    """A few absolute checks, so that KG and jupyter_mlx agreeing on something odd is visible."""
    gateway, _, state = servers
    answers = {name: _call(gateway.port, method, path, body, headers)
               for name, method, path, body, headers in CASES if name in {"hello", "known-path-other-method", "unknown-path", "swagger", "error"}}
    assert answers["hello"].body == b"Hello from the items API!\n" and answers["hello"].content_type == "text/plain"
    assert answers["known-path-other-method"].status == 405 and answers["known-path-other-method"].body == b""
    assert answers["unknown-path"].status == 404 and json.loads(answers["unknown-path"].body) == {"reason": "Not Found", "message": ""}
    assert answers["error"].status == 500 and answers["error"].body == b"Error ValueError: boom \n"
    assert set(json.loads(answers["swagger"].body)["paths"]) >= {"/hello", "/items", "/items/:item_id"}
    assert state.stats.summary()["requests"] >= len(CASES)


# ---------------------------------------------------------------- 3. beyond KG: timeout, token, leaks

def _serve_in_this_thread(app: Any, requests: list[tuple[str, str, dict[str, str]]]) -> list[Any]:
    """Serve ``app`` on the main thread's loop (where SIGALRM can interrupt a cell) and send
    ``requests`` from the same loop."""
    async def scenario() -> list[Any]:
        sockets = bind_sockets(0, "127.0.0.1")
        server = HTTPServer(app)
        server.add_sockets(sockets)
        client = AsyncHTTPClient(force_instance=True)
        base = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
        try:
            return [await client.fetch(base + path, method=method, headers=headers, raise_error=False,
                                       allow_nonstandard_methods=True, request_timeout=20)
                    for method, path, headers in requests]
        finally:
            client.close()
            server.stop()
            await server.close_all_connections()

    return asyncio.run(scenario())


def test_a_cell_past_the_timeout_answers_504_and_the_worker_keeps_serving():
    cells = [
        "import time, asyncio",
        "# GET /sleep\ntime.sleep(30)",
        "# GET /stubborn\nwhile True:\n    try:\n        time.sleep(0.05)\n    except Exception:\n        pass",
        "# GET /await\nawait asyncio.sleep(30)",
        "# GET /fast\nprint('fast')",
        "# GET /info\nprint('body')",
        "# ResponseInfo GET /info\ntime.sleep(30)",
    ]
    app, state, _ = _endpoint(cells, timeout=0.3)
    previous = signal.getsignal(signal.SIGALRM)
    began = time.monotonic()
    answers = _serve_in_this_thread(app, [("GET", path, {}) for path in ["/sleep", "/fast", "/stubborn", "/await", "/info", "/fast"]])
    assert time.monotonic() - began < 5
    assert [answer.code for answer in answers] == [504, 200, 504, 504, 504, 200]
    timeout = json.loads(answers[0].body)
    assert timeout["error"] == "timeout" and "0.3 s" in timeout["message"]
    assert answers[0].headers["Content-Type"] == "application/json"
    assert answers[1].body == answers[5].body == b"fast\n"
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0) and signal.getsignal(signal.SIGALRM) == previous
    assert state.stats.summary()["errors"] == 4


def test_the_token_guards_routes_and_swagger_but_keeps_kgs_open_404_and_options():
    cells = ["# GET /hello\nprint('hi')", "# POST /hello\nprint('posted')"]
    app, state, _ = _endpoint(cells, token_hash=hash_token("s3cret"))
    good = {"Authorization": "Bearer s3cret"}
    answers = _serve_in_this_thread(app, [
        ("GET", "/hello", {}), ("GET", "/hello", {"Authorization": "Bearer wrong"}), ("GET", "/hello", good),
        ("GET", "/_api/spec/swagger.json", {}), ("GET", "/_api/spec/swagger.json", good),
        ("GET", "/nope", {}), ("OPTIONS", "/hello", {}), ("DELETE", "/hello", good),
        ("GET", "/hello", {"Authorization": "token s3cret"}),  # KG's scheme is not ours
    ])
    assert [answer.code for answer in answers] == [401, 403, 200, 401, 200, 404, 200, 405, 401]
    assert json.loads(answers[0].body)["error"] == "unauthorized" and json.loads(answers[1].body)["error"] == "forbidden"
    assert answers[2].body == b"hi\n"
    assert json.loads(answers[4].body)["info"]["title"] == "api"
    assert json.loads(answers[5].body) == {"reason": "Not Found", "message": ""}
    assert state.stats.summary()["requests"] == len(answers)


def test_requests_do_not_grow_the_shell(tmp_path):
    import linecache

    cells = ["# GET /talk\nprint('x' * 100)\n{'a': 1}", "# GET /fail\nraise RuntimeError('no')"]
    app, _, shell = _endpoint(cells)
    _serve_in_this_thread(app, [("GET", "/talk", {}), ("GET", "/fail", {})])
    lines = len(linecache.cache)
    answers = _serve_in_this_thread(app, [("GET", path, {}) for path in ["/talk", "/fail"] * 50])
    assert {answer.code for answer in answers} == {200, 500}
    assert len(linecache.cache) == lines
    assert not shell.history_manager.outputs
    assert "REQUEST" in shell.user_ns  # the last request's document stays, as in KG's kernel


def test_the_shell_is_left_as_found():
    app, _, shell = _endpoint(["# GET /x\ndisplay('d')\nprint('p')\n1"])
    hook, publisher, compile_, stdout = shell.display_trap.hook, shell.display_pub, shell.compile, sys.stdout
    answers = _serve_in_this_thread(app, [("GET", "/x", {})])
    assert answers[0].body == b"p\n"
    assert (shell.display_trap.hook, shell.display_pub, shell.compile) == (hook, publisher, compile_)
    assert "_showtraceback" not in vars(shell) and "get_code_name" not in vars(shell.compile)
    assert sys.stdout is stdout


def test_example_notebook_is_a_kg_notebook():
    notebook = nbformat.read(EXAMPLE, as_version=4)
    nbformat.validate(notebook)
    sources = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    setup, routes = split_cells(sources)
    assert {(route.path, method) for route in routes for method in route.methods} == {
        ("/hello", "GET"), ("/items", "GET"), ("/items/:item_id", "GET"), ("/items", "POST")}
    assert next(route for route in routes if route.path == "/items").responses.keys() == {"GET", "POST"}
    assert len(setup) == 1
    # no markdown cell reads as an annotation (KG would list it in its Swagger document)
    assert not any(is_api_cell(cell.source) for cell in notebook.cells if cell.cell_type == "markdown")


def test_make_cells_app_takes_a_plain_list_of_routes():
    cells = ["# GET /b/:x\nprint(json.loads(REQUEST)['path']['x'])", "# POST /a\nprint('a')", "import json"]
    spec = EndpointSpec(name="list", notebook="list.ipynb", ref=None, cells=cells, mode="cells")
    state = EndpointState(spec, SharedStats(1), time.time())
    shell = make_shell()
    setup, routes = split_cells(cells)
    run_cells(shell, setup)
    app = make_cells_app(shell, list(routes), state)
    answers = _serve_in_this_thread(app, [("GET", "/b/%C3%A9", {}), ("GET", "/_api/spec/swagger.json", {})])
    assert answers[0].body == "é\n".encode()
    assert json.loads(answers[1].body)["paths"] == {"/a": {"post": {"responses": {"200": {"description": "Success"}}}},
                                                    "/b/:x": {"get": {"responses": {"200": {"description": "Success"}}}}}


def test_healthz_of_a_cells_endpoint_tells_details_to_its_token_only(monkeypatch):
    """/healthz as the endpoint process builds it (``process.build_app``): KG has none, ours answers
    a probe with its status alone, and the caller with the token with what it serves."""
    from jupyter_mlx.serve.process import build_app

    monkeypatch.setenv("KERNEL_GATEWAY", "1")  # build_app sets it, as the endpoint process does: restored after

    spec = EndpointSpec(name="api", notebook="nb/api.ipynb", ref="nb/api.ipynb@v3", cells=["# GET /hello\nprint('hi')"],
                        mode="cells", token_hash=hash_token("s3cret"))
    state = EndpointState(spec, SharedStats(1), time.time())
    app = build_app(spec, state, io.StringIO())
    answers = _serve_in_this_thread(app, [
        ("GET", "/healthz", {}), ("GET", "/healthz", {"Authorization": "Bearer s3cret"}),
        ("GET", "/healthz", {"Authorization": "Bearer wrong"}),
    ])
    assert [answer.code for answer in answers] == [200, 200, 403]
    assert json.loads(answers[0].body) == {"status": "ok"}
    details = json.loads(answers[1].body)
    assert details["status"] == "ok" and details["mode"] == "cells" and details["ref"] == "nb/api.ipynb@v3"
    assert details["notebook"] == "nb/api.ipynb" and details["requests"] == 0 and "pid" in details  # probes are not requests
