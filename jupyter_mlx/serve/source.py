"""The code an endpoint runs: a run's stored source snapshot with its parameters, or a notebook
file as it is, as a list of code cell sources."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import MLXError
from ..execute.parameters import parameters_cell_index
from ..refs import names_a_run

if TYPE_CHECKING:
    from ..service import RunService

SKIP_TAG = "mlx:no-serve"  # a cell the endpoint does not run (plots for the report, slow checks)


@dataclass(frozen=True)
class ServedCode:
    notebook: str  # project path
    ref: str | None  # NOTEBOOK@vN, or None for the file as it is
    run_id: str | None
    cells: list[str]


def served_code(service: "RunService", target: str, base: Path | None = None) -> ServedCode:
    """``train.ipynb@v5`` (a run: its snapshot and parameters) or ``api.ipynb`` (the file now)."""
    if names_a_run(target):
        run = service.get_run(target, base)
        notebook = json.loads(service.store.source_notebook(run.id))
        # the overrides only, as papermill injects them: defaults stay the notebook's own code
        return ServedCode(run.notebook, run.ref, run.id, code_cells(notebook, run.overrides))
    name = service.project.notebook_path(target, base)
    _, notebook = service.project.read_notebook(name)
    return ServedCode(name, None, None, code_cells(notebook, {}))


def code_cells(notebook: dict[str, Any], parameters: dict[str, Any]) -> list[str]:
    """The notebook's code cells in order, the run's parameters assigned right after its
    ``parameters`` cell (as papermill injects them); cells tagged ``mlx:no-serve`` left out."""
    index = parameters_cell_index(notebook)
    cells = []
    for position, cell in enumerate(notebook.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        tags = (cell.get("metadata") or {}).get("tags") or []
        source = "".join(cell["source"]) if isinstance(cell.get("source"), list) else cell.get("source", "")
        if SKIP_TAG not in tags and "injected-parameters" not in tags:
            cells.append(source)
        if position == index and parameters:
            cells.append("\n".join(f"{name} = {value!r}" for name, value in parameters.items()))
    if not cells:
        raise MLXError("invalid_notebook", "the notebook has no code cells to serve")
    return cells



def check_servable(code: ServedCode, mode: str) -> None:
    """Refuse at once (not in the endpoint process) a notebook without the routes it is served by."""
    if mode != "cells":
        return
    from .annotations import NoRoutesError, split_cells

    try:
        split_cells(code.cells)
    except NoRoutesError:
        raise MLXError("invalid_notebook", f"{code.notebook} has no '# GET /path' annotated cells: "
                       "give --function NAME to serve one of its functions") from None
