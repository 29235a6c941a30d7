"""The annotated-cell form: Kernel Gateway's notebook-http mode, answered from an IPython shell.

A notebook written for ``jupyter kernelgateway --KernelGatewayApp.api=kernel_gateway.notebook_http``
serves unchanged and answers as KG 3.0 does: the same ``REQUEST`` JSON string, the handler cell's
printed output as the body (or its result's MIME bundle as JSON when it printed nothing), the
``ResponseInfo`` cell's status and headers, ``text/plain`` by default, ``500`` with
``Error <name>: <message> \\n`` when a cell raises, an empty ``405`` for a method the path has no
cell for, KG's JSON error bodies, and the same ``/_api/spec/swagger.json``.

Where KG sends the code to a kernel, the handler runs it in the endpoint's shell (``run_cell``), on
the IOLoop thread, one request at a time per worker (an ``asyncio.Lock`` covers a request's cells,
as KG holds its kernel for the request). What a kernel would turn into messages is captured here:
``sys.stdout`` (the ``stream`` messages KG reads), the displayhook (``execute_result``) and the
shell's ``_showtraceback`` (the ``error`` message: exactly what ipykernel overrides). ``display()``
output, which KG ignores, goes nowhere; stderr stays the process's (the log).

Unlike KG, a request has a time limit (``spec.timeout``): past it the answer is ``504``
``{"error": "timeout", ...}``; ``SIGALRM`` interrupts the cell (worker main thread only).
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import logging
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from http.client import responses
from typing import Any, Iterator

from tornado import web
from tornado.httputil import HTTPHeaders, HTTPServerRequest

from .annotations import CellRoutes, Route, swagger_json
from .base import EndpointHandler, EndpointState, RequestError

log = logging.getLogger("jupyter_mlx.serve")

FORM_URLENCODED = "application/x-www-form-urlencoded"
MULTIPART_FORM_DATA = "multipart/form-data"
APPLICATION_JSON = "application/json"
TEXT_PLAIN = "text/plain"
_MISSING = object()


# ---- the REQUEST document (kernel_gateway.notebook_http.request_utils, unchanged behaviour) ----

def parse_body(request: HTTPServerRequest) -> str | dict[str, list[str]]:
    """The body by its exact Content-Type: form fields (urlencoded or multipart; files left out)
    as ``{name: [values]}``, ``application/json`` parsed (kept as text when it does not parse),
    anything else (``application/json; charset=utf-8`` too, as in KG) as text."""
    content_type = TEXT_PLAIN
    body = request.body.decode(encoding="UTF-8") if request.body else ""
    if "Content-Type" in request.headers:
        content_type = request.headers["Content-Type"]
    return_body: Any = body
    if content_type == FORM_URLENCODED or content_type.startswith(MULTIPART_FORM_DATA):
        return_body = parse_args(request.body_arguments)
    elif content_type == APPLICATION_JSON:
        try:
            return_body = json.loads(body)
        except Exception:  # noqa: BLE001 - KG keeps the text
            pass
    return return_body


def parse_args(args: dict[str, list[bytes]]) -> dict[str, list[str]]:
    return {key: [value.decode(encoding="UTF-8") for value in values] for key, values in args.items()}


def headers_to_dict(headers: HTTPHeaders) -> dict[str, Any]:
    """Headers by name; a repeated header becomes a list of its values."""
    result: dict[str, Any] = {}
    for name, value in headers.get_all():
        if name in result:
            if not isinstance(result[name], list):
                result[name] = [result[name]]
            result[name].append(value)
        else:
            result[name] = value
    return result


# ---- running a cell as a kernel would answer it ----

class CodeExecutionError(Exception):
    """A cell raised: the text is KG's response body."""


class UnsupportedMethodError(Exception):
    """The path has no cell for this method."""


class CellTimeout(BaseException):
    """The request ran past the endpoint's timeout. A BaseException, so that the notebook's own
    ``except Exception:`` does not swallow it."""


@dataclass
class CellOutput:
    """What a kernel would have sent on iopub for one execution, as KG's accumulator keeps it."""

    stream: str = ""
    result: dict[str, Any] | None = None  # the execute_result MIME bundle
    error: str | None = None  # "Error <ename>: <evalue> \n" of the last error message
    exception: BaseException | None = None
    traceback: str = ""

    def value(self) -> str:
        """KG's ``finish_future``: an error wins, then printed text, then the result bundle."""
        if self.error:
            raise CodeExecutionError(self.error)
        if self.stream:
            return self.stream
        if self.result:
            return json.dumps(self.result, default=repr)
        return ""


def _kernel_code_namer() -> Any:
    """ipykernel's cell file names (``/tmp/ipykernel_<pid>/<murmur2 of the code>.py``), so that a
    ``SyntaxError`` reads ``invalid syntax (<hash>.py, line 2)`` as it does under KG; None without
    ipykernel (the message then names ``<ipython-input-...>``)."""
    try:
        from ipykernel.compiler import get_file_name
    except ImportError:
        return None

    def get_code_name(raw_code: str, transformed_code: str, number: int) -> str:
        return get_file_name(raw_code)

    return get_code_name


def _mime_bundle(format_dict: dict[str, Any]) -> dict[str, Any]:
    """ipykernel's ``encode_images``: binary outputs (PNG, JPEG, PDF) base64-encoded."""
    return {key: base64.b64encode(value).decode("ascii") if isinstance(value, bytes) else value
            for key, value in format_dict.items()}


class _ResultHook:
    """``sys.displayhook`` during a request: the shell's own displayhook bookkeeping (``_``), but
    the formatted result kept (KG's ``execute_result``) instead of printed."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.cell = ""
        self.output = CellOutput()

    def __call__(self, result: Any = None) -> None:
        hook = self.shell.displayhook
        hook.check_for_underscore()
        if result is None or self._quiet():
            return
        format_dict, _metadata = hook.compute_format_data(result)
        hook.update_user_ns(result)
        hook.fill_exec_result(result)
        if format_dict:
            self.output.result = _mime_bundle(format_dict)

    def _quiet(self) -> bool:  # a trailing ';' silences the result, as in a notebook
        try:
            return bool(self.shell.displayhook.semicolon_at_end_of_expression(self.cell))
        except Exception:  # noqa: BLE001
            return False


def _silent_publisher(shell: Any) -> Any:
    """A display publisher that drops ``display()`` output: KG ignores ``display_data``."""
    from IPython.core.displaypub import DisplayPublisher

    class SilentPublisher(DisplayPublisher):
        def publish(self, *args: Any, **kwargs: Any) -> None:
            pass

        def clear_output(self, wait: bool = False) -> None:
            pass

    return SilentPublisher(shell=shell)


@contextlib.contextmanager
def _alarm(seconds: float | None) -> Iterator[None]:
    """Raise ``CellTimeout`` in this thread after ``seconds`` (``SIGALRM``; only the main thread
    can take it: elsewhere, as in an in-process test server, there is no limit)."""
    if seconds is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    if seconds <= 0:
        raise CellTimeout()

    def expire(_signum: int, _frame: Any) -> None:
        raise CellTimeout()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        try:
            signal.setitimer(signal.ITIMER_REAL, 0)
        finally:
            signal.signal(signal.SIGALRM, previous)


class CellRunner:
    """Runs request cells in the shell, one request at a time (``lock``), capturing output."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.hook = _ResultHook(shell)
        self.publisher = _silent_publisher(shell)
        self.code_name = _kernel_code_namer()
        self._lock: asyncio.Lock | None = None

    @property
    def lock(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def run(self, code: str, deadline: float | None) -> CellOutput:
        """Execute ``code`` (top-level ``await`` allowed, as in ipykernel); ``CellTimeout`` past
        ``deadline`` (``time.monotonic()``)."""
        shell = self.shell
        try:
            transformed, preprocessing_error = shell.transform_cell(code), None
        except Exception:  # noqa: BLE001 - run_cell reports it as the cell's error
            transformed, preprocessing_error = code, sys.exc_info()
        remaining = None if deadline is None else deadline - time.monotonic()
        with self._capture(transformed) as output:
            if shell.should_run_async(code, transformed_cell=transformed, preprocessing_exc_tuple=preprocessing_error):
                result = await self._run_async(code, transformed, preprocessing_error, remaining)
            else:
                with _alarm(remaining):
                    result = shell.run_cell(code, store_history=False, silent=False)
        if isinstance(getattr(result, "error_in_exec", None), CellTimeout) or isinstance(output.exception, CellTimeout):
            raise CellTimeout()
        return output

    async def _run_async(self, code: str, transformed: str, preprocessing_error: Any, remaining: float | None) -> Any:
        shell = self.shell
        task = asyncio.ensure_future(shell.run_cell_async(
            code, store_history=False, silent=False, transformed_cell=transformed,
            preprocessing_exc_tuple=preprocessing_error))
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            task.cancel()

        timer = asyncio.get_running_loop().call_later(max(remaining, 0), expire) if remaining is not None else None
        result = None
        try:
            result = await task
        except asyncio.CancelledError:
            if not expired:
                raise
        finally:
            if timer is not None:
                timer.cancel()
            shell.events.trigger("post_execute")
            shell.events.trigger("post_run_cell", result)
        if expired:
            raise CellTimeout()
        return result

    @contextlib.contextmanager
    def _capture(self, cell: str) -> Iterator[CellOutput]:
        """Route what a kernel would message about into a ``CellOutput`` for the duration."""
        shell = self.shell
        output = CellOutput()
        self.hook.cell, self.hook.output = cell, output

        def record_error(etype: type, evalue: BaseException, stb: list[str]) -> None:
            # ipykernel's ZMQInteractiveShell._showtraceback sends exactly this as the error message
            try:
                output.error = f"Error {etype.__name__}: {evalue} \n"
            except Exception:  # noqa: BLE001 - an exception whose str() fails
                output.error = f"Error {etype.__name__}: <unprintable> \n"
            output.exception = evalue
            try:
                output.traceback = shell.InteractiveTB.stb2text(stb)
            except Exception:  # noqa: BLE001
                output.traceback = "".join(traceback.format_exception_only(etype, evalue))

        saved_hook, saved_publisher = shell.display_trap.hook, shell.display_pub
        saved_showtraceback = vars(shell).get("_showtraceback", _MISSING)
        saved_code_name = vars(shell.compile).get("get_code_name", _MISSING)
        stderr = sys.stderr  # IPython's _tee patches its write; a timeout can skip the un-patching
        saved_stderr_write = vars(stderr).get("write", _MISSING) if hasattr(stderr, "__dict__") else None
        shell.display_trap.hook = self.hook
        shell.display_pub = self.publisher
        shell._showtraceback = record_error
        if self.code_name is not None:
            shell.compile.get_code_name = self.code_name
        stream = io.StringIO()
        try:
            with contextlib.redirect_stdout(stream):
                yield output
        finally:
            output.stream = stream.getvalue()
            shell.display_trap.hook, shell.display_pub = saved_hook, saved_publisher
            _restore(shell, "_showtraceback", saved_showtraceback)
            _restore(shell.compile, "get_code_name", saved_code_name)
            if saved_stderr_write is not None:
                _restore(stderr, "write", saved_stderr_write)
            # IPython 9 keeps every printed chunk in history_manager.outputs under the execution
            # count, which does not advance without store_history: a leak per request otherwise
            shell.history_manager.outputs.clear()


def _restore(target: Any, name: str, saved: Any) -> None:
    if saved is _MISSING:
        vars(target).pop(name, None)
    else:
        setattr(target, name, saved)


# ---- handlers ----

class KernelGatewayErrors:
    """KG's ``JSONErrorsMixin``: ``{"reason", "message"}`` (and ``traceback`` for a non-HTTP
    exception); our own refusals (401/403 auth, 504 timeout) keep the endpoint's JSON shape."""

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        if exc_info and isinstance(exc_info[1], RequestError):
            EndpointHandler.write_error(self, status_code, **kwargs)  # type: ignore[arg-type]
            return
        reply: dict[str, Any] = {"reason": responses.get(status_code, "Unknown HTTP Error"), "message": ""}
        if exc_info:
            exception = exc_info[1]
            if isinstance(exception, web.HTTPError):
                reply["message"] = exception.log_message or ""
            else:
                reply["message"] = "Unknown server error"
                reply["traceback"] = "".join(traceback.format_exception(*exc_info))
            custom_reason = getattr(exception, "reason", "")
            if custom_reason:
                reply["reason"] = custom_reason
        self.set_header("Content-Type", "application/json")  # type: ignore[attr-defined]
        self.set_status(status_code, reason=reply["reason"])  # type: ignore[attr-defined]
        self.finish(json.dumps(reply))  # type: ignore[attr-defined]


class NotebookAPIHandler(KernelGatewayErrors, EndpointHandler):
    """One annotated path: runs the method's cell with ``REQUEST`` set, then its ResponseInfo cell."""

    def initialize(self, state: EndpointState, route: Route, runner: CellRunner) -> None:  # type: ignore[override]
        super().initialize(state)
        self.route = route
        self.runner = runner

    def prepare(self) -> None:
        if self.request.method == "OPTIONS":  # KG asks no token for OPTIONS (CORS preflight)
            return
        super().prepare()

    def _request_document(self) -> str:
        return json.dumps({
            "body": parse_body(self.request),
            "args": parse_args(self.request.query_arguments),
            "path": self.path_kwargs,
            "headers": headers_to_dict(self.request.headers),
        })

    async def _handle_request(self) -> None:
        """KG's ``NotebookAPIHandler._handle_request``, step for step (including what happens
        when the ResponseInfo output is not JSON: the response is already finished, 200, empty)."""
        method = self.request.method or ""
        timeout = self.state.spec.timeout
        deadline = time.monotonic() + timeout if timeout and timeout > 0 else None
        timed_out = False
        async with self.runner.lock:
            try:
                if method not in self.route.sources:
                    raise UnsupportedMethodError(method)
                self.set_header("Content-Type", "text/plain")
                self.set_status(200)
                source_code = self.route.sources[method]
                self.runner.shell.user_ns["REQUEST"] = self._request_document()
                source_result = self._value(await self.runner.run(source_code, deadline), method)
                if method in self.route.responses:
                    response_result = self._value(await self.runner.run(self.route.responses[method], deadline),
                                                  f"ResponseInfo {method}")
                    response = json.loads(response_result)
                    if "headers" in response:
                        for header in response["headers"]:
                            self.set_header(header, response["headers"][header])
                    if "status" in response:
                        self.set_status(response["status"])
                if source_result:
                    self.write(source_result)
            except CodeExecutionError as err:
                self.write(str(err))
                self.set_status(500)
            except UnsupportedMethodError:
                self.set_status(405)
            except CellTimeout:
                timed_out = True
            finally:
                if not timed_out and not self._finished:
                    await self.finish()
        if timed_out:
            raise RequestError(504, f"the request took longer than the endpoint's timeout of {timeout:g} s")

    def _value(self, output: CellOutput, what: str) -> str:
        if output.error:
            log.warning("%s %s: the notebook cell raised\n%s", what, self.route.path, output.traceback.rstrip())
        return output.value()

    async def get(self, **kwargs: Any) -> None:
        await self._handle_request()

    async def post(self, **kwargs: Any) -> None:
        await self._handle_request()

    async def put(self, **kwargs: Any) -> None:
        await self._handle_request()

    async def delete(self, **kwargs: Any) -> None:
        await self._handle_request()

    def options(self, **kwargs: Any) -> None:
        self.finish()


class SwaggerSpecHandler(KernelGatewayErrors, EndpointHandler):
    """``GET /_api/spec/swagger.json``: KG's Swagger 2.0 document of the annotated cells."""

    def initialize(self, state: EndpointState, output: str) -> None:  # type: ignore[override]
        super().initialize(state)
        self.output = output

    async def get(self, **kwargs: Any) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_status(200)
        await self.finish(self.output)


class NotFoundHandler(KernelGatewayErrors, EndpointHandler):
    """Any other path: KG's 404 ``{"reason": "Not Found", "message": ""}``, without a token
    (KG's catch-all asks none either)."""

    public = True

    def prepare(self) -> None:
        raise web.HTTPError(404)


def make_cells_app(shell: Any, routes: Any, state: EndpointState) -> web.Application:
    """The notebook's routes (``CellRoutes`` from ``annotations.split_cells``, in that order: the
    first matching pattern answers) and ``/_api/spec/swagger.json``; unknown paths get KG's 404.
    Routes added later with ``add_handlers`` (``/healthz``) are matched before these."""
    if not isinstance(routes, CellRoutes):  # a plain list of Route
        routes = list(routes)
        routes = CellRoutes(routes, [f"# {method} {route.path}" for route in routes for method in route.methods])
    runner = CellRunner(shell)
    handlers: list[Any] = [
        (route.pattern, NotebookAPIHandler, {"state": state, "route": route, "runner": runner}) for route in routes
    ]
    handlers.append(("/_api/spec/swagger.json", SwaggerSpecHandler,
                     {"state": state, "output": swagger_json(routes.swagger_sources, state.spec.notebook)}))
    return web.Application(handlers, default_handler_class=NotFoundHandler, default_handler_args={"state": state})
