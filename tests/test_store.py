"""Contract tests of the run store (SqlRunStore on SQLite and on PostgreSQL)."""
from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from jupyter_mlx.errors import MLXError
from jupyter_mlx.metrics import Metric
from jupyter_mlx.store import CellTiming, Environment, NewRun, RunError, RunOutcome
from jupyter_mlx.store import migrate, tables
from jupyter_mlx.store.blobs import content_hash
from jupyter_mlx.store.sql import SqlRunStore

from conftest import STORE_BACKENDS, store_url

PNG = {"output_type": "display_data", "data": {"image/png": "iVBORw0KGgo" * 500}, "metadata": {}}
ENV = Environment("3.11.7", "linux", "python3", {"numpy": "2.0"})


def _store(root: Path) -> SqlRunStore:
    return SqlRunStore(f"sqlite:///{root / 'runs.sqlite'}", root / "blobs")


@pytest.fixture(params=STORE_BACKENDS)
def store(tmp_path, request):
    """The contract: every test using it runs on SQLite and on PostgreSQL."""
    s = SqlRunStore(store_url(request.param, tmp_path, request), tmp_path / "blobs")
    yield s
    s.close()


def _executed(text: str) -> dict:
    return {
        "cells": [
            {"cell_type": "code", "source": "plot()", "metadata": {}, "outputs": [PNG]},
            {
                "cell_type": "code",
                "source": "print()",
                "metadata": {},
                "outputs": [{"output_type": "stream", "name": "stdout", "text": text}],
            },
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _finish(store, run, text="hi", status="succeeded", metrics=(), notebook=None):
    now = time.time()
    store.mark_running(run.id, now)
    return store.finish_run(
        run.id,
        RunOutcome(
            status, notebook or _executed(text), now, now + 1, [CellTiming(0, now, now + 0.5)],
            RunError("ValueError", "bad", 1, ["tb"]) if status == "failed" else None,
            list(metrics), ENV,
        ),
    )


def test_versions_count_per_notebook_and_are_never_reused(store):
    a1 = store.create_run(NewRun("a.ipynb", b"{}"))
    a2 = store.create_run(NewRun("a.ipynb", b"{}"))
    b1 = store.create_run(NewRun("sub/b.ipynb", b"{}"))
    assert (a1.version, a2.version, b1.version) == (1, 2, 1)
    store.delete_run(a2.id)
    assert store.create_run(NewRun("a.ipynb", b"{}")).version == 3


def test_a_run_records_everything_and_reads_back(store):
    run = store.create_run(
        NewRun("a.ipynb", b'{"cells": []}', {"C": 0.5}, ["baseline"], git_commit="abc", git_dirty=True)
    )
    assert run.status == "queued" and run.started_at is None
    done = _finish(store, run, metrics=[Metric("loss", 1.0, 0), Metric("loss", 0.5, 1), Metric("acc", 0.9)])
    assert done.status == "succeeded"
    assert done.parameters == {"C": 0.5} and done.tags == ["baseline"]
    assert done.metrics == {"loss": 0.5, "acc": 0.9}
    assert done.cell_timings[0].duration == pytest.approx(0.5)
    assert (done.git_commit, done.git_dirty) == ("abc", True)
    assert store.environment(done.environment_id) == ENV
    assert store.metric_history(run.id) == [Metric("loss", 1.0, 0), Metric("loss", 0.5, 1), Metric("acc", 0.9)]
    assert store.executed_notebook(run.id) == _executed("hi")
    assert store.source_notebook(run.id) == b'{"cells": []}'
    assert store.find_run("a.ipynb", 1).id == run.id
    assert done.to_json()["ref"] == "a.ipynb@v1"


def test_failed_run_keeps_its_error_and_partial_notebook(store):
    run = _finish(store, store.create_run(NewRun("a.ipynb", b"{}")), status="failed")
    assert run.error == RunError("ValueError", "bad", 1, ["tb"])
    assert store.executed_notebook(run.id)["cells"][1]["outputs"][0]["text"] == "hi"


def test_identical_outputs_and_environments_are_stored_once(store, tmp_path):
    for i in range(5):
        _finish(store, store.create_run(NewRun("a.ipynb", b"{}")), text=f"run {i}\n" * 300)
    blob_files = [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]
    # 1 source + 1 image + 5 long texts + 5 skeletons
    assert len(blob_files) == 12
    with store._engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from environments")).scalar() == 1


def test_small_outputs_stay_inline_and_come_back(store, tmp_path):
    runs = [_finish(store, store.create_run(NewRun("a.ipynb", b"{}")), text=f"run {i}") for i in range(3)]
    blob_files = [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]
    assert len(blob_files) == 1 + 1 + 3  # source, image, skeletons: no file per short text
    for i, run in enumerate(runs):
        assert store.executed_notebook(run.id) == _executed(f"run {i}")


def test_delete_removes_only_blobs_no_other_run_uses(store, tmp_path):
    keep = _finish(store, store.create_run(NewRun("a.ipynb", b"{}")), text="keep\n" * 300)
    gone = _finish(store, store.create_run(NewRun("a.ipynb", b"{}")), text="gone\n" * 300)
    before = {p.name for p in (tmp_path / "blobs").rglob("*") if p.is_file()}
    store.delete_run(gone.id)
    after = {p.name for p in (tmp_path / "blobs").rglob("*") if p.is_file()}
    assert len(before - after) == 2  # its long text output and its skeleton
    assert store.executed_notebook(keep.id) == _executed("keep\n" * 300)
    with pytest.raises(MLXError) as caught:
        store.get_run(gone.id)
    assert caught.value.code == "not_found"
    with pytest.raises(MLXError):
        store.delete_run(gone.id)


def test_list_pages_filters_and_counts(store):
    runs = [store.create_run(NewRun("a.ipynb" if i % 2 else "b.ipynb", b"{}")) for i in range(7)]
    _finish(store, runs[0])
    page = store.list_runs(limit=3)
    assert page.total == 7 and [r.id for r in page.runs] == [r.id for r in runs[::-1][:3]]
    assert store.list_runs(limit=3, offset=6).runs[0].id == runs[0].id
    a = store.list_runs(notebook="a.ipynb")
    assert a.total == 3 and [r.version for r in a.runs] == [3, 2, 1]
    assert store.list_runs(status="succeeded").total == 1
    assert store.list_runs(notebook="missing.ipynb").total == 0
    assert [(n.notebook, n.runs, n.last_version) for n in store.list_notebooks()] == [
        ("a.ipynb", 3, 3), ("b.ipynb", 4, 4)
    ]
    assert store.notebook_paths() == ["a.ipynb", "b.ipynb"]
    for run in runs[1::2]:
        store.delete_run(run.id)
    assert store.notebook_paths() == ["b.ipynb"]  # a notebook whose runs are all gone drops out
    for bad in ({"limit": 0}, {"limit": 5000}, {"offset": -1}, {"status": "done"}):
        with pytest.raises(MLXError) as caught:
            store.list_runs(**bad)
        assert caught.value.code == "invalid_request"


def test_a_crash_inside_finish_leaves_no_half_written_run(store, monkeypatch):
    run = store.create_run(NewRun("a.ipynb", b"{}"))
    store.mark_running(run.id, time.time())

    def crash(*args, **kwargs):
        raise RuntimeError("power cut")

    monkeypatch.setattr(store, "_store_environment", crash)
    with pytest.raises(RuntimeError):
        _finish_outcome(store, run.id)
    after = store.get_run(run.id)
    assert after.status == "running" and after.metrics == {} and after.notebook_hash is None
    assert store.metric_history(run.id) == []


def _finish_outcome(store, run_id):
    now = time.time()
    store.finish_run(run_id, RunOutcome("succeeded", _executed("x"), now, now, [], None, [Metric("a", 1.0)], ENV))


def test_finishing_twice_or_with_a_non_final_status_is_refused(store):
    run = _finish(store, store.create_run(NewRun("a.ipynb", b"{}")))
    with pytest.raises(MLXError) as caught:
        _finish_outcome(store, run.id)
    assert caught.value.code == "conflict"
    with pytest.raises(MLXError):
        store.finish_run(run.id, RunOutcome("running", None, None, 0.0))


def test_orphans_of_dead_processes_are_marked_interrupted(store):
    dead = store.create_run(NewRun("a.ipynb", b"{}", host="h", pid=1))
    alive = store.create_run(NewRun("a.ipynb", b"{}", host="h", pid=2))
    other_host = store.create_run(NewRun("a.ipynb", b"{}", host="elsewhere", pid=1))
    assert store.interrupt_orphans("h", lambda pid: pid == 2) == [dead.id]
    assert store.get_run(dead.id).status == "interrupted"
    assert store.get_run(alive.id).status == "queued"
    assert store.get_run(other_host.id).status == "queued"


def test_an_orphan_ends_at_its_last_sign_of_life_not_when_its_death_is_noticed(store):
    running = store.create_run(NewRun("a.ipynb", b"{}", host="h", pid=1))
    queued = store.create_run(NewRun("a.ipynb", b"{}", host="h", pid=1))
    started = queued.queued_at + 1  # (times of the future: only their order matters)
    store.mark_running(running.id, started)
    store.heartbeat([running.id], started + 30)  # the last beat before the process died (it names the running run)
    store.heartbeat([], started + 40)  # nothing to write
    assert sorted(store.interrupt_orphans("h", lambda pid: False)) == sorted([running.id, queued.id])
    interrupted = store.get_run(running.id)
    assert (interrupted.status, interrupted.finished_at, interrupted.duration) == ("interrupted", started + 30, 30)
    assert interrupted.error.ename == "Interrupted" and "pid 1 on h" in interrupted.error.evalue
    assert store.get_run(queued.id).finished_at == started + 30  # the same process's last sign of life
    store.heartbeat([running.id], started + 50)  # a beat after the end changes nothing
    assert store.get_run(running.id).finished_at == started + 30


def test_a_sweeps_status_counts_a_requeued_run_as_superseded_by_its_repeat(store):
    from jupyter_mlx.store import NewSweep

    first, second = store.create_runs(
        [NewRun("a.ipynb", b"{}", host="h", pid=1) for _ in range(2)], NewSweep("a.ipynb", "local", {"grid": {}})
    )
    sweep_id = first.sweep_id
    _finish(store, second)
    store.interrupt_orphans("h", lambda pid: False)
    assert store.get_sweep(sweep_id).status == "interrupted"
    again = store.create_run(NewRun("a.ipynb", b"{}", sweep_id=sweep_id, parent_id=first.id))
    assert store.get_sweep(sweep_id).status == "running"
    _finish(store, again, status="failed")
    third = store.create_run(NewRun("a.ipynb", b"{}", sweep_id=sweep_id, parent_id=again.id))
    _finish(store, third)
    sweep = store.get_sweep(sweep_id)
    assert sweep.counts == {"interrupted": 1, "failed": 1, "succeeded": 2}
    assert sweep.superseded == {"interrupted": 1, "failed": 1} and sweep.current == {"succeeded": 2}
    assert sweep.status == "succeeded" and sweep.to_json()["status"] == "succeeded"
    assert store.list_sweeps()[0].status == "succeeded"


def _allocate(url: str, root: str, count: int, queue) -> None:
    store = SqlRunStore(url, Path(root) / "blobs")
    queue.put([store.create_run(NewRun("race.ipynb", b"{}")).version for _ in range(count)])
    store.close()


@pytest.mark.parametrize("backend", STORE_BACKENDS)
def test_concurrent_processes_never_get_the_same_version(tmp_path, request, backend):
    """Gap-free and unique: SQLite's BEGIN IMMEDIATE, PostgreSQL's advisory write lock."""
    url = store_url(backend, tmp_path, request)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_allocate, args=(url, str(tmp_path), 15, queue)) for _ in range(4)]
    for worker in workers:
        worker.start()
    versions = [v for _ in workers for v in queue.get(timeout=120)]
    for worker in workers:
        worker.join(60)
    assert sorted(versions) == list(range(1, 61))


@pytest.mark.parametrize("backend", STORE_BACKENDS)
def test_migrations_build_exactly_the_declared_schema(tmp_path, request, backend):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from jupyter_mlx.store.tables import metadata

    url = store_url(backend, tmp_path, request)
    SqlRunStore(url, tmp_path / "blobs").close()
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        assert migrate.current_revision(conn) == migrate.HEAD
    with engine.begin() as conn:  # and every migration that can goes back down (0003 cannot: blob formats)
        _downgrade(conn, "0003")
        assert migrate.current_revision(conn) == "0003"
        assert "kernel_start" not in {c["name"] for c in sa.inspect(conn).get_columns("runs")}
    engine.dispose()
    script = ScriptDirectory(str(Path(migrate.__file__).parent / "migrations"))
    assert [rev.revision for rev in reversed(list(script.walk_revisions()))] == list(migrate.REVISIONS)


@pytest.mark.parametrize("backend", STORE_BACKENDS)
def test_a_store_from_a_newer_schema_is_refused_with_a_fix(tmp_path, request, backend):
    url = store_url(backend, tmp_path, request)
    SqlRunStore(url, tmp_path / "blobs").close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("update alembic_version set version_num = '9999'"))
    engine.dispose()
    with pytest.raises(MLXError) as caught:
        SqlRunStore(url, tmp_path / "blobs")
    assert caught.value.code == "store_schema_too_new"
    assert "revision 9999" in caught.value.message and f"head {migrate.HEAD}" in caught.value.message
    assert "pip install -U jupyter_mlx" in caught.value.message


# -- compact storage: reference counts, skeletons against their source, compact timings ------------
def _blob_names(root: Path) -> set[str]:
    return {p.parent.name + p.name for p in (root / "blobs").rglob("*") if p.is_file()}


def _refs(where: Path | SqlRunStore) -> dict[str, int]:
    """How many runs use each blob: in a store, or the SQLite store in a folder."""
    engine = where._engine if isinstance(where, SqlRunStore) else sa.create_engine(f"sqlite:///{where / 'runs.sqlite'}")
    with engine.connect() as conn:
        return dict(conn.execute(sa.text("select hash, refs from blob_refs")).all())


def test_blob_store_reads_plain_and_dictionary_files(tmp_path):
    import zlib

    from jupyter_mlx.store.blobs import DICT_MAGIC, BlobStore, content_hash
    from jupyter_mlx.store.notebook_blobs import split_notebook

    blobs = BlobStore(tmp_path)
    notebook = _executed("hello")
    notebook["cells"][0]["source"] = "".join(f"plot(x={i}, y=x ** 2, label='line {i}')\n" for i in range(30))
    source = json.dumps(notebook, indent=1).encode()
    plain = b'{"written": "before dictionaries"}'
    blobs.path(content_hash(plain)).parent.mkdir(parents=True)
    blobs.path(content_hash(plain)).write_bytes(zlib.compress(plain, 6))  # exactly the old format
    assert blobs.get(content_hash(plain)) == plain and blobs.dependencies(content_hash(plain)) == []

    source_hash = blobs.put(source)
    skeleton, _ = split_notebook(notebook)
    digest = content_hash(skeleton)
    blobs.write(digest, skeleton, dictionary=source_hash)
    stored = blobs.path(digest).read_bytes()
    assert stored.startswith(DICT_MAGIC) and len(stored) < len(zlib.compress(skeleton, 6)) / 2
    assert blobs.dependencies(digest) == [source_hash]
    assert BlobStore(tmp_path).get(digest) == skeleton  # a fresh store derives the dictionary again
    with pytest.raises(KeyError):
        blobs.get("0" * 64)


def test_notebook_dictionary_of_anything_is_deterministic():
    from jupyter_mlx.store.notebook_blobs import notebook_dictionary

    notebook = {"cells": [{"cell_type": "code", "source": ["a\n", "b"], "outputs": [PNG], "metadata": {}}]}
    assert notebook_dictionary(json.dumps(notebook).encode()) == (
        b'{"cells":[{"cell_type":"code","metadata":{},"outputs":[],"source":"a\\nb"}]}'
    )
    assert notebook_dictionary(b"not json") == b"not json"
    assert notebook_dictionary(b'{"cells": 3}') == b'{"cells": 3}'
    assert len(notebook_dictionary(b"x" * 100_000)) == 32 * 1024


def test_skeletons_are_compressed_against_the_run_source(store, tmp_path):
    source = json.dumps(_executed(""), indent=1).encode()
    run = _finish(store, store.create_run(NewRun("a.ipynb", source)), text="x\n" * 600)
    assert store.blobs.dependencies(run.notebook_hash) == [run.source_hash]
    assert store.executed_notebook(run.id) == _executed("x\n" * 600)
    assert _refs(store)[run.source_hash] == 1  # the dictionary is the source: counted once


def test_cell_timings_are_stored_compactly_and_read_back_exactly(store, tmp_path):
    import datetime as dt

    def epoch(text):  # as the runner reads papermill's times
        return dt.datetime.fromisoformat(text).timestamp()

    timings = [
        CellTiming(1, epoch("2026-11-26T02:06:13.686700+00:00"), epoch("2026-11-26T02:06:13.701321+00:00")),
        CellTiming(3, epoch("2026-11-26T02:06:13.710084+00:00"), None),
        CellTiming(4, None, epoch("2026-11-26T02:06:15.752351+00:00")),
    ]
    run = store.create_run(NewRun("a.ipynb", b"{}"))
    store.mark_running(run.id, timings[0].started_at)
    store.finish_run(run.id, RunOutcome("failed", None, timings[0].started_at, time.time(), timings))
    assert store.get_run(run.id).cell_timings == timings  # microseconds survive exactly
    with store._engine.connect() as conn:
        stored = conn.execute(sa.select(tables.runs.c.cell_timings)).scalar()  # as stored
    assert stored == {"t": 1795658773686700, "c": [[1, 0, 14621], [3, 23384, None], [4, None, 2065651]]}


def _output_hash(output: dict) -> str:
    return content_hash(json.dumps(output, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode())


def test_rm_deletes_exactly_the_blobs_no_other_run_uses(store, tmp_path):
    source_1, source_2 = b'{"cells": []}', b'{"cells": [], "metadata": {}}'
    a = _finish(store, store.create_run(NewRun("a.ipynb", source_1)), text="a\n" * 600)
    b = _finish(store, store.create_run(NewRun("a.ipynb", source_1)), text="b\n" * 600)
    c_notebook = {**_executed("a\n" * 600), "metadata": {"run": "c"}}  # a's outputs, its own skeleton
    c = _finish(store, store.create_run(NewRun("a.ipynb", source_2)), notebook=c_notebook)
    queued = store.create_run(NewRun("a.ipynb", source_2))
    png = _output_hash(PNG)
    text_a, text_b = (_output_hash(_executed(t * 600)["cells"][1]["outputs"][0]) for t in ("a\n", "b\n"))
    s1, s2 = content_hash(source_1), content_hash(source_2)
    assert _refs(store) == {
        png: 3, text_a: 2, text_b: 1, s1: 2, s2: 2, a.notebook_hash: 1, b.notebook_hash: 1, c.notebook_hash: 1
    }
    assert _blob_names(tmp_path) == set(_refs(store))

    def deleted_by(run):
        before = _blob_names(tmp_path)
        store.delete_run(run.id)
        assert _blob_names(tmp_path) == set(_refs(store))
        return before - _blob_names(tmp_path)

    assert deleted_by(b) == {b.notebook_hash, text_b}
    assert deleted_by(a) == {a.notebook_hash, s1}  # the image and a's text are c's too
    assert store.executed_notebook(c.id) == c_notebook
    assert deleted_by(c) == {c.notebook_hash, png, text_a}
    assert _refs(store) == {s2: 1}
    assert deleted_by(queued) == {s2}
    assert _refs(store) == {}


def test_a_skeleton_shared_by_runs_of_different_sources_keeps_its_dictionary(store, tmp_path):
    first = _finish(store, store.create_run(NewRun("a.ipynb", b'{"cells": []}')))
    second = _finish(store, store.create_run(NewRun("a.ipynb", b'{"cells": [] }')))
    assert first.notebook_hash == second.notebook_hash  # same executed notebook, other source bytes
    assert store.blobs.dependencies(second.notebook_hash) == [first.source_hash]
    store.delete_run(first.id)
    assert store.blobs.exists(first.source_hash)  # the shared skeleton's file still needs it
    assert store.executed_notebook(second.id) == _executed("hi")
    store.delete_run(second.id)
    assert _blob_names(tmp_path) == set() and _refs(store) == {}


def test_a_blob_removed_by_a_concurrent_rm_is_written_again(store, tmp_path, monkeypatch):
    first = _finish(store, store.create_run(NewRun("a.ipynb", b"{}")))
    second = store.create_run(NewRun("a.ipynb", b"{}"))
    store.mark_running(second.id, time.time())
    ensure = store._ensure_blobs
    calls = []

    def ensure_then_rm(blobs, dictionaries=None):
        ensure(blobs, dictionaries)
        if not calls:  # the slow part, outside the lock, is done: rm runs meanwhile
            calls.append(set(blobs))
            store.delete_run(first.id)  # the image and skeleton are only first's so far: their files go
            assert not any(store.blobs.exists(digest) for digest in blobs)

    monkeypatch.setattr(store, "_ensure_blobs", ensure_then_rm)
    now = time.time()
    store.finish_run(second.id, RunOutcome("succeeded", _executed("hi"), now, now, [], None, [], ENV))
    monkeypatch.undo()
    assert calls and store.executed_notebook(second.id) == _executed("hi")
    assert set(_refs(store)) == _blob_names(tmp_path) and set(_refs(store).values()) == {1}


def test_a_left_over_file_whose_dictionary_is_gone_is_written_again(store, tmp_path):
    from jupyter_mlx.store.notebook_blobs import split_notebook

    skeleton, _ = split_notebook(_executed("hi"))
    gone = store.blobs.put(b'{"cells": [], "nbformat": 4}')
    store.blobs.write(content_hash(skeleton), skeleton, dictionary=gone)  # as a crash would leave it
    store.blobs.delete(gone)
    run = _finish(store, store.create_run(NewRun("a.ipynb", b'{"cells": []}')))
    assert run.notebook_hash == content_hash(skeleton)
    assert store.blobs.dependencies(run.notebook_hash) == [run.source_hash]
    assert store.executed_notebook(run.id) == _executed("hi")


def _store_at_0002(root: Path) -> None:
    """A store as jupyter_mlx wrote it at schema revision 0002 (plain blob files, run_blobs)."""
    from jupyter_mlx.store.blobs import BlobStore
    from jupyter_mlx.store.notebook_blobs import split_notebook

    engine = sa.create_engine(f"sqlite:///{root / 'runs.sqlite'}")
    blobs = BlobStore(root / "blobs")
    rows, run_blobs, metric_rows = [], [], []
    for version, (text, source) in enumerate([("one\n" * 300, b'{"v": 1}'), ("two\n" * 300, b'{"v": 1}'),
                                              (None, b'{"v": 2}')], start=1):
        run_id = f"{version:032x}"
        source_hash = blobs.put(source)
        used, notebook_hash = {source_hash}, None
        if text is not None:
            skeleton, outputs = split_notebook(_executed(text))
            notebook_hash = blobs.put(skeleton)
            used |= {notebook_hash, *outputs}
            for data in outputs.values():
                blobs.put(data)
            metric_rows += [{"run_id": run_id, "seq": i, "name": "loss", "step": i, "value": 1.0 / (i + 1)}
                            for i in range(3)]
        run_blobs += [{"run_id": run_id, "hash": digest} for digest in used]
        rows.append({
            "id": run_id, "notebook_id": 1, "version": version, "status": "succeeded" if text else "queued",
            "parameters": json.dumps({"C": version}), "source_hash": source_hash, "notebook_hash": notebook_hash,
            "environment_id": ENV.fingerprint if text else None, "backend": "local", "host": "h",
            "queued_at": 100.0 + version, "started_at": 101.0 if text else None,
            "finished_at": 102.0 if text else None,
            "cell_timings": json.dumps([{"cell_index": 0, "started_at": 101.123456789, "finished_at": 101.5}]
                                       if text else []),
            "metrics": json.dumps({"loss": 1 / 3} if text else {}), "tags": json.dumps(["old"]),
        })
    with engine.begin() as conn:
        migrate.upgrade(conn, "0002")
        conn.execute(sa.text("insert into notebooks values (1, 'a.ipynb', 4)"))
        conn.execute(sa.text("insert into environments values (:id, '3.11.7', 'linux', 'python3', :p)"),
                     {"id": ENV.fingerprint, "p": json.dumps(ENV.packages)})
        conn.execute(sa.text(
            "insert into runs (id, notebook_id, version, status, parameters, source_hash, notebook_hash, "
            "environment_id, backend, host, queued_at, started_at, finished_at, cell_timings, metrics, tags) "
            "values (:id, :notebook_id, :version, :status, :parameters, :source_hash, :notebook_hash, "
            ":environment_id, :backend, :host, :queued_at, :started_at, :finished_at, :cell_timings, :metrics, "
            ":tags)"), rows)
        conn.execute(sa.text("insert into metrics values (:run_id, :seq, :name, :step, :value)"), metric_rows)
        conn.execute(sa.text("insert into run_blobs values (:run_id, :hash)"), run_blobs)
    engine.dispose()


def test_a_store_at_revision_0002_is_migrated_and_reads_back(tmp_path):
    _store_at_0002(tmp_path)
    before = _blob_names(tmp_path)
    store = _store(tmp_path)
    try:
        with store._read() as conn:
            assert migrate.current_revision(conn) == migrate.HEAD
            assert not sa.inspect(conn).has_table("run_blobs")
            assert "WITHOUT ROWID" in conn.execute(
                sa.text("select sql from sqlite_master where name = 'metrics'")).scalar()
        one, two, queued = (store.find_run("a.ipynb", v) for v in (1, 2, 3))
        png = content_hash(json.dumps(PNG, sort_keys=True, separators=(",", ":")).encode())
        assert _refs(tmp_path)[png] == 2 and _refs(tmp_path)[one.source_hash] == 2
        # the image and source 1: 2 runs; source 2, each run's skeleton and long text: 1
        assert sorted(_refs(tmp_path).values()) == [1] * 5 + [2] * 2 and _blob_names(tmp_path) == before
        assert one.cell_timings == [CellTiming(0, 101.123456789, 101.5)] and one.tags == ["old"]
        assert one.metrics == {"loss": 1 / 3} and store.environment(one.environment_id) == ENV
        assert store.metric_history(one.id) == [Metric("loss", 1.0 / (i + 1), i) for i in range(3)]
        assert store.executed_notebook(one.id) == _executed("one\n" * 300)
        assert store.executed_notebook(two.id) == _executed("two\n" * 300)
        assert store.source_notebook(queued.id) == b'{"v": 2}'

        store.delete_run(one.id)  # its skeleton and text; the image and source are two's too
        text_one = _output_hash(_executed("one\n" * 300)["cells"][1]["outputs"][0])
        assert before - _blob_names(tmp_path) == {one.notebook_hash, text_one}
        assert store.executed_notebook(two.id) == _executed("two\n" * 300)
        done = _finish(store, queued, text="three\n" * 300)  # finished after the upgrade: new formats
        assert store.blobs.dependencies(done.notebook_hash) == [done.source_hash]
        assert store.executed_notebook(done.id) == _executed("three\n" * 300)
        store.delete_run(two.id)
        store.delete_run(done.id)
        assert _blob_names(tmp_path) == set() and _refs(tmp_path) == {}
        assert store.create_run(NewRun("a.ipynb", b"{}")).version == 4
    finally:
        store.close()


def _finish_and_delete(url: str, root: str, worker: int, count: int) -> None:
    store = SqlRunStore(url, Path(root) / "blobs")
    previous = None
    for i in range(count):
        run = store.create_run(NewRun("race.ipynb", b'{"cells": []}'))
        _finish(store, run, text=f"worker {worker} run {i}\n" * (100 * (i % 2)))  # a long text every other run
        if previous is not None:
            store.delete_run(previous.id)  # shares the image and the source with every other run
        previous = run
    store.close()


@pytest.mark.parametrize("backend", STORE_BACKENDS)
def test_concurrent_finish_and_rm_keep_every_blob_a_run_uses(tmp_path, request, backend):
    url = store_url(backend, tmp_path, request)
    SqlRunStore(url, tmp_path / "blobs").close()
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_finish_and_delete, args=(url, str(tmp_path), w, 12)) for w in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    store = SqlRunStore(url, tmp_path / "blobs")
    try:
        runs = store.list_runs().runs
        assert len(runs) == 3
        for run in runs:
            assert store.executed_notebook(run.id)["cells"][0]["outputs"] == [PNG]
        assert set(_refs(store)) == _blob_names(tmp_path)
        for run in runs:
            store.delete_run(run.id)
        assert _blob_names(tmp_path) == set() and _refs(store) == {}
    finally:
        store.close()


# -- revision 0006: every run records every parameter's effective value ----------------------------
_PARAMETERS_CELL = {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "outputs": [],
                    "source": ["C = 1.0  # regularization\n", "max_iter: int = 100\n", "scale = math.pi"]}


def _store_at_0004(root: Path) -> dict[str, str]:
    """A store as jupyter_mlx wrote it at revision 0004: ``parameters`` held the overrides alone."""
    from jupyter_mlx.store.blobs import BlobStore

    blobs = BlobStore(root / "blobs")
    train = blobs.put(json.dumps({"cells": [{"cell_type": "markdown", "source": "# t", "metadata": {}},
                                            _PARAMETERS_CELL], "metadata": {}}).encode())
    magic = blobs.put(json.dumps({"cells": [{**_PARAMETERS_CELL, "source": "%load_ext x\nn = 1"}]}).encode())
    lost = content_hash(b"a snapshot whose blob is gone")
    runs = {"set C": ({"C": 0.5}, train), "defaults": ({}, train), "set scale": ({"scale": 2.0}, train),
            "magic": ({"n": 3}, magic), "lost": ({"C": 9}, lost)}
    engine = sa.create_engine(f"sqlite:///{root / 'runs.sqlite'}")
    with engine.begin() as conn:
        migrate.upgrade(conn, "0004")
        conn.execute(sa.text("insert into notebooks values (1, 'train.ipynb', :n)"), {"n": len(runs) + 1})
        for version, (parameters, source_hash) in enumerate(runs.values(), start=1):
            conn.execute(sa.text(
                "insert into runs (id, notebook_id, version, status, parameters, source_hash, backend, host, "
                "queued_at, cell_timings, metrics, tags) values (:id, 1, :v, 'succeeded', :p, :s, 'local', 'h', "
                ":v, '[]', '{\"acc\": 0.5}', '[]')"),
                {"id": f"{version:032x}", "v": version, "p": json.dumps(parameters), "s": source_hash})
            conn.execute(sa.text("insert into metrics values (:id, 0, 'acc', null, 0.5)"), {"id": f"{version:032x}"})
    engine.dispose()
    return {name: f"{version:032x}" for version, name in enumerate(runs, start=1)}


def test_a_store_at_revision_0004_gets_every_parameter_from_the_runs_source(tmp_path):
    ids = _store_at_0004(tmp_path)
    store = _store(tmp_path)
    try:
        run = {name: store.get_run(run_id) for name, run_id in ids.items()}
        assert run["set C"].parameters == {"C": 0.5, "max_iter": 100, "scale": "math.pi"}
        assert run["set C"].overridden == ["C"] and run["set C"].expressions == ["scale"]
        assert run["set C"].overrides == {"C": 0.5}
        assert run["defaults"].parameters == {"C": 1.0, "max_iter": 100, "scale": "math.pi"}
        assert run["defaults"].overridden == [] and run["defaults"].overrides == {}
        assert run["set scale"].parameters["scale"] == 2.0 and run["set scale"].expressions == []
        # what cannot be read keeps the overrides it had
        assert run["magic"].parameters == {"n": 3} and run["magic"].overridden == ["n"]
        assert run["lost"].parameters == {"C": 9} and run["lost"].overridden == ["C"]
        assert store.metric_history(ids["set C"]) == [Metric("acc", 0.5, None)]  # nothing else touched
        # a run that used the default now matches a filter on it, and sorts by it
        page = store.list_runs("train.ipynb", filter="max_iter=100", sort="params.C", order="asc")
        assert page.total == 3 and page.runs[0].id == ids["set C"]
        assert {r.id for r in page.runs} == {ids["set C"], ids["defaults"], ids["set scale"]}
        assert run["defaults"].to_json()["overridden"] == [] and run["set C"].to_json()["expressions"] == ["scale"]
    finally:
        store.close()


def _downgrade(conn: "sa.engine.Connection", revision: str) -> None:
    """Alembic's downgrade of the store on ``conn`` to ``revision``."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(migrate.__file__).parent / "migrations"))
    config.attributes["connection"] = conn
    command.downgrade(config, revision)


def test_revision_0006_downgrades_to_the_overrides_alone(tmp_path):
    ids = _store_at_0004(tmp_path)
    _store(tmp_path).close()  # upgraded to the head
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'runs.sqlite'}")
    with engine.begin() as conn:
        _downgrade(conn, "0004")
        rows = dict(conn.execute(sa.text("select id, parameters from runs")).all())
        assert "overridden" not in {c["name"] for c in sa.inspect(conn).get_columns("runs")}
        assert conn.execute(sa.text("select count(*) from metrics")).scalar() == len(ids)
    engine.dispose()
    assert json.loads(rows[ids["set C"]]) == {"C": 0.5} and json.loads(rows[ids["defaults"]]) == {}


# -- revision 0009: how each run's kernel started -------------------------------------------------
WARM_START = {"warm": True, "modules": ["numpy", "pandas"], "left_out": {"tqdm.auto": "it adapts to the notebook "
              "frontend at import"}, "cold": None, "waited": 0.02}


def test_a_run_records_how_its_kernel_started(store):
    queued = store.create_run(NewRun("a.ipynb", b"{}"))
    store.mark_running(queued.id, time.time())
    done = store.finish_run(queued.id, RunOutcome("succeeded", _executed("hi"), time.time(), time.time(),
                                                  kernel_start=WARM_START))
    assert done.kernel_start == WARM_START and store.get_run(done.id).kernel_start == WARM_START
    assert done.to_json()["kernel_start"] == WARM_START
    never = _finish(store, store.create_run(NewRun("a.ipynb", b"{}")))  # no kernel said: none recorded
    assert never.kernel_start is None and never.to_json()["kernel_start"] is None


def _store_at_0008(root: Path) -> str:
    """A store as jupyter_mlx wrote it at revision 0008, with one finished run; its id."""
    engine = sa.create_engine(f"sqlite:///{root / 'runs.sqlite'}")
    with engine.begin() as conn:
        migrate.upgrade(conn, "0008")
        conn.execute(sa.text("insert into notebooks values (1, 'train.ipynb', 2)"))
        conn.execute(sa.text(
            "insert into runs (id, notebook_id, version, status, parameters, source_hash, backend, host, queued_at, "
            "cell_timings, metrics, tags, notes) values (:id, 1, 1, 'succeeded', '{}', :s, 'local', 'h', 1.0, '[]', "
            "'{}', '[]', '[\"started warm (numpy)\"]')"), {"id": "1" * 32, "s": "0" * 64})
    engine.dispose()
    return "1" * 32


def test_a_store_at_revision_0008_is_migrated_and_its_runs_say_nothing_of_their_kernel(tmp_path):
    run_id = _store_at_0008(tmp_path)
    store = _store(tmp_path)
    try:
        old = store.get_run(run_id)
        assert old.kernel_start is None and old.notes == ["started warm (numpy)"]  # the note it had stays
        queued = store.create_run(NewRun("train.ipynb", b"{}"))
        store.mark_running(queued.id, time.time())
        new = store.finish_run(queued.id, RunOutcome("succeeded", None, time.time(), time.time(),
                                                     kernel_start=WARM_START))
        assert new.version == 2 and store.get_run(new.id).kernel_start == WARM_START
    finally:
        store.close()


def test_revision_0009_downgrades_without_the_kernel_start(tmp_path):
    run_id = _store_at_0008(tmp_path)
    _store(tmp_path).close()  # upgraded to the head
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'runs.sqlite'}")
    with engine.begin() as conn:
        _downgrade(conn, "0008")
        assert "kernel_start" not in {c["name"] for c in sa.inspect(conn).get_columns("runs")}
        assert conn.execute(sa.text("select id from runs")).scalars().all() == [run_id]
    engine.dispose()


# -- revision 0010: who ran it, where it was exported ----------------------------------------------
def test_a_run_records_who_ran_it_and_where_it_was_exported(store):
    queued = store.create_run(NewRun("a.ipynb", b"{}", user="alice"))
    assert queued.user == "alice" and queued.to_json()["user"] == "alice" and queued.exports is None
    first = store.record_export(queued.id, "mlflow", "http://127.0.0.1:5000", {"run_id": "abc"})
    second = store.record_export(queued.id, "mlflow", "file:///tmp/mlruns", {"run_id": "def"})
    assert first.exports == {"mlflow": {"http://127.0.0.1:5000": {"run_id": "abc"}}}
    assert store.get_run(queued.id).to_json()["exports"] == second.exports == {"mlflow": {
        "http://127.0.0.1:5000": {"run_id": "abc"}, "file:///tmp/mlruns": {"run_id": "def"}}}
    with pytest.raises(MLXError, match="no run with id"):
        store.record_export("0" * 32, "mlflow", "x", {})
    assert store.create_run(NewRun("a.ipynb", b"{}")).user is None


def test_revision_0010_upgrades_old_runs_with_no_user_and_downgrades(tmp_path):
    run_id = _store_at_0008(tmp_path)
    store = _store(tmp_path)
    try:
        old = store.get_run(run_id)
        assert old.user is None and old.to_json()["exports"] == {}
    finally:
        store.close()
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'runs.sqlite'}")
    with engine.begin() as conn:
        _downgrade(conn, "0009")
        columns = {c["name"] for c in sa.inspect(conn).get_columns("runs")}
        assert "user" not in columns and "exports" not in columns
        assert conn.execute(sa.text("select id from runs")).scalars().all() == [run_id]
    engine.dispose()


@pytest.mark.parametrize("backend", STORE_BACKENDS)
def test_an_older_index_is_migrated_or_refused_with_both_revisions_when_migrations_are_off(tmp_path, request, backend,
                                                                                          capsys):
    from jupyter_mlx.cli import main

    url = store_url(backend, tmp_path, request)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        migrate.upgrade(conn, "0008")
    engine.dispose()
    with pytest.raises(MLXError) as caught:
        SqlRunStore(url, tmp_path / "blobs", migrate=False)
    assert caught.value.code == "store_schema_too_old"
    assert "revision 0008" in caught.value.message and f"head {migrate.HEAD}" in caught.value.message
    assert "jupyter mlx migrate-store" in caught.value.message
    config = {"MLXConfig": {"store_url": url, "blob_dir": str(tmp_path / "blobs"), "migrate_store": False}}
    (tmp_path / "jupyter_mlx_config.json").write_text(json.dumps(config))
    assert main(["--root", str(tmp_path), "runs"]) == 2  # refused, one line
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["--root", str(tmp_path), "migrate-store"]) == 0
    assert capsys.readouterr().out.endswith(f": schema revision 0008 -> {migrate.HEAD}\n")
    assert main(["--root", str(tmp_path), "migrate-store"]) == 0
    assert capsys.readouterr().out.endswith(f": already at schema revision {migrate.HEAD}\n")
    SqlRunStore(url, tmp_path / "blobs", migrate=False).close()  # current: opens
