"""``RunService``: the one facade every door calls (CLI, REST, magic, widgets).

A run is: resolve and snapshot the notebook, check its parameters, record it queued,
execute it (papermill), read its metrics back, and record the outcome.
"""
from __future__ import annotations

import getpass
import json
import logging
import os
import shutil
import socket
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from .config import MLXConfig, STORE_DIRNAME, default_store_url
from .errors import MLXError
from .events import EventBus
from .execute.backends import BackendChoice, choose_backend, create_executor
from .execute.executor import CancelToken, Executor
from .execute.local import LocalExecutor, default_concurrency, installed_kernels
from .execute.parameters import EffectiveParameters, effective_parameters, resolve_parameters
from .execute.runner import ProgressCallback, RunResult, RunTask, execute_run, kernel_name_of
from .execute.threads import threads_per_run
from .liveness import ORPHAN_CHECK_SECONDS, Heartbeat, Periodic
from .metrics import read_metrics
from .processes import pid_alive
from .project import Project, check_path_text
from .queue import RunQueue, wait_all
from .refs import is_run_id, match_notebook, names_a_run, parse_ref
from .store import (
    Environment,
    NewRun,
    NewSweep,
    NotebookSummary,
    RunOutcome,
    RunPage,
    RunRecord,
    RunStore,
    SweepRecord,
)
from .store.base import MAX_PAGE, check_page
from .store.records import FINAL_STATUSES, Artifact, Baseline
from .sweeps import expand
from .workdir import RunFolderError
from .workdir.run_files import InputHashes, RunFiles, collect_remote, run_folder_strategy

if TYPE_CHECKING:
    from .diff.comparison import Comparison
    from .diff.options import CompareOptions
    from .diff.sides import Side
    from .diff.table import RunsTable
    from .serve.manager import EndpointManager
    from .serve.source import ServedCode

log = logging.getLogger(__name__)

PROGRESS_WRITE_INTERVAL = 0.5  # seconds between two progress writes to the store (events: every cell)
MAX_TABLE_RUNS = 500  # runs a table or chart of chosen runs may hold


@dataclass(frozen=True)
class PreparedRun:
    """A run recorded as queued, with the task that executes it."""

    record: RunRecord
    task: RunTask


@dataclass(frozen=True)
class _Plan:
    """A checked request, not yet recorded: the notebook, its snapshot and the parameter sets
    (each the effective value of every parameter, and the names the request set)."""

    notebook: str
    source: bytes
    parameter_sets: list[EffectiveParameters]
    cwd: Path
    kernel_name: str
    cell_timeout: float
    run_timeout: float
    run_folder: str = "auto"
    capture: bool = True
    preload: tuple[str, ...] = ()  # the modules its kernels may start with (execute.preload)
    preload_left_out: tuple[tuple[str, str], ...] = ()  # the notebook's modules never preloaded, with why


def os_user() -> str | None:
    """The operating system's user: ``$LOGNAME``/``$USER``/... or the password database's name;
    the numeric uid when neither names one (a container's user without a passwd entry)."""
    try:
        return getpass.getuser()
    except Exception:  # OSError (3.13+) or KeyError: no name for the uid
        getuid = getattr(os, "getuid", None)
        return str(getuid()) if getuid is not None else None


class RunService:
    """Runs of the notebooks of one project.

    ``keep_warm`` (the server's choice) keeps pre-started kernels ready between runs; the CLI
    pre-starts only for the runs it knows are coming. ``remote_requests`` (the server's too): the
    requests come over the network, so a gateway URL or Dask scheduler they name must be the
    configured one or in ``c.MLXConfig.allowed_gateways`` / ``allowed_schedulers``.
    """

    def __init__(
        self, root: Path, config: MLXConfig | None = None, keep_warm: bool = False, *, remote_requests: bool = False
    ) -> None:
        self.project = Project(Path(root).resolve())
        self.config = config or MLXConfig()
        self.keep_warm = keep_warm
        self.remote_requests = remote_requests
        self.events = EventBus()
        self._store: RunStore | None = None
        self._store_lock = threading.Lock()
        self._executors: dict[BackendChoice, Executor] = {}
        self._executors_lock = threading.Lock()
        self._queue: RunQueue | None = None
        # this process's runs not finished yet: the store hears they are alive every few seconds
        self._heartbeat = Heartbeat(lambda run_ids, at: self.store.heartbeat(run_ids, at))
        self._orphan_watch: Periodic | None = None
        self._store_watch: Periodic | None = None
        self._input_hashes = InputHashes(lambda: self.store.latest_inputs())
        self._mlflow: Any = None  # the background exporter of c.MLXConfig.mlflow_tracking_uri (mlflow_tracking)

    @classmethod
    def for_server(cls, root: Path, config: MLXConfig | None = None) -> "RunService":
        """The service of a long-lived Jupyter server: pre-started kernels kept warm between runs,
        glibc's malloc arenas capped before the runs' threads exist (keeps its memory flat), and
        requests from remote callers (gateway and scheduler addresses only from the allow-lists)."""
        from .execute.memory import limit_malloc_arenas

        limit_malloc_arenas()
        return cls(root, config, keep_warm=True, remote_requests=True)

    @property
    def default_user(self) -> str | None:
        """Who this process's runs are recorded as when a door names nobody (the CLI, the magic,
        the Python API): ``c.MLXConfig.user``, else the operating system's user (its login name, as
        ``getpass`` finds it; the numeric uid when it has none)."""
        return self.config.user or os_user()

    @property
    def store(self) -> RunStore:
        """The run store, opened (and migrated) on first use."""
        with self._store_lock:
            if self._store is None:
                url, blob_dir = self._store_location()
                store_class = self.config.store_class
                if store_class is None:
                    from .store.sql import SqlRunStore

                    self._store = SqlRunStore(url, blob_dir, migrate=self.config.migrate_store)
                else:
                    self._store = store_class(url, blob_dir)
            return self._store

    def _store_location(self) -> tuple[str, Path]:
        """The run index's URL and the blob folder (configured, else in the project's .mlx)."""
        root = self.project.root
        return self.config.store_url or default_store_url(root), Path(self.config.blob_dir or root / STORE_DIRNAME / "blobs")

    def store_status_url(self) -> str:
        """Where the run index is: its URL without its password."""
        from .store.sql import display_url

        return display_url(self._store_location()[0])

    def migrate_store(self) -> tuple[str | None, str | None]:
        """Bring the run index to this jupyter_mlx's schema, whatever ``migrate_store`` says (the
        command a team runs on purpose): its revision before and after."""
        from .store.sql import SqlRunStore, index_revision

        url, blob_dir = self._store_location()
        before = index_revision(url)
        store = SqlRunStore(url, blob_dir, migrate=True)
        try:
            return before, store.revision()
        finally:
            store.close()

    def store_status(self) -> dict[str, Any]:
        """Where the run index is (``store_status_url``) and, if it cannot be opened, why."""
        try:
            self.store
        except MLXError as exc:
            return {"url": self.store_status_url(), "error": exc.message}
        return {"url": self.store_status_url(), "error": None}

    @property
    def queue(self) -> RunQueue:
        with self._store_lock:
            if self._queue is None:
                self._queue = RunQueue(self._execute_queued, lambda ids: self.store.cancel_requests(ids),
                                       self._end_cancelled)
            return self._queue

    def executor(self, backend: BackendChoice) -> Executor:
        """The executor of a backend, created on first use and kept."""
        with self._executors_lock:
            executor = self._executors.get(backend)
            if executor is None:
                executor = create_executor(backend, self.config, self.keep_warm)
                self._executors[backend] = executor
            return executor

    def close(self, timeout: float = 15.0) -> None:
        """Stop queued and running runs (recorded as cancelled), executors, the kernels' shutdowns
        (waited for, a bounded time), then the store."""
        from .execute.kernels import wait_for_kernel_shutdowns

        if self._orphan_watch is not None:
            self._orphan_watch.stop()
        if self._store_watch is not None:
            self._store_watch.stop()
        if self._queue is not None:
            futures = [f for f in map(self._queue.future, self._queue.active()) if f is not None]
            self._queue.close("the jupyter_mlx service stopped")
            wait_all(futures, timeout)
        with self._executors_lock:
            executors, self._executors = list(self._executors.values()), {}
        for executor in executors:
            executor.close()
        wait_for_kernel_shutdowns()
        self._heartbeat.stop()
        if self._mlflow is not None:  # the runs' exports still queued, a bounded time
            self._mlflow.close(timeout)
        if self._store is not None and hasattr(self._store, "close"):
            self._store.close()

    # -- running ------------------------------------------------------------------------
    def _plan(
        self,
        notebook: str | Path,
        parameter_sets: list[dict[str, Any]],
        base: Path | None,
        kernel_name: str | None,
        cell_timeout: float | None,
        run_timeout: float | None,
        in_place: bool = False,
    ) -> _Plan:
        """Check everything about a request before anything is recorded."""
        name = self.project.notebook_path(notebook, base)
        source, parsed = self.project.read_notebook(name)
        resolved = [effective_parameters(parsed, resolve_parameters(parsed, dict(p or {})))
                    for p in parameter_sets]
        for value in (cell_timeout, run_timeout):
            if value is not None and value < 0:
                raise MLXError("invalid_request", f"timeouts must be 0 (no limit) or more, not {value}")
        return _Plan(
            notebook=name,
            source=source,
            parameter_sets=resolved,
            cwd=self.project.absolute(name).parent,
            kernel_name=kernel_name_of(parsed, kernel_name or self.config.kernel_name),
            cell_timeout=self.config.cell_timeout if cell_timeout is None else cell_timeout,
            run_timeout=self.config.run_timeout if run_timeout is None else run_timeout,
            run_folder=run_folder_strategy(self.config, in_place),
            capture=self.config.capture_state and ((parsed.get("metadata") or {}).get("jupyter_mlx") or {}).get(
                "capture", True) is not False,
            **self._warm_modules(name, parsed, self.project.absolute(name).parent),
        )

    def _warm_modules(self, name: str, notebook: dict[str, Any], folder: Path) -> dict[str, Any]:
        """The modules the notebook imports (and its last run ended with) that its kernels may
        start with, and those never preloaded with why (``warm_runs``; opted out per notebook with
        ``metadata.jupyter_mlx.warm = false``): ``_Plan`` fields."""
        from .execute.parameters import cell_source
        from .execute.preload import learned_modules, warm_modules

        if not self.config.warm_runs or ((notebook.get("metadata") or {}).get("jupyter_mlx") or {}).get("warm") is False:
            return {}
        cells = [cell_source(c) for c in notebook.get("cells", []) if c.get("cell_type") == "code"]
        chosen, left_out = warm_modules(cells, folder, learned_modules(self.project.root / STORE_DIRNAME / "warm", name))
        return {"preload": chosen, "preload_left_out": tuple(left_out.items())}

    def _record(
        self,
        plan: _Plan,
        backend: BackendChoice,
        tags: list[str] | tuple[str, ...] = (),
        sweep: NewSweep | None = None,
        parents: list[RunRecord] | None = None,
        user: str | None = None,
    ) -> list[PreparedRun]:
        """Record the plan's runs as queued, in one transaction, as ``user``'s (None: the
        service's ``default_user``)."""
        from .provenance import git_state

        commit, dirty = git_state(self.project.root)
        news = [
            NewRun(
                notebook=plan.notebook,
                source=plan.source,
                parameters=parameters.values,
                overridden=parameters.overridden,
                expressions=parameters.expressions,
                tags=list(tags) if parents is None else list(parents[i].tags),
                backend=backend.name,
                host=socket.gethostname(),
                pid=os.getpid(),
                git_commit=commit,
                git_dirty=dirty,
                sweep_id=None if parents is None else parents[i].sweep_id,
                parent_id=None if parents is None else parents[i].id,
                user=user or self.default_user,
            )
            for i, parameters in enumerate(plan.parameter_sets)
        ]
        records = self.store.create_runs(news, sweep)
        self._heartbeat.add(record.id for record in records)
        return [
            PreparedRun(
                record,
                RunTask(
                    notebook=plan.notebook,
                    source=plan.source,
                    parameters=record.overrides,  # papermill injects what was set, never a default
                    cwd=plan.cwd,
                    kernel_name=plan.kernel_name,
                    cell_timeout=plan.cell_timeout,
                    run_timeout=plan.run_timeout,
                    startup_timeout=self.config.startup_timeout,
                    run_folder=plan.run_folder,
                    artifact_max_file_size=self.config.artifact_max_file_size,
                    artifact_max_run_size=self.config.artifact_max_run_size,
                    capture=plan.capture,
                    capture_seconds=self.config.capture_timeout,
                    capture_bytes=self.config.capture_max_size,
                    capture_functions=tuple(self.config.serve_functions),
                    preload=plan.preload,
                    preload_left_out=plan.preload_left_out,
                ),
            )
            for record in records
        ]

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
        in_place: bool = False,
        user: str | None = None,
    ) -> PreparedRun:
        """Check the request and record the run as queued. Bad input raises and stores nothing.
        ``in_place``: run in the project folder itself, not in a folder of its own; ``user``: who
        asked for it (None: ``default_user``)."""
        plan = self._plan(notebook, [parameters or {}], base, kernel_name, cell_timeout, run_timeout, in_place)
        choice = choose_backend(self.config, backend)
        if choice.name == "local":  # executed here, on a kernel started for it
            self._check_kernel(plan, kernel_name, installed_kernels(), "installed here")
        return self._record(plan, choice, tags, user=user)[0]

    def _check_kernel(self, plan: _Plan, requested: str | None, known: list[str] | None, where: str) -> None:
        """``unknown_kernel`` (400) when the backend has no kernel of the plan's name (``known``
        None: the backend cannot tell), before anything is recorded."""
        if known is None or plan.kernel_name in known:
            return
        if requested:
            what = f"kernel {plan.kernel_name!r}"
        elif self.config.kernel_name:
            what = f"kernel {plan.kernel_name!r} (c.MLXConfig.kernel_name)"
        else:
            what = f"the notebook's kernel {plan.kernel_name!r} (its metadata.kernelspec)"
        raise MLXError(
            "unknown_kernel",
            f"{what} is not {where}; kernels: {', '.join(known) or 'none'}: choose one with --kernel "
            "(REST: \"kernel\")",
        )

    def execute(
        self,
        prepared: PreparedRun,
        on_cell: ProgressCallback | None = None,
        executor: Executor | None = None,
        cancel: CancelToken | None = None,
    ) -> RunRecord:
        """Execute a prepared run now, on this thread, and record its outcome.

        ``executor`` None: a fresh local kernel started for this run alone.
        """
        from .provenance import kernel_environment, known_environment

        record = prepared.record
        cancel = cancel or CancelToken()
        environment: dict[str, Environment] = {}
        local = executor is None or isinstance(executor, LocalExecutor)
        reading_environment: threading.Thread | None = None
        if local:
            known = known_environment(prepared.task.kernel_name)
            if known is not None:
                environment["env"] = known
            else:  # read it off the critical path: overlaps with execution
                reading_environment = threading.Thread(
                    target=lambda: environment.update(env=kernel_environment(prepared.task.kernel_name)),
                    daemon=True,
                )
                reading_environment.start()
        files = None
        task = prepared.task
        if executor is None or executor.name != "gateway":  # a gateway's kernel runs in the gateway's folder
            files = RunFiles(self.project.root, self.config, record.id, task.run_folder, self.store.blobs.put_file,
                             self._input_hashes)
            try:
                task = replace(task, cwd=files.open().cwd_for(task.notebook))
            except RunFolderError as exc:
                return self._finish(record.id, _failed_to_start("RunFolderError", str(exc)))
        try:
            return self._execute_in(prepared, task, files, on_cell, executor, cancel, environment, reading_environment)
        finally:
            if files is not None:
                files.close()

    def _execute_in(self, prepared: PreparedRun, task: RunTask, files: RunFiles | None, on_cell: ProgressCallback | None,
                    executor: Executor | None, cancel: CancelToken, environment: dict[str, Environment],
                    reading_environment: threading.Thread | None) -> RunRecord:
        record = prepared.record
        started = time.time()
        self.store.mark_running(record.id, started)
        self._heartbeat.started(record.id)
        self._publish_run(record.id)
        last_write = [0.0]

        def progress(index: int, count: int) -> None:
            now = time.monotonic()
            if now - last_write[0] >= PROGRESS_WRITE_INTERVAL:  # the store sees it for other processes
                last_write[0] = now
                try:
                    self.store.set_progress(record.id, index, count)
                except Exception:  # progress is best effort; the outcome is what counts
                    pass
            self.events.publish(
                {"type": "progress", "run_id": record.id, "ref": record.ref, "sweep_id": record.sweep_id,
                 "cell": index + 1, "cells": count, "elapsed": round(time.time() - started, 3)}
            )
            if on_cell is not None:
                on_cell(index, count)

        try:
            if executor is None:
                result = execute_run(task, progress, cancel=cancel)
            else:
                result = executor.execute(task, progress, cancel)
        except BaseException:
            self._finish(record.id, _interrupted())
            raise
        if reading_environment is not None:
            reading_environment.join()
        outcome = _outcome(result, environment.get("env") or getattr(result, "environment", None))
        if result.modules_used is not None:  # what its next runs may start with
            self._learn_modules(record.notebook, task, result.modules_used, executor)
        outcome = replace(outcome, kernel_start=_kernel_start(result, executor))
        if result.state is not None or result.state_manifest is not None:
            outcome = replace(outcome, state_file=result.state, state_manifest=result.state_manifest)
        try:
            return self._finish_with_files(record.id, outcome, result, files)
        finally:
            if result.state is not None:
                result.state.unlink(missing_ok=True)

    def _learn_modules(self, notebook: str, task: RunTask, modules_used: list[str], executor: Executor | None) -> None:
        """Remember what a run ended with: the notebook's next runs start with it. On a server the
        kernel kept ready for the notebook is then one with that module set (the next run, not only
        the one after, starts warm), and the set just used is let go."""
        from .execute.preload import remember

        try:
            remember(self.project.root / STORE_DIRNAME / "warm", notebook, modules_used)
        except OSError:
            return
        if self.keep_warm and isinstance(executor, LocalExecutor):
            following = self._warm_modules(notebook, json.loads(task.source), self.project.absolute(notebook).parent)
            executor.follow(task.kernel_name, task.preload, following.get("preload", ()))

    def _finish_with_files(self, run_id: str, outcome: RunOutcome, result: RunResult, files: RunFiles | None) -> RunRecord:
        """Record the outcome with what the run wrote: here, or sent back from where it ran."""
        if result.collected is not None or result.collected_notes:  # it ran in a folder of its own elsewhere
            try:
                fields = collect_remote(result.collected, result.collected_notes, self.config, self.store.blobs.put_file)
                if files is not None:  # the project's fingerprint was taken here all the same
                    fields["inputs"] = files.inputs()
                return self._finish(run_id, replace(outcome, **fields))
            finally:
                if result.collected is not None:
                    shutil.rmtree(result.collected, ignore_errors=True)
        if files is not None:
            outcome = replace(outcome, **files.collect())
        return self._finish(run_id, outcome)

    def _finish(self, run_id: str, outcome: RunOutcome) -> RunRecord:
        """Record a run's outcome (it is no longer this process's to keep alive) and announce it."""
        try:
            final = self.store.finish_run(run_id, outcome)
        finally:
            self._heartbeat.discard([run_id])
        self._publish_run(final)
        if self.config.mlflow_tracking_uri:
            self._mlflow_exporter().submit(final)
        return final

    def _mlflow_exporter(self) -> Any:
        """Logs each finished run to c.MLXConfig.mlflow_tracking_uri, on a thread of its own."""
        with self._store_lock:
            if self._mlflow is None:
                from .mlflow_tracking import BackgroundExporter

                self._mlflow = BackgroundExporter(self, self.config.mlflow_tracking_uri, self.config.mlflow_experiment)
            return self._mlflow

    def _execute_queued(self, prepared: PreparedRun, executor: Executor, cancel: CancelToken) -> RunRecord:
        """What a queue worker does with a run: skip it if cancelled meanwhile, else execute it."""
        run_id = prepared.record.id
        try:
            if not cancel.cancelled and run_id in self.store.cancel_requests([run_id]):
                cancel.cancel("cancelled on request")
            if cancel.cancelled:
                return self._end_cancelled(run_id, cancel.reason)
            return self.execute(prepared, None, executor, cancel)
        except Exception:
            log.exception("run %s could not be executed", prepared.record.ref)
            raise

    def _end_cancelled(self, run_id: str, reason: str) -> RunRecord:
        """Record a run cancelled before it started; the one already recorded if it was (the
        cancel and the queue's worker may both get here)."""
        try:
            return self._finish(run_id, _cancelled(reason))
        except MLXError as exc:
            if exc.code != "conflict":
                raise
            return self.store.get_run(run_id)

    def _publish_run(self, run: RunRecord | str) -> None:
        try:
            record = run if isinstance(run, RunRecord) else self.store.get_run(run)
        except MLXError:
            return
        self.events.publish({"type": "run", "run": record.to_json()})

    def run(
        self, notebook: str | Path, parameters: dict[str, Any] | None = None, **options: Any
    ) -> RunRecord:
        """Run a notebook with parameters now, in this process, and return the recorded run."""
        on_cell = options.pop("on_cell", None)
        self.interrupt_orphans()
        return self.execute(self.prepare(notebook, parameters, **options), on_cell)

    def submit(
        self,
        notebook: str | Path,
        parameters: dict[str, Any] | None = None,
        *,
        backend: str | None = None,
        backend_address: str | None = None,
        backend_token: str | None = None,
        base: Path | None = None,
        tags: list[str] | tuple[str, ...] = (),
        kernel_name: str | None = None,
        cell_timeout: float | None = None,
        run_timeout: float | None = None,
        in_place: bool = False,
        user: str | None = None,
    ) -> RunRecord:
        """Queue one run on a backend and return it (queued) at once, recorded as ``user``'s
        (None: ``default_user``; the server passes the Jupyter user)."""
        return self._launch(
            notebook, [parameters or {}], None, backend, backend_address, backend_token,
            base, tags, kernel_name, cell_timeout, run_timeout, in_place, user,
        )[0]

    def sweep(
        self,
        notebook: str | Path,
        spec: dict[str, Any],
        *,
        confirm: bool = False,
        backend: str | None = None,
        backend_address: str | None = None,
        backend_token: str | None = None,
        base: Path | None = None,
        tags: list[str] | tuple[str, ...] = (),
        kernel_name: str | None = None,
        cell_timeout: float | None = None,
        run_timeout: float | None = None,
        in_place: bool = False,
        user: str | None = None,
    ) -> tuple[SweepRecord, list[RunRecord]]:
        """Queue a sweep: ``{"grid": {name: [values]}}`` or ``{"list": [{...}, ...]}``.

        Every parameter set is checked before anything is recorded; the runs share a sweep id
        (and ``user``, as ``submit``).
        """
        sets = expand(spec, confirm)
        runs = self._launch(
            notebook, sets, spec, backend, backend_address, backend_token,
            base, tags, kernel_name, cell_timeout, run_timeout, in_place, user,
        )
        return self.store.get_sweep(runs[0].sweep_id or ""), runs

    def _launch(
        self,
        notebook: str | Path,
        parameter_sets: list[dict[str, Any]],
        spec: dict[str, Any] | None,
        backend: str | None,
        backend_address: str | None,
        backend_token: str | None,
        base: Path | None,
        tags: list[str] | tuple[str, ...],
        kernel_name: str | None,
        cell_timeout: float | None,
        run_timeout: float | None,
        in_place: bool = False,
        user: str | None = None,
    ) -> list[RunRecord]:
        choice = choose_backend(self.config, backend, backend_address, backend_token, remote=self.remote_requests)
        plan = self._plan(notebook, parameter_sets, base, kernel_name, cell_timeout, run_timeout, in_place)
        executor = self.executor(choice)
        if plan.run_folder == "in-place" and spec is not None and len(parameter_sets) > 1 and executor.concurrency > 1:
            raise MLXError(
                "invalid_request",
                f"a sweep's runs in place would share the project's files ({executor.concurrency} at a time): "
                "give each its own folder (no --in-place, c.MLXConfig.run_folder) or run one at a time "
                "(--concurrency 1)",
            )
        executor.check()  # an unreachable backend records nothing
        where = "installed here" if choice.name == "local" else f"on the {choice.name} backend ({choice.address})"
        self._check_kernel(plan, kernel_name, executor.kernel_names(), where)
        self.interrupt_orphans()
        sweep = NewSweep(plan.notebook, choice.name, spec) if spec is not None else None
        prepared = self._record(plan, choice, tags, sweep, user=user)
        return self._enqueue(prepared, executor)

    def _enqueue(self, prepared: list[PreparedRun], executor: Executor) -> list[RunRecord]:
        if isinstance(executor, LocalExecutor):
            threads = threads_per_run(self.config.threads_per_run, len(prepared), executor.concurrency,
                                      default_concurrency())
            if threads:  # runs executing side by side share the cores (see execute/threads.py)
                prepared = [replace(run, task=replace(run.task, threads=threads)) for run in prepared]
            executor.prepare(len(prepared), prepared[0].task.kernel_name, prepared[0].task.preload)
        else:
            executor.prepare(len(prepared))
        for run in prepared:  # before a queue worker can publish "running"
            self._publish_run(run.record)
        self.queue.submit(prepared, executor)
        return [run.record for run in prepared]

    def wait(self, runs: list[RunRecord], timeout: float | None = None, poll: float = 0.5) -> list[RunRecord]:
        """Wait until ``runs`` are final (those of other processes by polling the store)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        futures = [f for f in (self.queue.future(r.id) for r in runs) if f is not None]
        wait_all(futures, timeout)
        current = [self.store.get_run(r.id) for r in runs]
        while any(r.status not in FINAL_STATUSES for r in current):
            if deadline is not None and time.monotonic() >= deadline:
                break
            time.sleep(poll)
            self.interrupt_orphans()  # the process running them may have died meanwhile
            current = [self.store.get_run(r.id) for r in current]
        return current

    def concurrency(
        self, backend: str | None = None, backend_address: str | None = None, backend_token: str | None = None
    ) -> int:
        """How many runs of ``backend`` (default: the configured one) execute at once here."""
        return self.executor(choose_backend(self.config, backend, backend_address, backend_token)).concurrency

    def cancel(self, target: str, base: Path | None = None, kind: str | None = None) -> list[RunRecord]:
        """Cancel a run or a whole sweep; returns the runs that were still queued or running."""
        runs = [r for r in self.resolve_runs(target, base, kind) if r.status not in FINAL_STATUSES]
        ids = [r.id for r in runs]
        self.store.request_cancel(ids)  # seen by whichever process runs them
        self.queue.cancel(ids, "cancelled on request")
        self.interrupt_orphans()  # runs whose process is gone cannot be stopped: they are over
        return [self.store.get_run(run_id) for run_id in ids]

    def requeue(
        self, target: str, base: Path | None = None, include_failed: bool = False, kind: str | None = None,
        user: str | None = None,
    ) -> list[RunRecord]:
        """Run again, as new versions, the interrupted or cancelled runs of a run or sweep
        (each once: a run already re-queued is not re-queued again).

        Each new run executes the stored source snapshot with the same parameters, on the same
        backend kind, in the same sweep, with ``parent_id`` naming the run it repeats; it is
        recorded as the run of ``user``, who asked for it again (None: ``default_user``).
        """
        self.interrupt_orphans()
        again = ("interrupted", "cancelled", "failed") if include_failed else ("interrupted", "cancelled")
        runs = [r for r in self.resolve_runs(target, base, kind) if r.status in again]
        done = self.store.requeued([r.id for r in runs])
        runs = [r for r in runs if r.id not in done]
        if not runs:
            raise MLXError("conflict", f"{target} has no {' or '.join(again)} runs to re-queue")
        launched: list[RunRecord] = []
        by_source: dict[tuple[str, str, str], list[RunRecord]] = {}
        for run in runs:
            by_source.setdefault((run.notebook, run.source_hash, run.backend), []).append(run)
        for (notebook, _, backend_name), group in by_source.items():
            source = self.store.source_notebook(group[0].id)
            parsed = json.loads(source)
            folder = self.project.absolute(notebook).parent
            plan = _Plan(
                notebook=notebook,
                source=source,
                parameter_sets=[EffectiveParameters(dict(r.parameters), list(r.overridden), list(r.expressions))
                                for r in group],
                cwd=folder if folder.is_dir() else self.project.root,
                kernel_name=kernel_name_of(parsed, self.config.kernel_name),
                cell_timeout=self.config.cell_timeout,
                run_timeout=self.config.run_timeout,
            )
            choice = choose_backend(self.config, backend_name)
            executor = self.executor(choice)
            executor.check()
            launched += self._enqueue(self._record(plan, choice, parents=group, user=user), executor)
        return launched

    def resolve_runs(self, target: str, base: Path | None = None, kind: str | None = None) -> list[RunRecord]:
        """The runs a user names: a run (``NOTEBOOK@vN`` or id) or a sweep id (``kind``: only one)."""
        if kind != "sweep":
            try:
                return [self.get_run(target, base)]
            except MLXError as exc:
                if kind == "run" or exc.code != "not_found" or not is_run_id(target):
                    raise
        sweep = self.get_sweep(target)
        return self.sweep_runs(sweep.id)

    def get_sweep(self, sweep_id: str) -> SweepRecord:
        if not is_run_id(sweep_id):
            raise MLXError("invalid_reference", f"{sweep_id!r} is not a sweep id")
        self.interrupt_orphans()  # a listing never shows a dead process's runs as running
        try:
            return self.store.get_sweep(sweep_id)
        except MLXError as exc:
            if exc.code == "not_found":
                raise MLXError("not_found", f"no run or sweep with id {sweep_id}") from None
            raise

    def sweep_runs(self, sweep_id: str) -> list[RunRecord]:
        runs: list[RunRecord] = []
        while True:
            page = self.store.list_runs(sweep_id=sweep_id, limit=MAX_PAGE, offset=len(runs))
            runs += page.runs
            if len(runs) >= page.total or not page.runs:
                return sorted(runs, key=lambda r: (r.notebook, r.version))

    def list_sweeps(self, notebook: str | None = None, limit: int = 50, offset: int = 0, base: Path | None = None) -> list[SweepRecord]:
        check_page(limit, offset)
        resolved = self.resolve_notebook(notebook, base) if notebook else None
        self.interrupt_orphans()
        return self.store.list_sweeps(resolved, limit, offset)

    def interrupt_orphans(self) -> list[str]:
        """Mark runs of dead processes on this host as interrupted, so none stay stuck, as ending
        at their last sign of life; announces each (the panel's event stream)."""
        interrupted = self.store.interrupt_orphans(socket.gethostname(), pid_alive)
        for run_id in interrupted:
            self._publish_run(run_id)
            if self.config.mlflow_tracking_uri:  # finished too: logged as any other (as KILLED)
                self._mlflow_exporter().submit(self.store.get_run(run_id))
        return interrupted

    def watch_orphans(self, interval: float = ORPHAN_CHECK_SECONDS) -> None:
        """Look for runs of dead processes every ``interval`` seconds, on a thread of its own,
        until ``close`` (a server notices a killed ``jupyter mlx sweep`` within seconds)."""
        if self._orphan_watch is None:
            self._orphan_watch = Periodic("mlx-orphan-watch", interval, self.interrupt_orphans)
            self._orphan_watch.start()

    def watch_store(self, interval: float | None = None) -> None:
        """Announce on the event stream the runs other processes write to the index (another
        user's server on the same PostgreSQL, a CLI), every ``interval`` seconds, until ``close``."""
        from .store_watch import STORE_WATCH_SECONDS, StoreWatch, announce

        if self._store_watch is None:
            watch = StoreWatch(lambda: self.store, announce(self.events))
            self._store_watch = Periodic("mlx-store-watch", interval or STORE_WATCH_SECONDS, watch.look)
            self._store_watch.start()

    # -- reading ------------------------------------------------------------------------
    def resolve_notebook(self, name: str, base: Path | None = None) -> str:
        """The stored notebook a user-typed name refers to (a path, or a unique file name)."""
        check_path_text(name)
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

        self.interrupt_orphans()
        run = self.get_run(ref, base)
        details = run.to_json()
        details["environment"] = (
            asdict(self.store.environment(run.environment_id)) if run.environment_id else None
        )
        details["cell_timings"] = [
            {**asdict(t), "duration": t.duration} for t in run.cell_timings
        ]
        details["metric_history"] = [asdict(m) for m in self.store.metric_history(run.id)]
        details["artifacts"] = [artifact.to_json() for artifact in self.store.artifacts(run.id)]
        details["state"] = run.state
        return details

    def run_files(self, ref: str, base: Path | None = None) -> dict[str, Any]:
        """What a run wrote (its artifacts), what it says about them, and the project's files it saw."""
        run = self.get_run(ref, base)
        inputs = self.store.inputs(run.id)
        return {
            "ref": run.ref,
            "run_id": run.id,
            "run_folder": run.run_folder,
            "artifacts": [artifact.to_json() for artifact in self.store.artifacts(run.id)],
            "notes": run.notes,
            "inputs": None if inputs is None else [f.to_json() for f in inputs],
        }

    def artifact(self, ref: str, path: str, base: Path | None = None) -> tuple["Artifact", Iterator[bytes]]:
        """One artifact of a run and its bytes, in chunks: by its path, or the end of it after a ``/``
        when that names one artifact (``predictions.csv`` for ``examples/predictions.csv``);
        ``not_found`` for any other path."""
        run = self.get_run(ref, base)
        artifacts = self.store.artifacts(run.id)
        found = [a for a in artifacts if a.path == path] or [a for a in artifacts if a.path.endswith("/" + path)]
        if len(found) > 1:
            raise MLXError("invalid_request", f"{path!r} names {len(found)} artifacts of {run.ref} "
                                              f"({', '.join(a.path for a in found)}): give its whole path")
        if not found:
            raise MLXError("not_found", f"{run.ref} has no artifact {path!r}: `jupyter mlx artifacts {run.ref}` lists them")
        return found[0], self.store.blobs.chunks(found[0].sha256)

    def artifact_preview(self, ref: str, path: str, base: Path | None = None) -> dict[str, Any]:
        """What the panel shows of an artifact (see ``workdir.preview``)."""
        from .workdir.preview import preview

        artifact, _ = self.artifact(ref, path, base)
        return preview(artifact, lambda: self.store.blobs.get(artifact.sha256))

    def list_runs(
        self,
        notebook: str | None = None,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
        base: Path | None = None,
        sweep_id: str | None = None,
        *,
        sort: str | None = None,
        order: str | None = None,
        filter: str | None = None,
        keys: bool = False,
    ) -> RunPage:
        """A page of runs, newest first unless ``sort``/``order`` say otherwise, of the runs that
        pass ``filter`` (see ``RunStore.list_runs``); ``notebook`` may be a path or a unique file name."""
        resolved = self.resolve_notebook(notebook, base) if notebook else None
        self.interrupt_orphans()
        return self.store.list_runs(
            resolved, status, limit, offset, sweep_id, sort=sort, order=order, filter=filter, keys=keys
        )

    def list_notebooks(self) -> list[NotebookSummary]:
        return self.store.list_notebooks()

    def executed_notebook(self, ref: str, base: Path | None = None) -> dict[str, Any]:
        return self.store.executed_notebook(self.get_run(ref, base).id)

    def delete_run(self, ref: str, base: Path | None = None) -> RunRecord:
        """Delete a run and the blobs no other run uses; returns what was deleted."""
        run = self.get_run(ref, base)
        if run.status in ("queued", "running") and (pid_alive(run.pid) or (run.host and run.host != socket.gethostname())):
            raise MLXError("conflict", f"{run.ref} is {run.status}; cancel it before deleting it")
        self.store.delete_run(run.id)
        return run

    # -- compare ---------------------------------------------------------------------------
    def compare_options(self, overrides: dict[str, Any] | None = None) -> "CompareOptions":
        """The defaults, then the project's ``MLXConfig.compare``, then ``overrides``."""
        from .diff.options import CompareOptions

        return CompareOptions().with_overrides(dict(self.config.compare)).with_overrides(overrides)

    def compare(self, a: str, b: str, overrides: dict[str, Any] | None = None, base: Path | None = None,
                anywhere: bool = False) -> "Comparison":
        """Compare two runs (``NOTEBOOK@vN``, run ids) or notebook files; ``anywhere`` lets files
        lie outside the project (the CLI), else they must be in it (REST)."""
        from .diff.comparison import compare_sides

        side_a = self._compare_side("A", a, base, anywhere)
        side_b = self._compare_side("B", b, base, anywhere)
        return compare_sides(side_a, side_b, self.compare_options(overrides))

    def _compare_side(self, label: str, text: str, base: Path | None, anywhere: bool) -> "Side":
        """A notebook file when ``text`` names one (anywhere, or inside the project), else a finished run."""
        from .diff.sides import file_side, is_notebook_file, require_finished, run_side

        folder = base or self.project.root
        if is_notebook_file(text, folder):
            if not anywhere:
                text = self.project.notebook_path(text, base)  # refuses files outside the project
                folder = self.project.root
            return file_side(label, text, folder)
        if "@" not in text and text.endswith(".ipynb"):
            raise MLXError("not_found", f"notebook {text} does not exist (a run is named {text}@vN)")
        run = self.get_run(text, base)
        require_finished(run)
        environment = self.store.environment(run.environment_id) if run.environment_id else None
        return run_side(label, run, self.store.executed_notebook(run.id), self.store.metric_history(run.id), environment,
                        artifacts=self.store.artifacts(run.id), inputs=self.store.inputs(run.id),
                        read_artifact=lambda artifact: self.store.blobs.get(artifact.sha256))

    def approve_baseline(self, ref: str, note: str = "", base: Path | None = None) -> Baseline:
        """Make a finished run its notebook's baseline (what ``check`` compares with)."""
        return self.store.set_baseline(self.get_run(ref, base).id, note)

    def baseline(self, notebook: str, base: Path | None = None) -> Baseline:
        """The approved baseline of ``notebook`` (a path, a unique file name, or a run ref)."""
        name = self.get_run(notebook, base).notebook if "@" in notebook else self.resolve_notebook(notebook, base)
        found = self.store.get_baseline(name)
        if found is None:
            raise MLXError("not_found", f"{name} has no baseline: approve one with jupyter mlx baseline {name}@vN")
        return found

    def launch_form(self, notebook: str, base: Path | None = None) -> dict[str, Any]:
        """What a launch form needs: the notebook's parameters (name, type, default, the comment as
        help; ``expression``: the source text of a default that is not a JSON literal, whose
        ``default`` is then null) and the backends this server can use (gateway and dask where configured)."""
        from .execute.parameters import declared_parameters

        name = self.project.notebook_path(notebook, base)
        _, nb = self.project.read_notebook(name)
        parameters = [
            {"name": p.name, "type": p.type_name, "default": None if p.expression is not None else p.default,
             "expression": p.expression, "help": p.help}
            for p in declared_parameters(nb).values()
        ]
        backends = [{"name": "local", "concurrency": self.config.concurrency or os.cpu_count() or 1}]
        if self.config.gateway_url:
            backends.append({"name": "gateway", "address": self.config.gateway_url, "concurrency": self.config.gateway_concurrency})
        if self.config.dask_scheduler:
            backends.append({"name": "dask", "address": self.config.dask_scheduler})
        return {"notebook": name, "parameters": parameters, "backends": backends,
                "default_backend": self.config.default_backend or "local"}

    # -- serve ---------------------------------------------------------------------------
    def served_code(self, target: str, base: Path | None = None) -> "ServedCode":
        """What an endpoint of ``target`` runs: a run's (``train.ipynb@v5``) source snapshot with its
        parameters, or a notebook file (``api.ipynb``) as it is now."""
        from .serve.source import CapturedState, ServedCode, code_cells

        if names_a_run(target):
            run = self.get_run(target, base)
            notebook = json.loads(self.store.source_notebook(run.id))
            state = None
            if run.state is not None:
                digest = run.state_hash
                state = CapturedState(digest, run.state, lambda: self.store.blobs.chunks(digest or ""))
            # the overrides only, as papermill injects them: defaults stay the notebook's own code
            return ServedCode(run.notebook, run.ref, run.id, code_cells(notebook, run.overrides), run.status, state)
        name = self.project.notebook_path(target, base)
        _, notebook = self.project.read_notebook(name)
        return ServedCode(name, None, None, code_cells(notebook, {}))

    @property
    def endpoints(self) -> "EndpointManager":
        """The project's managed endpoints (deploy, redeploy, roll back, stop, try)."""
        from .serve.manager import EndpointManager

        return EndpointManager(self.project.root / STORE_DIRNAME / "endpoints", self.project.root, self.served_code)

    def serve(self, target: str, *, base: Path | None = None, announce: Callable[[str], None] = print,
              **settings: Any) -> None:
        """Serve ``target`` in this process's foreground until SIGINT/SIGTERM (``jupyter mlx serve``);
        ``settings`` as ``endpoints.deploy`` takes them; ``announce`` gets what to tell the user."""
        from .serve.foreground import serve_in_foreground

        serve_in_foreground(self.served_code(target, base), root=self.project.root, announce=announce, **settings)

    def export_endpoint(self, target: str, output: Path, function: str | None = None, force: bool = False,
                        base: Path | None = None, reexecute: bool = False, format: str = "service") -> Path:
        """A standalone service folder of ``target`` (see ``serve.export``), or with ``format="mlflow"``
        an MLflow model of ``function`` (``serve.mlflow_export``), its requirements pinned to the
        versions the run used."""
        from .serve.export import export_endpoint
        from .serve.mlflow_export import export_mlflow

        if format not in ("service", "mlflow"):
            raise MLXError("invalid_request", f"the export format is service or mlflow, not {format!r}")
        if format == "mlflow" and (not function or reexecute):
            raise MLXError("invalid_request", "--format mlflow needs --function NAME, and serves the state the run "
                           "captured (no --reexecute)")

        code = self.served_code(target, base)
        packages: dict[str, str] = {}
        if code.run_id is not None:
            run = self.store.get_run(code.run_id)
            if run.environment_id:
                packages = dict(self.store.environment(run.environment_id).packages)
        if format == "mlflow":
            return export_mlflow(code, output, function or "", force, packages)
        return export_endpoint(code, output, function, force, packages, reexecute)

    def runs_table(self, notebook: str | None = None, sweep_id: str | None = None, status: str | None = None,
                   limit: int = 50, base: Path | None = None, runs: list[str] | None = None) -> "RunsTable":
        """The newest ``limit`` runs (of a notebook, a sweep), or exactly ``runs`` (refs or ids, in
        that order), with parameters and metrics as columns."""
        from .diff.table import RunsTable

        if runs:
            if len(runs) > MAX_TABLE_RUNS:
                raise MLXError("invalid_request", f"at most {MAX_TABLE_RUNS} runs in a table, not {len(runs)}")
            chosen = [self.get_run(ref, base) for ref in dict.fromkeys(runs)]
        else:
            chosen = self.list_runs(notebook, status, limit, 0, base, sweep_id).runs
        return RunsTable.of(chosen, self.store.artifact_hashes([run.id for run in chosen]))

    def metric_series_chart(self, table: "RunsTable", metric: str) -> Any:
        """A matplotlib Figure of ``metric``'s logged series, a line per run of ``table``."""
        from .diff.table import plot_series

        histories = {run.ref: self.store.metric_history(run.id) for run in table.runs}
        lengths = [sum(point.name == metric for point in history) for history in histories.values()]
        if not any(lengths):
            raise MLXError("not_found", f"none of these runs logged {metric!r}")
        if max(lengths) < 2:
            raise MLXError(
                "not_found",
                f"{metric} was logged once per run: no series to draw (log_metric(name, value, step=i) logs one)",
            )
        return plot_series(metric, histories)

    def check(self, ref: str, baseline: str | None = None, overrides: dict[str, Any] | None = None,
              base: Path | None = None) -> "Comparison":
        """Compare a run with its notebook's approved baseline (or ``baseline``): the comparison's
        ``summary()["unexpected"]`` lists what fails the check."""
        run = self.get_run(ref, base)
        against = baseline or self.baseline(run.notebook).ref
        return self.compare(against, run.ref, overrides, base)


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



def _failed_to_start(ename: str, message: str) -> RunOutcome:
    from .store import RunError

    return RunOutcome(status="failed", notebook=None, started_at=None, finished_at=time.time(),
                      error=RunError(ename, message))


def _cancelled(reason: str) -> RunOutcome:
    from .store import RunError

    return RunOutcome(
        status="cancelled",
        notebook=None,
        started_at=None,
        finished_at=time.time(),
        error=RunError("RunCancelled", reason or "the run was cancelled before it started"),
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


def _kernel_start(result: RunResult, executor: Executor | None) -> dict[str, Any] | None:
    """How the run's kernel started (``RunRecord.kernel_start``); None when it never had one."""
    waited = result.kernel_wait
    if waited is None:
        return None
    start: dict[str, Any] = {"warm": False, "modules": [], "left_out": {}, "cold": None, "waited": waited,
                             "threads": result.threads}
    warm = result.warm
    if warm is not None:  # forked from a zygote: with the notebook's modules imported, or why not
        modules, left_out, cold = list(warm.get("modules") or []), dict(warm.get("left_out") or {}), warm.get("cold")
        if cold is None and not modules:
            cold = ("none of its modules could be preloaded" if left_out
                    else "no module to preload (the notebook imports none that may be, or warm runs are off)")
        return {**start, "warm": cold is None, "modules": modules, "left_out": left_out, "cold": cold}
    if executor is None:
        return {**start, "cold": "not forked from a zygote (a kernel started for this run alone)"}
    if executor.name == "local":
        return {**start, "cold": "not forked from a zygote (c.MLXConfig.fork_kernels is off, or not an ipykernel)"}
    return start  # a gateway's or a Dask worker's kernel: how it started is theirs to know
