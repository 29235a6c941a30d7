"""The comparison is data: no module of ``jupyter_mlx.diff`` imports a door (or the service).

Read from the source with ``ast``, so imports inside functions and under ``TYPE_CHECKING``
count too: a door that sneaks in lazily is still a dependency.
"""
from __future__ import annotations

import ast
from pathlib import Path

import jupyter_mlx

PACKAGE = Path(jupyter_mlx.__file__).parent
DOORS = ("widgets", "transport", "magic", "notebook_api", "cli", "server", "service")


def imported_modules(path: Path) -> set[str]:
    """Every ``jupyter_mlx`` module ``path`` imports, as an absolute dotted name."""
    package = ".".join(("jupyter_mlx", *path.parent.relative_to(PACKAGE).parts))
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)  # from .. import widgets
    return {name for name in found if name == "jupyter_mlx" or name.startswith("jupyter_mlx.")}


def test_imported_modules_resolves_relative_imports() -> None:
    probe = PACKAGE / "diff" / "sides.py"
    assert "jupyter_mlx.errors" in imported_modules(probe)  # from ..errors import MLXError


def test_the_diff_package_imports_no_door() -> None:
    offending = {}
    for path in sorted((PACKAGE / "diff").rglob("*.py")):
        doors = sorted(name for name in imported_modules(path)
                       if any(name == f"jupyter_mlx.{door}" or name.startswith(f"jupyter_mlx.{door}.") for door in DOORS))
        if doors:
            offending[str(path.relative_to(PACKAGE))] = doors
    assert offending == {}
