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


class Zygote:
    """One zygote process per interpreter, started on first use and restarted if it died."""

    _instances: dict[tuple[str, tuple[str, ...]], Zygote] = {}
    _instances_lock = threading.Lock()

    def __init__(self, python: str, preload: tuple[str, ...]) -> None:
        self.python = python
        self.preload = preload
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None

    @classmethod
    def for_interpreter(cls, python: str, preload: tuple[str, ...] = ()) -> Zygote:
        with cls._instances_lock:
            key = (python, preload)
            if key not in cls._instances:
                cls._instances[key] = cls(python, preload)
            return cls._instances[key]

    def fork(self, argv: list[str], cwd: str, env: dict[str, str]) -> int:
        """The pid of a new kernel process running ``ipykernel_launcher argv`` in ``cwd``."""
        request = json.dumps({"argv": argv, "cwd": cwd, "env": env}) + "\n"
        with self._lock:
            process = self._ensure_started()
            assert process.stdin is not None and process.stdout is not None
            process.stdin.write(request)
            process.stdin.flush()
            answer = json.loads(process.stdout.readline() or "{}")
        if "pid" not in answer:
            raise RuntimeError(f"the kernel zygote could not fork: {answer.get('error', 'it exited')}")
        return int(answer["pid"])

    def _ensure_started(self) -> subprocess.Popen[str]:
        if self._process is not None and self._process.poll() is None:
            return self._process
        argv = [self.python, "-m", "jupyter_mlx.execute.zygote"]
        if self.preload:
            argv += ["--preload", ",".join(self.preload)]
        process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,  # Ctrl-C in the terminal reaches the parent, not the zygote
            cwd="/",
        )
        assert process.stdout is not None
        ready = _readline_with_timeout(process, _ZYGOTE_START_TIMEOUT)
        if "ready" not in ready:
            process.kill()
            raise RuntimeError("the kernel zygote did not start")
        self._process = process
        return process

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

            async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
                python = zygote_python(kernel_cmd)
                if python is None or sys.platform == "win32":
                    return await super()._async_launch_kernel(kernel_cmd, **kw)
                try:
                    pid = Zygote.for_interpreter(python, self.preload).fork(
                        kernel_cmd[3:], str(kw.get("cwd") or os.getcwd()), dict(kw.get("env") or os.environ)
                    )
                except Exception as exc:  # never worse than without: start it the usual way
                    log.warning("forking a kernel failed (%s); starting it the usual way", exc)
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
