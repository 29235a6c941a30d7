"""The gateway backend: runs execute on kernels of a Jupyter Kernel Gateway or Enterprise Gateway.

``GatewayExecutor(url, auth_token)`` runs each notebook with papermill, here, on a fresh kernel
of the gateway: the kernel is started (``POST /api/kernels``) ahead of need, talked to over the
gateway's websocket, interrupted through ``POST /api/kernels/<id>/interrupt`` and deleted
(``DELETE /api/kernels/<id>``) as soon as its run ends, and on ``close()``.

Configuration is per executor: ``GatewayConnection`` holds the URL, token and timeouts, and
every request and websocket of this backend goes through it. jupyter_server's
``GatewayClient`` singleton is never read or created, so a Jupyter server in the same process
keeps its own kernels local (or on its own gateway), and two executors may use two gateways.
The kernel manager still *is* a ``jupyter_server.gateway.managers.GatewayKernelManager`` (and
its client a ``GatewayKernelClient``), with every method that reads the singleton replaced.
Those classes are built on first use (importing jupyter_server costs seconds), see
``kernel_manager_class()``.

What a remote kernel sees:

* its working directory is the gateway's own: the project's files are not there, so the run's
  folder is not sent (no ``KERNEL_WORKING_DIR``: on Enterprise Gateway a folder that does not
  exist on the gateway fails the kernel's launch) and the lease has no ``chdir``. Notebooks read
  their data from somewhere both sides reach (a URL, object storage, a shared mount);
* its environment is the gateway's, plus the ``KERNEL_*`` variables of this process (as
  jupyter_server's gateway client sends them) and ``KERNEL_LAUNCH_TIMEOUT``; nothing else
  crosses over;
* metrics travel inside the notebook's outputs (``log_metric`` displays them), so they work as
  locally, provided ``jupyter_mlx`` is importable by the gateway's kernels.

A gateway restarts a kernel that dies, so the client would wait forever for a reply that never
comes. The gateway announces the restart on the websocket (an iopub status ``restarting`` or
``dead``); this backend turns that, a websocket that closes, or a kernel gone from the gateway
(checked every few seconds) into ``DeadKernelError`` with a message saying what happened, so the
run fails as it would on a local kernel that died. Cell and run timeouts of the task still apply.

What the stock ``GatewayKernelManager`` / ``GatewayKernelClient`` get wrong for this use, and
where it is fixed (RECIPES, "Kernel Gateway"):

1. websocket opened without the auth header -> ``GatewayConnection.open_websocket`` sends it;
2. the connect timeout also applies to receiving -> cleared once connected (``settimeout(None)``);
3. ``is_alive()`` asserts on a provisioner -> ``_async_is_alive`` asks no provisioner;
4. ``start_kernel`` ignores the kernel name -> ``start`` posts ``kernel_name``;
5. the channel queue busy-waits -> ``_Channel._async_get`` sleeps 1-20 ms between looks;
6. a dead kernel is restarted, nbclient never sees it die -> restart detection, above;
7. only ``KERNEL_*`` variables reach the kernel, cwd is the gateway's -> documented above;
8. a kernel outlives its client -> ``DELETE`` after each run, on ``close()``, and on a kill;
9. ``POST /api/kernels`` answers before the kernel is ready -> pre-started kernels are waited
   for (``kernel_info``) before a run gets them.

Also: messages name their channel (the gateway would route control messages to shell), each
client has its own session id (no replay of the previous client's buffered output), and a
``DELETE`` refused while the gateway restarts a kernel is retried.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import MLXError
from .executor import CancelToken, Executor
from .kernels import KernelLease, WarmKernels
from .runner import ProgressCallback, RunResult, RunTask, execute_run

log = logging.getLogger(__name__)

_CHECK_TIMEOUT = 5.0  # seconds for check(): a quick yes or no
_MODEL_CHECK_INTERVAL = 3.0  # seconds between two "does the kernel still exist" requests
_GONE_GRACE = 0.5  # seconds is_alive() stays true after a death is known (see _async_is_alive)
_POLL_MIN, _POLL_MAX = 0.001, 0.02  # seconds between two looks at an empty channel queue


# -- talking to the gateway -------------------------------------------------------------------
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


# -- the jupyter_server subclasses, built on first use ----------------------------------------
_classes: tuple[type, type] | None = None
_classes_lock = threading.Lock()


def kernel_manager_class() -> type:
    """``MLXGatewayKernelManager``: a ``GatewayKernelManager`` on one ``GatewayConnection``."""
    return _build_classes()[0]


def kernel_client_class() -> type:
    """``MLXGatewayKernelClient``: a ``GatewayKernelClient`` fixed for papermill runs."""
    return _build_classes()[1]


def _build_classes() -> tuple[type, type]:
    global _classes
    with _classes_lock:
        if _classes is None:
            _classes = _define_classes()
        return _classes


def _define_classes() -> tuple[type, type]:  # noqa: C901 (one place for every jupyter_server fix)
    from queue import Empty

    import websocket
    from jupyter_client.jsonutil import json_default
    from jupyter_client.session import Session
    from jupyter_server._tz import utcnow
    from jupyter_server.gateway.managers import ChannelQueue, GatewayKernelClient, GatewayKernelManager
    from jupyter_server.services.kernels.kernelmanager import ServerKernelManager
    from nbclient.exceptions import DeadKernelError

    class MLXGatewayKernelManager(GatewayKernelManager):
        """One kernel on a gateway, reached through ``connection`` (not the GatewayClient singleton).

        Overrides every method of ``GatewayKernelManager`` that reads ``GatewayClient.instance()``;
        also: the kernel name is honoured (pitfall 4), ``_async_is_alive`` needs no provisioner
        (pitfall 3) and says no once the kernel is known dead or restarted (pitfall 6), a kill
        (``signal_kernel(9)``) deletes the kernel on the gateway.
        """

        def __init__(self, connection: GatewayConnection, kernel_name: str = "python3", **kwargs: Any) -> None:
            # GatewayKernelManager.__init__ only reads the singleton: skip it, do its work here
            ServerKernelManager.__init__(self, kernel_name=kernel_name, **kwargs)
            self.connection = connection
            self.kernels_url = connection.url + "/api/kernels"
            self.kernel_url = ""
            self.kernel = self.kernel_id = None
            self.execution_state = "starting"
            self.last_activity = utcnow()
            self.gone_reason = ""  # why the kernel can no longer run code; "" while it can
            self._gone_at = 0.0
            self._checked_at = time.monotonic()
            self._deleted = False
            self._delete_lock = threading.Lock()
            self.launch_timeout = 60.0

        # -- the path of this kernel on the gateway --------------------------------------------
        @property
        def _path(self) -> str:
            return "/api/kernels/" + urllib.parse.quote(str(self.kernel_id))

        def mark_gone(self, reason: str) -> None:
            """From now on the kernel cannot answer; waiting clients fail with ``reason``."""
            if not self.gone_reason:
                self._gone_at = time.monotonic()
                self.gone_reason = reason
                log.debug("gateway kernel %s: %s", self.kernel_id, reason)

        # -- synchronous operations (threads of the pool call these directly) -------------------
        def start(self, kernel_name: str = "", launch_timeout: float = 60.0) -> None:
            """``POST /api/kernels``; the gateway may answer before the kernel is ready (pitfall 9)."""
            from jupyter_client.kernelspec import NoSuchKernel

            name = kernel_name or self.kernel_name or "python3"
            env = {k: v for k, v in os.environ.items() if k.startswith("KERNEL_")}
            env["KERNEL_LAUNCH_TIMEOUT"] = str(int(launch_timeout))
            try:
                model = self.connection.request(
                    "POST", "/api/kernels", {"name": name, "env": env}, timeout=max(launch_timeout, 1.0)
                )
            except GatewayHTTPError as exc:
                if exc.status == 404 or "NoSuchKernel" in str(exc) or not self._has_kernelspec(name):
                    raise NoSuchKernel(name) from None
                raise GatewayHTTPError(
                    exc.status, f"the kernel gateway at {self.connection.url} could not start a {name} kernel: {exc}"
                ) from None
            except GatewayUnreachable as exc:
                raise GatewayUnreachable(f"cannot reach the kernel gateway at {self.connection.url}: {exc}") from None
            self.kernel_name = name
            self.launch_timeout = launch_timeout
            self.kernel = model
            self.kernel_id = model["id"]
            self.kernel_url = self.kernels_url + "/" + urllib.parse.quote(str(self.kernel_id))
            self.execution_state = model.get("execution_state", "starting")
            self._checked_at = time.monotonic()

        def _has_kernelspec(self, name: str) -> bool:
            try:
                return name in (self.connection.request("GET", "/api/kernelspecs") or {}).get("kernelspecs", {})
            except (GatewayHTTPError, GatewayUnreachable, AttributeError):
                return True  # cannot tell: report the original error

        def delete(self) -> None:
            """``DELETE /api/kernels/<id>`` (pitfall 8); a kernel already gone is fine."""
            with self._delete_lock:  # a release and close() may both ask
                if self.kernel_id is None or self._deleted:
                    return
                self.mark_gone("the kernel was shut down")
                for pause in (0.5, 1.0, 2.0, None):
                    try:
                        self.connection.request("DELETE", self._path)
                    except GatewayHTTPError as exc:
                        if exc.status == 404:
                            break
                        # a kernel the gateway is restarting answers 500 for a moment
                        if exc.status < 500 or pause is None:
                            raise
                    except GatewayUnreachable:
                        if pause is None:
                            raise
                    else:
                        break
                    time.sleep(pause)
                self._deleted = True

        def interrupt(self) -> None:
            if self.kernel_id is not None and not self.gone_reason:
                self.connection.request("POST", self._path + "/interrupt", {})

        def exists(self) -> bool:
            """Whether the gateway still has this kernel, not dead (one GET)."""
            if self.kernel_id is None or self.gone_reason:
                return False
            try:
                self.refresh_model_sync()
            except (GatewayUnreachable, GatewayHTTPError):
                return False
            return not self.gone_reason

        def refresh_model_sync(self) -> dict[str, Any] | None:
            try:
                model = self.connection.request("GET", self._path)
            except GatewayHTTPError as exc:
                if exc.status != 404:
                    raise
                self.mark_gone("the kernel no longer exists on the gateway (deleted or culled)")
                return None
            if isinstance(model, dict):
                self.kernel = model
                self.execution_state = model.get("execution_state", self.execution_state)
                if self.execution_state == "dead":
                    self.mark_gone("the gateway reports the kernel dead")
            return model

        # -- the KernelManager interface (async, as nbclient and the runner's run_sync expect) ---
        @property
        def has_kernel(self) -> bool:
            return self.kernel_id is not None and not self._deleted

        async def start_kernel(self, **kwargs: Any) -> None:
            await asyncio.to_thread(
                self.start, kwargs.get("kernel_name") or self.kernel_name, float(kwargs.get("launch_timeout", 60.0))
            )

        async def refresh_model(self, model: Any = None) -> Any:
            if model is None:
                return await asyncio.to_thread(self.refresh_model_sync)
            self.kernel = model
            return model

        async def shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
            await asyncio.to_thread(self.delete)

        async def restart_kernel(self, **kwargs: Any) -> None:
            raise NotImplementedError("runs never restart a kernel: each run gets a fresh one")

        async def interrupt_kernel(self) -> None:
            await asyncio.to_thread(self.interrupt)

        async def signal_kernel(self, signum: int) -> None:
            """SIGINT interrupts; any other signal (the watchdog's kill) deletes the kernel."""
            if signum == signal.SIGINT:
                await self.interrupt_kernel()
            else:
                self.mark_gone("the kernel was killed")
                await self.shutdown_kernel(now=True)

        async def _async_is_alive(self) -> bool:
            if self.kernel_id is None or self._deleted:
                return False
            if self.gone_reason:
                # a waiting channel raises DeadKernelError(gone_reason) within _POLL_MAX: let it,
                # rather than nbclient's own poll with its bare "Kernel died"
                return time.monotonic() - self._gone_at < _GONE_GRACE
            if time.monotonic() - self._checked_at >= _MODEL_CHECK_INTERVAL:
                self._checked_at = time.monotonic()
                try:
                    await asyncio.to_thread(self.refresh_model_sync)
                except (GatewayUnreachable, GatewayHTTPError):
                    pass  # a hiccup; a gateway really gone closes the websocket too
            return True

        is_alive = _async_is_alive
        _async_interrupt_kernel = interrupt_kernel
        _async_signal_kernel = signal_kernel
        _async_shutdown_kernel = shutdown_kernel
        _async_start_kernel = start_kernel

        def client(self, **kwargs: Any) -> Any:
            # a session id of its own: the gateway buffers a disconnected session's output and
            # replays it to the next client with the same id (the pre-start's chatter, here)
            kw: dict[str, Any] = {"parent": self, "session": Session(), "kernel_id": self.kernel_id}
            kw.update(kwargs)
            return MLXGatewayKernelClient(**kw)

        def cleanup_resources(self, restart: bool = False) -> None:
            pass

    class _Channel(ChannelQueue):
        """A channel's queue: waits without busy-looping (pitfall 5), fails fast when the kernel is
        gone, and tells the gateway which channel a message is for."""

        def __init__(self, name: str, channel_socket: Any, logger: Any, km: Any) -> None:
            super().__init__(name, channel_socket, logger)
            self.km = km
            self.closed = False  # the client stopped its channels

        async def _async_get(self, timeout: float | None = None) -> Any:
            deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
            delay = _POLL_MIN
            while True:
                try:
                    return self.get(block=False)
                except Empty:
                    pass
                if self.closed:
                    # a reader left behind by nbclient (e.g. the output poll of a timed-out cell),
                    # woken when the thread's loop runs again: end it quietly
                    raise asyncio.CancelledError
                if self.km.gone_reason:
                    raise DeadKernelError(self.km.gone_reason)
                if self.response_router_finished:
                    self.km.mark_gone(f"the websocket to the kernel gateway at {self.km.connection.url} closed")
                    continue
                if deadline is not None and time.monotonic() >= deadline:
                    raise Empty
                pause = delay if deadline is None else min(delay, max(0.0, deadline - time.monotonic()))
                await asyncio.sleep(pause)
                delay = min(delay * 2, _POLL_MAX)

        def send(self, msg: dict[str, Any]) -> None:
            # without "channel" the gateway logs a warning and assumes shell, even for control
            msg = {**msg, "channel": self.channel_name}
            self.channel_socket.send(json.dumps(msg, default=json_default).replace("</", "<\\/"))

        def is_beating(self) -> bool:  # the hb channel
            return self.is_alive()

        def stop(self) -> None:  # drop what nobody read (e.g. the output of an interrupted cell)
            while not self.empty():
                self.get_nowait()

    class MLXGatewayKernelClient(GatewayKernelClient):
        """A ``GatewayKernelClient`` on its manager's ``GatewayConnection``: an authenticated
        websocket without receive timeout, queues without busy-wait, restart detection."""

        async def start_channels(
            self, shell: bool = True, iopub: bool = True, stdin: bool = True, hb: bool = True, control: bool = True
        ) -> None:
            km = self.parent
            # a Kernel Gateway completes the handshake once the kernel is up: allow for a boot
            handshake_timeout = max(km.connection.request_timeout, km.launch_timeout)
            self.channel_socket = await asyncio.to_thread(
                km.connection.open_websocket, self.kernel_id, self.session.session, handshake_timeout
            )
            self._channels_stopped = False
            self._channel_queues = {}
            # KernelClient.start_channels creates and starts the queues (GatewayKernelClient's
            # would open a second websocket from the singleton's settings)
            super(GatewayKernelClient, self).start_channels(
                shell=shell, iopub=iopub, stdin=stdin, hb=hb, control=control
            )
            self.response_router = threading.Thread(
                target=self._route_responses, name="mlx-gateway-ws", daemon=True
            )
            self.response_router.start()

        def stop_channels(self) -> None:
            if self.channel_socket is None:
                return
            for queue in list((self._channel_queues or {}).values()):
                queue.closed = True
                queue.stop()
            self._channels_stopped = True
            try:  # a close frame, then wake the router at once (close() may wait 3 s for an echo)
                self.channel_socket.send_close()
            except Exception:
                pass
            self.channel_socket.abort()
            if self.response_router is not None:
                self.response_router.join(5)
            self.channel_socket.shutdown()
            self._channel_queues = None

        def _queue(self, name: str) -> Any:
            attribute = f"_{name}_channel"
            queue = getattr(self, attribute, None)
            if queue is None:
                queue = _Channel(name, self.channel_socket, self.log, self.parent)
                setattr(self, attribute, queue)
                if self._channel_queues is not None:
                    self._channel_queues[name] = queue
            return queue

        shell_channel = property(lambda self: self._queue("shell"))
        iopub_channel = property(lambda self: self._queue("iopub"))
        stdin_channel = property(lambda self: self._queue("stdin"))
        hb_channel = property(lambda self: self._queue("hb"))
        control_channel = property(lambda self: self._queue("control"))

        def _route_responses(self) -> None:
            """Read the websocket and route messages to their queues; a kernel restart or a closed
            websocket marks the kernel gone (pitfall 6)."""
            km = self.parent
            try:
                while not self._channels_stopped:
                    raw = self.channel_socket.recv()
                    if not raw:
                        break
                    msg = _decode(raw)
                    channel = msg.get("channel")
                    if channel == "iopub" and msg.get("msg_type") == "status":
                        state = (msg.get("content") or {}).get("execution_state")
                        if state in ("restarting", "autorestarting"):
                            km.mark_gone(
                                "the kernel died and the gateway restarted it: the run's state is lost"
                            )
                        elif state == "dead":
                            km.mark_gone("the kernel died and the gateway could not restart it")
                    queues = self._channel_queues
                    if queues and channel in queues:
                        queues[channel].put_nowait(msg)
            except (websocket.WebSocketConnectionClosedException, OSError):
                pass
            except Exception as exc:
                if not self._channels_stopped:
                    log.warning("gateway websocket of kernel %s failed: %s", self.kernel_id, exc)
            if not self._channels_stopped:
                km.mark_gone(f"the websocket to the kernel gateway at {km.connection.url} closed")
            for queue in list((self._channel_queues or {}).values()):
                queue.response_router_finished = True

    return MLXGatewayKernelManager, MLXGatewayKernelClient


def _decode(raw: str | bytes) -> dict[str, Any]:
    if isinstance(raw, str):
        return json.loads(raw)
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):  # a message with binary buffers
        from jupyter_server.services.kernels.connection.base import deserialize_binary_message

        return deserialize_binary_message(raw)


def new_kernel_manager(connection: GatewayConnection, kernel_name: str = "python3") -> Any:
    return kernel_manager_class()(connection, kernel_name=kernel_name)


async def _wait_ready(km: Any, timeout: float) -> None:
    kc = km.client()
    await kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=timeout)
    finally:
        kc.stop_channels()


# -- kernels ahead of need ---------------------------------------------------------------------
@dataclass
class GatewayLease(KernelLease):
    """A gateway kernel lent to one run; ``release`` deletes it on the gateway (in background)."""

    provider: "GatewayKernels | None" = field(default=None, repr=False)

    def release(self) -> None:
        if self.provider is not None:
            self.provider.dispose(self.km)
        else:
            threading.Thread(target=self.km.delete, name="mlx-gateway-delete", daemon=True).start()


class GatewayKernels(WarmKernels):
    """Gateway kernels started ahead of need (see ``WarmKernels``), each waited for until it
    answers (pitfall 9), lent to one run and deleted after it (never reused); warm kernels idle
    for ``idle_timeout`` are deleted (a gateway is shared). Every kernel started here and not yet
    deleted is tracked: ``close()`` deletes them all, warm, lent out or still booting.
    """

    def __init__(
        self,
        connection: GatewayConnection,
        size: int,
        startup_timeout: float = 60.0,
        idle_timeout: float = 600.0,
        keep_warm: bool = False,
    ) -> None:
        super().__init__(size, startup_timeout, idle_timeout, keep_warm)
        self.connection = connection
        self._owned: set[Any] = set()  # started here, not yet deleted
        self._posting = 0  # POST /api/kernels in flight
        self._threads: list[threading.Thread] = []

    # -- public ----------------------------------------------------------------------------
    def acquire(self, kernel_name: str, cwd: Path, startup_timeout: float) -> KernelLease:
        """A kernel of ``kernel_name`` (``cwd`` is not used: a remote kernel runs in the gateway's
        folder, so the lease has no ``chdir``)."""
        km = self._take(kernel_name, startup_timeout)
        if km is not None and not km.exists():  # culled or died while warm
            self.dispose(km)
            km = None
        if km is None:  # nothing warm: start one for this run (nbclient waits until it is ready)
            km = self._start(kernel_name, startup_timeout)
        return GatewayLease(km, chdir=None, provider=self)

    def kernel_ids(self) -> set[str]:
        """Ids of the kernels this provider started and has not deleted yet."""
        with self._lock:
            return {km.kernel_id for km in self._owned}

    def dispose(self, km: Any) -> None:
        """Delete ``km`` on the gateway, in background."""
        self._spawn(self._delete, km, name="mlx-gateway-delete")

    _dispose = dispose

    def close(self) -> None:
        """Delete every kernel this provider started; returns once the gateway has deleted them
        (bounded by the request timeout)."""
        self._close_pool()
        with self._lock:
            deadline = time.monotonic() + self.connection.request_timeout
            while self._posting and time.monotonic() < deadline:  # a kernel being created
                self._lock.wait(max(0.0, deadline - time.monotonic()))
            kernels = list(self._owned)
        deleters = [self._spawn(self._delete, km, name="mlx-gateway-delete") for km in kernels]
        deadline = time.monotonic() + self.connection.request_timeout
        for thread in deleters + self._pending_threads():
            thread.join(max(0.0, deadline - time.monotonic()))

    # -- internals -------------------------------------------------------------------------
    def _boot(self, kernel_name: str) -> Any:
        km = None
        try:
            km = self._start(kernel_name, self.startup_timeout)
            asyncio.run(_wait_ready(km, self.startup_timeout))
            return km
        except Exception:
            if km is not None:
                self._delete(km)
            raise

    def _boot_failed(self, kernel_name: str, exc: Exception) -> None:
        from jupyter_client.kernelspec import NoSuchKernel

        if isinstance(exc, NoSuchKernel):  # do not keep asking for it
            with self._lock:
                self._demand[kernel_name] = 0
        log.warning("could not pre-start a %s kernel on %s: %s", kernel_name, self.connection.url, exc)

    def _start(self, kernel_name: str, launch_timeout: float) -> Any:
        """POST a new kernel; tracked from the moment the gateway has it."""
        km = new_kernel_manager(self.connection, kernel_name)
        with self._lock:
            if self._closed:
                raise RuntimeError("the gateway backend is closed")
            self._posting += 1
        try:
            km.start(kernel_name, launch_timeout)
        finally:
            with self._lock:
                self._posting -= 1
                if km.kernel_id is not None:
                    self._owned.add(km)
                closed = self._closed
                self._lock.notify_all()
        if closed:
            self._delete(km)
            raise RuntimeError("the gateway backend is closed")
        return km

    def _delete(self, km: Any) -> None:
        try:
            km.delete()
        except Exception as exc:
            log.warning("could not delete kernel %s on %s: %s", km.kernel_id, self.connection.url, exc)
            return
        with self._lock:
            self._owned.discard(km)

    def _spawn(self, target: Any, *args: Any, name: str) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        return thread

    def _pending_threads(self) -> list[threading.Thread]:
        with self._lock:
            return [t for t in self._threads if t.is_alive() and t is not threading.current_thread()]


# -- the backend ---------------------------------------------------------------------------------
class GatewayExecutor(Executor):
    """Runs on fresh kernels of a Jupyter Kernel Gateway / Enterprise Gateway at ``url``.

    ``concurrency`` runs at once, each on its own kernel; with ``prestart``, kernels for the runs
    announced by ``prepare`` are started ahead (up to ``concurrency``). ``request_timeout``
    bounds every HTTP request and the websocket handshake; ``startup_timeout`` a kernel's boot.
    """

    name = "gateway"

    def __init__(
        self,
        url: str,
        auth_token: str = "",
        concurrency: int = 2,
        startup_timeout: float = 60.0,
        request_timeout: float = 20.0,
        *,
        kernel_name: str = "python3",
        idle_timeout: float = 600.0,
        prestart: bool = True,
        keep_warm: bool = False,
    ) -> None:
        self.connection = GatewayConnection(url, auth_token, request_timeout)
        self._concurrency = max(1, concurrency)
        self.kernel_name = kernel_name
        self.kernels = GatewayKernels(
            self.connection,
            self._concurrency if prestart else 0,
            startup_timeout,
            idle_timeout,
            keep_warm and prestart,
        )

    @property
    def url(self) -> str:
        return self.connection.url

    @property
    def concurrency(self) -> int:
        return self._concurrency

    def check(self) -> None:
        self.connection.check()

    def kernel_names(self) -> list[str] | None:
        """The gateway's kernelspecs (``GET /api/kernelspecs``)."""
        try:
            return sorted((self.connection.request("GET", "/api/kernelspecs") or {})["kernelspecs"])
        except (GatewayHTTPError, GatewayUnreachable, KeyError, TypeError):
            return None  # check() says why the gateway cannot be used

    def prepare(self, expected_runs: int, kernel_name: str = "") -> None:
        self.kernels.prepare(kernel_name or self.kernel_name, expected_runs)

    def execute(self, task: RunTask, on_cell: ProgressCallback | None, cancel: CancelToken) -> RunResult:
        return execute_run(task, on_cell, kernels=self.kernels, cancel=cancel)

    def close(self) -> None:
        self.kernels.close()


def __getattr__(name: str) -> Any:  # the jupyter_server subclasses, by name, built on first use
    if name == "MLXGatewayKernelManager":
        return kernel_manager_class()
    if name == "MLXGatewayKernelClient":
        return kernel_client_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "GatewayConnection",
    "GatewayExecutor",
    "GatewayHTTPError",
    "GatewayKernels",
    "GatewayLease",
    "GatewayUnreachable",
    "kernel_client_class",
    "kernel_manager_class",
]
