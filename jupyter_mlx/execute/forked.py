"""Local kernels forked from a zygote (see ``zygote.py``) instead of started from scratch.

``ForkedKernelManager`` is a jupyter_client ``AsyncKernelManager`` whose launch asks the zygote of
the kernel's interpreter for a fork; everything else (connection files, IPC sockets, interrupt,
kill, shutdown) is jupyter_client's. Kernelspecs that are not ``python -m ipykernel_launcher``
start the usual way. If the zygote cannot be used, the kernel starts the usual way too.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

log = logging.getLogger(__name__)

_ZYGOTE_START_TIMEOUT = 60.0
IMPORT_TIMEOUT = 30.0  # seconds one preloaded module may take to import before it is refused


class _ForeignProcess:
    """The ``Popen`` surface jupyter_client's provisioner uses, for a process we did not spawn."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self.stdin = self.stdout = self.stderr = None

    def poll(self) -> int | None:
        if self.returncode is None and not _running(self.pid):
            self.returncode = -1
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0)
            time.sleep(0.02)
        return self.returncode or 0

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


def _running(pid: int) -> bool:
    """Alive and not a zombie (the zygote reaps its children promptly)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rsplit(b")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return state not in (b"Z", b"X")


# what modules read from the environment at import: kernels that differ in these need their own zygote
IMPORT_ENVIRONMENT = ("PYTHONHASHSEED", "PYTHONPATH", "MPLBACKEND", "MPLCONFIGDIR", "MATPLOTLIBRC", "OMP_NUM_THREADS",
                      "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_MAX_THREADS", "CUDA_VISIBLE_DEVICES")


class Zygote:
    """One zygote process per interpreter, module set and import-time environment, started on
    first use and restarted if it died; retired by ``retire_idle`` when unused."""

    _instances: dict[tuple[Any, ...], Zygote] = {}
    _instances_lock = threading.Lock()
    refused: dict[tuple[str, str], str] = {}  # (python, module) -> why it cannot be preloaded, learned once

    def __init__(self, python: str, preload: tuple[str, ...], environment: tuple[tuple[str, str], ...] = ()) -> None:
        self.python = python
        self.preload = preload
        self.environment = environment
        self.loaded: tuple[str, ...] = ()  # what the running zygote imported
        self.failed: dict[str, str] = {}
        self.baseline: frozenset[str] = frozenset()  # top-level modules any kernel starts with
        self.broken: str | None = None  # it could not start: kernels start cold, without retrying it
        self.last_used = time.monotonic()
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self._children: set[int] = set()  # the kernels it forked (they end with it: their parent)

    @classmethod
    def for_interpreter(cls, python: str, preload: tuple[str, ...] = (), env: dict[str, str] | None = None) -> Zygote:
        environment = tuple((name, (env or {})[name]) for name in IMPORT_ENVIRONMENT if name in (env or {}))
        with cls._instances_lock:
            key = (python, preload, environment)
            if key not in cls._instances:
                cls._instances[key] = cls(python, preload, environment)
            return cls._instances[key]

    @classmethod
    def retire_idle(cls, idle_seconds: float) -> int:
        """Stop the zygotes unused for ``idle_seconds`` whose kernels have all ended (a kernel ends
        with its zygote); how many."""
        now = time.monotonic()
        with cls._instances_lock:
            idle = [key for key, zygote in cls._instances.items()
                    if now - zygote.last_used >= idle_seconds and not zygote.has_kernels()]
            retired = [cls._instances.pop(key) for key in idle]
        for zygote in retired:
            zygote.close()
        return len(retired)

    @classmethod
    def expire(cls, preload: tuple[str, ...]) -> None:
        """The zygotes of that module set are no longer wanted: the next ``retire_idle`` stops them
        (once their kernels have ended)."""
        with cls._instances_lock:
            for zygote in cls._instances.values():
                if zygote.preload == preload:
                    zygote.last_used = float("-inf")

    def fork(self, argv: list[str], cwd: str, env: dict[str, str]) -> int:
        """The pid of a new kernel process running ``ipykernel_launcher argv`` in ``cwd``."""
        request = json.dumps({"argv": argv, "cwd": cwd, "env": env}) + "\n"
        self.last_used = time.monotonic()
        with self._lock:
            process = self._ensure_started()
            assert process.stdin is not None and process.stdout is not None
            process.stdin.write(request)
            process.stdin.flush()
            answer = json.loads(process.stdout.readline() or "{}")
        if "pid" not in answer:
            raise RuntimeError(f"the kernel zygote could not fork: {answer.get('error', 'it exited')}")
        with self._lock:
            self._children.add(int(answer["pid"]))
        return int(answer["pid"])

    def has_kernels(self) -> bool:
        """Whether a kernel it forked is still running."""
        with self._lock:
            self._children = {pid for pid in self._children if _running(pid)}
            return bool(self._children)

    def _ensure_started(self) -> subprocess.Popen[str]:
        if self._process is not None and self._process.poll() is None:
            return self._process
        if self.broken is not None:
            raise RuntimeError(self.broken)
        while True:  # a module refused: start again without it (each is refused once per interpreter)
            modules = [m for m in self.preload if (self.python, m) not in Zygote.refused]
            argv = [self.python, "-m", "jupyter_mlx.execute.zygote", "--import-timeout", str(IMPORT_TIMEOUT)]
            if modules:
                argv += ["--preload", ",".join(modules)]
            process = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                start_new_session=True,  # Ctrl-C in the terminal reaches the parent, not the zygote
                cwd="/",
                env={**os.environ, **dict(self.environment)},
            )
            assert process.stdout is not None
            ready = _readline_with_timeout(process, _ZYGOTE_START_TIMEOUT + IMPORT_TIMEOUT)
            if "ready" in ready:
                break
            process.kill()
            process.wait()
            if not ready.get("refused"):
                self.broken = (f"the kernel zygote preloading {', '.join(modules) or 'nothing'} did not start "
                               f"within {_ZYGOTE_START_TIMEOUT + IMPORT_TIMEOUT:g} s")
                raise RuntimeError(self.broken)
            for module, why in ready["refused"].items():
                log.info("not preloading %s: %s", module, why)
                Zygote.refused[(self.python, module)] = why
        self.loaded, self.failed = tuple(ready.get("loaded") or ()), dict(ready.get("failed") or {})
        self.baseline = frozenset(ready.get("baseline") or ())
        self._process = process
        return process

    def left_out(self) -> dict[str, str]:
        """The modules asked for that the running zygote has not imported, with why."""
        reasons = {m: Zygote.refused[(self.python, m)] for m in self.preload if (self.python, m) in Zygote.refused}
        reasons.update({m: f"its import failed: {error}" for m, error in self.failed.items()})
        return reasons

    def close(self) -> None:
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                assert self._process.stdin is not None
                self._process.stdin.close()  # the zygote ends at end of input
                try:
                    self._process.wait(5)
                except subprocess.TimeoutExpired:
                    self._process.kill()
            self._process = None

    @classmethod
    def close_all(cls) -> None:
        with cls._instances_lock:
            zygotes = list(cls._instances.values())
        for zygote in zygotes:
            zygote.close()


def _readline_with_timeout(process: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    result: dict[str, Any] = {}

    def read() -> None:
        assert process.stdout is not None
        line = process.stdout.readline()
        if line:
            result.update(json.loads(line))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    return result


def zygote_python(kernel_cmd: list[str]) -> str | None:
    """The interpreter of a ``python -m ipykernel_launcher ...`` command line, else None."""
    if len(kernel_cmd) >= 3 and kernel_cmd[1:3] == ["-m", "ipykernel_launcher"]:
        return kernel_cmd[0]
    return None


def forked_kernel_manager_class() -> type:
    """``AsyncKernelManager`` that forks kernels from a zygote (built lazily: imports cost)."""
    global _MANAGER_CLASS
    if _MANAGER_CLASS is None:
        from jupyter_client.manager import AsyncKernelManager

        class ForkedKernelManager(AsyncKernelManager):
            preload: tuple[str, ...] = ()
            warm: dict[str, Any] | None = None  # what the kernel started with: modules, and those left out
            baseline_modules: frozenset[str] = frozenset()  # what any kernel starts with (no preload)

            async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
                python = zygote_python(kernel_cmd)
                if python is None or not sys.platform.startswith("linux"):
                    # no fork (Windows), or one that frameworks do not survive (macOS: spawn semantics)
                    if python is not None:
                        self.warm = {"modules": [], "cold": f"kernels are not forked on {sys.platform}"}
                    return await super()._async_launch_kernel(kernel_cmd, **kw)
                env = dict(kw.get("env") or os.environ)
                try:
                    zygote = Zygote.for_interpreter(python, self.preload, env)
                    pid = zygote.fork(kernel_cmd[3:], str(kw.get("cwd") or os.getcwd()), env)
                    self.warm = {"modules": list(zygote.loaded), "left_out": zygote.left_out()}
                    self.baseline_modules = zygote.baseline
                except Exception as exc:  # never worse than without: start it the usual way
                    log.warning("forking a kernel failed (%s); starting it the usual way", exc)
                    self.warm = {"modules": [], "cold": str(exc)}
                    return await super()._async_launch_kernel(kernel_cmd, **kw)
                provisioner = self.provisioner
                assert provisioner is not None
                provisioner.process = _ForeignProcess(pid)
                provisioner.pid = pid
                provisioner.pgid = pid  # a session leader: its own process group
                provisioner.cwd = kw.get("cwd")
                self._reconcile_connection_info(provisioner.connection_info)

        _MANAGER_CLASS = ForkedKernelManager
    return _MANAGER_CLASS


_MANAGER_CLASS: type | None = None
