from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from notebooks import write_failing, write_tiny  # noqa: E402

pytest_plugins = ("process_leaks",)  # no test may leave a process running

PER_TEST_VARIABLES = {"PYTEST_CURRENT_TEST"}  # pytest's own, set for each test phase
SHARED_SCOPES = ("module", "class", "package")
BROWSER_GROUP = "browser"


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With ``--dist loadgroup`` (scripts/test): which tests share an xdist worker, and the order
    in which the workers get them.

    - the browser tests are one group: each starts a JupyterLab and a Chromium, and two at once
      on two cores starve each other (and wait for timers and animation frames);
    - a module whose tests share a module-scoped fixture (a server, a cluster, recorded runs, the
      Binder install) is one group, so the fixture is made once;
    - the other tests go one by one to whichever worker is free.

    The largest units first (the browser group, then the Binder install, the other modules, the
    single tests last), so both workers finish at about the same time.
    """
    if getattr(config.option, "dist", "no") != "loadgroup":
        return
    rank = {}
    for item in items:
        module = item.nodeid.split("::", 1)[0]
        if item.get_closest_marker("browser"):
            group, order = BROWSER_GROUP, 0
        elif module.endswith("test_binder.py"):
            group, order = module, 1
        elif _shares_a_fixture(item):
            group, order = module, 2
        else:
            group, order = None, 3
        if group is not None and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(group))
        rank[item.nodeid] = order
    items.sort(key=lambda item: rank[item.nodeid])  # stable: in file order within each rank


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


@pytest.fixture(scope="module", autouse=True)
def _environment_left_as_found() -> Iterator[None]:
    """A test module leaves ``os.environ`` as it found it: the modules after it (in any order under
    pytest-xdist) start kernels and servers that inherit it. A change is undone, and fails the module."""
    before = {key: value for key, value in os.environ.items() if key not in PER_TEST_VARIABLES}
    yield
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


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh project folder with a tiny and a failing notebook."""
    root = tmp_path / "project"
    write_tiny(root / "tiny.ipynb")
    write_failing(root / "nb" / "failing.ipynb")
    return root
