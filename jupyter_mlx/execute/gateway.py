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
its client a ``GatewayKernelClient``), with every method that reads the singleton replaced: see
``gateway_kernel.py``, imported when a gateway kernel is first needed (importing jupyter_server
costs seconds).

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
5. the channel queue busy-waits -> ``GatewayChannel._async_get`` sleeps 1-20 ms between looks;
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
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .executor import CancelToken, Executor
from .gateway_connection import GatewayConnection, GatewayHTTPError, GatewayUnreachable
from .kernels import KernelLease, WarmKernels
from .runner import ProgressCallback, RunResult, RunTask, execute_run

log = logging.getLogger(__name__)


def kernel_manager_class() -> type:
    """``MLXGatewayKernelManager``: a ``GatewayKernelManager`` on one ``GatewayConnection``."""
    from .gateway_kernel import MLXGatewayKernelManager

    return MLXGatewayKernelManager


def kernel_client_class() -> type:
    """``MLXGatewayKernelClient``: a ``GatewayKernelClient`` fixed for papermill runs."""
    from .gateway_kernel import MLXGatewayKernelClient

    return MLXGatewayKernelClient


def new_kernel_manager(connection: GatewayConnection, kernel_name: str = "python3") -> Any:
    from .gateway_kernel import new_kernel_manager

    return new_kernel_manager(connection, kernel_name)


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
    def acquire(self, kernel_name: str, cwd: Path, startup_timeout: float, preload: tuple[str, ...] = ()) -> KernelLease:
        """A kernel of ``kernel_name`` (``cwd`` is not used: a remote kernel runs in the gateway's
        folder, so the lease has no ``chdir``)."""
        km = self._take(kernel_name, startup_timeout)
        if km is not None and not km.exists():  # culled or died while warm
            self.dispose(km)
            km = None
        if km is None:  # nothing warm: start one for this run (nbclient waits until it is ready)
            km = self._start(kernel_name, startup_timeout)
        return GatewayLease(km, chdir=None, remote_folder=True, provider=self)

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
        from .gateway_kernel import wait_ready

        km = None
        try:
            km = self._start(kernel_name, self.startup_timeout)
            asyncio.run(wait_ready(km, self.startup_timeout))
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


def __getattr__(name: str) -> Any:  # the jupyter_server subclasses, by name, imported on first use
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
