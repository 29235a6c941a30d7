"""What every benchmark shares: the source tree on the path, timing, tables, results, notebooks.

Importing this module makes ``jupyter_mlx`` importable from a source checkout, in this process
and in the kernels and servers it starts (through ``PYTHONPATH``), so the benchmarks run with or
without ``pip install -e .``.
"""
from __future__ import annotations

import importlib.util
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"


def _make_importable() -> None:
    spec = importlib.util.find_spec("jupyter_mlx")
    if spec is None:
        sys.path.insert(0, str(REPO))
        spec = importlib.util.find_spec("jupyter_mlx")
    if spec is None or Path(spec.origin or "").resolve().parent.parent != REPO:
        return  # an installed copy: kernels find it as we do
    # kernels and servers start in other folders: give them the source tree too
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(REPO) not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO), *paths])


_make_importable()


# -- timing ---------------------------------------------------------------------------------
def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of one call."""
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """Median, quartiles and extremes of timings, in milliseconds."""
    ms = sorted(s * 1000 for s in seconds)
    quartiles = statistics.quantiles(ms, n=4) if len(ms) > 1 else [ms[0]] * 3
    return {
        "median_ms": statistics.median(ms),
        "p25_ms": quartiles[0],
        "p75_ms": quartiles[2],
        "min_ms": ms[0],
        "max_ms": ms[-1],
        "n": len(ms),
    }


# -- output ---------------------------------------------------------------------------------
def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A plain aligned text table; floats get two decimals."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max(len(str(h)), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    print("  ".join(str(h).ljust(w) for h, w in zip(headers, widths)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(value.rjust(w) if _numeric(value) else value.ljust(w) for value, w in zip(row, widths)))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _numeric(text: str) -> bool:
    return text.replace(",", "").replace(".", "").replace("-", "").replace("%", "").replace("x", "").isdigit()


def machine() -> dict[str, Any]:
    """Enough about the machine to read the numbers (no paths, no host name)."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def write_results(name: str, results: dict[str, Any]) -> Path:
    """Write ``results/<name>.json`` next to the benchmarks and return its path."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    measured_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    payload = {"benchmark": name, "measured_at": measured_at, "machine": machine(), **results}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


# -- files ----------------------------------------------------------------------------------
def tree_bytes(folder: Path) -> dict[str, int]:
    """Apparent size (sum of file lengths), allocated size (disk blocks) and file count of a tree."""
    files = [p for p in Path(folder).rglob("*") if p.is_file()]
    stats = [p.stat() for p in files]
    return {
        "bytes": sum(s.st_size for s in stats),
        "allocated_bytes": sum(getattr(s, "st_blocks", 0) * 512 for s in stats),
        "files": len(files),
    }


# -- notebooks ------------------------------------------------------------------------------
def code_cell(source: str, tags: Sequence[str] = ()) -> dict[str, Any]:
    return {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {"tags": list(tags)} if tags else {},
        "outputs": [],
        "source": source,
    }


def markdown_cell(source: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "metadata": {}, "source": source}


def write_notebook(path: Path, cells: Sequence[dict[str, Any]]) -> Path:
    """A v4 notebook on the python3 kernel, as JupyterLab saves it."""
    notebook = {
        "cells": list(cells),
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    for index, cell in enumerate(notebook["cells"]):
        cell.setdefault("id", f"cell-{index}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(notebook, indent=1) + "\n")
    return path
