"""MLflow tracking (issue 17, item 4): what the automatic export costs a run, and how long it takes.

A real ``mlflow server`` (SQLite, proxied artifacts, one worker) on a free port, and a temporary
git project with a copy of ``examples/train.ipynb``. Two ``RunService`` on the project: one with
``c.MLXConfig.mlflow_tracking_uri`` set (export on), one without (off). A run is timed end to end
as a client waits for it: ``submit`` to final (``wait``), the same notebook and parameters in both.

The modes alternate in blocks of ``--block`` runs (which comes first rotates each round). In an
"on" block, a run after the first executes while the previous run's export is still running (what
consecutive runs and sweeps see: the worst case for the run's own path); before an "off" block the
exports are waited for, so none overlaps an "off" run. One untimed run of each first (kernels,
imports; the "on" one's export imports mlflow).

Also: each "on" run's background export, from the run's end (``finished_at``) to its export kept on
the run (``exports.mlflow[uri].at``): parameters, metric series, tags, the executed notebook and the
HTML comparison report with the previous run, over HTTP to the server.

Target: no added time on the run's own path (the median of "on" within the noise of "off").

Run: ``.venv/bin/python benchmarks/bench_mlflow_export.py [--runs 6] [--block 2]`` (about 1 min on 2 cores)
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import harness
from jupyter_mlx.config import MLXConfig
from jupyter_mlx.ports import free_port
from jupyter_mlx.service import RunService

NOTEBOOK = "train.ipynb"
PARAMETERS = {"C": 0.5}
START_TIMEOUT = 120.0
EXPORT_TIMEOUT = 300.0


def start_server(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``mlflow server`` in its own process group; its URI once ``/health`` answers."""
    port = free_port()
    argv = [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1", "--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}",
            "--artifacts-destination", str(home / "artifacts")]
    with (home / "server.log").open("wb") as log:
        process = subprocess.Popen(argv, cwd=home, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                   env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true",
                                        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2):
                return process, uri
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                stop_server(process)
                raise SystemExit(f"mlflow server did not start:\n{(home / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)


def stop_server(process: subprocess.Popen[bytes]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
            process.wait(10)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def make_project(root: Path) -> None:
    root.mkdir(parents=True)
    shutil.copy(harness.REPO / "examples" / NOTEBOOK, root / NOTEBOOK)
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "."], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "bench"], cwd=root, check=True)


def run_once(service: RunService) -> tuple[float, Any]:
    """Submit to final, as a client waits for a run."""
    start = time.perf_counter()
    queued = service.submit(NOTEBOOK, PARAMETERS)
    (final,) = service.wait([queued], timeout=600, poll=0.02)
    return time.perf_counter() - start, final


def export_of(service: RunService, run_id: str, uri: str) -> dict[str, Any]:
    return ((service.store.get_run(run_id).exports or {}).get("mlflow") or {}).get(uri) or {}


def wait_exported(service: RunService, run_ids: list[str], uri: str) -> None:
    deadline = time.monotonic() + EXPORT_TIMEOUT
    while not all(export_of(service, run_id, uri) for run_id in run_ids):
        if time.monotonic() > deadline:
            raise SystemExit(f"exports not done after {EXPORT_TIMEOUT:.0f} s")
        time.sleep(0.1)


def measure(root: Path, uri: str, runs: int, block: int) -> dict[str, Any]:
    services = {"off": RunService(root), "on": RunService(root, MLXConfig(mlflow_tracking_uri=uri))}
    samples: dict[str, list[float]] = {"off": [], "on": []}
    overlapped: list[float] = []  # "on" runs that ran while the previous run's export did
    on_runs: list[Any] = []
    try:
        for mode in ("off", "on"):  # untimed: kernels, imports, and mlflow's import in the exporter
            _, warm = run_once(services[mode])
            if mode == "on":
                wait_exported(services["on"], [warm.id], uri)
                first_export_s = export_of(services["on"], warm.id, uri)["at"] - warm.finished_at
        rounds = -(-runs // block)
        for number in range(rounds):
            for mode in (("off", "on") if number % 2 == 0 else ("on", "off")):
                if mode == "off":
                    wait_exported(services["on"], [r.id for r in on_runs], uri)
                for _ in range(block):
                    if len(samples[mode]) >= runs:
                        break
                    busy = mode == "on" and bool(on_runs) and not export_of(services["on"], on_runs[-1].id, uri)
                    seconds, run = run_once(services[mode])
                    assert run.status == "succeeded", run.error
                    samples[mode].append(seconds)
                    if mode == "on":
                        on_runs.append(run)
                        if busy:
                            overlapped.append(seconds)
                    print(f"  {mode:3}  {seconds:6.2f} s{'  (while the previous export ran)' if busy else ''}",
                          flush=True)
        wait_exported(services["on"], [r.id for r in on_runs], uri)
        exports = [export_of(services["on"], r.id, uri) for r in on_runs]
        errors = [e["error"] for e in exports if "error" in e]
        latency = [e["at"] - r.finished_at for e, r in zip(exports, on_runs) if "at" in e]
    finally:
        for service in services.values():
            service.close()
    return {"samples": samples, "overlapped": overlapped, "export_s": latency, "first_export_s": first_export_s,
            "errors": errors}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=6, help="timed runs per mode (default 6)")
    parser.add_argument("--block", type=int, default=2, help="runs of one mode in a row (default 2)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mlx-bench-mlflow-") as tmp:
        home = Path(tmp) / "mlflow"
        home.mkdir()
        process, uri = start_server(home)
        try:
            make_project(Path(tmp) / "project")
            print(f"mlflow server at {uri}; {args.runs} runs per mode in blocks of {args.block} ...", flush=True)
            found = measure(Path(tmp) / "project", uri, args.runs, args.block)
        finally:
            stop_server(process)
    report(args, found)
    return 0


def report(args: argparse.Namespace, found: dict[str, Any]) -> None:
    stats = {mode: harness.summary_ms(seconds) for mode, seconds in found["samples"].items()}
    off_ms = stats["off"]["median_ms"]
    rows = [[f"export {mode}", s["median_ms"], s["p25_ms"], s["p75_ms"], s["n"], f"{s['median_ms'] / off_ms:.3f}x"]
            for mode, s in stats.items()]
    if found["overlapped"]:
        s = harness.summary_ms(found["overlapped"])
        rows.append(["export on, while the previous export ran", s["median_ms"], s["p25_ms"], s["p75_ms"], s["n"],
                     f"{s['median_ms'] / off_ms:.3f}x"])
    print(f"\n{NOTEBOOK} (examples/), submit to final, {args.runs} runs per mode")
    harness.print_table(["way", "median ms", "p25 ms", "p75 ms", "n", "vs off"], rows)
    export = harness.summary_ms(found["export_s"]) if found["export_s"] else None
    added = stats["on"]["median_ms"] - off_ms
    spread = stats["off"]["p75_ms"] - stats["off"]["p25_ms"]
    print(f"\non - off: {added:+.0f} ms (ratio {stats['on']['median_ms'] / off_ms:.3f}; the off runs' p25-p75 spread "
          f"{spread:.0f} ms): {'within' if added <= max(spread, 50.0) else 'OUTSIDE'} the noise")
    if export:
        print(f"background export per run (run's end -> export kept on it): median {export['median_ms']:.0f} ms, "
              f"p75 {export['p75_ms']:.0f} ms, max {export['max_ms']:.0f} ms; the first (mlflow imported): "
              f"{found['first_export_s'] * 1000:.0f} ms")
    if found["errors"]:
        print(f"export errors: {found['errors']}")
    path = harness.write_results("bench_mlflow_export", {
        "runs": args.runs, "block": args.block, "notebook": f"examples/{NOTEBOOK}", "parameters": PARAMETERS,
        "ways": stats, "overlapped": harness.summary_ms(found["overlapped"]) if found["overlapped"] else None,
        "on_minus_off_ms": added, "ratio_of_medians": stats["on"]["median_ms"] / off_ms,
        "export": export, "first_export_ms": found["first_export_s"] * 1000, "errors": found["errors"],
        "samples_s": found["samples"], "median_s": {m: statistics.median(s) for m, s in found["samples"].items()},
    })
    print(f"\nresults: {path}")


if __name__ == "__main__":
    sys.exit(main())
