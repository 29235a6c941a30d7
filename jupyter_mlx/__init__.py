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

__all__ = ["METRIC_MIMETYPE", "__version__", "log_metric"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .server.app import MLXExtensionApp

    return [{"module": "jupyter_mlx", "app": MLXExtensionApp}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "jupyter-mlx"}]
