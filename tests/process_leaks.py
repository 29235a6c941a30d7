"""No test may leave a process running: a pytest plugin that fails the run when one does.

Every process the tests start inherits the environment variable ``JUPYTER_MLX_TEST_SESSION``,
which names this session (and, under pytest-xdist, the worker): a scan of every process's
environment finds them all, also the ones started with ``start_new_session=True`` and re-parented
to init, which a walk of pytest's children would miss. At the end of the session (of each xdist
worker, and again in the controller once the workers are gone) the processes still carrying the
name get a short grace period to exit; then each leftover is listed (pid, the test that started it,
from the ``PYTEST_CURRENT_TEST`` it inherited, and its command line), killed, and the run fails.

Loaded by ``tests/conftest.py``; ``-p process_leaks`` loads it in any pytest run. The grace period
is the ini option ``process_leak_grace`` (seconds).
"""
from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psutil
import pytest

ENV = "JUPYTER_MLX_TEST_SESSION"
DEFAULT_GRACE = 10.0  # kernels and servers stopped by a test may still be shutting down in the background
KILL_WAIT = 5.0


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "process_leak_grace",
        "seconds the processes started by the tests get to exit at the end of the session",
        default=str(DEFAULT_GRACE),
    )


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(ProcessLeakCheck(config), "process_leak_check")


@pytest.fixture(scope="session", autouse=True)
def no_process_left(request: pytest.FixtureRequest) -> Iterator[None]:
    """Torn down after every other fixture: fails if a process this session (worker) started is alive."""
    yield
    check: ProcessLeakCheck = request.config.pluginmanager.get_plugin("process_leak_check")
    leftovers = check.find_leftovers(exclude={os.getpid(), *process_helpers()})
    if leftovers:
        pytest.fail(report(leftovers), pytrace=False)


class ProcessLeakCheck:
    """The check of one pytest session: of one xdist worker, or of the controller (or the only process)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.grace = float(config.getini("process_leak_grace"))
        self.token = uuid.uuid4().hex[:16]
        self.previous = os.environ.get(ENV)
        # every process started from now on inherits the name (an outer session's, e.g. pytester's, stays)
        os.environ[ENV] = f"{self.previous} {self.token}" if self.previous else self.token
        self.worker_pids: set[int] = set()
        self.leftovers: list[Leftover] = []

    def pytest_unconfigure(self) -> None:
        if self.previous is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = self.previous

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """(xdist controller) A worker's pid: it may still be exiting when the controller looks."""
        pid = getattr(node, "workeroutput", {}).get("process_leaks_pid")
        if pid:
            self.worker_pids.add(pid)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if hasattr(self.config, "workerinput"):
            self.config.workeroutput["process_leaks_pid"] = os.getpid()  # type: ignore[attr-defined]
            return
        # the controller (or a run without xdist), the workers gone: what a crashed worker left behind
        self.leftovers = self.find_leftovers(exclude={os.getpid(), *process_helpers(), *self.worker_pids})
        if self.leftovers:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.leftovers:
            terminalreporter.section("process leaks", red=True)
            terminalreporter.line(report(self.leftovers), red=True)

    def find_leftovers(self, exclude: set[int]) -> list[Leftover]:
        """Wait for this session's processes to exit; kill, and answer, those that do not."""
        leftovers = wait_for_leftovers(self.token, exclude, self.grace)
        kill([leftover.process for leftover in leftovers])
        return leftovers


@dataclass(frozen=True)
class Leftover:
    """A process the tests started that is still alive."""

    process: psutil.Process
    command: str
    test: str  # the PYTEST_CURRENT_TEST it inherited: "tests/test_x.py::test_y (call)"

    def describe(self) -> str:
        started = f"started during {self.test}" if self.test else "started outside any test"
        return f"pid {self.process.pid} ({started}): {self.command}"


def process_helpers() -> set[int]:
    """multiprocessing's resource tracker and fork server: they live as long as this process, by design."""
    import multiprocessing.forkserver
    import multiprocessing.resource_tracker

    pids = {
        getattr(multiprocessing.resource_tracker._resource_tracker, "_pid", None),
        getattr(multiprocessing.forkserver._forkserver, "_forkserver_pid", None),
    }
    return {pid for pid in pids if pid}


def carrying(token: str, exclude: set[int]) -> list[tuple[psutil.Process, dict[str, str]]]:
    """The live processes whose environment names ``token``, with their environment (other users'
    processes are unreadable: not ours)."""
    found = []
    for process in psutil.process_iter():
        if process.pid in exclude:
            continue
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                continue
            environment = process.environ()
        except (psutil.Error, OSError):
            continue
        if token in environment.get(ENV, "").split():
            found.append((process, environment))
    return found


def wait_for_leftovers(token: str, exclude: set[int], seconds: float) -> list[Leftover]:
    """The processes still carrying ``token`` after up to ``seconds`` of waiting for them to exit."""
    deadline = time.monotonic() + seconds
    found = carrying(token, exclude)
    while found and time.monotonic() < deadline:
        psutil.wait_procs([process for process, _ in found], timeout=min(0.5, max(0.0, deadline - time.monotonic())))
        found = carrying(token, exclude)
    leftovers = []
    for process, environment in found:
        try:
            command = " ".join(process.cmdline()) or process.name()
        except psutil.Error:
            continue  # it exited just now
        leftovers.append(Leftover(process, command[:300], environment.get("PYTEST_CURRENT_TEST", "")))
    return leftovers


def report(leftovers: list[Leftover]) -> str:
    lines = [f"{len(leftovers)} process(es) started by the tests outlived them (now killed):"]
    lines += [f"  {leftover.describe()}" for leftover in sorted(leftovers, key=lambda leftover: leftover.process.pid)]
    return "\n".join(lines)


def kill(processes: list[psutil.Process]) -> None:
    """Terminate, then kill what is still alive after a few seconds (psutil checks that a pid was
    not reused by another process since the scan)."""
    for process in processes:
        try:
            process.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(processes, timeout=KILL_WAIT)
    for process in alive:
        try:
            process.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=KILL_WAIT)
