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
