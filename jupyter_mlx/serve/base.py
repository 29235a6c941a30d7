"""What every endpoint handler does: bearer-token auth, the JSON error shape, request stats."""
from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import secrets
import signal
import time
from dataclasses import dataclass
from typing import Any, Iterator

from tornado import web

try:
    from ..errors import error_code_of_status
except ImportError:  # the runtime exported by ``jupyter mlx export`` carries its own copy of errors.py
    from .errors import error_code_of_status  # type: ignore[no-redef]
from .spec import EndpointSpec
from .stats import SharedStats


class RequestError(web.HTTPError):
    """A request the endpoint refuses: its status and a message for the caller."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status)
        self.message = message


class RequestTimeout(Exception):
    """The request ran past the endpoint's timeout."""


_limit_seconds = 0.0


def _expire(_signum: int, _frame: Any) -> None:
    raise RequestTimeout(f"the request took longer than the endpoint's timeout of {_limit_seconds:g} s")


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise ``RequestTimeout`` in this (the worker's main) thread after ``seconds``: handlers
    run the notebook's code on the main thread, one request at a time per worker. The signal
    handler is installed once; a request only arms and clears the timer."""
    global _limit_seconds
    if seconds <= 0:
        yield
        return
    if signal.getsignal(signal.SIGALRM) is not _expire:
        signal.signal(signal.SIGALRM, _expire)
    _limit_seconds = seconds
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def new_token() -> str:
    """A random bearer token that a shell passes as one argument (never starting with '-')."""
    while True:
        token = secrets.token_urlsafe(24)
        if not token.startswith("-"):
            return token


def hash_token(token: str) -> str:
    """How tokens are stored: their SHA-256, never the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class EndpointState:
    """Shared by the handlers of one worker."""

    spec: EndpointSpec
    stats: SharedStats
    started_at: float
    in_flight: int = 0  # requests being answered by this worker now
    draining: bool = False  # stopping: answer what came, ask clients to reconnect (to the next version)
    loaded_into: dict[str, Any] | None = None  # the environment the run's state was loaded into


class EndpointHandler(web.RequestHandler):
    """Base handler: ``Authorization: Bearer <token>`` when the endpoint has a token (401 without
    one, 403 for a wrong one), errors as ``{"error", "message"}`` JSON, every request counted."""

    public = False  # /healthz answers without the token (a load balancer's probe)
    counted = True  # in the request counts and latencies (not /healthz: probes would drown the API's)

    def initialize(self, state: EndpointState) -> None:
        self.state = state
        self._began = time.perf_counter()
        self._recorded = False
        state.in_flight += 1
        if state.draining:
            self.set_header("Connection", "close")

    def prepare(self) -> None:
        if not self.public:
            self.check_token()

    def check_token(self) -> None:
        """401 without the endpoint's token, 403 with a wrong one; nothing for an endpoint without."""
        expected = self.state.spec.token_hash
        if expected is None:
            return
        header = self.request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise RequestError(401, "this endpoint needs a token: send Authorization: Bearer <token>")
        if not hmac.compare_digest(hash_token(token.strip()), expected):
            raise RequestError(403, "wrong token for this endpoint")

    def write_json(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(value))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = getattr(exc, "message", None) or self._reason
        code = error_code_of_status(status_code)
        if status_code == 401:  # send_error cleared the headers: set it here
            self.set_header("WWW-Authenticate", 'Bearer realm="jupyter_mlx"')
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": code, "message": message}))

    def finish(self, chunk: Any = None) -> Any:
        """Count the request before its answer leaves: a caller that reads the stats right after
        its answer (``curl`` then ``jupyter mlx endpoints``) must see it counted."""
        self._record()
        return super().finish(chunk)

    def on_finish(self) -> None:
        self.state.in_flight -= 1
        self._record()  # a request that ended without finish (the client went away)

    def _record(self) -> None:
        if self.counted and not self._recorded:
            self._recorded = True
            self.state.stats.record((time.perf_counter() - self._began) * 1000, self.get_status() >= 500)
