"""jupyter_mlx: versioned, parameterized notebook runs for Jupyter.

This module stays cheap to import: it is imported inside every kernel that calls
``log_metric``. Heavy parts (papermill, SQLAlchemy) load lazily where used.
"""
from __future__ import annotations

from typing import Any

from .metrics import METRIC_MIMETYPE, log_metric

try:
    from ._version import __version__
except ImportError:  # running from a source tree without a build
    __version__ = "0.0.0.dev0"

__all__ = ["METRIC_MIMETYPE", "__version__", "compare", "log_metric", "plot_metric", "run", "runs", "sweep"]

# The notebook API, imported on first use: ``import jupyter_mlx`` stays as cheap as ``log_metric`` needs.
_NOTEBOOK_API = ("runs", "run", "sweep", "plot_metric", "deploy", "RunHandle", "SweepHandle")


def __getattr__(name: str) -> Any:
    if name in _NOTEBOOK_API:
        from . import notebook_api

        return getattr(notebook_api, name)
    raise AttributeError(f"module 'jupyter_mlx' has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext jupyter_mlx``: registers the ``%mlx`` magic."""
    from .magic import load_ipython_extension as load

    load(ipython)


def compare(a: str, b: str, root: str | None = None, **options: Any) -> Any:
    """Compare two runs (``train.ipynb@v3``, run ids) or two notebook files.

    Returns a ``Comparison``: ``.to_json()`` (the documented format), ``.unexpected()``,
    ``.parameters_frame()`` and ``.metrics_frame()`` (pandas); it displays itself in a notebook.
    ``options`` are compare options (``rtol=1e-6``, ``ignore_patterns=[...]``, ``metrics={...}``);
    ``root`` is the project (default: the nearest folder with ``.mlx/`` above the current one).
    """
    from pathlib import Path

    from .config import MLXConfig, find_project_root, load_file_config
    from .service import RunService
    from .widgets import ShownComparison

    folder = Path(root).resolve() if root else find_project_root(Path.cwd())
    service = RunService(folder, MLXConfig(config=load_file_config(folder)))
    try:
        return ShownComparison.of(service.compare(a, b, options, base=Path.cwd(), anywhere=True))
    finally:
        service.close()


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .server.app import MLXExtensionApp

    return [{"module": "jupyter_mlx", "app": MLXExtensionApp}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "jupyter-mlx"}]
