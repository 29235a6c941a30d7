"""A team's run index on PostgreSQL (issue 17), against SQLite in the same run.

1. Listing: the same 10,000 finished runs (``bench_list.populate``, same seed) recorded in a SQLite
   index and in a PostgreSQL one (a private cluster on 127.0.0.1, tests/postgres.py); a page of 50
   sorted by a metric and filtered (``sort=metrics.accuracy``, ``filter="C>0.1 succeeded"``), and
   the default page, through ``RunService.list_runs`` (what ``jupyter mlx runs`` and the REST API
   call), the two stores interleaved, medians of ``--repeats``. Target: both under 100 ms; the
   ratio PostgreSQL / SQLite is reported.
2. Two servers, one index: two real ``jupyter server`` processes on one fresh PostgreSQL database
   and one blob folder, each with its project holding the same tiny notebook; ``--each`` runs
   POSTed to each at once (8 client threads per server). Reported: the wall time until every
   submission was answered (queued), until every run finished, and the versions (must be 1..2N).

Run: ``.venv/bin/python benchmarks/bench_team_store.py [--runs 10000] [--repeats 30] [--each 64]``
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import harness
from bench_list import populate

from jupyter_mlx.config import MLXConfig
from jupyter_mlx.service import RunService

sys.path.insert(0, str(harness.REPO / "tests"))
from postgres import postgres_server  # noqa: E402  (the tests' private PostgreSQL)
from server_process import Server  # noqa: E402

TARGET_MS = 100.0
QUERIES = {
    "sorted by a metric, filtered": {"sort": "metrics.accuracy", "filter": "C>0.1 succeeded"},
    "default page": {},
}
FINAL = {"succeeded", "failed", "cancelled", "interrupted"}


def listing(args: argparse.Namespace, tmp: Path, postgres: object) -> dict:
    services = {}
    for backend in ("sqlite", "postgresql"):
        root = tmp / backend
        root.mkdir()
        url = postgres.database() if backend == "postgresql" else f"sqlite:///{root / 'runs.sqlite'}"
        service = RunService(root, MLXConfig(store_url=url))
        started = time.perf_counter()
        populate(service.store, args.runs)
        print(f"  {backend}: {args.runs} runs recorded in {time.perf_counter() - started:.0f} s", flush=True)
        services[backend] = service
    results: dict = {}
    try:
        for name, query in QUERIES.items():
            pages = {b: [r.ref for r in s.list_runs(limit=50, **query).runs] for b, s in services.items()}
            assert pages["sqlite"] == pages["postgresql"], f"{name}: the two stores list different pages"
            times: dict[str, list[float]] = {b: [] for b in services}
            for _ in range(args.repeats):
                for backend, service in services.items():  # interleaved
                    started = time.perf_counter()
                    service.list_runs(limit=50, **query)
                    times[backend].append(time.perf_counter() - started)
            results[name] = {b: statistics.median(t) * 1000 for b, t in times.items()}
    finally:
        for service in services.values():
            service.close()
    return results


def two_servers(args: argparse.Namespace, tmp: Path, postgres: object) -> dict:
    url, blobs = postgres.database(), tmp / "team-blobs"
    servers = []
    try:
        for name in ("alice", "bob"):
            root, home = tmp / name, tmp / f"home-{name}"
            home.mkdir()
            harness.write_notebook(root / "tiny.ipynb", [harness.code_cell("x = 1", ["parameters"]),
                                                         harness.code_cell("print(x)")])
            servers.append(Server(root, home, (f"--MLXConfig.store_url={url}", f"--MLXConfig.blob_dir={blobs}")))

        def submit(server: Server) -> list[str]:
            with ThreadPoolExecutor(8) as pool:
                return [run["id"] for run in pool.map(
                    lambda i: server.call("POST", "/mlx/runs", {"notebook": "tiny.ipynb", "parameters": {"x": i}}),
                    range(args.each))]

        started = time.perf_counter()
        with ThreadPoolExecutor(2) as both:
            ids = [run_id for batch in both.map(submit, servers) for run_id in batch]
        queued = time.perf_counter() - started
        while True:
            listed = servers[0].call("GET", f"/mlx/runs?notebook=tiny.ipynb&limit={2 * args.each}")["runs"]
            if len(listed) == len(ids) and all(run["status"] in FINAL for run in listed):
                break
            if time.perf_counter() - started > 900:
                raise RuntimeError("the runs did not finish within 900 s")
            time.sleep(0.2)
        finished = time.perf_counter() - started
        versions = sorted(run["version"] for run in listed)
        statuses = sorted({run["status"] for run in listed})
    finally:
        for server in servers:
            server.stop()
    return {"submitted": len(ids), "all_queued_s": queued, "all_finished_s": finished,
            "versions_ok": versions == list(range(1, 2 * args.each + 1)), "first_last": [versions[0], versions[-1]],
            "statuses": statuses}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--each", type=int, default=64, help="runs POSTed to each of the two servers")
    parser.add_argument("--skip-listing", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mlx-bench-team-"))
    results: dict = {}
    with postgres_server() as postgres:
        if not args.skip_listing:
            print(f"1. listing: recording {args.runs} runs in each store ...", flush=True)
            results["listing"] = listing(args, tmp, postgres)
        print(f"2. two servers on one PostgreSQL index: {args.each} runs POSTed to each at once ...", flush=True)
        results["two_servers"] = two_servers(args, tmp, postgres)
    verdicts = []
    if "listing" in results:
        print(f"\n1. A page of 50 of {args.runs} runs through RunService.list_runs (medians of {args.repeats}, ms)")
        rows = []
        for name, by in results["listing"].items():
            rows.append([name, by["sqlite"], by["postgresql"], f"{by['postgresql'] / by['sqlite']:.2f}x"])
            ok = max(by.values()) < TARGET_MS
            verdicts.append(f"{name}: both under {TARGET_MS:g} ms: {'MET' if ok else 'MISSED'} "
                            f"(SQLite {by['sqlite']:.1f} ms, PostgreSQL {by['postgresql']:.1f} ms)")
        harness.print_table(["query", "SQLite ms", "PostgreSQL ms", "PostgreSQL / SQLite"], rows)
    team = results["two_servers"]
    print(f"\n2. Two jupyter servers, one PostgreSQL index: {team['submitted']} runs POSTed at once")
    print(f"   all answered (queued) after {team['all_queued_s']:.2f} s; all finished after {team['all_finished_s']:.1f} s; "
          f"versions {team['first_last'][0]}..{team['first_last'][1]}, gap-free and unique: {team['versions_ok']}; "
          f"statuses {team['statuses']}")
    verdicts.append(f"versions 1..{team['submitted']}, none lost: {'MET' if team['versions_ok'] else 'MISSED'}")
    print("\n" + "\n".join(verdicts))
    path = harness.write_results("bench_team_store", {"args": vars(args), **results, "verdicts": verdicts})
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
