"""A tiny HTTP server on 127.0.0.1, in a thread, that records every connection and request.

It stands in for a Kernel Gateway (or any address a request names) to see what jupyter_mlx
sends there: how many connections, and each request's method, path and headers.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class RecordingListener:
    """``with RecordingListener(status=401) as listener:`` ... ``listener.requests``.

    Answers every request with ``status`` and ``answer`` (JSON); ``kernelspecs`` (names) makes
    ``GET /api/kernelspecs`` answer 200 with those kernelspecs, as a gateway does. ``hang_up``:
    count each connection and close it at once (a client of another protocol fails fast).
    """

    def __init__(self, status: int = 401, answer: Any = None, kernelspecs: list[str] | None = None,
                 hang_up: bool = False) -> None:
        self.status = status
        self.hang_up = hang_up
        self.answer = answer if answer is not None else {"message": "recorded"}
        self.kernelspecs = kernelspecs
        self.connections = 0
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._lock = threading.Lock()
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                with listener._lock:
                    listener.requests.append((self.command, self.path, dict(self.headers)))
                status, answer = listener.status, listener.answer
                if self.path == "/api/kernelspecs" and listener.kernelspecs is not None:
                    status = 200
                    answer = {"default": listener.kernelspecs[0],
                              "kernelspecs": {name: {"name": name, "spec": {}} for name in listener.kernelspecs}}
                body = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

            def log_message(self, *args: Any) -> None:  # quiet
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def verify_request(self, request: Any, client_address: Any) -> bool:
                with listener._lock:
                    listener.connections += 1
                return not listener.hang_up

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.address = f"tcp://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def authorizations(self) -> list[str | None]:
        """The ``Authorization`` header of each request received (None: none sent)."""
        with self._lock:
            return [headers.get("Authorization") for _, _, headers in self.requests]

    def __enter__(self) -> "RecordingListener":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)
