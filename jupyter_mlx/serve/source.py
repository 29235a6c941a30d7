"""The code an endpoint runs, as its caller resolved it (``RunService.served_code``): a run's
stored source snapshot with its parameters, or a notebook file as it is, as a list of code cell
sources; and the checks made on that code before anything is started or stored."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from ..errors import MLXError
from ..execute.parameters import cell_source, parameters_cell_index

SKIP_TAG = "mlx:no-serve"  # a cell the endpoint does not run (plots for the report, slow checks)


@dataclass(frozen=True)
class CapturedState:
    """A run's captured state as its store keeps it: the blob's hash, the capture's manifest, and
    the blob's content in pieces (``KeyError`` when the blob is gone)."""

    sha256: str | None
    manifest: dict[str, Any]
    chunks: Callable[[], Iterator[bytes]] = field(compare=False, repr=False)


@dataclass(frozen=True)
class ServedCode:
    notebook: str  # project path
    ref: str | None  # NOTEBOOK@vN, or None for the file as it is
    run_id: str | None
    cells: list[str]
    status: str | None = None  # the run's (succeeded, failed...), None for a notebook file
    state: CapturedState | None = None  # what the run captured (None: capture off, or before it existed)

    @property
    def label(self) -> str:
        return self.ref or self.notebook


@dataclass(frozen=True)
class ServedFrom:
    """How an endpoint gets its function: from the run's captured state, or by re-executing the
    notebook's cells at start (``reason`` says why)."""

    state: CapturedState | None
    reason: str | None

    @property
    def serves(self) -> str:
        return "state" if self.state is not None else "reexecution"

    def describe(self) -> str:
        return describe_source(self.serves, self.state.sha256 if self.state else None, self.reason)


def describe_source(serves: str, state_hash: str | None, reason: str | None) -> str:
    """One line for every door: where an endpoint's function comes from."""
    if serves == "state":
        return f"serves the run's captured state (state {(state_hash or '')[:12]})"
    return f"re-executes the notebook at start: {reason}"


def served_from(code: ServedCode, mode: str, function: str | None, reexecute: bool = False) -> ServedFrom:
    """Serve from the run's state when it holds ``function``; else re-execute, saying why. A
    failed run (nothing captured) is refused unless ``reexecute``: its source failed once."""
    if reexecute:
        return ServedFrom(None, "asked for (--reexecute)")
    if mode == "cells":
        return ServedFrom(None, "the annotated cells run at start, as Kernel Gateway runs them")
    if code.run_id is None:
        return ServedFrom(None, f"{code.notebook} is a notebook file, not a run: nothing was captured")
    if code.status not in (None, "succeeded"):
        how = {"failed": "failed", "cancelled": "was cancelled", "interrupted": "was interrupted"}.get(
            code.status or "", f"is still {code.status}")
        raise MLXError("conflict", f"{code.label} {how}, so it has no captured state to serve: deploy a version "
                       "that succeeded, or give --reexecute to run its source")
    state = code.state
    if state is None:
        return ServedFrom(None, f"{code.label} captured no state (capture was off, or the run predates it)")
    manifest = state.manifest
    if manifest.get("error") or state.sha256 is None:
        return ServedFrom(None, f"{code.label}'s capture failed: {manifest.get('error') or 'no state was written'}")
    refused = dict(manifest.get("not_capturable") or [])
    if function in refused:
        return ServedFrom(None, f"{function} is not capturable: {refused[function]}")
    if function not in (manifest.get("functions") or []):
        return ServedFrom(None, f"{code.label} did not capture {function} (c.MLXConfig.serve_functions, or "
                          "defined in a way the capture does not see)")
    return ServedFrom(state, None)


def write_state(state: CapturedState, label: str, target: Path) -> Path:
    """Copy the state's blob to ``target``, checking its hash: a blob missing or corrupted in the
    store is an ``MLXError`` naming the remedy, before any process starts."""
    digest = hashlib.sha256()
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(target, "wb") as writer:
            for chunk in state.chunks():
                digest.update(chunk)
                writer.write(chunk)
    except KeyError:
        target.unlink(missing_ok=True)
        raise MLXError("conflict", f"the captured state of {label} is missing from the blob store: "
                       "give --reexecute to run its source instead") from None
    except Exception as exc:  # noqa: BLE001 - zlib.error, a truncated file
        target.unlink(missing_ok=True)
        raise MLXError("conflict", f"the captured state of {label} is corrupted in the blob store ({exc}): "
                       "give --reexecute to run its source instead") from None
    if digest.hexdigest() != state.sha256:
        target.unlink(missing_ok=True)
        raise MLXError("conflict", f"the captured state of {label} is corrupted in the blob store (its hash "
                       "differs): give --reexecute to run its source instead")
    return target


def state_settings(state: CapturedState, label: str, path: Path, allow_version_drift: bool) -> dict[str, Any]:
    """What an endpoint spec says of the state to load (``state.load_served_state``)."""
    return {"path": str(path), "sha256": state.sha256, "label": label, "allow_version_drift": allow_version_drift,
            "packages": dict(state.manifest.get("packages") or {})}


def code_cells(notebook: dict[str, Any], parameters: dict[str, Any]) -> list[str]:
    """The notebook's code cells in order, the run's parameters assigned right after its
    ``parameters`` cell (as papermill injects them); cells tagged ``mlx:no-serve`` left out."""
    index = parameters_cell_index(notebook)
    cells = []
    for position, cell in enumerate(notebook.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        tags = (cell.get("metadata") or {}).get("tags") or []
        source = cell_source(cell)
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
