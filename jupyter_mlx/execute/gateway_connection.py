"""How to reach a Jupyter Kernel Gateway or Enterprise Gateway: its URL, token and timeouts.

Every request and websocket of the gateway backend goes through a ``GatewayConnection``;
jupyter_server's ``GatewayClient`` singleton is never read or created, so a Jupyter server in the
same process keeps its own kernels, and two executors may use two gateways. Light to import.
"""
from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from ..errors import MLXError

_CHECK_TIMEOUT = 5.0  # seconds for check(): a quick yes or no


class GatewayHTTPError(Exception):
    """The gateway answered with an HTTP error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class GatewayUnreachable(Exception):
    """No HTTP answer from the gateway (refused, timed out, unknown host, TLS failure)."""


class GatewayConnection:
    """How to reach one gateway: URL, token and timeouts. Thread-safe; no global state."""

    def __init__(
        self,
        url: str,
        auth_token: str = "",
        request_timeout: float = 20.0,
        auth_scheme: str = "token",
    ) -> None:
        self.url = url.strip().rstrip("/")
        self.auth_token = auth_token
        self.request_timeout = request_timeout
        scheme, _, rest = self.url.partition("://")
        self.ws_url = ("wss" if scheme.lower() == "https" else "ws") + "://" + rest
        self.headers = {"Authorization": f"{auth_scheme} {auth_token}"} if auth_token else {}

    def request(self, method: str, path: str, body: Any = None, timeout: float | None = None) -> Any:
        """``method`` ``path`` (e.g. ``/api/kernels``); the decoded JSON answer, or None."""
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = dict(self.headers)
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.request_timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            raise GatewayHTTPError(exc.code, _error_text(exc)) from None
        except (urllib.error.URLError, OSError) as exc:  # refused, timeout, DNS, TLS
            reason = getattr(exc, "reason", exc)
            raise GatewayUnreachable(str(reason) or type(exc).__name__) from None
        if not payload:
            return None
        try:
            return json.loads(payload)
        except ValueError:
            raise GatewayHTTPError(200, f"{method} {path} did not answer JSON") from None

    async def arequest(self, method: str, path: str, body: Any = None, timeout: float | None = None) -> Any:
        """``request`` without blocking the event loop."""
        return await asyncio.to_thread(self.request, method, path, body, timeout)

    def open_websocket(self, kernel_id: str, session_id: str, connect_timeout: float) -> Any:
        """The kernel's channels websocket, authenticated (pitfall 1), with no receive timeout
        once connected (pitfall 2: a cell may stay silent for hours)."""
        import websocket

        query = urllib.parse.urlencode({"session_id": session_id})
        url = f"{self.ws_url}/api/kernels/{urllib.parse.quote(kernel_id)}/channels?{query}"
        try:
            ws = websocket.create_connection(
                url, header=dict(self.headers), timeout=connect_timeout, enable_multithread=True
            )
        except websocket.WebSocketBadStatusException as exc:
            raise GatewayHTTPError(exc.status_code, f"websocket refused: {exc}") from None
        except (websocket.WebSocketException, OSError) as exc:
            raise GatewayUnreachable(str(exc) or type(exc).__name__) from None
        ws.settimeout(None)
        return ws

    def check(self) -> None:
        """Raise ``MLXError("backend_unavailable")`` unless the gateway answers and takes the token."""
        if not self.url.lower().startswith(("http://", "https://")):
            raise MLXError(
                "backend_unavailable",
                f"the gateway URL {self.url!r} is not an http:// or https:// URL: fix the gateway URL",
            )
        try:
            answer = self.request("GET", "/api/kernelspecs", timeout=min(_CHECK_TIMEOUT, self.request_timeout))
        except GatewayUnreachable as exc:
            raise MLXError(
                "backend_unavailable",
                f"cannot reach the kernel gateway at {self.url} ({exc}): start the gateway or fix its URL",
            ) from None
        except GatewayHTTPError as exc:
            if exc.status in (401, 403):
                what = "no auth token was sent" if not self.auth_token else "the auth token was refused"
                raise MLXError(
                    "backend_unavailable",
                    f"the kernel gateway at {self.url} answered HTTP {exc.status}: {what}; "
                    "set the gateway's auth token",
                ) from None
            raise MLXError(
                "backend_unavailable",
                f"{self.url} answered HTTP {exc.status} to GET /api/kernelspecs: "
                "is it a Jupyter Kernel Gateway or Enterprise Gateway URL?",
            ) from None
        if not isinstance(answer, dict) or not isinstance(answer.get("kernelspecs"), dict):
            raise MLXError(
                "backend_unavailable",
                f"{self.url} does not list kernelspecs at /api/kernelspecs: "
                "is it a Jupyter Kernel Gateway or Enterprise Gateway URL?",
            )

    def list_kernel_ids(self) -> list[str]:
        """Ids of every kernel on the gateway (needs ``list_kernels`` enabled on a Kernel Gateway)."""
        return [kernel["id"] for kernel in self.request("GET", "/api/kernels") or []]


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read() or b"{}")
    except (ValueError, OSError):
        body = {}
    if not isinstance(body, dict):
        body = {}
    detail = body.get("message") or body.get("reason") or ""
    traceback = [line for line in str(body.get("traceback") or "").splitlines() if line.strip()]
    if traceback:  # a gateway's 500 carries the server-side exception on its last line
        detail = f"{detail} ({traceback[-1].strip()})" if detail else traceback[-1].strip()
    return f"HTTP {exc.code} {exc.reason}" + (f": {detail}" if detail else "")
