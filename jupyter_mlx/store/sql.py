"""``SqlRunStore``: the run index in SQL (SQLite by default) and outputs in a blob store."""
from __future__ import annotations

import time
import uuid
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Iterator

import sqlalchemy as sa

from ..errors import MLXError
from ..metrics import Metric, summarize
from . import migrate
from .base import RunStore
from .blobs import BlobStore, content_hash
from .notebook_blobs import join_notebook, skeleton_refs, split_notebook
from .records import (
    FINAL_STATUSES,
    Artifact,
    Baseline,
    CellTiming,
    Environment,
    InputFile,
    NewRun,
    NewSweep,
    NotebookSummary,
    RunError,
    RunOutcome,
    RunPage,
    RunRecord,
    SweepRecord,
)
from .run_query import RunQuery
from .sql_query import SqlRunQuery
from .tables import artifacts, baselines, blob_refs, environments, metrics, notebooks, runs, sweeps

_WRITE = "jupyter_mlx_write"


def _sqlite_engine(url: str) -> sa.Engine:
    """A SQLite engine in WAL mode whose write transactions take the lock up front.

    ``BEGIN IMMEDIATE`` makes concurrent writers (several processes) wait their turn
    instead of failing on a lock upgrade; readers never block in WAL mode.
    """
    engine = sa.create_engine(url, connect_args={"timeout": 60})

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # transactions are begun below, not by pysqlite
        cursor = dbapi_connection.cursor()
        if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            cursor.execute("PRAGMA journal_mode=WAL")  # once per database file: it persists
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get(_WRITE) else "BEGIN")

    return engine


# PostgreSQL: every write transaction takes this lock first (released at its end), as SQLite's
# BEGIN IMMEDIATE takes the database's: one writer at a time, so a notebook's versions are
# allocated gap-free and unique, and blob reference counts never race. Readers never wait.
_WRITE_LOCK_KEY = 0x6D6C78  # "mlx"
CONNECT_TIMEOUT = 10  # seconds: an unreachable database server is said, not waited for


def _postgresql_engine(url: str) -> sa.Engine:
    """A PostgreSQL engine whose JSON keeps NaN and infinities (which JSON, and so PostgreSQL's
    ``json``, lacks: a diverged loss is a metric like any other) as tagged objects."""
    return sa.create_engine(url, json_serializer=_dumps_tagged, json_deserializer=_loads_tagged, pool_pre_ping=True,
                            connect_args={"connect_timeout": CONNECT_TIMEOUT})


_NON_FINITE_TAG = "$mlx_float"


def _tag_non_finite(value: Any) -> Any:
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return {_NON_FINITE_TAG: repr(value)}  # 'nan', 'inf', '-inf'
    if isinstance(value, dict):
        return {key: _tag_non_finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_tag_non_finite(item) for item in value]
    return value


def _dumps_tagged(value: Any) -> str:
    import json

    try:
        return json.dumps(value, allow_nan=False)
    except ValueError:  # a non-finite float somewhere: the rare case pays for the walk
        return json.dumps(_tag_non_finite(value), allow_nan=False)


def _untag(value: dict[str, Any]) -> Any:
    if len(value) == 1 and isinstance(value.get(_NON_FINITE_TAG), str):
        return float(value[_NON_FINITE_TAG])
    return value


def _loads_tagged(text: str | bytes) -> Any:
    import json

    tagged = _NON_FINITE_TAG in (text.decode() if isinstance(text, bytes) else text)
    return json.loads(text, object_hook=_untag) if tagged else json.loads(text)


def display_url(url: str) -> str:
    """A store URL without its password (for messages and logs)."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url


def create_engine(url: str) -> sa.Engine:
    """The engine of a run index: SQLite (its folder made, WAL, write lock up front), PostgreSQL
    (NaN kept, a connect timeout), or any other SQLAlchemy URL as it is."""
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        return _sqlite_engine(url)
    if sa.engine.make_url(url).get_backend_name() == "postgresql":
        return _postgresql_engine(url)
    return sa.create_engine(url)


def cannot_open(url: str, exc: sa.exc.OperationalError) -> MLXError:
    """The error of an index that cannot be opened: its URL without password, the driver's first line."""
    text = str(exc.orig).strip()
    reason = text.splitlines()[0] if text else type(exc.orig).__name__
    return MLXError("store_error", f"cannot open the run store at {display_url(url)}: {reason}")


def index_revision(url: str) -> str | None:
    """The schema revision of the index at ``url`` without opening (or migrating) it as a store
    (None: a new, empty one)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return migrate.current_revision(conn)
    except sa.exc.OperationalError as exc:
        raise cannot_open(url, exc) from None
    finally:
        engine.dispose()


class SqlRunStore(RunStore):
    """The one store implementation: SQLAlchemy for the index, files for blobs."""

    def __init__(self, url: str, blob_dir: Path, migrate: bool = True) -> None:
        """``migrate``: bring an index at an older schema revision up to date (else refuse it)."""
        self.url = url
        self.migrate = migrate
        # listing scope -> (its runs' fingerprint, their parameter and metric names): see _keys
        self._keys_cache: dict[tuple[Any, ...], tuple[tuple[Any, ...], dict[str, list[str]]]] = {}
        self.blobs = BlobStore(blob_dir)
        self._engine = create_engine(url)
        self._ensure_schema()

    def close(self) -> None:
        self._engine.dispose()

    # -- transactions -------------------------------------------------------------------
    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with self._engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        with self._engine.connect() as conn:
            conn.info[_WRITE] = True
            try:
                with conn.begin():
                    if conn.dialect.name == "postgresql":
                        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _WRITE_LOCK_KEY})
                    yield conn
            finally:
                conn.info.pop(_WRITE, None)

    def _ensure_schema(self) -> None:
        with self._opening_lock():
            self._check_or_migrate()

    @contextmanager
    def _opening_lock(self) -> Iterator[None]:
        """Across processes, one at a time sets up a new SQLite file (WAL mode) and migrates it.

        SQLite answers "database is locked" at once, without waiting, to a connection switching a
        fresh file to WAL while another one is doing the same.
        """
        database = sa.engine.make_url(self.url).database if self.url.startswith("sqlite") else None
        try:
            import fcntl
        except ImportError:  # not on POSIX: no lock file (the race is rare and reported)
            fcntl = None  # type: ignore[assignment]
        if not database or database == ":memory:" or fcntl is None:
            yield
            return

        with open(f"{database}.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def revision(self) -> str | None:
        """The index's schema revision."""
        with self._read() as conn:
            return migrate.current_revision(conn)

    @property
    def display_url(self) -> str:
        """The URL as messages show it: without its password."""
        return display_url(self.url)

    def _check_or_migrate(self) -> None:
        try:
            with self._read() as conn:
                if migrate.check_revision(migrate.current_revision(conn), self.display_url, self.migrate):
                    return
            with self._write() as conn:  # re-read under the write lock: one process migrates
                if not migrate.check_revision(migrate.current_revision(conn), self.display_url, self.migrate):
                    migrate.upgrade(conn, blobs=self.blobs)
        except sa.exc.OperationalError as exc:
            self._engine.dispose()
            raise cannot_open(self.url, exc) from None

    # -- writes -------------------------------------------------------------------------
    def create_runs(self, news: list[NewRun], sweep: NewSweep | None = None) -> list[RunRecord]:

        sources = {content_hash(new.source): new.source for new in news}
        for digest, data in sources.items():  # outside the lock: the slow part
            self.blobs.write(digest, data)
        now = time.time()
        sweep_id = uuid.uuid4().hex if sweep is not None else None
        run_ids = [uuid.uuid4().hex for _ in news]
        with self._write() as conn:
            self._ensure_blobs(sources)
            if sweep is not None:
                conn.execute(
                    sweeps.insert().values(
                        id=sweep_id,
                        notebook_id=self._notebook_id(conn, sweep.notebook),
                        created_at=now,
                        backend=sweep.backend,
                        spec=sweep.spec,
                        size=len(news),
                    )
                )
            rows = []
            for run_id, new in zip(run_ids, news):
                notebook_id, version = self._allocate_version(conn, new.notebook)
                rows.append(
                    dict(
                        id=run_id,
                        notebook_id=notebook_id,
                        version=version,
                        status="queued",
                        parameters=new.parameters,
                        overridden=list(new.parameters) if new.overridden is None else list(new.overridden),
                        expressions=list(new.expressions),
                        source_hash=content_hash(new.source),
                        git_commit=new.git_commit,
                        git_dirty=new.git_dirty,
                        backend=new.backend,
                        host=new.host,
                        pid=new.pid,
                        queued_at=now,
                        alive_at=now,
                        changed_at=now,
                        cell_timings=[],
                        metrics={},
                        tags=list(new.tags),
                        sweep_id=sweep_id or new.sweep_id,
                        parent_id=new.parent_id,
                        user=new.user,
                    )
                )
            if rows:
                conn.execute(runs.insert(), rows)
                self._add_refs(conn, Counter(r["source_hash"] for r in rows))
            records = conn.execute(self._select_runs().where(runs.c.id.in_(run_ids))).all()
        by_id = {row.id: _record(row) for row in records}
        return [by_id[run_id] for run_id in run_ids]

    def _notebook_id(self, conn: sa.Connection, notebook: str) -> int:
        row = conn.execute(sa.select(notebooks.c.id).where(notebooks.c.path == notebook)).first()
        if row is not None:
            return row.id
        return conn.execute(notebooks.insert().values(path=notebook, next_version=1)).inserted_primary_key[0]

    def request_cancel(self, run_ids: list[str]) -> list[str]:
        if not run_ids:
            return []
        with self._write() as conn:
            open_runs = conn.execute(
                sa.select(runs.c.id).where(runs.c.id.in_(run_ids), runs.c.status.in_(("queued", "running")))
            ).scalars().all()
            if open_runs:
                conn.execute(runs.update().where(runs.c.id.in_(open_runs)).values(cancel_requested=True,
                                                                                   changed_at=time.time()))
        return list(open_runs)

    def cancel_requests(self, run_ids: list[str]) -> set[str]:
        if not run_ids:
            return set()
        with self._read() as conn:
            return set(
                conn.execute(
                    sa.select(runs.c.id).where(runs.c.id.in_(run_ids), runs.c.cancel_requested.is_(True))
                ).scalars()
            )

    def set_progress(self, run_id: str, cell_index: int, cell_count: int) -> None:

        with self._write() as conn:
            conn.execute(
                runs.update()
                .where(runs.c.id == run_id, runs.c.status == "running")
                .values(current_cell=cell_index, cell_count=cell_count, alive_at=time.time(), changed_at=time.time())
            )

    def heartbeat(self, run_ids: list[str], at: float) -> None:
        if not run_ids:
            return
        with self._write() as conn:
            conn.execute(
                runs.update()
                .where(runs.c.id.in_(run_ids), runs.c.status.in_(("queued", "running")))
                .values(alive_at=at)
            )

    def _allocate_version(self, conn: sa.Connection, notebook: str) -> tuple[int, int]:
        """Take the notebook's next version under the write lock: never repeated, never racing."""
        row = conn.execute(
            sa.select(notebooks.c.id, notebooks.c.next_version).where(notebooks.c.path == notebook)
        ).first()
        if row is None:
            notebook_id = conn.execute(
                notebooks.insert().values(path=notebook, next_version=2)
            ).inserted_primary_key[0]
            return notebook_id, 1
        conn.execute(
            notebooks.update()
            .where(notebooks.c.id == row.id)
            .values(next_version=notebooks.c.next_version + 1)
        )
        return row.id, row.next_version

    def _ensure_blobs(self, blobs: dict[str, bytes], dictionaries: dict[str, str] | None = None) -> None:
        """Write each missing blob file, compressed against its dictionary blob if it has one.

        Called outside the write lock (the slow part), then again under it: a concurrent rm may
        have removed a file meanwhile, and under the lock no rm can run until the references
        are counted. A present file whose dictionary is gone (a file left by a crash, whose
        dictionary no run kept) is written again.
        """
        for digest, data in blobs.items():
            try:
                if all(self.blobs.exists(d) for d in self.blobs.dependencies(digest)):
                    continue  # present and readable
            except KeyError:
                pass  # missing
            dictionary = (dictionaries or {}).get(digest)
            try:
                self.blobs.write(digest, data, dictionary, replace=True)
            except KeyError:  # the dictionary went meanwhile (outside the lock): without one
                self.blobs.write(digest, data, None, replace=True)

    @staticmethod
    def _add_refs(conn: sa.Connection, counts: dict[str, int]) -> None:
        """Count ``counts[hash]`` more runs using each blob (under the write lock)."""
        if not counts:
            return
        known = set(conn.execute(sa.select(blob_refs.c.hash).where(blob_refs.c.hash.in_(list(counts)))).scalars())
        if known:
            conn.execute(
                blob_refs.update()
                .where(blob_refs.c.hash == sa.bindparam("h"))
                .values(refs=blob_refs.c.refs + sa.bindparam("n")),
                [{"h": digest, "n": counts[digest]} for digest in sorted(known)],
            )
        new = [{"hash": digest, "refs": n} for digest, n in counts.items() if digest not in known]
        if new:
            conn.execute(blob_refs.insert(), new)

    @staticmethod
    def _drop_refs(conn: sa.Connection, hashes: set[str]) -> list[str]:
        """Count one run fewer using each blob; returns (and forgets) the blobs no run uses now."""
        if not hashes:
            return []
        ordered = sorted(hashes)
        conn.execute(
            blob_refs.update().where(blob_refs.c.hash == sa.bindparam("h")).values(refs=blob_refs.c.refs - 1),
            [{"h": digest} for digest in ordered],
        )
        unused = list(
            conn.execute(
                sa.select(blob_refs.c.hash).where(blob_refs.c.hash.in_(ordered), blob_refs.c.refs <= 0)
            ).scalars()
        )
        if unused:
            conn.execute(blob_refs.delete().where(blob_refs.c.hash.in_(unused)))
        return unused

    def _run_blobs(self, conn: sa.Connection, run_id: str, source_hash: str, notebook_hash: str | None,
                   inputs_hash: str | None, state_hash: str | None = None) -> set[str]:
        """Every blob a run uses, each once: what its references count (see ``tables.blob_refs``)."""
        used = {source_hash} | ({state_hash} - {None})
        used.update(conn.execute(sa.select(artifacts.c.sha256).where(artifacts.c.run_id == run_id)).scalars())
        if inputs_hash is not None:
            used.add(inputs_hash)
        if notebook_hash is not None:
            used.add(notebook_hash)
            try:
                used.update(self.blobs.dependencies(notebook_hash))
                used.update(skeleton_refs(self.blobs.get(notebook_hash)))
            except KeyError:  # the file is gone (a damaged store): its outputs cannot be known
                pass
        return used

    def mark_running(self, run_id: str, started_at: float) -> None:
        with self._write() as conn:
            updated = conn.execute(
                runs.update()
                .where(runs.c.id == run_id, runs.c.status == "queued")
                .values(status="running", started_at=started_at, alive_at=started_at, changed_at=time.time())
            ).rowcount
        if not updated:
            raise MLXError("conflict", f"run {run_id} is not queued")

    def finish_run(self, run_id: str, outcome: RunOutcome) -> RunRecord:
        if outcome.status not in FINAL_STATUSES:
            raise MLXError("invalid_request", f"{outcome.status!r} is not a final status")
        with self._read() as conn:
            source_hash = conn.execute(sa.select(runs.c.source_hash).where(runs.c.id == run_id)).scalar()
        if source_hash is None:
            raise MLXError("not_found", f"no run with id {run_id}")
        blobs: dict[str, bytes] = {}
        dictionaries: dict[str, str] = {}
        notebook_hash = None
        if outcome.notebook is not None:
            skeleton, blobs = split_notebook(outcome.notebook)
            notebook_hash = content_hash(skeleton)
            blobs[notebook_hash] = skeleton
            # the skeleton is mostly the source's text: compressed against it, it costs its differences
            dictionaries[notebook_hash] = source_hash
        inputs_hash = None
        if outcome.inputs is not None:
            inputs_hash = content_hash(encoded := _encode_inputs(outcome.inputs))
            blobs[inputs_hash] = encoded
        self._ensure_blobs(blobs, dictionaries)  # outside the lock: the slow part
        self._ensure_artifact_blobs(outcome)
        state_hash = self.blobs.put_file(Path(outcome.state_file)) if outcome.state_file is not None else None
        with self._write() as conn:
            current = conn.execute(sa.select(runs.c.status).where(runs.c.id == run_id)).scalar()
            if current is None:
                raise MLXError("not_found", f"no run with id {run_id}")
            if current in FINAL_STATUSES:
                raise MLXError("conflict", f"run {run_id} already finished ({current})")
            self._ensure_blobs(blobs, dictionaries)
            self._ensure_artifact_blobs(outcome)  # one deleted meanwhile by another process's rm
            if state_hash is not None and not self.blobs.exists(state_hash):  # deleted meanwhile by an rm
                state_hash = self.blobs.put_file(Path(outcome.state_file))
            used = set(blobs) | {artifact.sha256 for artifact in outcome.artifacts} | ({state_hash} - {None})
            if notebook_hash is not None:  # the file may predate this run, with another dictionary
                used.update(self.blobs.dependencies(notebook_hash))
            used.discard(source_hash)  # counted when the run was created
            self._add_refs(conn, dict.fromkeys(used, 1))
            environment_id = self._store_environment(conn, outcome.environment)
            conn.execute(
                runs.update()
                .where(runs.c.id == run_id)
                .values(
                    status=outcome.status,
                    notebook_hash=notebook_hash,
                    environment_id=environment_id,
                    started_at=outcome.started_at,
                    finished_at=outcome.finished_at,
                    cell_timings=encode_timings(outcome.cell_timings),
                    error=asdict(outcome.error) if outcome.error else None,
                    metrics=summarize(outcome.metrics),
                    inputs_hash=inputs_hash,
                    notes=list(outcome.notes),
                    run_folder=outcome.run_folder,
                    state_hash=state_hash,
                    state=outcome.state_manifest,
                    kernel_start=outcome.kernel_start,
                    changed_at=time.time(),
                )
            )
            if outcome.artifacts:
                conn.execute(artifacts.insert(), [{"run_id": run_id, **a.to_json()} for a in outcome.artifacts])
            if outcome.metrics:
                conn.execute(
                    metrics.insert(),
                    [
                        {"run_id": run_id, "seq": i, "name": m.name, "step": m.step, "value": m.value}
                        for i, m in enumerate(outcome.metrics)
                    ],
                )
        return self.get_run(run_id)

    def _ensure_artifact_blobs(self, outcome: RunOutcome) -> None:
        """Store each artifact's file that is not stored yet, from the file on disk (in chunks)."""
        for artifact in outcome.artifacts:
            if not self.blobs.exists(artifact.sha256):
                stored = self.blobs.put_file(Path(outcome.artifact_files[artifact.path]))
                if stored != artifact.sha256:
                    raise MLXError("conflict", f"artifact {artifact.path} changed while it was being stored")

    def artifacts(self, run_id: str) -> list[Artifact]:
        with self._read() as conn:
            rows = conn.execute(
                sa.select(artifacts.c.path, artifacts.c.size, artifacts.c.sha256, artifacts.c.media_type)
                .where(artifacts.c.run_id == run_id).order_by(artifacts.c.path)
            ).all()
        return [Artifact(row.path, row.size, row.sha256, row.media_type) for row in rows]

    def artifact_hashes(self, run_ids: list[str]) -> dict[str, dict[str, str]]:
        """Run id -> {artifact path: SHA-256} of many runs, in one query (a runs table's columns)."""
        found: dict[str, dict[str, str]] = {run_id: {} for run_id in run_ids}
        if not run_ids:
            return found
        with self._read() as conn:
            rows = conn.execute(sa.select(artifacts.c.run_id, artifacts.c.path, artifacts.c.sha256)
                                .where(artifacts.c.run_id.in_(run_ids))).all()
        for row in rows:
            found[row.run_id][row.path] = row.sha256
        return found

    def latest_inputs(self) -> list[InputFile] | None:
        """The fingerprint of the project recorded last (its hashes are reused by the next run's)."""
        with self._read() as conn:
            digest = conn.execute(
                sa.select(runs.c.inputs_hash).where(runs.c.inputs_hash.is_not(None))
                .order_by(runs.c.finished_at.desc()).limit(1)
            ).scalar()
        try:
            return None if digest is None else _decode_inputs(self.blobs.get(digest))
        except KeyError:
            return None

    def inputs(self, run_id: str) -> list[InputFile] | None:
        digest = self.get_run(run_id).inputs_hash
        return None if digest is None else _decode_inputs(self.blobs.get(digest))

    def _store_environment(self, conn: sa.Connection, environment: Environment | None) -> str | None:
        if environment is None:
            return None
        fingerprint = environment.fingerprint
        exists = conn.execute(
            sa.select(environments.c.id).where(environments.c.id == fingerprint)
        ).first()
        if exists is None:
            conn.execute(environments.insert().values(id=fingerprint, **asdict(environment)))
        return fingerprint

    def runs_changed_since(self, at: float, limit: int = 500) -> list[RunRecord]:
        with self._read() as conn:
            rows = conn.execute(
                self._select_runs().where(runs.c.changed_at > at).order_by(runs.c.changed_at).limit(limit)
            ).all()
        return [_record(row) for row in rows]

    def record_export(self, run_id: str, system: str, target: str, details: dict[str, Any]) -> RunRecord:
        with self._write() as conn:
            found = conn.execute(sa.select(runs.c.exports).where(runs.c.id == run_id)).first()
            if found is None:
                raise MLXError("not_found", f"no run with id {run_id}")
            exports = dict(found.exports or {})
            exports[system] = {**(exports.get(system) or {}), target: details}
            conn.execute(runs.update().where(runs.c.id == run_id).values(exports=exports, changed_at=time.time()))
        return self.get_run(run_id)

    def delete_run(self, run_id: str) -> None:
        with self._write() as conn:
            row = conn.execute(
                sa.select(runs.c.source_hash, runs.c.notebook_hash, runs.c.inputs_hash, runs.c.state_hash)
                .where(runs.c.id == run_id)
            ).first()
            if row is None:
                raise MLXError("not_found", f"no run with id {run_id}")
            used = self._run_blobs(conn, run_id, row.source_hash, row.notebook_hash, row.inputs_hash, row.state_hash)
            conn.execute(metrics.delete().where(metrics.c.run_id == run_id))
            conn.execute(artifacts.delete().where(artifacts.c.run_id == run_id))
            conn.execute(baselines.delete().where(baselines.c.run_id == run_id))
            conn.execute(runs.delete().where(runs.c.id == run_id))
            # delete files under the write lock, so no writer can be re-using them meanwhile
            for digest in self._drop_refs(conn, used):
                self.blobs.delete(digest)

    def interrupt_orphans(self, host: str, alive: Callable[[int | None], bool]) -> list[str]:

        with self._read() as conn:  # the usual answer is "none": no write lock for it
            owners = conn.execute(
                sa.select(runs.c.pid)
                .where(runs.c.host == host, runs.c.status.in_(("queued", "running")))
                .distinct()
            ).scalars().all()
        dead = {pid for pid in owners if not alive(pid)}  # a few processes, however many runs
        if not dead:
            return []
        now = time.time()
        owner = runs.c.pid.in_([pid for pid in dead if pid is not None])
        if None in dead:
            owner = sa.or_(owner, runs.c.pid.is_(None))
        with self._write() as conn:  # re-read under the lock: a run may have finished meanwhile
            orphans = conn.execute(
                sa.select(runs.c.id, runs.c.pid, runs.c.queued_at, runs.c.started_at, runs.c.alive_at).where(
                    runs.c.host == host, runs.c.status.in_(("queued", "running")), owner
                )
            ).all()
            # the last sign of life of a process: the latest of its open runs' (one beat names a few)
            last_seen: dict[int | None, float] = {}
            for row in orphans:
                if row.alive_at is not None:
                    last_seen[row.pid] = max(row.alive_at, last_seen.get(row.pid, row.alive_at))
            if orphans:
                conn.execute(
                    runs.update().where(runs.c.id == sa.bindparam("run_id")).values(
                        status="interrupted",
                        finished_at=sa.bindparam("end"),
                        error=sa.bindparam("cause"),
                        changed_at=now,
                    ),
                    [
                        {
                            "run_id": row.id,
                            # a process of an older version wrote none: now
                            "end": max(last_seen.get(row.pid, now), row.started_at or row.queued_at),
                            "cause": asdict(RunError("Interrupted", f"the process running it (pid {row.pid} on {host}) ended")),
                        }
                        for row in orphans
                    ],
                )
        return [row.id for row in orphans]

    # -- reads --------------------------------------------------------------------------
    def _select_runs(self) -> sa.Select:
        return sa.select(runs, notebooks.c.path).join(notebooks, notebooks.c.id == runs.c.notebook_id)

    def get_run(self, run_id: str) -> RunRecord:
        with self._read() as conn:
            row = conn.execute(self._select_runs().where(runs.c.id == run_id)).first()
        if row is None:
            raise MLXError("not_found", f"no run with id {run_id}")
        return _record(row)

    def find_run(self, notebook: str, version: int) -> RunRecord:
        with self._read() as conn:
            row = conn.execute(
                self._select_runs().where(notebooks.c.path == notebook, runs.c.version == version)
            ).first()
        if row is None:
            raise MLXError("not_found", f"{notebook} has no run v{version}")
        return _record(row)

    def _list_runs(
        self,
        notebook: str | None,
        status: str | None,
        limit: int,
        offset: int,
        sweep_id: str | None,
        query: RunQuery,
    ) -> RunPage:
        scope: list[sa.ColumnElement[bool]] = []  # notebook/status/sweep: what keys range over
        if sweep_id is not None:
            scope.append(runs.c.sweep_id == sweep_id)
        if notebook is not None:
            notebook_id = sa.select(notebooks.c.id).where(notebooks.c.path == notebook).scalar_subquery()
            scope.append(runs.c.notebook_id == notebook_id)
        if status is not None:
            scope.append(runs.c.status == status)
        named = (notebook, status, sweep_id)
        try:
            return self._list_page(scope, named, limit, offset,
                                   SqlRunQuery(query, notebook is not None, dialect=self._engine.dialect.name))
        except sa.exc.OperationalError as exc:
            if "malformed JSON" not in str(exc.orig):
                raise
            # some run's JSON is not SQLite's (a NaN parameter): the same query, reading it safely
            return self._list_page(scope, named, limit, offset, SqlRunQuery(query, notebook is not None, safe=True))

    def _keys(
        self, conn: sa.Connection, scope: list[sa.ColumnElement[bool]], named: tuple[Any, ...], sql: SqlRunQuery
    ) -> dict[str, list[str]]:
        """The parameter and metric names of the runs in ``scope``, cached while they are the same.

        Names change only when a run is created, finished (its metrics) or deleted, and each of those
        changes the count, the sum of queue times or the sum of finish times of the runs: reading
        those takes a fraction of what reading every run's JSON does.
        """
        fingerprint = tuple(conn.execute(
            sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(runs.c.queued_at), 0.0),
                      sa.func.coalesce(sa.func.sum(runs.c.finished_at), 0.0)).where(*scope)
        ).one())
        cache_key = (*named, sql.safe)
        cached = self._keys_cache.get(cache_key)
        if cached is not None and cached[0] == fingerprint:
            return cached[1]
        keys = {
            label: sorted(key for key in conn.execute(keys_query).scalars() if isinstance(key, str))
            for label, keys_query in sql.keys(scope).items()
        }
        if len(self._keys_cache) >= 64:
            self._keys_cache.clear()
        self._keys_cache[cache_key] = (fingerprint, keys)
        return keys

    def _list_page(
        self, scope: list[sa.ColumnElement[bool]], named: tuple[Any, ...], limit: int, offset: int, sql: SqlRunQuery
    ) -> RunPage:
        """The page, its total and keys; ``scope`` is the notebook/status/sweep, as ``named``."""
        where = [*scope, *sql.where()]
        source: sa.FromClause = runs
        if sql.needs_notebooks():
            source = runs.join(notebooks, notebooks.c.id == runs.c.notebook_id)
        # The page's ids first: sorting ids, not whole rows, is what keeps a JSON sort fast. A filter
        # in an order no index gives: every matching id (the total is their number), one pass over
        # the runs instead of two. Otherwise the page stops early and the count is cheap.
        one_pass = bool(sql.query.filter) and not sql.indexed_order()
        page_ids = sa.select(runs.c.id).select_from(source).where(*where).order_by(*sql.order_by())
        with self._read() as conn:
            if one_pass:
                matching = list(conn.execute(page_ids).scalars())
                ids, total = matching[offset:offset + limit], len(matching)
            else:
                ids = list(conn.execute(page_ids.limit(limit).offset(offset)).scalars())
                total = conn.execute(sa.select(sa.func.count()).select_from(source).where(*where)).scalar_one()
            rows = conn.execute(self._select_runs().where(runs.c.id.in_(ids))).all() if ids else []
            keys = self._keys(conn, scope, named, sql) if sql.query.keys else None
        by_id = {row.id: row for row in rows}
        return RunPage([_record(by_id[run_id]) for run_id in ids], total, limit, offset, keys)

    def requeued(self, run_ids: list[str]) -> set[str]:
        if not run_ids:
            return set()
        with self._read() as conn:
            return set(conn.execute(sa.select(runs.c.parent_id).where(runs.c.parent_id.in_(run_ids))).scalars())

    def get_sweep(self, sweep_id: str) -> SweepRecord:
        sweeps_found = self._sweeps(sweeps.c.id == sweep_id, limit=1, offset=0)
        if not sweeps_found:
            raise MLXError("not_found", f"no sweep with id {sweep_id}")
        return sweeps_found[0]

    def list_sweeps(self, notebook: str | None = None, limit: int = 50, offset: int = 0) -> list[SweepRecord]:
        condition = sa.true() if notebook is None else notebooks.c.path == notebook
        return self._sweeps(condition, limit, offset)

    def _sweeps(self, condition: Any, limit: int, offset: int) -> list[SweepRecord]:
        query = (
            sa.select(sweeps, notebooks.c.path)
            .join(notebooks, notebooks.c.id == sweeps.c.notebook_id)
            .where(condition)
            .order_by(sweeps.c.created_at.desc(), sweeps.c.id)
            .limit(limit)
            .offset(offset)
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
            counts: dict[str, dict[str, int]] = {row.id: {} for row in rows}
            superseded: dict[str, dict[str, int]] = {row.id: {} for row in rows}
            if rows:
                in_sweeps = runs.c.sweep_id.in_(list(counts))
                for sweep_id, status, count in conn.execute(
                    sa.select(runs.c.sweep_id, runs.c.status, sa.func.count())
                    .where(in_sweeps)
                    .group_by(runs.c.sweep_id, runs.c.status)
                ):
                    counts[sweep_id][status] = count
                # a re-queued run's child is in its sweep: the runs some run of the sweep repeats
                child = runs.alias("child")
                parents = sa.select(child.c.parent_id).where(
                    child.c.sweep_id.in_(list(counts)), child.c.parent_id.is_not(None)
                )
                for sweep_id, status, count in conn.execute(
                    sa.select(runs.c.sweep_id, runs.c.status, sa.func.count())
                    .where(in_sweeps, runs.c.id.in_(parents))
                    .group_by(runs.c.sweep_id, runs.c.status)
                ):
                    superseded[sweep_id][status] = count
        return [
            SweepRecord(
                row.id, row.path, row.created_at, row.backend, row.spec, row.size, counts[row.id], superseded[row.id]
            )
            for row in rows
        ]

    def set_baseline(self, run_id: str, note: str = "") -> Baseline:

        with self._write() as conn:
            row = conn.execute(sa.select(runs.c.notebook_id, runs.c.status).where(runs.c.id == run_id)).first()
            if row is None:
                raise MLXError("not_found", f"no run with id {run_id}")
            if row.status not in FINAL_STATUSES:
                raise MLXError("conflict", f"a {row.status} run cannot be a baseline: approve it once it has finished")
            values = {"run_id": run_id, "approved_at": time.time(), "note": note}
            updated = conn.execute(baselines.update().where(baselines.c.notebook_id == row.notebook_id).values(**values))
            if not updated.rowcount:
                conn.execute(baselines.insert().values(notebook_id=row.notebook_id, **values))
        baseline = self._baseline(notebooks.c.id == row.notebook_id)
        assert baseline is not None
        return baseline

    def get_baseline(self, notebook: str) -> Baseline | None:
        return self._baseline(notebooks.c.path == notebook)

    def _baseline(self, condition: Any) -> Baseline | None:
        query = (
            sa.select(notebooks.c.path, baselines.c.run_id, runs.c.version, baselines.c.approved_at, baselines.c.note)
            .select_from(baselines.join(notebooks, notebooks.c.id == baselines.c.notebook_id)
                         .join(runs, runs.c.id == baselines.c.run_id))
            .where(condition)
        )
        with self._read() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return Baseline(row.path, row.run_id, row.version, row.approved_at, row.note)

    def list_notebooks(self) -> list[NotebookSummary]:
        query = (
            sa.select(notebooks.c.path, sa.func.count(runs.c.id), sa.func.max(runs.c.version))
            .join(runs, runs.c.notebook_id == notebooks.c.id)
            .group_by(notebooks.c.path)
            .order_by(notebooks.c.path)
        )
        with self._read() as conn:
            return [NotebookSummary(path, count, last) for path, count, last in conn.execute(query)]

    def notebook_paths(self) -> list[str]:
        has_runs = sa.exists().where(runs.c.notebook_id == notebooks.c.id)
        with self._read() as conn:
            return list(conn.scalars(sa.select(notebooks.c.path).where(has_runs).order_by(notebooks.c.path)))

    def executed_notebook(self, run_id: str) -> dict[str, Any]:
        run = self.get_run(run_id)
        if run.notebook_hash is None:
            raise MLXError("not_found", f"{run.ref} has no executed notebook (status {run.status})")
        with self._missing_blob(run, "executed notebook"):
            return join_notebook(self.blobs.get(run.notebook_hash), self.blobs.get)

    def source_notebook(self, run_id: str) -> bytes:
        run = self.get_run(run_id)
        with self._missing_blob(run, "source notebook"):
            return self.blobs.get(run.source_hash)

    @contextmanager
    def _missing_blob(self, run: RunRecord, what: str) -> Iterator[None]:
        """A blob the index names but the blob folder lacks: say where it was looked for (two
        servers on one index with different ``blob_dir``s, or a folder removed by hand)."""
        try:
            yield
        except KeyError as exc:
            raise MLXError("store_error", f"{run.ref}: its {what} is not in the blob folder {self.blobs.root} "
                           f"(blob {str(exc.args[0])[:12]}...): every process sharing this run index must use "
                           "the same blob folder (c.MLXConfig.blob_dir)") from None

    def metric_history(self, run_id: str) -> list[Metric]:
        with self._read() as conn:
            rows = conn.execute(
                sa.select(metrics.c.name, metrics.c.value, metrics.c.step)
                .where(metrics.c.run_id == run_id)
                .order_by(metrics.c.seq)
            ).all()
        return [Metric(name, value, step) for name, value, step in rows]

    def environment(self, environment_id: str) -> Environment:
        with self._read() as conn:
            row = conn.execute(
                sa.select(environments).where(environments.c.id == environment_id)
            ).first()
        if row is None:
            raise MLXError("not_found", f"no environment {environment_id}")
        return Environment(row.python, row.platform, row.kernel, dict(row.packages))


def encode_timings(timings: list[CellTiming]) -> Any:
    """Cell timings as stored: ``{"t": t0, "c": [[cell_index, start, end], ...]}``.

    Times are whole microseconds (papermill's precision) as offsets from ``t0``, the earliest time
    in epoch microseconds; a missing time is null. A quarter of the list of objects it replaces.
    """
    if not timings:
        return []

    def micros(seconds: float | None) -> int | None:
        return None if seconds is None else round(seconds * 1_000_000)

    points = [(t.cell_index, micros(t.started_at), micros(t.finished_at)) for t in timings]
    known = [value for _, start, end in points for value in (start, end) if value is not None]
    t0 = min(known, default=0)
    return {
        "t": t0,
        "c": [[index, *(None if v is None else v - t0 for v in (start, end))] for index, start, end in points],
    }


def decode_timings(value: Any) -> list[CellTiming]:
    """Stored cell timings back, in the format above or the list of objects of older runs."""
    if isinstance(value, dict):
        t0 = value["t"]
        return [
            CellTiming(index, *(None if v is None else (t0 + v) / 1_000_000 for v in (start, end)))
            for index, start, end in value["c"]
        ]
    return [CellTiming(**t) for t in value]


def _encode_inputs(inputs: list[InputFile]) -> bytes:
    """An input fingerprint as a blob: the same project state is one blob for every run of it."""
    import json

    rows = sorted([f.path, f.size, f.mtime, f.sha256] for f in inputs)
    return json.dumps(rows, separators=(",", ":")).encode()


def _decode_inputs(data: bytes) -> list[InputFile]:
    import json

    return [InputFile(*row) for row in json.loads(data)]


def _record(row: sa.Row) -> RunRecord:
    error = row.error
    return RunRecord(
        id=row.id,
        notebook=row.path,
        version=row.version,
        status=row.status,
        parameters=row.parameters,
        source_hash=row.source_hash,
        notebook_hash=row.notebook_hash,
        git_commit=row.git_commit,
        git_dirty=row.git_dirty,
        environment_id=row.environment_id,
        backend=row.backend,
        host=row.host,
        pid=row.pid,
        queued_at=row.queued_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        cell_timings=decode_timings(row.cell_timings),
        error=RunError(**error) if error else None,
        metrics=row.metrics,
        tags=row.tags,
        sweep_id=row.sweep_id,
        parent_id=row.parent_id,
        cancel_requested=bool(row.cancel_requested),
        current_cell=row.current_cell,
        cell_count=row.cell_count,
        overridden=row.overridden,
        expressions=row.expressions,
        run_folder=row.run_folder,
        inputs_hash=row.inputs_hash,
        notes=row.notes,
        state_hash=row.state_hash,
        state=row.state,
        kernel_start=row.kernel_start,
        user=row.user,
        exports=row.exports,
        changed_at=row.changed_at,
    )


__all__ = ["SqlRunStore"]
