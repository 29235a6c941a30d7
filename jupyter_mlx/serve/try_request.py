"""Try an endpoint from JupyterLab: one HTTP request to a managed endpoint, sent by the Jupyter
server (the endpoint listens on the server's machine, which the browser may not reach, and
answers no CORS), its status, headers and body returned as data.

Only to the endpoint's own host and port: the caller names the endpoint and a path, never an
address, so this cannot be used to reach anything else.
"""
from __future__ import annotations

import http.client
import json
from typing import TYPE_CHECKING, Any

from ..errors import MLXError

if TYPE_CHECKING:
    from .manager import EndpointManager

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
MAX_RESPONSE_BYTES = 1024 * 1024  # the answer shown in the browser; the rest is cut off
EXTRA_SECONDS = 5.0  # past the endpoint's own request timeout, so its 504 arrives first
# a server bound to every interface is reached on the loopback one
_LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


class EndpointUnreachable(MLXError):
    """The endpoint did not answer: the Jupyter server, acting as a gateway, answers 502."""

    def __init__(self, message: str) -> None:
        super().__init__("endpoint_unreachable", message)


def try_endpoint(manager: "EndpointManager", name: str, *, method: str = "POST", path: str,
                 body: Any = None, token: str | None = None, timeout: float | None = None) -> dict[str, Any]:
    """Send ``method path`` to the endpoint ``name`` and answer ``{"status", "headers", "body",
    "truncated"}``. ``body``: a string is sent as text, anything else as JSON; None sends none."""
    method = _check_method(method)
    _check_path(path)
    record, status = manager.get(name)  # not_found for an unknown name
    if record.desired == "stopped" or status.get("state") == "stopped":
        raise MLXError("conflict", f"endpoint {name} is stopped: deploy it again to try it")
    payload, content_type = _encode(body)
    headers = {"Accept": "application/json, text/plain;q=0.9, */*;q=0.8"}
    if content_type:
        headers["Content-Type"] = content_type
    if token:
        headers["Authorization"] = f"Bearer {token.strip()}"
    host = loopback_address(record.host)
    limit = timeout if timeout is not None else record.timeout + EXTRA_SECONDS
    connection = http.client.HTTPConnection(host, record.port, timeout=limit)
    try:
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        raw = response.read(MAX_RESPONSE_BYTES + 1)
        answer_headers = dict(response.getheaders())
    except TimeoutError:
        raise EndpointUnreachable(f"endpoint {name} did not answer within {limit:g} s") from None
    except (OSError, http.client.HTTPException) as exc:
        reason = str(exc) or type(exc).__name__
        raise EndpointUnreachable(f"endpoint {name} did not answer at {record.url}: {reason}") from None
    finally:
        connection.close()
    return {
        "status": response.status,
        "headers": answer_headers,
        "body": raw[:MAX_RESPONSE_BYTES].decode("utf-8", errors="replace"),
        "truncated": len(raw) > MAX_RESPONSE_BYTES,
    }


def loopback_address(host: str) -> str:
    """Where this machine reaches a server listening on ``host``."""
    return _LOOPBACK.get(host, host)


def _check_method(method: str) -> str:
    upper = (method or "").upper()
    if upper not in METHODS:
        raise MLXError("invalid_request", f"method must be one of {', '.join(METHODS)}, not {method!r}")
    return upper


def _check_path(path: str) -> None:
    """A path on the endpoint (``/predict``, ``/items/3?x=1``): never another host."""
    if not path.startswith("/") or path.startswith("//"):
        raise MLXError("invalid_request", f"the path must start with a single '/', like /predict: not {path!r}")
    if any(char.isspace() or ord(char) < 32 or ord(char) == 127 for char in path):
        raise MLXError("invalid_request", "the path must not contain spaces or control characters")


def _encode(body: Any) -> tuple[bytes | None, str | None]:
    if body is None:
        return None, None
    if isinstance(body, str):
        return body.encode(), "text/plain; charset=utf-8"
    return json.dumps(body).encode(), "application/json"
