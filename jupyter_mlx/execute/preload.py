"""Which modules a notebook's kernels may start with already imported (a warm run).

The kernel zygote (``zygote.py``) imports them once; every kernel forked from it starts with them
imported, copy-on-write. A forked kernel must behave exactly as a cold one, so a module is left
out (the run starts without it, as it would cold) when importing it before the kernel exists could
change what the notebook computes or shows:

- it adapts to IPython or a notebook frontend at import (``tqdm.auto``, ``ipywidgets``,
  ``matplotlib_inline``, plotting libraries choosing a renderer): in the zygote there is no kernel;
- it starts threads, holds sockets or initialises a GPU at import (``torch``, ``tensorflow``, ``jax``,
  ``ray``, ``dask.distributed``...): a fork keeps none of its threads. The zygote also checks every
  import (``zygote.py``: threads, open files, time) and refuses what this list does not know;
- it is the project's own code (a module found in the project folder), which a run may be changing.

The modules come from the notebook's code cells (its ``import`` statements) and from what its
last run ended with (modules its own helpers imported, ``%run``...), remembered per notebook in
``.mlx/warm/``. Standard library modules are cheap to import and left to the kernel.
"""
from __future__ import annotations

import ast
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

# module prefix -> why it is never preloaded (checked before anything is imported)
DENYLIST: dict[str, str] = {
    **{name: "it adapts to the notebook frontend at import" for name in (
        "tqdm.auto", "tqdm.autonotebook", "tqdm.notebook", "ipywidgets", "matplotlib_inline", "ipympl", "plotly",
        "bokeh", "altair", "panel", "holoviews", "hvplot", "IPython", "ipykernel", "jupyter_mlx", "papermill",
        "scrapbook", "nbformat", "nbclient")},
    **{name: "it starts threads, opens sockets or initialises a GPU at import" for name in (
        "torch", "tensorflow", "keras", "jax", "jaxlib", "ray", "cupy", "pycuda", "numba.cuda", "dask.distributed",
        "distributed", "pyspark", "mxnet", "paddle", "wandb", "mlflow", "comet_ml", "neptune")},
}
MAX_MODULES = 64


def refusal(module: str) -> str | None:
    """Why ``module`` is never preloaded, or None."""
    for prefix, reason in DENYLIST.items():
        if module == prefix or module.startswith(prefix + "."):
            return reason
    return None


def imported_modules(cells: list[str]) -> list[str]:
    """The absolute modules the cells import, in order of first import (``from a.b import c``
    names ``a.b``); cells that do not parse (magics aside) are skipped."""
    found: dict[str, None] = {}
    for source in cells:
        lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
        try:
            tree = ast.parse("\n".join(lines))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    found.setdefault(alias.name)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.setdefault(node.module)
    return list(found)


def warm_modules(cells: list[str], project_root: Path | None = None,
                 learned: tuple[str, ...] | list[str] = ()) -> tuple[tuple[str, ...], dict[str, str]]:
    """(the modules to preload for these cells and the ``learned`` ones, the ones left out with
    why): third-party modules only, none on the denylist, none of the project's own."""
    chosen: list[str] = []
    left_out: dict[str, str] = {}
    for module in dict.fromkeys([*imported_modules(cells), *learned]):
        top = module.split(".")[0]
        if top in sys.stdlib_module_names or top == "__future__":
            continue
        reason = refusal(module)
        if reason is None and project_root is not None and _in_project(top, project_root):
            reason = "it is the project's own code"
        if reason is None and len(chosen) >= MAX_MODULES:
            reason = f"more than {MAX_MODULES} modules"
        if reason is None:
            chosen.append(module)
        else:
            left_out[module] = reason
    return tuple(chosen), left_out


def _in_project(top: str, root: Path) -> bool:
    """A module or package of that name in the project folder (it shadows an installed one)."""
    return (root / f"{top}.py").is_file() or (root / top / "__init__.py").is_file() or (root / top).is_dir() \
        and any((root / top).glob("*.py"))


def _learned_file(folder: Path, notebook: str) -> Path:
    return folder / f"{hashlib.sha256(notebook.encode()).hexdigest()[:24]}.json"


def learned_modules(folder: Path, notebook: str) -> list[str]:
    """The modules the notebook's last run ended with (``remember``), or none."""
    try:
        data = json.loads(_learned_file(folder, notebook).read_text())
    except (OSError, ValueError):
        return []
    modules = data.get("modules") if isinstance(data, dict) and data.get("notebook") == notebook else None
    return [m for m in modules if isinstance(m, str)] if isinstance(modules, list) else []


def remember(folder: Path, notebook: str, modules: list[str]) -> None:
    """Keep what a run of ``notebook`` ended with, for its next runs (written atomically)."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    with os.fdopen(fd, "w") as handle:
        json.dump({"notebook": notebook, "modules": sorted(modules)[:MAX_MODULES * 4]}, handle)
    os.replace(temporary, _learned_file(folder, notebook))
