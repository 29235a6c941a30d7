"""Contract tests of the run store (SqlRunStore on SQLite)."""
from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from jupyter_mlx.errors import MLXError
from jupyter_mlx.metrics import Metric
from jupyter_mlx.store import CellTiming, Environment, NewRun, RunError, RunOutcome
from jupyter_mlx.store import migrate
from jupyter_mlx.store.sql import SqlRunStore

PNG = {"output_type": "display_data", "data": {"image/png": "iVBORw0KGgo" * 500}, "metadata": {}}
ENV = Environment("3.11.7", "linux", "python3", {"numpy": "2.0"})


def _store(root: Path) -> SqlRunStore:
    return SqlRunStore(f"sqlite:///{root / 'runs.sqlite'}", root / "blobs")


@pytest.fixture
def store(tmp_path):
    s = _store(tmp_path)
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


def _finish(store, run, text="hi", status="succeeded", metrics=()):
    now = time.time()
    store.mark_running(run.id, now)
    return store.finish_run(
        run.id,
        RunOutcome(
            status, _executed(text), now, now + 1, [CellTiming(0, now, now + 0.5)],
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
    with sa.create_engine(f"sqlite:///{tmp_path / 'runs.sqlite'}").connect() as conn:
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


def _allocate(root: str, count: int, queue) -> None:
    store = _store(Path(root))
    queue.put([store.create_run(NewRun("race.ipynb", b"{}")).version for _ in range(count)])
    store.close()


def test_concurrent_processes_never_get_the_same_version(tmp_path):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_allocate, args=(str(tmp_path), 15, queue)) for _ in range(4)]
    for worker in workers:
        worker.start()
    versions = [v for _ in workers for v in queue.get(timeout=120)]
    for worker in workers:
        worker.join(60)
    assert sorted(versions) == list(range(1, 61))


def test_migrations_build_exactly_the_declared_schema(tmp_path):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from jupyter_mlx.store.tables import metadata

    _store(tmp_path).close()
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'runs.sqlite'}")
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        assert migrate.current_revision(conn) == migrate.HEAD
    script = ScriptDirectory(str(Path(migrate.__file__).parent / "migrations"))
    assert [rev.revision for rev in reversed(list(script.walk_revisions()))] == list(migrate.REVISIONS)


def test_a_store_from_a_newer_schema_is_refused_with_a_fix(tmp_path):
    _store(tmp_path).close()
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'runs.sqlite'}")
    with engine.begin() as conn:
        conn.execute(sa.text("update alembic_version set version_num = '9999'"))
    with pytest.raises(MLXError) as caught:
        _store(tmp_path)
    assert caught.value.code == "store_schema_too_new"
    assert "pip install -U jupyter_mlx" in caught.value.message
