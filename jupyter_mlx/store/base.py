"""The ``RunStore`` interface: every door reaches runs through an implementation of it."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from ..errors import MLXError
from ..metrics import Metric
from .records import (
    STATUSES,
    Artifact,
    Baseline,
    Environment,
    InputFile,
    NewRun,
    NewSweep,
    NotebookSummary,
    RunOutcome,
    RunPage,
    RunRecord,
    SweepRecord,
)
from .run_query import RunQuery, parse_query

MAX_PAGE = 1000
MAX_OFFSET = 2**63 - 1  # the largest integer the index holds


def check_page(limit: int, offset: int) -> None:
    """``invalid_request`` unless ``limit`` is 1..MAX_PAGE and ``offset`` 0..MAX_OFFSET."""
    if not 1 <= limit <= MAX_PAGE:
        raise MLXError("invalid_request", f"limit must be between 1 and {MAX_PAGE}, not {limit}")
    if not 0 <= offset <= MAX_OFFSET:
        raise MLXError("invalid_request", f"offset must be between 0 and {MAX_OFFSET}, not {offset}")


class RunStore(ABC):
    """Versioned, immutable runs of notebooks, with their blobs.

    Validation lives here, storage in the subclass (mlflow's abstract store does the same).
    """

    # -- writes -------------------------------------------------------------------------
    @abstractmethod
    def create_runs(self, news: list[NewRun], sweep: NewSweep | None = None) -> list[RunRecord]:
        """Record queued runs, each with the next version of its notebook (never reused), in one
        transaction; with ``sweep``, also the sweep that groups them."""

    def create_run(self, new: NewRun) -> RunRecord:
        """Record one queued run."""
        return self.create_runs([new])[0]

    @abstractmethod
    def request_cancel(self, run_ids: list[str]) -> list[str]:
        """Flag queued/running runs for cancellation (their owner stops them); returns the flagged."""

    @abstractmethod
    def cancel_requests(self, run_ids: list[str]) -> set[str]:
        """Which of ``run_ids`` have a cancel request."""

    @abstractmethod
    def set_progress(self, run_id: str, cell_index: int, cell_count: int) -> None:
        """Record the cell a running run is at."""

    @abstractmethod
    def heartbeat(self, run_ids: list[str], at: float) -> None:
        """Record that the process running ``run_ids`` (those still queued or running) is alive at
        ``at``: when it dies, each of its open runs ends at the latest such time of any of them."""

    @abstractmethod
    def mark_running(self, run_id: str, started_at: float) -> None:
        """Move a queued run to running."""

    @abstractmethod
    def finish_run(self, run_id: str, outcome: RunOutcome) -> RunRecord:
        """Record the outcome (status, executed notebook, metrics, env) in one transaction."""

    @abstractmethod
    def delete_run(self, run_id: str) -> None:
        """Delete a run and the blobs that no other run uses."""

    @abstractmethod
    def runs_changed_since(self, at: float, limit: int = 500) -> list[RunRecord]:
        """The runs written (queued, started, progress, finished, cancel asked...) after ``at``
        (epoch seconds), oldest change first, at most ``limit``."""

    @abstractmethod
    def record_export(self, run_id: str, system: str, target: str, details: dict[str, Any]) -> RunRecord:
        """Keep on the run where it was exported: ``exports[system][target] = details`` (e.g.
        ``"mlflow"``, a tracking URI, ``{"run_id": ...}``); the other exports are kept."""

    @abstractmethod
    def interrupt_orphans(self, host: str, alive: Any) -> list[str]:
        """Mark queued/running runs of ``host`` whose pid is not ``alive(pid)`` as interrupted,
        finished at their last sign of life (see ``heartbeat``); returns their ids."""

    # -- reads --------------------------------------------------------------------------
    @abstractmethod
    def get_run(self, run_id: str) -> RunRecord:
        """The run with this id, or ``not_found``."""

    @abstractmethod
    def find_run(self, notebook: str, version: int) -> RunRecord:
        """The run ``notebook@v<version>``, or ``not_found``."""

    @abstractmethod
    def _list_runs(
        self,
        notebook: str | None,
        status: str | None,
        limit: int,
        offset: int,
        sweep_id: str | None,
        query: RunQuery,
    ) -> RunPage:
        """A page of runs in ``query``'s order (default: newest first), of the runs passing its
        filter; with ``query.keys``, the page's ``keys`` too (see ``list_runs``)."""

    @abstractmethod
    def requeued(self, run_ids: list[str]) -> set[str]:
        """Which of ``run_ids`` some other run names as its parent (they were run again)."""

    @abstractmethod
    def get_sweep(self, sweep_id: str) -> SweepRecord:
        """The sweep with this id and its runs' counts per status, or ``not_found``."""

    @abstractmethod
    def list_sweeps(self, notebook: str | None = None, limit: int = 50, offset: int = 0) -> list[SweepRecord]:
        """Sweeps, newest first."""

    @abstractmethod
    def set_baseline(self, run_id: str, note: str = "") -> Baseline:
        """Approve a finished run as its notebook's baseline (replacing the previous one)."""

    @abstractmethod
    def get_baseline(self, notebook: str) -> Baseline | None:
        """The notebook's approved baseline, if any."""

    @abstractmethod
    def list_notebooks(self) -> list[NotebookSummary]:
        """Every notebook with runs, with its run count and last version."""

    @abstractmethod
    def notebook_paths(self) -> list[str]:
        """The paths of the notebooks with runs (cheap: no counting)."""

    @abstractmethod
    def executed_notebook(self, run_id: str) -> dict[str, Any]:
        """The executed notebook of a run (``not_found`` before it finished)."""

    @abstractmethod
    def source_notebook(self, run_id: str) -> bytes:
        """The exact bytes of the notebook snapshot the run executed."""

    @abstractmethod
    def metric_history(self, run_id: str) -> list[Metric]:
        """Every logged metric value of a run, in order."""

    @abstractmethod
    def environment(self, environment_id: str) -> Environment:
        """A stored environment fingerprint."""

    @abstractmethod
    def artifacts(self, run_id: str) -> list[Artifact]:
        """The files a run created or changed, by path (bytes: ``blobs.chunks(artifact.sha256)``)."""

    @abstractmethod
    def inputs(self, run_id: str) -> list[InputFile] | None:
        """The project's files when the run started; None for runs that did not record them."""

    # -- built from the primitives ---------------------------------------------------------
    def list_runs(
        self,
        notebook: str | None = None,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
        sweep_id: str | None = None,
        *,
        sort: str | None = None,
        order: str | None = None,
        filter: str | None = None,
        keys: bool = False,
    ) -> RunPage:
        """A page of runs, newest first, optionally of one notebook and/or one status.

        ``sort`` (a column, ``metrics.<name>`` or ``params.<name>``), ``order`` (``desc`` or
        ``asc``) and ``filter`` are parsed by ``run_query`` (``invalid_request`` if bad); runs
        without the sort value come last. With ``keys``, the page also names every parameter
        and metric of the runs of this notebook/status/sweep (whatever the filter).
        """
        if status is not None and status not in STATUSES:
            raise MLXError("invalid_request", f"unknown status {status!r}; one of {', '.join(STATUSES)}")
        check_page(limit, offset)
        query = parse_query(sort, order, filter, keys)
        return self._list_runs(notebook, status, limit, offset, sweep_id, query)
