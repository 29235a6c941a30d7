"""Listing runs from a store of 10,000: a page of 50 must take under 100 ms server-side, and so
must what the panel asks: a page of 200 sorted by a metric, filtered, with the parameter and
metric names (``keys=1``).

Measured three ways on the same SQLite file, interleaved, medians over repeats:
- anchor: the same page as one plain ``SELECT ... LIMIT 50`` through ``sqlite3`` (the floor); for
  the sorted and filtered page, the same answer in plain SQL written for this data (the page, its
  count, and the distinct parameter and metric names: four statements);
- ``RunService.list_runs`` in-process (what ``jupyter mlx runs`` calls);
- ``GET /mlx/runs`` on a real ``jupyter server`` on 127.0.0.1, end to end over a kept-alive
  connection: an upper bound of the server-side time (it includes HTTP and the client).

Run: ``.venv/bin/python benchmarks/bench_list.py [--runs 10000] [--repeats 30]``
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urlencode

import harness

from jupyter_mlx.metrics import Metric
from jupyter_mlx.service import RunService
from jupyter_mlx.store import CellTiming, Environment, NewRun, RunError, RunOutcome
from jupyter_mlx.store.base import RunStore
from jupyter_mlx.ports import free_port

TARGET_MS = 100.0
PAGE = 50
QUERY_PAGE = 200  # the panel's page
QUERY = {"sort": "metrics.accuracy", "filter": "C>0.1 succeeded", "keys": True}

# (notebook, share of the runs): a few experiments, one of them run most
NOTEBOOKS = [
    ("train.ipynb", 0.45),
    ("sweeps/learning_rate.ipynb", 0.25),
    ("eval/holdout.ipynb", 0.15),
    ("data/prepare.ipynb", 0.10),
    ("models/cnn.ipynb", 0.05),
]
FAILED_SHARE = 0.03
INTERRUPTED_SHARE = 0.005

# the anchor: the page as plain SQL, same joins, order and limit as the store's queries
ANCHOR_SQL = {
    "all": "SELECT runs.*, notebooks.path FROM runs JOIN notebooks ON notebooks.id = runs.notebook_id "
    "ORDER BY runs.queued_at DESC, runs.id LIMIT ? OFFSET ?",
    "notebook": "SELECT runs.*, notebooks.path FROM runs JOIN notebooks ON notebooks.id = runs.notebook_id "
    "WHERE notebooks.path = ? ORDER BY runs.version DESC LIMIT ? OFFSET ?",
    "status": "SELECT runs.*, notebooks.path FROM runs JOIN notebooks ON notebooks.id = runs.notebook_id "
    "WHERE runs.status = ? ORDER BY runs.queued_at DESC, runs.id LIMIT ? OFFSET ?",
}
# QUERY in plain SQL, as simply as this data allows: C is a number parameter of every run (no metric
# C) and "succeeded" appears in no text field but the status
_QUERY_WHERE = "WHERE json_extract(runs.parameters, '$.C') > 0.1 AND runs.status LIKE '%succeeded%'"
ANCHOR_QUERY = {
    "page": "SELECT runs.*, notebooks.path FROM runs JOIN notebooks ON notebooks.id = runs.notebook_id "
    f"{_QUERY_WHERE} ORDER BY json_extract(runs.metrics, '$.accuracy') DESC NULLS LAST, runs.queued_at DESC, "
    "runs.version DESC, runs.id LIMIT ? OFFSET ?",
    "total": f"SELECT count(*) FROM runs {_QUERY_WHERE}",
    "parameters": "SELECT DISTINCT key FROM runs, json_each(runs.parameters) ORDER BY key",
    "metrics": "SELECT DISTINCT key FROM runs, json_each(runs.metrics) ORDER BY key",
}


@dataclass(frozen=True)
class Case:
    """One page request: the same page for every way of asking."""

    name: str
    notebook: str | None = None
    status: str | None = None
    offset: int = 0
    page: int = PAGE
    query: dict[str, Any] | None = None  # sort, filter, keys: list_runs keyword arguments

    def anchor(self, db: sqlite3.Connection) -> tuple[list[Any], int | None, dict[str, list[str]] | None]:
        """The page's rows (and with a query, the total and keys) in plain SQL."""
        if self.query is None:
            sql, args = self.anchor_query()
            return db.execute(sql, args).fetchall(), None, None
        rows = db.execute(ANCHOR_QUERY["page"], (self.page, self.offset)).fetchall()
        total = db.execute(ANCHOR_QUERY["total"]).fetchone()[0]
        keys = {name: [key for (key,) in db.execute(ANCHOR_QUERY[name])] for name in ("parameters", "metrics")}
        return rows, total, keys

    def list_kwargs(self) -> dict[str, Any]:
        return dict(self.query or {})

    def anchor_query(self) -> tuple[str, tuple[Any, ...]]:
        if self.notebook is not None:
            return ANCHOR_SQL["notebook"], (self.notebook, PAGE, self.offset)
        if self.status is not None:
            return ANCHOR_SQL["status"], (self.status, PAGE, self.offset)
        return ANCHOR_SQL["all"], (PAGE, self.offset)

    def rest_path(self) -> str:
        params: dict[str, Any] = {"limit": self.page, "offset": self.offset}
        params.update({k: v for k, v in (("notebook", self.notebook), ("status", self.status)) if v})
        params.update({k: (1 if v is True else v) for k, v in (self.query or {}).items()})
        return "/mlx/runs?" + urlencode(params)


def cases(runs: int) -> list[Case]:
    return [
        Case("first page"),
        Case(f"deep page (offset {runs * 9 // 10:,})", offset=runs * 9 // 10),
        Case("notebook=train.ipynb", notebook="train.ipynb"),
        Case("status=failed", status="failed"),
        Case(f"page of {QUERY_PAGE}, sort={QUERY['sort']}, filter={QUERY['filter']!r}, keys=1",
             page=QUERY_PAGE, query=QUERY),
    ]


# -- populating the store -------------------------------------------------------------------
def _executed_notebook(parameters: dict[str, Any], accuracy: float, losses: list[float]) -> dict[str, Any]:
    """A small executed notebook: a parameters cell, metric outputs, a printed line."""
    metric_outputs = [
        {
            "output_type": "display_data",
            "metadata": {},
            "data": {
                "application/vnd.jupyter-mlx.metric+json": {"name": "loss", "value": loss, "step": step},
                "text/plain": f"loss[{step}] = {loss:g}",
            },
        }
        for step, loss in enumerate(losses)
    ]
    return {
        "cells": [
            {"cell_type": "code", "execution_count": 1, "metadata": {"tags": ["parameters"]}, "outputs": [],
             "source": "C = 1.0\nmax_iter = 100\nseed = 0"},
            {"cell_type": "code", "execution_count": 2, "metadata": {"tags": ["injected-parameters"]}, "outputs": [],
             "source": "\n".join(f"{k} = {v!r}" for k, v in parameters.items())},
            {"cell_type": "code", "execution_count": 3, "metadata": {}, "outputs": metric_outputs,
             "source": "for step in range(5):\n    log_metric('loss', train_epoch(), step=step)"},
            {"cell_type": "code", "execution_count": 4, "metadata": {},
             "outputs": [{"output_type": "stream", "name": "stdout", "text": f"accuracy {accuracy:.3f}\n"}],
             "source": "print(f'accuracy {accuracy:.3f}')"},
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _source(notebook: str) -> bytes:
    return json.dumps({"cells": [], "metadata": {"title": notebook}, "nbformat": 4, "nbformat_minor": 5}).encode()


def _outcome(rng: random.Random, parameters: dict[str, Any], environment: Environment) -> RunOutcome:
    started = time.time()
    timings = [CellTiming(i, started + i * 0.4, started + i * 0.4 + rng.uniform(0.01, 0.4)) for i in range(8)]
    accuracy = min(0.99, 0.7 + 0.05 * rng.random() + 0.02 * parameters["C"] ** 0.1)
    losses = [round(1.0 / (step + 1 + rng.random()), 4) for step in range(5)]
    metrics = [Metric("accuracy", accuracy), Metric("f1_macro", accuracy - 0.02)]
    metrics += [Metric("loss", loss, step) for step, loss in enumerate(losses)]
    roll = rng.random()
    if roll < FAILED_SHARE:
        status = "failed"
        error = RunError(
            "ValueError",
            f"solver did not converge for C={parameters['C']}",
            3,
            ["\x1b[0;31mValueError\x1b[0m  Traceback (most recent call last)", "Cell In[3], line 2", "..."],
        )
    elif roll < FAILED_SHARE + INTERRUPTED_SHARE:
        status, error = "interrupted", RunError("KeyboardInterrupt", "the run was interrupted")
    else:
        status, error = "succeeded", None
    return RunOutcome(
        status=status,
        notebook=_executed_notebook(parameters, accuracy, losses),
        started_at=started,
        finished_at=started + 3.2,
        cell_timings=timings,
        error=error,
        metrics=metrics if status == "succeeded" else metrics[:2],
        environment=environment,
    )


def populate(store: RunStore, count: int, seed: int = 0) -> dict[str, int]:
    """Record ``count`` finished runs through the store API (no kernels), as a project would have."""
    rng = random.Random(seed)
    names = [name for name, _ in NOTEBOOKS]
    weights = [share for _, share in NOTEBOOKS]
    environment = Environment(
        "3.11.2", "Linux-x86_64", "python3", {f"package-{i}": f"1.{i}.0" for i in range(60)}
    )
    sweep = None
    statuses: dict[str, int] = {}
    for index in range(count):
        notebook = rng.choices(names, weights)[0]
        if index % 20 == 0:
            sweep = secrets.token_hex(16) if rng.random() < 0.5 else None
        parameters = {
            "C": round(10 ** rng.uniform(-3, 2), 5),
            "max_iter": rng.choice([100, 200, 500]),
            "test_size": 0.3,
            "seed": rng.randrange(5),
            "solver": rng.choice(["lbfgs", "saga"]),
        }
        record = store.create_run(
            NewRun(
                notebook=notebook,
                source=_source(notebook),
                parameters=parameters,
                tags=["baseline"] if rng.random() < 0.1 else [],
                host="bench-host",
                pid=1,
                git_commit=f"{rng.getrandbits(160):040x}",
                git_dirty=rng.random() < 0.2,
                sweep_id=sweep,
            )
        )
        store.mark_running(record.id, time.time())
        outcome = _outcome(rng, parameters, environment)
        store.finish_run(record.id, outcome)
        statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
    return statuses


# -- the real server ------------------------------------------------------------------------


@contextmanager
def jupyter_server(root: Path, scratch: Path, ready_timeout: float = 90.0) -> Iterator[tuple[int, str]]:
    """A ``jupyter server`` with jupyter_mlx on 127.0.0.1: yields (port, token); always stopped."""
    port, token = free_port(), secrets.token_hex(16)
    config = scratch / "config"
    config.mkdir(parents=True, exist_ok=True)
    # a config file, not the command line: traitlets reads a Dict from argv as key=value pairs
    (config / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": {"jupyter_mlx": True}}})
    )
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_RUNTIME_DIR": str(scratch / "runtime"),
    }
    command = [
        sys.executable, "-m", "jupyter_server",
        "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--ServerApp.log_level=WARN",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # containers often run as root
    log_path = scratch / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
    try:
        _wait_ready(process, port, token, ready_timeout, log_path)
        yield port, token
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def _wait_ready(process: subprocess.Popen, port: int, token: str, timeout: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jupyter server exited ({process.returncode}):\n{log_path.read_text()[-3000:]}")
        try:
            status, _ = _get(http.client.HTTPConnection("127.0.0.1", port, timeout=5), "/mlx/notebooks", token)
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"jupyter server not ready after {timeout:.0f} s:\n{log_path.read_text()[-3000:]}")


def _get(connection: http.client.HTTPConnection, path: str, token: str) -> tuple[int, bytes]:
    connection.request("GET", path, headers={"Authorization": f"token {token}"})
    response = connection.getresponse()
    return response.status, response.read()


# -- measuring ------------------------------------------------------------------------------
def _ways(
    case: Case, service: RunService, db: sqlite3.Connection, rest: Callable[[str], bytes]
) -> dict[str, Callable[[], Any]]:
    kwargs = case.list_kwargs()
    store = service.store
    ways = {
        "sqlite3 SELECT (anchor)": lambda: case.anchor(db),
        "RunStore.list_runs": lambda: store.list_runs(case.notebook, case.status, case.page, case.offset, **kwargs),
        "RunService.list_runs": lambda: service.list_runs(case.notebook, case.status, case.page, case.offset, **kwargs),
        "GET /mlx/runs (end to end)": lambda: rest(case.rest_path()),
    }
    if kwargs.get("keys"):
        # the store keeps the names while the runs stay the same: here, as on a first request, it does not
        def uncached() -> Any:
            getattr(store, "_keys_cache", {}).clear()
            return store.list_runs(case.notebook, case.status, case.page, case.offset, **kwargs)

        ways["RunStore.list_runs (keys not cached)"] = uncached
    return ways


def _check_same_page(case: Case, ways: dict[str, Callable[[], Any]]) -> None:
    """Every way must return the same runs (and total and keys), or the comparison means nothing."""
    results = {name: way() for name, way in ways.items()}
    anchor, total, keys = results["sqlite3 SELECT (anchor)"]
    store, service, rest = (results[name] for name in ("RunStore.list_runs", "RunService.list_runs",
                                                        "GET /mlx/runs (end to end)"))
    ids = [row[0] for row in anchor]
    assert ids, f"{case.name}: the anchor returned no rows"  # fewer than a page with a small --runs
    assert [run.id for run in store.runs] == ids, f"{case.name}: store page differs from the anchor"
    assert [run.id for run in service.runs] == ids, f"{case.name}: service page differs from the anchor"
    answer = json.loads(rest)
    assert [run["id"] for run in answer["runs"]] == ids, f"{case.name}: REST page differs"
    if case.query is not None:
        uncached = results.get("RunStore.list_runs (keys not cached)")
        for page in (store, service, *([uncached] if uncached else [])):
            assert (page.total, page.keys) == (total, keys), f"{case.name}: total or keys differ from the anchor"
        assert (answer["total"], answer["keys"]) == (total, keys), f"{case.name}: REST total or keys differ"


def measure(case: Case, ways: dict[str, Callable[[], Any]], repeats: int, warmup: int) -> dict[str, list[float]]:
    """Interleave the ways round-robin so they share the machine's noise."""
    samples: dict[str, list[float]] = {name: [] for name in ways}
    for round_ in range(warmup + repeats):
        for name, way in ways.items():
            seconds, _ = harness.timed(way)
            if round_ >= warmup:
                samples[name].append(seconds)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10_000, help="runs in the store (default 10000)")
    parser.add_argument("--repeats", type=int, default=30, help="timed repeats per way and case (default 30)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first (default 3)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="mlx-bench-list-") as tmp:
        root, scratch = Path(tmp) / "project", Path(tmp) / "scratch"
        root.mkdir()
        scratch.mkdir()
        service = RunService(root)
        print(f"populating {args.runs:,} runs through the store API ...", flush=True)
        populate_s, statuses = harness.timed(lambda: populate(service.store, args.runs))
        print(f"  {populate_s:.1f} s ({populate_s / args.runs * 1000:.1f} ms a run); statuses {statuses}")
        database = root / ".mlx" / "runs.sqlite"
        db = sqlite3.connect(database)

        results = []
        with jupyter_server(root, scratch) as (port, token):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

            def rest(path: str) -> bytes:
                status, body = _get(connection, path, token)
                if status != 200:
                    raise RuntimeError(f"GET {path}: HTTP {status}: {body[:300]!r}")
                return body

            for case in cases(args.runs):
                ways = _ways(case, service, db, rest)
                _check_same_page(case, ways)
                samples = measure(case, ways, args.repeats, args.warmup)
                results.append({"case": case.name, "rest_path": case.rest_path(),
                                "rest_body_bytes": len(rest(case.rest_path())),
                                "ways": {name: harness.summary_ms(s) for name, s in samples.items()}})
            connection.close()
        db.close()
        service.close()

    report(results, args, populate_s, statuses)
    return 0


def report(
    results: list[dict[str, Any]], args: argparse.Namespace, populate_s: float, statuses: dict[str, int]
) -> None:
    rows = []
    for result in results:
        anchor = result["ways"]["sqlite3 SELECT (anchor)"]["median_ms"]
        for name, stats in result["ways"].items():
            within = "" if "anchor" in name else ("yes" if stats["median_ms"] < TARGET_MS else "NO")
            rows.append([result["case"], name, stats["median_ms"], stats["p75_ms"],
                         f"{stats['median_ms'] / anchor:.1f}x", within])
    print(f"\nA page of {PAGE} (or as the case says) from {args.runs:,} runs; medians of {args.repeats} "
          f"interleaved repeats; target < {TARGET_MS:.0f} ms")
    harness.print_table(["case", "way", "median ms", "p75 ms", "vs anchor", f"< {TARGET_MS:.0f} ms"], rows)
    path = harness.write_results("bench_list", {
        "runs": args.runs, "page": PAGE, "query_page": QUERY_PAGE, "query": QUERY, "repeats": args.repeats, "warmup": args.warmup,
        "target_ms": TARGET_MS, "populate_seconds": populate_s, "statuses": statuses,
        "notes": "REST times are end to end on 127.0.0.1 over a kept-alive connection "
                 "(an upper bound of the server-side time); the anchor is the same page as one plain "
                 "SELECT through sqlite3 on the same file.",
        "cases": results,
    })
    print(f"\nresults: {path}")


if __name__ == "__main__":
    sys.exit(main())
