from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from notebooks import write_failing, write_tiny  # noqa: E402

pytest_plugins = ("process_leaks",)  # no test may leave a process running

PER_TEST_VARIABLES = {"PYTEST_CURRENT_TEST"}  # pytest's own, set for each test phase
SHARED_SCOPES = ("module", "class", "package")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (scripts/test: ``--dist loadscope --no-loadscope-reorder``, a module's
    tests on one worker, so its module-scoped servers and clusters are made once): the order in
    which the workers get the modules. The largest first, so both workers finish at about the
    same time: the Binder install, then the browser tests (a JupyterLab and a Chromium each), then
    the modules whose tests share a module-scoped fixture, the others last. Without xdist: file order.
    """
    if not hasattr(config, "workerinput"):
        return

    def rank(item: pytest.Item) -> int:
        if item.nodeid.startswith("tests/test_binder.py::"):
            return 0
        if item.get_closest_marker("browser"):
            return 1
        return 2 if _shares_a_fixture(item) else 3

    module_rank: dict[str, int] = {}
    for item in items:
        module = item.nodeid.split("::", 1)[0]
        module_rank[module] = min(module_rank.get(module, 3), rank(item))
    items.sort(key=lambda item: module_rank[item.nodeid.split("::", 1)[0]])  # stable: file order within


def _shares_a_fixture(item: pytest.Item) -> bool:
    """Whether the test uses a fixture made once for several tests (other than this file's own guard)."""
    definitions = getattr(item, "_fixtureinfo", None)
    if definitions is None:
        return False
    return any(
        definition.scope in SHARED_SCOPES and name != "_environment_left_as_found"
        for name, chain in definitions.name2fixturedefs.items()
        for definition in chain
    )


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C as a terminal gives it: a background job of a non-interactive shell starts with SIGINT
    ignored, and every kernel, server and CLI the tests start (and the tests that interrupt one)
    would inherit that. (pytest-xdist's workers run this too.)"""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="module", autouse=True)
def _environment_left_as_found() -> Iterator[None]:
    """A test module leaves ``os.environ``, ``sys.modules["__main__"]`` and the signal mask and stop
    handlers as it found them: the modules after it (in any order under pytest-xdist) start kernels,
    servers and processes that inherit them. A change is undone, and fails the module."""
    before = {key: value for key, value in os.environ.items() if key not in PER_TEST_VARIABLES}
    main = sys.modules["__main__"]
    signals = _signal_state()
    yield
    changed_signals = _signal_state()
    if changed_signals != signals:  # inherited by every process started after: Ctrl-C would not reach them
        signal.pthread_sigmask(signal.SIG_SETMASK, signals[0])
        for number, handler in zip(STOP_SIGNALS, signals[1:]):
            signal.signal(number, handler)
        pytest.fail(f"this module changed the signal mask or handlers of the pytest process: {changed_signals} "
                    f"(mask, SIGINT, SIGTERM, SIGHUP) -> back to {signals}", pytrace=False)
    if sys.modules["__main__"] is not main:  # an in-process IPython shell makes its namespace __main__
        sys.modules["__main__"] = main
        pytest.fail("this module replaced sys.modules['__main__'] (multiprocessing's spawn needs the real one; "
                    "undone)", pytrace=False)
    after = {key: value for key, value in os.environ.items() if key not in PER_TEST_VARIABLES}
    if after != before:
        changed = sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))
        for key in changed:
            if key in before:
                os.environ[key] = before[key]
            else:
                del os.environ[key]
        pytest.fail(f"this module changed the environment of the pytest process: {', '.join(changed)} (undone)",
                    pytrace=False)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _signal_state() -> tuple[Any, ...]:
    """The blocked signals and the stop signals' handlers of this thread."""
    return (signal.pthread_sigmask(signal.SIG_BLOCK, []), *(signal.getsignal(n) for n in STOP_SIGNALS))


@pytest.fixture(scope="module")
def in_process_ipython() -> Iterator[None]:
    """For a module that uses IPython's shell in this process (the magic, ``format_display_data``): the
    shell makes its namespace ``sys.modules["__main__"]``; afterwards the singleton goes and the real
    ``__main__`` comes back, as multiprocessing's spawn in later modules needs it."""
    from IPython.core.interactiveshell import InteractiveShell

    main = sys.modules["__main__"]
    yield
    InteractiveShell.clear_instance()
    sys.modules["__main__"] = main


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """A private PostgreSQL server for this test process (started on first use, stopped at the end):
    ``postgres.database()`` is the URL of a fresh database (see tests/postgres.py)."""
    from postgres import postgres_server

    with postgres_server() as server:
        yield server


STORE_BACKENDS = ("sqlite", "postgresql")


def store_url(backend: str, folder: Path, request: pytest.FixtureRequest) -> str:
    """A fresh, empty run index on ``backend``: a SQLite file in ``folder``, or a new PostgreSQL database."""
    if backend == "postgresql":
        return request.getfixturevalue("postgres").database()
    return f"sqlite:///{folder / 'runs.sqlite'}"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh project folder with a tiny and a failing notebook."""
    root = tmp_path / "project"
    write_tiny(root / "tiny.ipynb")
    write_failing(root / "nb" / "failing.ipynb")
    return root


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Run folders left by the processes the tests killed on purpose (a killed CLI's runs): a user's
    next run of that project removes them; the tests' projects have no next run, so they go here.
    A folder whose owner still runs (a lock held: a server outside the tests) stays."""
    import tempfile

    from jupyter_mlx.workdir.folders import remove_stale

    base = Path(tempfile.gettempdir()) / f"jupyter_mlx-runs-{os.getuid()}"
    if base.is_dir():
        for project in base.iterdir():
            remove_stale(project)
            try:
                project.rmdir()
            except OSError:
                pass
