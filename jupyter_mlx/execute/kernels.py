"""Where a run's kernel comes from: started on demand, or pre-started in a pool.

Every run gets a fresh kernel (a reused one carries state). A ``KernelPool`` starts them
ahead of need, in the background, so a run does not wait for a kernel to boot. Kernels talk
over IPC sockets in a private folder each: no TCP port can collide between parallel runs.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .deadlines import Deadline, deadlines

log = logging.getLogger(__name__)

KERNEL_ARGUMENTS = ["--HistoryManager.hist_file=:memory:"]


def run_sync(coroutine_function: Any) -> Any:
    from jupyter_core.utils import run_sync as _run_sync

    return _run_sync(coroutine_function)


@dataclass
class KernelLease:
    """A started kernel lent to one run; ``release`` disposes of it (never reused)."""

    km: Any
    chdir: str | None = None  # folder the kernel must change to before the notebook runs
    started_at: float = field(default_factory=time.time)
    local: bool = False  # a local jupyter_client kernel: the runner's quick ready check applies
    remote_folder: bool = False  # a remote kernel: it makes and collects the run's folder itself

    @property
    def warm(self) -> dict[str, Any] | None:
        """What a forked kernel started with: ``modules`` preloaded, ``left_out`` (with why), or
        ``cold`` (why it was not forked); None for a kernel not forked."""
        return getattr(self.km, "warm", None)

    def release(self) -> None:
        shutdown_in_background(self.km)


class KernelProvider(ABC):
    """Hands out fresh, started kernels."""

    @abstractmethod
    def acquire(self, kernel_name: str, cwd: Path, startup_timeout: float, preload: tuple[str, ...] = ()) -> KernelLease:
        """A started kernel of ``kernel_name`` that will run in ``cwd``; ``preload``: modules the
        notebook imports, which a local forked kernel may start with (see ``preload.py``)."""

    def prepare(self, kernel_name: str, expected_runs: int, preload: tuple[str, ...] = ()) -> None:
        """A hint: this many runs of ``kernel_name`` (importing ``preload``) are coming."""

    def close(self) -> None:
        """Shut down every kernel not lent out."""


_contexts: dict[bool, Any] = {}
_contexts_lock = threading.Lock()


def shared_zmq_context(asynchronous: bool = True) -> Any:
    """One zmq context per process (async or blocking) for every local kernel and client.

    jupyter_client makes a context per manager and per client; each starts an I/O thread and
    is destroyed after the run, so a long-lived server would start and end threads by the
    thousand, fragmenting the allocator's arenas (memory creeping up with every sweep).
    """
    with _contexts_lock:
        context = _contexts.get(asynchronous)
        if context is None or context.closed:
            import zmq
            import zmq.asyncio

            context = _contexts[asynchronous] = zmq.asyncio.Context() if asynchronous else zmq.Context()
        return context


def _forget_zmq_contexts_after_fork() -> None:
    """A zmq context must not be used across a fork: the child makes its own."""
    global _contexts_lock
    _contexts.clear()
    _contexts_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_zmq_contexts_after_fork)


def start_local_kernel(
    kernel_name: str, cwd: Path | str, startup_timeout: float, fork: bool = False, preload: tuple[str, ...] = ()
) -> Any:
    """Start a local kernel in ``cwd`` on private IPC sockets.

    ``fork``: fork it from a zygote that has ipykernel (and ``preload``) imported already, which
    saves most of a kernel start's CPU (see ``zygote.py``).
    """
    from jupyter_client.manager import AsyncKernelManager

    manager_class: Any = AsyncKernelManager
    if fork:
        from .forked import forked_kernel_manager_class

        manager_class = forked_kernel_manager_class()
    sockets = tempfile.mkdtemp(prefix="mlx-kernel-")
    km = manager_class(
        kernel_name=kernel_name,
        context=shared_zmq_context(),
        transport="ipc",
        ip=os.path.join(sockets, "kernel"),
        connection_file=os.path.join(sockets, "connection.json"),
    )
    if fork:
        km.preload = tuple(preload)
    try:
        run_sync(km.start_kernel)(cwd=str(cwd), extra_arguments=KERNEL_ARGUMENTS)
    except BaseException:
        shutil.rmtree(sockets, ignore_errors=True)
        raise
    return km


def wait_until_ready(km: Any, timeout: float) -> None:
    """Block until the kernel answers a ``kernel_info`` request (it has booted)."""
    from jupyter_client.blocking import BlockingKernelClient

    kc = BlockingKernelClient(**km.get_connection_info(session=True), connection_file=km.connection_file,
                              parent=km, context=shared_zmq_context(asynchronous=False))
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=timeout)
    finally:
        kc.stop_channels()


class FreshKernels(KernelProvider):
    """A new kernel started for each run, in the run's folder (nothing kept warm)."""

    def acquire(self, kernel_name: str, cwd: Path, startup_timeout: float, preload: tuple[str, ...] = ()) -> KernelLease:
        return KernelLease(start_local_kernel(kernel_name, cwd, startup_timeout), local=True)


class WarmKernels(KernelProvider):
    """Kernels booted ahead of need, at most ``size`` per kernel name, refilled as runs take them.

    How many are kept warm: as many as the runs announced with ``prepare`` still need (up to
    ``size``); with ``keep_warm`` (a server), at least one per kernel (and module set) that a run
    used in the last ``idle_timeout`` seconds; warm kernels idle that long are disposed of. Subclasses say how a kernel boots (``_boot``, which
    returns it ready) and how it is disposed of (``_dispose``); each kernel is lent once.
    """

    def __init__(self, size: int, startup_timeout: float, idle_timeout: float, keep_warm: bool) -> None:
        self.size = max(0, size)
        self.startup_timeout = startup_timeout
        self.idle_timeout = idle_timeout
        self.keep_warm = keep_warm
        self._lock = threading.Condition()
        self._ready: dict[str, deque[Any]] = {}
        self._starting: dict[str, int] = {}
        self._demand: dict[str, int] = {}  # announced runs that have not taken a kernel yet
        self._last_use: dict[str, float] = {}
        self._closed = False
        self._reaper: Deadline | None = None
        # boots run on persistent threads: a new thread per boot fragments the allocator's arenas
        self._booters: ThreadPoolExecutor | None = None

    def _boot(self, kernel_name: str) -> Any:
        """Start a kernel and return it once it answers (in a background thread)."""
        raise NotImplementedError

    def _dispose(self, km: Any) -> None:
        """Get rid of a kernel without waiting."""
        raise NotImplementedError

    def _boot_failed(self, kernel_name: str, exc: Exception) -> None:
        log.warning("could not pre-start a %s kernel: %s", kernel_name, exc)

    # -- public ----------------------------------------------------------------------------
    def prepare(self, kernel_name: str, expected_runs: int) -> None:
        with self._lock:
            self._demand[kernel_name] = self._demand.get(kernel_name, 0) + max(0, expected_runs)
            self._last_use[kernel_name] = time.monotonic()
            self._fill(kernel_name)

    def warm(self, kernel_name: str) -> int:
        """How many kernels of ``kernel_name`` are ready now."""
        with self._lock:
            return len(self._ready.get(kernel_name, ()))

    def _take(self, kernel_name: str, startup_timeout: float) -> Any | None:
        """A warm kernel (waiting for one already booting), or None: the caller starts one."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the kernel pool is closed")
            self._last_use[kernel_name] = time.monotonic()
            ready = self._ready.setdefault(kernel_name, deque())
            deadline = time.monotonic() + startup_timeout
            # a kernel already booting will be ready sooner than a new one would be
            while not ready and self._starting.get(kernel_name) and not self._closed:
                if not self._lock.wait(max(0.0, deadline - time.monotonic())):
                    break
            km = ready.popleft() if ready else None
            self._demand[kernel_name] = max(0, self._demand.get(kernel_name, 0) - 1)
            self._fill(kernel_name)
        return km

    def _close_pool(self) -> list[Any]:
        """Stop refilling; returns the warm kernels, for the caller to dispose of."""
        with self._lock:
            self._closed = True
            kernels = [km for ready in self._ready.values() for km in ready]
            self._ready.clear()
            if self._reaper is not None:
                self._reaper.cancel()
            if self._booters is not None:
                self._booters.shutdown(wait=False)
            self._lock.notify_all()
        return kernels

    # -- internals -------------------------------------------------------------------------
    def _target(self, kernel_name: str) -> int:  # with the lock held
        """The runs announced (up to ``size``); with ``keep_warm``, at least one kernel for a key
        used within ``idle_timeout``: the notebook a user is iterating on starts its next run at once."""
        demand = min(self.size, self._demand.get(kernel_name, 0))
        recent = time.monotonic() - self._last_use.get(kernel_name, -1e9) < self.idle_timeout
        if self.keep_warm and recent:
            return max(demand, min(self.size, 1))
        return demand

    def _fill(self, kernel_name: str) -> None:  # with the lock held
        if self._closed:
            return
        missing = (
            self._target(kernel_name)
            - len(self._ready.get(kernel_name, ()))
            - self._starting.get(kernel_name, 0)
        )
        for _ in range(max(0, missing)):
            self._starting[kernel_name] = self._starting.get(kernel_name, 0) + 1
            self._spawn(self._start_one, kernel_name, name="mlx-kernel-prestart")
        self._schedule_reaper()

    def _spawn(self, target: Any, *args: Any, name: str) -> Any:  # with the lock held
        if self._booters is None:
            self._booters = ThreadPoolExecutor(max(1, self.size), thread_name_prefix=name)
        return self._booters.submit(target, *args)

    def _start_one(self, kernel_name: str) -> None:
        km = None
        try:
            km = self._boot(kernel_name)
        except Exception as exc:
            if not self._closed:
                self._boot_failed(kernel_name, exc)
        with self._lock:
            self._starting[kernel_name] -= 1
            if km is not None and (self._closed or len(self._ready.get(kernel_name, ())) >= self._target(kernel_name)):
                self._dispose(km)  # no longer wanted (closed, or its module set let go while it booted)
            elif km is not None:
                self._ready.setdefault(kernel_name, deque()).append(km)
            self._lock.notify_all()

    def _schedule_reaper(self) -> None:  # with the lock held
        if self._reaper is None and self.idle_timeout > 0 and not self._closed:
            self._reaper = deadlines.call_later(min(self.idle_timeout, 60.0), self._reap)

    def _reap(self) -> None:
        now = time.monotonic()
        idle: list[Any] = []
        with self._lock:
            self._reaper = None
            for name, last in list(self._last_use.items()):
                if now - last >= self.idle_timeout:
                    self._demand[name] = 0
                    idle.extend(self._ready.pop(name, ()))
            if any(self._ready.values()) or any(self._starting.values()):
                self._schedule_reaper()
        for km in idle:
            self._dispose(km)


class KernelPool(WarmKernels):
    """Local kernels started ahead of need (see ``WarmKernels``).

    They boot in a neutral folder; a run's kernel changes to the run's folder before the
    notebook's first cell (one silent request, about 10 ms). With ``fork``, they are forked from
    a zygote that has ipykernel (and ``preload``) imported already.
    """

    def __init__(
        self,
        size: int,
        startup_timeout: float = 60.0,
        idle_timeout: float = 600.0,
        keep_warm: bool = False,
        fork: bool = False,
        preload: tuple[str, ...] = (),
    ) -> None:
        super().__init__(size, startup_timeout, idle_timeout, keep_warm)
        self.fork = fork
        self.preload = tuple(preload)
        self._folder = tempfile.gettempdir()  # neutral, and never removed under a booting kernel

    def prepare(self, kernel_name: str, expected_runs: int, preload: tuple[str, ...] = ()) -> None:
        super().prepare(self._key(kernel_name, preload), expected_runs)

    def warm(self, kernel_name: str, preload: tuple[str, ...] = ()) -> int:
        return super().warm(self._key(kernel_name, preload))

    def acquire(self, kernel_name: str, cwd: Path, startup_timeout: float, preload: tuple[str, ...] = ()) -> KernelLease:
        key = self._key(kernel_name, preload)
        km = self._take(key, startup_timeout)
        if km is None or not _alive(km):
            if km is not None:
                shutdown_in_background(km)
            # nothing warm: start one for this run, in its folder
            km = start_local_kernel(kernel_name, cwd, startup_timeout, self.fork, key[1])
            return KernelLease(km, local=True)
        return KernelLease(km, chdir=str(cwd), local=True)

    def follow(self, kernel_name: str, used: tuple[str, ...], following: tuple[str, ...]) -> None:
        """With ``keep_warm``: a notebook whose run used the module set ``used`` will next start
        with ``following`` (what that run taught). The kernel kept ready is then one of those, and
        the set just used is let go (its ready kernels now, its zygote once its kernels have ended),
        unless runs announced for it are still coming."""
        old, new = self._key(kernel_name, used), self._key(kernel_name, following)
        if old == new or not self.keep_warm or not self.size:
            return
        with self._lock:
            if self._closed or self._demand.get(old):
                return
            self._last_use[new] = time.monotonic()
            self._fill(new)
            self._last_use.pop(old, None)
            idle = list(self._ready.pop(old, ()))
        for km in idle:
            self._dispose(km)
        if self.fork:
            from .forked import Zygote

            Zygote.expire(old[1])

    def _key(self, kernel_name: str, preload: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
        """Kernels are pooled by kernel name and the modules they start with (the configured
        ``preload_modules`` and the notebook's)."""
        return kernel_name, tuple(dict.fromkeys((*self.preload, *preload))) if self.fork else ()

    def _reap(self) -> None:
        super()._reap()
        if self.fork:  # zygotes for module sets no run asked for lately
            from .forked import Zygote

            Zygote.retire_idle(self.idle_timeout)

    def close(self) -> None:
        for km in self._close_pool():
            shutdown_in_background(km)
        if self.fork:
            from .forked import Zygote

            Zygote.close_all()

    def _boot(self, key: tuple[str, tuple[str, ...]]) -> Any:
        kernel_name, preload = key
        km = None
        try:
            km = start_local_kernel(kernel_name, self._folder, self.startup_timeout, self.fork, preload)
            wait_until_ready(km, self.startup_timeout)
            return km
        except Exception:
            if km is not None:
                shutdown_in_background(km)
            raise
        finally:
            _close_thread_event_loop()

    def _dispose(self, km: Any) -> None:
        shutdown_in_background(km)


def _alive(km: Any) -> bool:
    try:
        return bool(run_sync(km.is_alive)())
    except Exception:
        return False


_shutdowns: set[Future[None]] = set()
_shutdowns_lock = threading.Lock()
_shutdown_workers: ThreadPoolExecutor | None = None
SHUTDOWN_WORKERS = 4


def shutdown_in_background(km: Any) -> None:
    """Shut a kernel down now, off the critical path (a graceful shutdown costs ~0.5 s).

    Shutdowns run on a few persistent threads: a new thread each would fragment the
    allocator's per-thread arenas, and a long-lived server's memory would creep up.
    """
    global _shutdown_workers

    def shutdown() -> None:
        try:
            run_sync(km.shutdown_kernel)(now=True)
        except Exception:
            log.debug("kernel shutdown failed", exc_info=True)
        finally:
            connection_file = getattr(km, "connection_file", "")
            if connection_file and os.path.basename(os.path.dirname(connection_file)).startswith("mlx-kernel-"):
                shutil.rmtree(os.path.dirname(connection_file), ignore_errors=True)
            _close_thread_event_loop()

    with _shutdowns_lock:
        if _shutdown_workers is None:
            _shutdown_workers = ThreadPoolExecutor(SHUTDOWN_WORKERS, thread_name_prefix="mlx-kernel-shutdown")
        future = _shutdown_workers.submit(shutdown)
        _shutdowns.add(future)
    future.add_done_callback(_forget_shutdown)


def _forget_shutdown(future: Future[None]) -> None:
    with _shutdowns_lock:
        _shutdowns.discard(future)


def _close_thread_event_loop() -> None:
    """Close the loop jupyter_core's ``run_sync`` made for this thread (else it warns at exit)."""
    import asyncio

    try:
        asyncio.get_event_loop_policy().get_event_loop().close()
    except RuntimeError:
        pass


def _forget_shutdown_workers_after_fork() -> None:
    """A forked child has none of its parent's threads: it starts its own workers when needed."""
    global _shutdown_workers, _shutdowns_lock
    _shutdown_workers = None
    _shutdowns_lock = threading.Lock()  # a parent's thread may have held it at the fork
    _shutdowns.clear()


os.register_at_fork(after_in_child=_forget_shutdown_workers_after_fork)


def wait_for_kernel_shutdowns(timeout: float = 10.0) -> None:
    """Wait for pending kernel shutdowns, those queued meanwhile included (before a process exits)."""
    from concurrent.futures import wait

    deadline = time.monotonic() + timeout
    while True:
        with _shutdowns_lock:
            pending = set(_shutdowns)
        remaining = deadline - time.monotonic()
        if not pending or remaining <= 0:
            return
        wait(pending, remaining)
