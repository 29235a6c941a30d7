"""Tiny notebooks written by tests (plain JSON, no nbformat import needed)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def code_cell(source: str, tags: list[str] | None = None) -> dict[str, Any]:
    return {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {"tags": tags} if tags else {},
        "outputs": [],
        "source": source,
    }


def notebook(*cells: dict[str, Any]) -> dict[str, Any]:
    return {
        "cells": list(cells),
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def write_notebook(path: Path, *cells: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(notebook(*cells), indent=1))
    return path


def write_tiny(path: Path) -> Path:
    """Parameters x (int) and label (str); logs score = 2x and a two-point loss series."""
    return write_notebook(
        path,
        code_cell("x = 1  # the input\nlabel = 'a'", tags=["parameters"]),
        code_cell(
            "from jupyter_mlx import log_metric\n"
            "log_metric('score', x * 2)\n"
            "for step in range(2):\n"
            "    log_metric('loss', 1.0 / (step + x), step=step)\n"
            "print('hello', label, x)"
        ),
    )


def write_failing(path: Path) -> Path:
    return write_notebook(
        path,
        code_cell("n = 1", tags=["parameters"]),
        code_cell("print('before')"),
        code_cell("raise ValueError(f'bad n={n}')"),
        code_cell("print('never')"),
    )


# The early exits of papermill's own test notebooks (papermill/tests/notebooks/sysexit*.ipynb,
# systemexit.ipynb): the second cell ends the notebook; papermill takes an exit without a code or
# with 0 as success and anything else as a failure. Name -> (the exiting cell, papermill succeeds).
SYSTEM_EXITS = {
    "sysexit": ("sys.exit()", True),
    "sysexit0": ("sys.exit(0)", True),
    "systemexit": ("raise SystemExit", True),
    "sysexit1": ("sys.exit(1)", False),
}


def write_system_exit(path: Path, exit_line: str) -> Path:
    """``import sys``, the exiting cell, then a cell that must not run (nbformat 4.2, as papermill's)."""
    nb = notebook(code_cell("import sys"), code_cell(exit_line), code_cell("print('after the exit')"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**nb, "nbformat_minor": 2}, indent=1))
    return path


def write_gated(path: Path) -> Path:
    """A run that prints ``started``, then waits (up to its ``seconds`` parameter) while the file
    ``gate`` exists in its folder: the test decides when it ends. The gate is closed here."""
    write_notebook(
        path,
        code_cell("seconds = 60.0", tags=["parameters"]),
        code_cell("print('started', flush=True)"),
        code_cell("import os, time\nwhile os.path.exists('gate') and seconds > 0:\n    time.sleep(0.1); seconds -= 0.1"),
    )
    (path.parent / "gate").write_text("closed")
    return path


def write_clobber(path: Path) -> Path:
    """Writes ``result.txt`` with its parameter ``x``, waits, reads it back: runs sharing a folder
    read each other's number (issue 14)."""
    return write_notebook(path, code_cell("x = 0", tags=["parameters"]), code_cell(
        "import pathlib, time\n"
        "pathlib.Path('result.txt').write_text(str(x))\n"
        "time.sleep(1.5)\n"
        "print(pathlib.Path('result.txt').read_text())"
    ))
