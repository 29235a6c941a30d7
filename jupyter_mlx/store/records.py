"""Plain records crossing the store boundary (ORM rows never leave the store)."""
from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

from ..metrics import Metric

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "interrupted")
FINAL_STATUSES = ("succeeded", "failed", "cancelled", "interrupted")


def iso(timestamp: float | None) -> str | None:
    """Epoch seconds as an ISO 8601 UTC string (what JSON and the panel show)."""
    if timestamp is None:
        return None
    moment = dt.datetime.fromtimestamp(timestamp, tz=dt.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class RunError:
    """Where and how a run failed: the fields a UI links to."""

    ename: str
    evalue: str
    cell_index: int | None = None
    traceback: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Environment:
    """What the notebook ran on; stored once per distinct fingerprint."""

    python: str
    platform: str
    kernel: str
    packages: dict[str, str]

    @cached_property
    def fingerprint(self) -> str:
        import hashlib
        import json

        canonical = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class NewRun:
    """What is known of a run when it is queued."""

    notebook: str
    source: bytes
    parameters: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    backend: str = "local"
    host: str = ""
    pid: int | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None
    sweep_id: str | None = None
    parent_id: str | None = None
    # the names ``parameters`` holds because the request set them (None: all of them), and those
    # whose value is the source text of a default expression (see execute.parameters)
    overridden: list[str] | None = None
    expressions: list[str] = field(default_factory=list)
    user: str | None = None  # who asked for it (see RunRecord.user)


@dataclass(frozen=True)
class CellTiming:
    cell_index: int
    started_at: float | None
    finished_at: float | None

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


@dataclass(frozen=True)
class Artifact:
    """A file a run created or changed, kept in the blob store under its SHA-256.

    ``path`` is relative to the project's root, with ``/`` separators (``examples/model.pkl``).
    """

    path: str
    size: int
    sha256: str
    media_type: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class InputFile:
    """A project file as it was when a run started. ``sha256`` is None for a file above the
    fingerprint's size limit: then only its size and modification time say whether it changed."""

    path: str
    size: int
    mtime: float
    sha256: str | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RunOutcome:
    """What execution produced; the store records all of it in one transaction."""

    status: str
    notebook: dict[str, Any] | None
    started_at: float | None
    finished_at: float
    cell_timings: list[CellTiming] = field(default_factory=list)
    error: RunError | None = None
    metrics: list[Metric] = field(default_factory=list)
    environment: Environment | None = None
    # the files the run wrote (their bytes are in ``artifact_files``: path -> file on disk to store),
    # the project's files when it started, and what the run should say about them (skipped files)
    artifacts: list[Artifact] = field(default_factory=list)
    artifact_files: dict[str, str] = field(default_factory=dict)
    inputs: list[InputFile] | None = None
    notes: list[str] = field(default_factory=list)
    run_folder: str | None = None  # how its folder was made: overlay, copy, in-place, remote
    # the state its functions need (a file to store) and what is in it (see execute.capture)
    state_file: Any = None
    state_manifest: dict[str, Any] | None = None
    kernel_start: dict[str, Any] | None = None  # how its kernel started (see RunRecord.kernel_start)


@dataclass(frozen=True)
class RunRecord:
    """A stored run: one numbered, immutable execution of a notebook."""

    id: str
    notebook: str
    version: int
    status: str
    parameters: dict[str, Any]  # every parameter's effective value (see ``overridden``)
    source_hash: str
    notebook_hash: str | None
    git_commit: str | None
    git_dirty: bool | None
    environment_id: str | None
    backend: str
    host: str
    pid: int | None
    queued_at: float
    started_at: float | None
    finished_at: float | None
    cell_timings: list[CellTiming]
    error: RunError | None
    metrics: dict[str, float]
    tags: list[str]
    sweep_id: str | None
    parent_id: str | None
    cancel_requested: bool = False
    current_cell: int | None = None  # 0-based index of the cell running now
    cell_count: int | None = None
    overridden: list[str] = field(default_factory=list)  # parameters the request set; others: defaults
    expressions: list[str] = field(default_factory=list)  # parameters recorded as a default's source text
    run_folder: str | None = None  # overlay | copy | in-place | remote; None: before run folders existed
    inputs_hash: str | None = None  # the blob of the project's files (InputFile list) when it started
    notes: list[str] = field(default_factory=list)  # what it says about its files (skipped artifacts)
    state_hash: str | None = None  # the blob of the captured state its functions need
    state: dict[str, Any] | None = None  # the capture's manifest: functions, objects, not capturable, packages
    # how its kernel started: {"warm": bool, "modules": [...], "left_out": {module: why}, "cold": why
    # or None, "waited": seconds}; None when it had no kernel (or ran before this was recorded)
    kernel_start: dict[str, Any] | None = None
    # who asked for it: the Jupyter identity (REST, the panel), the OS user or c.MLXConfig.user (CLI,
    # magic); None for runs recorded before people were (revision 0010)
    user: str | None = None
    # where it was logged outside the store: {"mlflow": {tracking URI: {"run_id": ..., ...}}}
    exports: dict[str, Any] | None = None
    changed_at: float | None = None  # its last write (store_watch.py follows them)

    @property
    def ref(self) -> str:
        return f"{self.notebook}@v{self.version}"

    @property
    def overrides(self) -> dict[str, Any]:
        """The parameter values the request set: what papermill injects to run it again."""
        return {name: self.parameters[name] for name in self.overridden if name in self.parameters}

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    def to_json(self) -> dict[str, Any]:
        """The run as the REST API and ``--json`` show it."""
        return {
            "id": self.id,
            "notebook": self.notebook,
            "version": self.version,
            "ref": self.ref,
            "status": self.status,
            "parameters": self.parameters,
            "overridden": self.overridden,
            "expressions": self.expressions,
            "metrics": self.metrics,
            "tags": self.tags,
            "queued_at": iso(self.queued_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "duration": self.duration,
            "error": asdict(self.error) if self.error else None,
            "git": None
            if self.git_commit is None
            else {"commit": self.git_commit, "dirty": self.git_dirty},
            "backend": self.backend,
            "host": self.host,
            "sweep_id": self.sweep_id,
            "parent_id": self.parent_id,
            "source_hash": self.source_hash,
            "progress": self.progress,
            "cancel_requested": self.cancel_requested,
            "run_folder": self.run_folder,
            "notes": self.notes,
            "kernel_start": self.kernel_start,
            "user": self.user,
            "exports": self.exports or {},
        }

    @property
    def progress(self) -> dict[str, int] | None:
        """``{"cell": i, "cells": n}`` (1-based) while running, else None."""
        if self.status != "running" or self.current_cell is None or not self.cell_count:
            return None
        return {"cell": self.current_cell + 1, "cells": self.cell_count}


@dataclass(frozen=True)
class RunPage:
    """A page of a listing; ``total`` counts every run the listing matches.

    ``keys``, when asked for: ``{"parameters": [names], "metrics": [names]}``, sorted, over the
    runs of the listing's notebook/status/sweep (whatever its filter).
    """

    runs: list[RunRecord]
    total: int
    limit: int
    offset: int
    keys: dict[str, list[str]] | None = None

    def to_json(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "runs": [run.to_json() for run in self.runs],
            "total": self.total,
            "limit": self.limit,
            "offset": self.offset,
        }
        if self.keys is not None:
            answer["keys"] = self.keys
        return answer


@dataclass(frozen=True)
class NewSweep:
    """A group of runs of one notebook over a parameter grid or list."""

    notebook: str
    backend: str
    spec: dict[str, Any]  # {"grid": {name: [values]}} or {"list": [{...}, ...]}


@dataclass(frozen=True)
class SweepRecord:
    id: str
    notebook: str
    created_at: float
    backend: str
    spec: dict[str, Any]
    size: int
    counts: dict[str, int]  # runs per status, re-queued ones included
    superseded: dict[str, int] = field(default_factory=dict)  # of those, runs re-queued, per status

    @property
    def current(self) -> dict[str, int]:
        """Runs per status, without the re-queued ones: each is superseded by the run repeating it."""
        left = {status: count - self.superseded.get(status, 0) for status, count in self.counts.items()}
        return {status: count for status, count in left.items() if count > 0}

    @property
    def status(self) -> str:
        """Of the current runs: running while any is queued or running; else succeeded only if all
        succeeded, else the worst of failed, interrupted and cancelled."""
        current = self.current
        if current.get("queued") or current.get("running"):
            return "running"
        if current.get("succeeded", 0) == sum(current.values()):
            return "succeeded"
        for status in ("failed", "interrupted", "cancelled"):
            if current.get(status):
                return status
        return "succeeded"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "notebook": self.notebook,
            "created_at": iso(self.created_at),
            "backend": self.backend,
            "spec": self.spec,
            "size": self.size,
            "counts": self.counts,
            "superseded": self.superseded,
            "status": self.status,
        }


@dataclass(frozen=True)
class NotebookSummary:
    notebook: str
    runs: int
    last_version: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Baseline:
    """The run a notebook's later runs are checked against, and when it was approved."""

    notebook: str
    run_id: str
    version: int
    approved_at: float
    note: str = ""

    @property
    def ref(self) -> str:
        return f"{self.notebook}@v{self.version}"

    def to_json(self) -> dict[str, Any]:
        return {"notebook": self.notebook, "run_id": self.run_id, "version": self.version, "ref": self.ref,
                "approved_at": iso(self.approved_at), "note": self.note}
