from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from notebooks import write_failing, write_tiny  # noqa: E402

pytest_plugins = ("process_leaks",)  # no test may leave a process running


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh project folder with a tiny and a failing notebook."""
    root = tmp_path / "project"
    write_tiny(root / "tiny.ipynb")
    write_failing(root / "nb" / "failing.ipynb")
    return root
