"""One version of an endpoint: run the notebook's set-up once, fork the workers, serve.

``python -m jupyter_mlx.serve.process SPEC.json --socket-fd N --ready-fd M``: the listening
socket is inherited from the supervisor (``supervisor.py``), which keeps it open across
redeploys, so swapping versions never refuses a connection. Once every worker listens, one line
is written to the ready pipe. SIGTERM: workers stop accepting, finish the requests in flight, exit.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from tornado import httpserver, ioloop, iostream, web

from .base import EndpointHandler, EndpointState, RequestError
from .exposure import exposure_warning
from .setup import SetupError, find_function, make_shell, run_cells
from .spec import EndpointSpec
from .state import load_served_state
from .stats import SharedStats

log = logging.getLogger("jupyter_mlx.serve")
STOP_GRACE_SECONDS = 10.0
DRAIN_SECONDS = 0.5  # connections accepted just before the stop get their request answered
HARD_BODY_LIMIT = 1024**3  # streamed bodies are checked against the endpoint's own limit


class HealthHandler(EndpointHandler):
    """``GET /healthz``: ``{"status": "ok"}`` to anyone (a load balancer's probe); with the
    endpoint's token (or on an endpoint without one) also what it serves, its process, and the
    request counts and latencies of all workers."""

    public = True
    counted = False  # a probe, not a use of the API

    def get(self) -> None:
        spec = self.state.spec
        if spec.token_hash is not None and "Authorization" not in self.request.headers:
            self.write_json({"status": "ok"})
            return
        self.check_token()
        self.write_json({"status": "ok", "name": spec.name, "notebook": spec.notebook, "ref": spec.ref,
                         "mode": spec.mode, "function": spec.function, "serves": spec.serves,
                         "reexecute_reason": spec.reexecute_reason, "loaded_into": self.state.loaded_into,
                         "pid": os.getppid() if spec.workers > 1 else os.getpid(),
                         "workers": spec.workers, "uptime_s": round(time.time() - self.state.started_at, 3),
                         **self.state.stats.summary()})


class NotFoundHandler(EndpointHandler):
    def prepare(self) -> None:
        super().prepare()
        raise RequestError(404, f"no route {self.request.path}; see /openapi.json")


def build_app(spec: EndpointSpec, state: EndpointState, log_stream: Any) -> web.Application:
    """Load the run's state (or run the set-up cells) once, and the application serving the
    notebook's routes."""
    shell = make_shell()
    if spec.mode == "cells":
        from .annotations import split_cells
        from .cells_app import make_cells_app

        setup, routes = split_cells(spec.cells)
        os.environ["KERNEL_GATEWAY"] = "1"  # as Kernel Gateway sets it: notebooks use it to skip cells
        run_cells(shell, setup, log_stream)
        app = make_cells_app(shell, routes, state)
    else:
        from .function_app import function_routes

        if spec.state is not None:
            namespace, state.loaded_into = load_served_state(spec.state)
            shell.user_ns.update(namespace)
            log.info("%s: loaded the state of %s (%d objects) into Python %s", spec.name, spec.state.get("label"),
                     len(namespace), state.loaded_into["python"])
            for drift in state.loaded_into["drift"]:
                log.warning("%s: version drift allowed: %s", spec.name, drift)
        else:
            run_cells(shell, spec.cells, log_stream)
        app = web.Application(function_routes(state, find_function(shell, spec.function or "")),
                              default_handler_class=NotFoundHandler, default_handler_args={"state": state})
    app.add_handlers(r".*", [("/healthz", HealthHandler, {"state": state})])
    return app


def serve(spec: EndpointSpec, listener: socket.socket, ready_fd: int | None, stats_file: Path | None = None) -> None:
    stats = SharedStats(spec.workers, stats_file)
    state = EndpointState(spec, stats, time.time())
    app = build_app(spec, state, sys.stderr)
    worker = _fork_workers(spec.workers) if spec.workers > 1 else 0
    if worker is None:  # the parent of the workers: wait for them, pass SIGTERM on
        _report_ready(ready_fd, spec, state.loaded_into)
        return
    stats.slot = worker
    server = httpserver.HTTPServer(app, max_body_size=max(spec.max_body, HARD_BODY_LIMIT), xheaders=False)
    loop = ioloop.IOLoop.current()
    accepting = _accept_one_at_a_time(server, listener, loop)

    def stop(_signum: int, _frame: Any) -> None:
        loop.add_callback_from_signal(_graceful_stop, server, accepting, state, loop)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if spec.workers == 1:
        _report_ready(ready_fd, spec, state.loaded_into)
    if worker == 0:
        address = listener.getsockname()
        log.info("%s serving %s on http://%s:%s with %d worker(s)", spec.name, spec.ref or spec.notebook,
                 address[0], address[1], spec.workers)
    loop.start()


def _accept_one_at_a_time(server: httpserver.HTTPServer, listener: socket.socket, loop: ioloop.IOLoop) -> socket.socket:
    """Accept one connection per wake-up. Tornado's own accept loop takes every pending connection
    at once, so with forked workers sharing the socket, the first to wake took a whole burst of
    keep-alive clients and the others idled; one at a time, the connections spread over the workers."""
    own = listener.dup()  # closed at stop; the socket itself stays open in the supervisor
    own.setblocking(False)

    def accept(fd: Any, events: int) -> None:
        try:
            connection, address = own.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return  # another worker took it
        connection.setblocking(False)
        server.handle_stream(iostream.IOStream(connection), address)

    loop.add_handler(own.fileno(), accept, ioloop.IOLoop.READ)
    return own


async def _graceful_stop(server: httpserver.HTTPServer, accepting: socket.socket, state: EndpointState,
                         loop: ioloop.IOLoop) -> None:
    """Stop accepting (the supervisor's socket stays open for the next version), answer the
    requests on connections already accepted, telling their clients to reconnect, then close."""
    import asyncio

    loop.remove_handler(accepting.fileno())
    accepting.close()
    state.draining = True
    started = time.monotonic()
    while time.monotonic() - started < STOP_GRACE_SECONDS:
        if time.monotonic() - started >= DRAIN_SECONDS and state.in_flight == 0:
            break
        await asyncio.sleep(0.02)
    try:
        await asyncio.wait_for(server.close_all_connections(), 1.0)
    finally:
        loop.stop()


_children: list[int] = []


def _fork_workers(count: int) -> int | None:
    """Fork ``count`` workers (they share the set-up's memory copy-on-write); returns the worker's
    index in a worker, None in the parent once they have all exited."""
    for index in range(count):
        pid = os.fork()
        if pid == 0:
            return index
        _children.append(pid)

    def forward(signum: int, _frame: Any) -> None:
        for pid in _children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    return None


def _wait_for_workers() -> int:
    status = 0
    for pid in _children:
        while True:
            try:
                _, code = os.waitpid(pid, 0)
                break
            except InterruptedError:
                continue
            except ChildProcessError:
                code = 0
                break
        status = status or (os.waitstatus_to_exitcode(code) if code else 0)
    return status


def _report_ready(ready_fd: int | None, spec: EndpointSpec, loaded_into: dict[str, Any] | None) -> None:
    if ready_fd is not None:
        os.write(ready_fd, (json.dumps({"ready": True, "pid": os.getpid(), "workers": spec.workers,
                                        "loaded_into": loaded_into}) + "\n").encode())
        os.close(ready_fd)


def quiet_access_log() -> None:
    """Log refused and failed requests only (4xx, 5xx): a line per request costs time and disk."""
    logging.getLogger("tornado.access").setLevel(logging.WARNING)


def serve_standalone(spec: EndpointSpec) -> int:
    """Listen on the spec's address and serve until SIGTERM/SIGINT, without a supervisor (an
    exported endpoint); 3 when the notebook cannot be served."""
    quiet_access_log()
    warning = exposure_warning(spec.name, spec.host, spec.port, spec.token_hash is not None)
    if warning:
        log.warning("%s", warning)
    listener = socket.create_server((spec.host, spec.port), backlog=1024)
    listener.setblocking(False)
    try:
        serve(spec, listener, None)
    except SetupError as exc:
        log.error("%s", exc)
        return 3
    if _children:
        return _wait_for_workers()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jupyter_mlx.serve.process")
    parser.add_argument("spec")
    parser.add_argument("--socket-fd", type=int, required=True)
    parser.add_argument("--ready-fd", type=int)
    parser.add_argument("--stats-file", help="map the request stats to this file (the manager reads them there)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    quiet_access_log()
    spec = EndpointSpec.read(Path(args.spec))
    stats_file = Path(args.stats_file).resolve() if args.stats_file else None
    os.chdir(spec.cwd)
    listener = socket.socket(fileno=args.socket_fd)
    listener.setblocking(False)
    try:
        serve(spec, listener, args.ready_fd, stats_file)
    except SetupError as exc:
        _report_failure(args.ready_fd, str(exc))
        return 3
    except Exception as exc:  # a bad spec: say it, once
        _report_failure(args.ready_fd, f"{type(exc).__name__}: {exc}")
        return 3
    return _wait_for_workers() if _children else 0


def _report_failure(ready_fd: int | None, message: str) -> None:
    log.error("%s", message)
    if ready_fd is not None:
        os.write(ready_fd, (json.dumps({"ready": False, "error": message}) + "\n").encode())
        os.close(ready_fd)


if __name__ == "__main__":
    sys.exit(main())
