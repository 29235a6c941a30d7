"""The test command's own speed: the whole pytest suite the old way (one process, the Binder venv
built from scratch) and the way ``scripts/test`` runs it now (pytest-xdist, one worker more than the cores,
the Binder venv from the cache), in the same run on the same machine.

    .venv/bin/python benchmarks/bench_tests.py [--ways serial,xdist-cold,xdist-warm] [-- PYTEST ARGS]

Three ways, in this order:

- ``serial``: ``pytest -p no:xdist`` with an empty test cache, as before (the Binder test installs
  its venv from scratch);
- ``xdist-cold``: ``scripts/test``'s options with an empty test cache (a fresh machine: CI's first run);
- ``xdist-warm``: the same again, the Binder venv now cached (every later run).

Each way runs in a test cache folder of its own (``JUPYTER_MLX_TEST_CACHE``), removed at the end,
so your own cache is neither used nor changed. It prints the wall time of each way, the ratios to
``serial``, the tests passed/failed/skipped, whether every way ran the same test ids, and the load
average before and after; the JSON goes to ``benchmarks/results/bench_tests.json``, each way's
pytest output to ``benchmarks/results/bench_tests-<way>.log``. About 25 min on
2 cores (``--ways serial,xdist-warm``: the warm run still needs a cold one first, which it does
without timing it). Arguments after ``--`` go to every pytest (``-- -k cli`` for a quick look).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from harness import REPO, RESULTS, print_table, write_results

WORKERS = os.environ.get("JUPYTER_MLX_TEST_WORKERS") or str(len(os.sched_getaffinity(0)) + 1)  # as scripts/test
XDIST = ["-n", WORKERS, "--dist", "loadscope", "--no-loadscope-reorder"]  # as scripts/test
WAYS = {
    "serial": (["-p", "no:xdist"], "serial"),
    "xdist-cold": (XDIST, "cold"),
    "xdist-warm": (XDIST, "warm"),
}


def run_pytest(options: list[str], extra: list[str], cache: Path, junit: Path, log: Path | None = None) -> dict[str, Any]:
    """One timed pytest run of the suite; its counts and test ids from a JUnit report; its output
    kept in ``log``."""
    env = {**os.environ, "JUPYTER_MLX_TEST_CACHE": str(cache)}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}", *options, *extra]
    started = time.monotonic()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if log is not None:
        log.parent.mkdir(exist_ok=True)
        log.write_text(done.stdout + done.stderr)
    summary = next((line for line in reversed(done.stdout.splitlines()) if re.search(r"\d+ (passed|failed)", line)), "")
    return {"seconds": seconds, "exit": done.returncode, "summary": summary.strip("= "), **read_junit(junit)}


def read_junit(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {"tests": 0, "failed": 0, "skipped": 0, "ids": []}
    ids, failed, skipped = [], 0, 0
    for case in ET.parse(path).iter("testcase"):
        name = case.get("name", "")
        ids.append(f"{case.get('classname')}::{name}")
        failed += any(child.tag in ("failure", "error") for child in case)
        skipped += any(child.tag == "skipped" for child in case)
    return {"tests": len(set(ids)), "failed": failed, "skipped": skipped, "ids": sorted(set(ids))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ways", default="serial,xdist-cold,xdist-warm", help="comma-separated, of: " + ", ".join(WAYS))
    parser.add_argument("pytest_args", nargs=argparse.REMAINDER, help="after --: passed to every pytest")
    args = parser.parse_args()
    ways = [way.strip() for way in args.ways.split(",") if way.strip()]
    unknown = [way for way in ways if way not in WAYS]
    if unknown:
        parser.error(f"unknown ways: {', '.join(unknown)}")
    extra = args.pytest_args[1:] if args.pytest_args[:1] == ["--"] else args.pytest_args
    scratch = Path(tempfile.mkdtemp(prefix="bench-tests-"))
    results: dict[str, Any] = {"cpus": os.cpu_count(), "load_before": os.getloadavg(), "pytest_args": extra}
    try:
        xdist_cache = scratch / "xdist-cache"
        for way in ways:
            options, cache_state = WAYS[way]
            cache = scratch / "serial-cache" if cache_state == "serial" else xdist_cache
            if cache_state == "warm" and not (cache.exists() and any(cache.iterdir())):
                print("bench_tests: warming the xdist cache (untimed: a cold run first)", flush=True)
                run_pytest(options, [*extra, "tests/test_binder.py"], cache, scratch / "warming.xml")
            print(f"bench_tests: {way} ...", flush=True)
            results[way] = run_pytest(options, extra, cache, scratch / f"{way}.xml", RESULTS / f"bench_tests-{way}.log")
            print(f"bench_tests: {way}: {results[way]['seconds']:.0f} s, {results[way]['summary']}", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    results["load_after"] = os.getloadavg()
    report(results, ways)
    path = write_results("bench_tests", {**results, **{way: {k: v for k, v in results[way].items() if k != "ids"}
                                                       for way in ways}})
    print(f"\nresults: {path}")
    return 0 if all(results[way]["exit"] == 0 for way in ways) else 1


def report(results: dict[str, Any], ways: list[str]) -> None:
    base = results.get("serial", {}).get("seconds")
    rows = []
    for way in ways:
        run = results[way]
        ratio = f"{base / run['seconds']:.2f}x" if base and way != "serial" else "-"
        rows.append([way, run["seconds"], ratio, run["tests"], run["failed"], run["skipped"], run["exit"]])
    print()
    print_table(["way", "wall s", "faster than serial", "tests", "failed", "skipped", "exit"], rows)
    id_sets = {way: set(results[way]["ids"]) for way in ways}
    first = ways[0]
    for way in ways[1:]:
        missing, added = id_sets[first] - id_sets[way], id_sets[way] - id_sets[first]
        verdict = "the same test ids" if not missing and not added else f"{len(missing)} missing, {len(added)} added"
        print(f"{way} vs {first}: {verdict}")
    print(f"cpus {results['cpus']}, load average before {results['load_before']}, after {results['load_after']}")


if __name__ == "__main__":
    sys.exit(main())
