"""``RunService``: the one facade every door calls (CLI, REST, magic, widgets).

A run is: resolve and snapshot the notebook, check its parameters, record it queued,
execute it (papermill), read its metrics back, and record the outcome.
"""
from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import MLXConfig, STORE_DIRNAME, default_store_url
from .errors import MLXError
from .execute.parameters import resolve_parameters
from .execute.runner import ProgressCallback, RunResult, RunTask, execute_run, kernel_name_of
from .metrics import read_metrics
from .project import Project
from .refs import match_notebook, parse_ref
from .store import Environment, NewRun, NotebookSummary, RunOutcome, RunPage, RunRecord, RunStore


def _pid_alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class PreparedRun:
    """A run recorded as queued, with the task that executes it."""

    record: RunRecord
    task: RunTask


class RunService:
    """Runs of the notebooks of one project."""

    def __init__(self, root: Path, config: MLXConfig | None = None) -> None:
        self.project = Project(Path(root).resolve())
        self.config = config or MLXConfig()
        self._store: RunStore | None = None
        self._store_lock = threading.Lock()

    @property
    def store(self) -> RunStore:
        """The run store, opened (and migrated) on first use."""
        with self._store_lock:
            if self._store is None:
                root = self.project.root
                url = self.config.store_url or default_store_url(root)
                blob_dir = Path(self.config.blob_dir or root / STORE_DIRNAME / "blobs")
                self._store = self.config.store_class(url, blob_dir)
            return self._store

    def close(self) -> None:
        if self._store is not None and hasattr(self._store, "close"):
            self._store.close()

    # -- running ------------------------------------------------------------------------
    def prepare(
        self,
        notebook: str | Path,
        parameters: dict[str, Any] | None = None,
        *,
        base: Path | None = None,
        tags: list[str] | tuple[str, ...] = (),
        kernel_name: str | None = None,
        cell_timeout: float | None = None,
        run_timeout: float | None = None,
        backend: str = "local",
    ) -> PreparedRun:
        """Check the request and record the run as queued. Bad input raises and stores nothing."""
        name = self.project.notebook_path(notebook, base)
        source, parsed = self.project.read_notebook(name)
        resolved = resolve_parameters(parsed, dict(parameters or {}))
        for value in (cell_timeout, run_timeout):
            if value is not None and value < 0:
                raise MLXError("invalid_request", f"timeouts must be 0 (no limit) or more, not {value}")
        from .provenance import git_state

        commit, dirty = git_state(self.project.root)
        record = self.store.create_run(
            NewRun(
                notebook=name,
                source=source,
                parameters=resolved,
                tags=list(tags),
                backend=backend,
                host=socket.gethostname(),
                pid=os.getpid(),
                git_commit=commit,
                git_dirty=dirty,
            )
        )
        task = RunTask(
            notebook=name,
            source=source,
            parameters=resolved,
            cwd=self.project.absolute(name).parent,
            kernel_name=kernel_name_of(parsed, kernel_name or self.config.kernel_name),
            cell_timeout=self.config.cell_timeout if cell_timeout is None else cell_timeout,
            run_timeout=self.config.run_timeout if run_timeout is None else run_timeout,
            startup_timeout=self.config.startup_timeout,
        )
        return PreparedRun(record, task)

    def execute(self, prepared: PreparedRun, on_cell: ProgressCallback | None = None) -> RunRecord:
        """Execute a prepared run and record its outcome (also when interrupted)."""
        from .provenance import kernel_environment

        environment: dict[str, Environment] = {}
        fingerprint = threading.Thread(
            target=lambda: environment.update(env=kernel_environment(prepared.task.kernel_name)),
            daemon=True,
        )
        fingerprint.start()  # off the critical path: overlaps with execution
        self.store.mark_running(prepared.record.id, time.time())
        try:
            result = execute_run(prepared.task, on_cell)
        except BaseException:
            self.store.finish_run(prepared.record.id, _interrupted())
            raise
        fingerprint.join()
        return self.store.finish_run(prepared.record.id, _outcome(result, environment.get("env")))

    def run(
        self, notebook: str | Path, parameters: dict[str, Any] | None = None, **options: Any
    ) -> RunRecord:
        """Run a notebook with parameters now, in this process, and return the recorded run."""
        on_cell = options.pop("on_cell", None)
        self.interrupt_orphans()
        return self.execute(self.prepare(notebook, parameters, **options), on_cell)

    def interrupt_orphans(self) -> list[str]:
        """Mark runs of dead processes on this host as interrupted, so none stay stuck."""
        return self.store.interrupt_orphans(socket.gethostname(), _pid_alive)

    # -- reading ------------------------------------------------------------------------
    def resolve_notebook(self, name: str, base: Path | None = None) -> str:
        """The stored notebook a user-typed name refers to (a path, or a unique file name)."""
        known = self.store.notebook_paths()
        if base is not None:
            candidate = (base / name).resolve()
            root = self.project.root
            if root in candidate.parents and candidate.relative_to(root).as_posix() in known:
                return candidate.relative_to(root).as_posix()
        return match_notebook(name, known)

    def get_run(self, ref: str, base: Path | None = None) -> RunRecord:
        """The run named by ``NOTEBOOK@vN``, ``NOTEBOOK@latest`` or a run id."""
        parsed = parse_ref(ref)
        if parsed.run_id is not None:
            return self.store.get_run(parsed.run_id)
        notebook = self.resolve_notebook(parsed.notebook or "", base)
        if parsed.version is None:
            page = self.store.list_runs(notebook=notebook, limit=1)
            if not page.runs:
                raise MLXError("not_found", f"{notebook} has no runs")
            return page.runs[0]
        return self.store.find_run(notebook, parsed.version)

    def run_details(self, ref: str, base: Path | None = None) -> dict[str, Any]:
        """Everything known of a run: the record, its environment, cell timings, metric history."""
        from dataclasses import asdict

        run = self.get_run(ref, base)
        details = run.to_json()
        details["environment"] = (
            asdict(self.store.environment(run.environment_id)) if run.environment_id else None
        )
        details["cell_timings"] = [
            {**asdict(t), "duration": t.duration} for t in run.cell_timings
        ]
        details["metric_history"] = [asdict(m) for m in self.store.metric_history(run.id)]
        return details

    def list_runs(
        self,
        notebook: str | None = None,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
        base: Path | None = None,
    ) -> RunPage:
        """A page of runs, newest first; ``notebook`` may be a path or a unique file name."""
        resolved = self.resolve_notebook(notebook, base) if notebook else None
        return self.store.list_runs(resolved, status, limit, offset)

    def list_notebooks(self) -> list[NotebookSummary]:
        return self.store.list_notebooks()

    def executed_notebook(self, ref: str, base: Path | None = None) -> dict[str, Any]:
        return self.store.executed_notebook(self.get_run(ref, base).id)

    def delete_run(self, ref: str, base: Path | None = None) -> RunRecord:
        """Delete a run and the blobs no other run uses; returns what was deleted."""
        run = self.get_run(ref, base)
        if run.status in ("queued", "running") and _pid_alive(run.pid):
            raise MLXError("conflict", f"{run.ref} is {run.status}; cancel it before deleting it")
        self.store.delete_run(run.id)
        return run


def _outcome(result: RunResult, environment: Environment | None) -> RunOutcome:
    return RunOutcome(
        status=result.status,
        notebook=result.notebook,
        started_at=result.started_at,
        finished_at=result.finished_at,
        cell_timings=result.cell_timings,
        error=result.error,
        metrics=read_metrics(result.notebook) if result.notebook else [],
        environment=environment,
    )


def _interrupted() -> RunOutcome:
    from .store import RunError

    return RunOutcome(
        status="interrupted",
        notebook=None,
        started_at=None,
        finished_at=time.time(),
        error=RunError("KeyboardInterrupt", "the run was interrupted before it finished"),
    )
