"""The session-end check that no test leaves a process (process_leaks.py), proven on small test
suites run by pytester in a pytest of their own, with and without pytest-xdist."""
from __future__ import annotations

import textwrap
from pathlib import Path

import psutil
import pytest

pytest_plugins = ("pytester",)

TESTS = Path(__file__).resolve().parent

LEAKY = """
import subprocess, sys
from pathlib import Path

def test_leaves_a_detached_sleeper():
    # detached as the endpoint supervisors are: re-parented to init, no longer pytest's child
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
    Path("pid").write_text(str(sleeper.pid))
"""

TIDY = """
import subprocess, sys

def test_stops_what_it_starts():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    process.terminate()
    process.wait()

def test_a_process_still_exiting_gets_the_grace_period():
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1)"], start_new_session=True)

def test_multiprocessing_helpers_live_as_long_as_pytest():
    import multiprocessing, multiprocessing.resource_tracker
    multiprocessing.get_context("spawn").Semaphore()  # starts the resource tracker, which exits with us
    assert multiprocessing.resource_tracker._resource_tracker._pid
"""

CRASHING_WORKER = LEAKY + """
def test_the_worker_dies():
    import os
    os._exit(3)
"""


def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, source: str, *args: str) -> pytest.RunResult:
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    pytester.makepyfile(test_suite=textwrap.dedent(source))
    return pytester.runpytest_subprocess(
        "-p", "process_leaks", "-p", "no:cacheprovider", "-o", "process_leak_grace=3", *args, timeout=120
    )


def leaked_pid(pytester: pytest.Pytester) -> int:
    return int((pytester.path / "pid").read_text())


def is_gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_test_that_leaves_a_process_fails_the_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, workers: list[str]
) -> None:
    result = run(pytester, monkeypatch, LEAKY, *workers)
    pid = leaked_pid(pytester)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, errors=1)
    output = result.stdout.str()
    assert "1 process(es) started by the tests outlived them (now killed)" in output
    assert f"pid {pid} (started during test_suite.py::test_leaves_a_detached_sleeper (call))" in output
    assert "time.sleep(300)" in output  # its command line
    assert is_gone(pid), "the check kills what it finds"


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_tidy_tests_pass(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, workers: list[str]) -> None:
    result = run(pytester, monkeypatch, TIDY, *workers)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.assert_outcomes(passed=3)
    assert "outlived" not in result.stdout.str()


def test_the_controller_finds_what_a_crashed_worker_left(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(pytester, monkeypatch, CRASHING_WORKER, "-n", "1")
    pid = leaked_pid(pytester)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    output = result.stdout.str()
    assert "process leaks" in output  # the controller's section of the summary
    assert f"pid {pid} (started during test_suite.py::test_leaves_a_detached_sleeper (call))" in output
    assert is_gone(pid)
