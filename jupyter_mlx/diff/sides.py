"""The two things compared: a stored run (``train.ipynb@v3``, a run id) or any notebook file.

A side carries what the comparison reads: the executed notebook, parameters, metrics, and,
for runs, the environment and git state recorded with it. Files are read as plain JSON (no
nbformat validation, no store): ``jupyter mlx diff a.ipynb b.ipynb`` stays quick. A run's side
is made of what its caller (the service, which resolves refs) loaded from the store.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..errors import MLXError
from ..execute.parameters import effective_parameters
from ..metrics import Metric, read_metrics
from ..store.records import Artifact, InputFile, iso

if TYPE_CHECKING:
    from ..store.records import Environment, RunRecord


@dataclass
class Side:
    """One side of a comparison."""

    label: str  # "A" or "B"
    ref: str  # what names it: train.ipynb@v3, or a file path
    kind: str  # "run" or "file"
    notebook: dict[str, Any]
    parameters: dict[str, Any] = field(default_factory=dict)
    metrics: list[Metric] = field(default_factory=list)
    environment: "Environment | None" = None
    run: "RunRecord | None" = None
    path: str | None = None
    # where each parameter's value comes from: "override" (set by the request), "default" (the
    # parameters cell's literal) or "expression" (a default's source text); absent: "override"
    origins: dict[str, str] = field(default_factory=dict)
    # the files the run wrote, the project's files when it started (None: not recorded), and how
    # to read an artifact's bytes (given by the caller that loaded the run; files have none)
    artifacts: list[Artifact] = field(default_factory=list)
    inputs: list[InputFile] | None = None
    read_artifact: Callable[[Artifact], bytes] | None = field(default=None, compare=False, repr=False)

    def origin(self, name: str) -> str | None:
        """``override``, ``default`` or ``expression``; None when the side has no such parameter."""
        return self.origins.get(name, "override") if name in self.parameters else None

    @property
    def state(self) -> dict[str, Any] | None:
        """The manifest of the state the run captured for its functions (None: none captured, a file)."""
        return self.run.state if self.run is not None else None

    @property
    def records_files(self) -> bool:
        """Whether this side knows the files it wrote: a run made since runs have folders of their own."""
        return self.run is not None and self.run.run_folder is not None

    def header(self) -> dict[str, Any]:
        """The side's identity for the comparison's header."""
        run = self.run
        return {
            "label": self.label,
            "kind": self.kind,
            "ref": self.ref,
            "notebook": run.notebook if run is not None else self.path,
            "run_id": run.id if run is not None else None,
            "version": run.version if run is not None else None,
            "status": run.status if run is not None else None,
            "started_at": iso(run.started_at) if run is not None else None,
            "finished_at": iso(run.finished_at) if run is not None else None,
            "duration": run.duration if run is not None else None,
            "git_commit": run.git_commit if run is not None else None,
            "git_dirty": run.git_dirty if run is not None else None,
            "sweep_id": run.sweep_id if run is not None else None,
            "user": run.user if run is not None else None,
        }


def is_notebook_file(text: str, base: Path) -> bool:
    """Whether ``text`` names an existing ``.ipynb`` file (rather than a run)."""
    if "@" in Path(text).name and not (base / text).is_file():
        return False
    path = Path(text) if Path(text).is_absolute() else base / text
    return path.suffix == ".ipynb" and path.is_file()


def file_side(label: str, text: str, base: Path) -> Side:
    """A notebook file: its outputs as they are; its parameters: those papermill injected, else
    the defaults of its parameters cell."""
    path = Path(text) if Path(text).is_absolute() else base / text
    try:
        notebook = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise MLXError("not_found", f"notebook {text} does not exist") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MLXError("invalid_notebook", f"{text} is not a notebook: {exc}") from None
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise MLXError("invalid_notebook", f"{text} is not a notebook: it has no list of cells")
    papermill = (notebook.get("metadata") or {}).get("papermill") or {}
    injected = papermill.get("parameters") if isinstance(papermill.get("parameters"), dict) else {}
    parameters = effective_parameters(notebook, injected)
    return Side(label, text, "file", notebook, parameters.values, read_metrics(notebook), path=text,
                origins=_origins(parameters.values, parameters.overridden, parameters.expressions))


def _origins(values: dict[str, Any], overridden: list[str], expressions: list[str]) -> dict[str, str]:
    return {name: "override" if name in overridden else "expression" if name in expressions else "default"
            for name in values}


def run_side(label: str, run: "RunRecord", notebook: dict[str, Any], metrics: list[Metric],
             environment: "Environment | None", *, artifacts: list[Artifact] | None = None,
             inputs: list[InputFile] | None = None,
             read_artifact: Callable[[Artifact], bytes] | None = None) -> Side:
    """A stored run: its executed notebook, metrics, environment, artifacts and input
    fingerprints as loaded from the store; ``read_artifact`` reads an artifact's bytes."""
    return Side(label, run.ref, "run", notebook, dict(run.parameters), metrics, environment, run,
                origins=_origins(run.parameters, run.overridden, run.expressions),
                artifacts=list(artifacts or ()), inputs=inputs, read_artifact=read_artifact)


def require_finished(run: "RunRecord") -> None:
    """A run that has not finished cannot be compared (its outputs are still coming)."""
    if run.status in ("queued", "running"):
        raise MLXError("conflict", f"{run.ref} is {run.status}: compare it once it has finished")
