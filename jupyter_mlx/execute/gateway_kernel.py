"""The jupyter_server gateway kernel manager and client, fixed for papermill runs.

``MLXGatewayKernelManager`` *is* a ``jupyter_server.gateway.managers.GatewayKernelManager`` (and
its client a ``GatewayKernelClient``), on one ``GatewayConnection``: every method of theirs that
reads jupyter_server's ``GatewayClient`` singleton is replaced. What the stock classes get wrong
for this use is listed, with where each is fixed, in ``gateway.py``'s docstring.

Importing jupyter_server costs seconds: ``gateway.py`` imports this module only when a gateway
kernel is first needed.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import threading
import time
import urllib.parse
from queue import Empty
from typing import Any

import websocket
from jupyter_client.jsonutil import json_default
from jupyter_client.session import Session
from jupyter_server._tz import utcnow
from jupyter_server.gateway.managers import ChannelQueue, GatewayKernelClient, GatewayKernelManager
from jupyter_server.services.kernels.kernelmanager import ServerKernelManager
from nbclient.exceptions import DeadKernelError

from .gateway_connection import GatewayConnection, GatewayHTTPError, GatewayUnreachable

log = logging.getLogger(__name__)

_MODEL_CHECK_INTERVAL = 3.0  # seconds between two "does the kernel still exist" requests
_GONE_GRACE = 0.5  # seconds is_alive() stays true after a death is known (see _async_is_alive)
_POLL_MIN, _POLL_MAX = 0.001, 0.02  # seconds between two looks at an empty channel queue


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

class GatewayChannel(ChannelQueue):
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
            queue = GatewayChannel(name, self.channel_socket, self.log, self.parent)
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


def _decode(raw: str | bytes) -> dict[str, Any]:
    if isinstance(raw, str):
        return json.loads(raw)
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):  # a message with binary buffers
        from jupyter_server.services.kernels.connection.base import deserialize_binary_message

        return deserialize_binary_message(raw)


def new_kernel_manager(connection: GatewayConnection, kernel_name: str = "python3") -> MLXGatewayKernelManager:
    return MLXGatewayKernelManager(connection, kernel_name=kernel_name)


async def wait_ready(km: Any, timeout: float) -> None:
    kc = km.client()
    await kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=timeout)
    finally:
        kc.stop_channels()
