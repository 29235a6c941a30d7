"""The code an endpoint runs, as its caller resolved it (``RunService.served_code``): a run's
stored source snapshot with its parameters, or a notebook file as it is, as a list of code cell
sources; and the checks made on that code before anything is started or stored."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import MLXError
from ..execute.parameters import parameters_cell_index

SKIP_TAG = "mlx:no-serve"  # a cell the endpoint does not run (plots for the report, slow checks)


@dataclass(frozen=True)
class ServedCode:
    notebook: str  # project path
    ref: str | None  # NOTEBOOK@vN, or None for the file as it is
    run_id: str | None
    cells: list[str]

    @property
    def label(self) -> str:
        return self.ref or self.notebook


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


def check_servable(code: ServedCode, mode: str, function: str | None = None) -> None:
    """Refuse at once (not in the endpoint process, after its set-up ran) a notebook without the
    routes it is served by, or without the function it is asked to serve."""
    if mode == "function" and function:
        _check_function(code, function)
    if mode != "cells":
        return
    from .annotations import NoRoutesError, split_cells

    try:
        split_cells(code.cells)
    except NoRoutesError:
        raise MLXError("invalid_notebook", f"{code.notebook} has no '# GET /path' annotated cells: "
                       "give --function NAME to serve one of its functions") from None


def _check_function(code: ServedCode, function: str) -> None:
    from .names import top_level_names

    names = top_level_names(code.cells)
    if function in names.bound or not names.certain:
        return  # bound (a def, an import, an assignment), or maybe bound in a way only running it shows
    defined = ", ".join(sorted(names.functions))
    raise MLXError("invalid_request", f"{code.label} defines no function {function!r}"
                   + (f"; it defines {defined}" if defined else "; it defines no functions"))
