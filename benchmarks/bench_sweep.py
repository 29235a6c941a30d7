"""A sweep of 32 runs of a small notebook: jupyter_mlx against papermill, sequential and in warm workers.

Targets (issue): on this machine, the sweep's wall-clock within 1.5x of the limit (the runs' own cell
compute summed, divided by the cores), at least 8x faster than sequential ``papermill`` CLI runs and
1.6x faster than two warm papermill API workers; per-run overhead (a run's wall time minus its own
cell compute) under 150 ms at steady state; the server's memory does not grow over three sweeps.

The notebook: a parameters cell (``seed``), numpy and matplotlib imports, a little numpy work, one
matplotlib PNG and a print, about 1 s of cell compute (imports included). Four ways, in rounds, the order rotated each
round so they share the machine's noise:
- papermill CLI, sequential (``papermill in.ipynb out.ipynb -p seed i``): ``--cli-runs`` of them,
  spread over the rounds, extrapolated to ``--runs`` unless ``--cli-runs`` equals it;
- two warm papermill API workers: two processes that imported papermill and ran the notebook once
  before any clock starts, running the runs with ``papermill.execute_notebook``;
- jupyter_mlx in this process: ``RunService.sweep`` + ``wait``, a fresh service per round (its kernel
  pool pre-starts kernels when the sweep is announced, as ``jupyter mlx sweep`` does);
- jupyter_mlx through a real ``jupyter server``: ``POST /mlx/sweeps``, then ``GET /mlx/sweeps/<id>``
  until done. One server for all rounds, so its sweeps are consecutive; its RSS and its kernels'
  RSS (children) are sampled from /proc every 0.2 s.
A /proc sampler also records the CPU time of every process, so each way reports what its kernels
and its own process spent per run, how busy the cores were, and how much CPU other processes took.
Diagnostics follow (``--skip-diagnose`` to skip): the cost of a kernel start (wall and CPU), of
connecting a client to a ready kernel, and one in-process sweep with every phase of a run timed
(queue slot, store writes, kernel acquire, connect, cells, teardown), which shows whether
pre-started kernels are warm when runs need them. ``--profile`` adds a cProfile (thread CPU time)
of the run threads of one more in-process sweep.

Run: ``.venv/bin/python benchmarks/bench_sweep.py [--runs 32] [--cli-runs 6] [--rounds 3]
[--skip-cli] [--skip-api] [--skip-server] [--skip-diagnose] [--profile]``
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import http.client
import json
import multiprocessing
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple
from unittest import mock

import harness

NOTEBOOK = "sweep.ipynb"
KERNEL = "python3"
TARGET_LIMIT_RATIO = 1.5
TARGET_VS_CLI = 8.0
TARGET_VS_API = 1.6
TARGET_OVERHEAD_MS = 150.0
POLL_SECONDS = 0.25  # how often the REST client asks whether the sweep is done
SETTLE_SECONDS = 2.0  # after a server sweep: kernels shut down, the pool refilled, then RSS is read
SAMPLE_SECONDS = 0.2

CLI = "papermill CLI, sequential"
API = "2 warm papermill API workers"
INPROC = "jupyter_mlx in-process"
SERVER = "jupyter_mlx server (REST)"


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


# -- the notebook -----------------------------------------------------------------------------
def write_sweep_notebook(path: Path) -> Path:
    """Parameters cell, imports, numpy work, one matplotlib PNG, a print: ~1 s of cell compute."""
    return harness.write_notebook(path, [
        harness.code_cell("seed = 0", tags=["parameters"]),
        harness.code_cell("import numpy as np\nimport matplotlib.pyplot as plt"),
        harness.code_cell(
            "rng = np.random.default_rng(seed)\n"
            "walks = rng.standard_normal((300, 20_000)).cumsum(axis=1)\n"
            "walks = np.sort(np.sin(walks) + 0.5 * walks, axis=1)\n"
            "spread = walks.std(axis=0)"
        ),
        harness.code_cell(
            "fig, ax = plt.subplots(figsize=(5, 3))\n"
            "ax.plot(spread[::50])\n"
            "ax.set_title(f'seed {seed}')\n"
            "plt.show()"
        ),
        harness.code_cell("print(f'seed={seed} final spread={spread[-1]:.4f}')"),
    ])


def make_project(root: Path, git: bool) -> None:
    """A project with the notebook, committed to git as most projects are (runs record git state)."""
    write_sweep_notebook(root / NOTEBOOK)
    if git:
        for command in (["git", "init", "-q"], ["git", "add", NOTEBOOK],
                        ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid",
                         "commit", "-q", "-m", "sweep notebook"]):
            subprocess.run(command, cwd=root, check=True, capture_output=True, timeout=60)


def papermill_cells(notebook: dict[str, Any]) -> list[tuple[float, float]]:
    """(start, end) epoch seconds of each executed code cell, from papermill's cell metadata."""
    cells = []
    for cell in notebook["cells"]:
        meta = (cell.get("metadata") or {}).get("papermill") or {}
        if cell.get("cell_type") == "code" and meta.get("start_time") and meta.get("end_time"):
            cells.append((_epoch(meta["start_time"]), _epoch(meta["end_time"])))
    return cells


def _epoch(iso: str) -> float:
    moment = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.timestamp()


def count_pngs(notebook: dict[str, Any]) -> int:
    return sum("image/png" in (output.get("data") or {})
               for cell in notebook["cells"] for output in cell.get("outputs", []))


# -- one run's timing, whatever executed it ---------------------------------------------------
@dataclass
class RunTiming:
    """A run's own start and end and its code cells: what its overhead is computed from."""

    started: float
    finished: float
    cells: list[tuple[float, float]]
    cpu: float | None = None  # CPU seconds of the run's processes, when known (CLI: papermill + kernel)

    @property
    def wall(self) -> float:
        return self.finished - self.started

    @property
    def compute(self) -> float:
        return sum(end - start for start, end in self.cells)

    @property
    def overhead(self) -> float:
        return self.wall - self.compute

    @property
    def before_cells(self) -> float:
        return self.cells[0][0] - self.started if self.cells else self.wall

    @property
    def after_cells(self) -> float:
        return self.finished - self.cells[-1][1] if self.cells else 0.0

    @property
    def between_cells(self) -> float:
        return sum(b[0] - a[1] for a, b in zip(self.cells, self.cells[1:]))


@dataclass
class SweepResult:
    """One way's sweep in one round."""

    way: str
    round: int
    submitted: float  # epoch, when the sweep (or the first run) was asked for
    ended: float  # epoch, when the client saw it done
    runs: list[RunTiming]
    concurrency: int
    extra: dict[str, Any] = field(default_factory=dict)
    fill: int | None = None  # runs at the start not counted as steady (default: the concurrency)

    @property
    def wall(self) -> float:
        return self.ended - self.submitted

    def steady(self) -> list[RunTiming]:
        """The runs after the first ``concurrency`` to start (those include the pipeline's fill)."""
        return sorted(self.runs, key=lambda r: r.started)[self.concurrency if self.fill is None else self.fill:]

    def summary(self, sampler: "ProcSampler | None") -> dict[str, Any]:
        runs = self.runs
        slot_s = self.wall * self.concurrency
        summary = {
            "way": self.way, "round": self.round, "wall_s": self.wall, "runs": len(runs),
            "compute_s": sum(r.compute for r in runs),
            "first_start_s": min(r.started for r in runs) - self.submitted,
            "first_cell_s": min(r.cells[0][0] for r in runs if r.cells) - self.submitted,
            "last_finish_s": max(r.finished for r in runs) - self.submitted,
            # each slot's time not spent in cells, shared out per run (includes gaps between runs)
            "slot_overhead_ms": (slot_s - sum(r.compute for r in runs)) / len(runs) * 1000,
            **self.extra,
        }
        if sampler is not None:
            summary["cpu"] = sampler.window(self.submitted, self.ended)
        return summary


# -- sampling /proc -----------------------------------------------------------------------------
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class Proc(NamedTuple):
    ppid: int
    cpu: float  # seconds, user + system, of this process
    rss: int  # bytes
    start: int  # clock ticks since boot: with the pid, identifies the process
    reaped_cpu: float  # seconds of its children it has waited for (cutime + cstime)
    zombie: bool


def read_proc() -> dict[int, Proc]:
    """Every process, from /proc/<pid>/stat."""
    processes = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as file:
                text = file.read()
        except OSError:
            continue
        rest = text[text.rfind(b")") + 2:].split()
        processes[int(entry)] = Proc(int(rest[1]), (int(rest[11]) + int(rest[12])) / _TICK, int(rest[21]) * _PAGE,
                                     int(rest[19]), (int(rest[13]) + int(rest[14])) / _TICK, rest[0] == b"Z")
    return processes


def read_cpu_total() -> tuple[float, float]:
    """(busy, total) seconds of all cores since boot, from /proc/stat."""
    with open("/proc/stat") as file:
        values = [int(v) for v in file.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])
    return (total - idle) / _TICK, total / _TICK


def descendants(processes: dict[int, Proc], root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, proc in processes.items():
        children.setdefault(proc.ppid, []).append(pid)
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def tree_cpu(processes: dict[int, Proc], root: int) -> float:
    """CPU seconds used so far by ``root`` and every descendant, alive or reaped (a reaped child's
    time is in its parent's ``reaped_cpu``): exact between two samples, whenever children exit."""
    if root not in processes:
        return 0.0
    return sum(processes[p].cpu + processes[p].reaped_cpu for p in descendants(processes, root) | {root})


class ProcSampler:
    """Samples every process's CPU time and RSS every ``interval`` seconds, in a thread."""

    def __init__(self, interval: float = SAMPLE_SECONDS) -> None:
        self.interval = interval
        self.me = os.getpid()
        self.server: int | None = None  # its tree is counted apart from this process's
        self.samples: list[tuple[float, tuple[float, float], dict[int, Proc]]] = []
        self.mine: dict[int, int] = {}  # every process ever seen in this process's tree: its start time
        self.own_cpu_s = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-proc-sampler", daemon=True)

    def start(self) -> "ProcSampler":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while True:
            now = time.time()
            processes = read_proc()
            for pid in descendants(processes, self.me):
                self.mine.setdefault(pid, processes[pid].start)
            self.samples.append((now, read_cpu_total(), processes))
            self.own_cpu_s = time.thread_time()  # what sampling costs this process
            if self._stop.wait(self.interval):
                return

    def window(self, start: float, end: float) -> dict[str, Any]:
        """CPU and memory between the last sample before ``start`` and the last one before ``end``."""
        samples = list(self.samples)
        before = [s for s in samples if s[0] <= start]
        inside = [s for s in samples if start < s[0] <= end]
        if not before or not inside:
            return {}
        (t0, busy0, base), (t1, busy1, last) = before[-1], inside[-1]
        seconds = t1 - t0
        me, server = self.me, self.server
        own = last[me].cpu - base[me].cpu
        server_tree = (tree_cpu(last, server) - tree_cpu(base, server)) if server else 0.0
        mine = tree_cpu(last, me) - tree_cpu(base, me)  # this benchmark and everything it started
        busy = (busy1[0] - busy0[0]) / seconds
        result = {
            "seconds": seconds,
            "busy_cores": busy,
            "foreign_cores": max(0.0, busy - mine / seconds),  # everything else the cores did
            "this_process_cpu_s": own,
            "children_cpu_s": mine - own - server_tree,
        }
        if server:
            server_own = last[server].cpu - base[server].cpu if server in last and server in base else 0.0
            result["server_cpu_s"] = server_own
            result["server_children_cpu_s"] = server_tree - server_own
            rss = [(ps[server].rss if server in ps else 0, sum(ps[p].rss for p in descendants(ps, server)))
                   for _, _, ps in inside]
            result["server_rss_peak"] = max(r[0] for r in rss)
            result["server_children_rss_peak"] = max(r[1] for r in rss)
            result["server_total_rss_peak"] = max(r[0] + r[1] for r in rss)
        return result


def rss_now(pid: int) -> tuple[int, int]:
    """(RSS of ``pid``, summed RSS of its descendants) in bytes, now."""
    processes = read_proc()
    return (processes[pid].rss if pid in processes else 0), sum(processes[p].rss for p in descendants(processes, pid))


def kill_leftovers(seen: dict[int, int]) -> list[int]:
    """Stop processes this benchmark started (in its tree when seen) that are still alive, even if
    orphaned since (a server's kernels): the same pid with the same start time is the same process."""

    def alive() -> list[int]:
        now = read_proc()
        return [pid for pid, start in seen.items()
                if pid in now and now[pid].start == start and not now[pid].zombie and pid != os.getpid()]

    remaining = alive()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in remaining:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 3
        while remaining and time.monotonic() < deadline:
            time.sleep(0.1)
            remaining = alive()
        if not remaining:
            break
    return remaining


# -- way 1: the papermill CLI, one process per run --------------------------------------------
def cli_runs(papermill_bin: Path, root: Path, outputs: Path, seeds: list[int], round_: int) -> SweepResult:
    runs = []
    submitted = time.time()
    for seed in seeds:
        output = outputs / f"cli-{round_}-{seed}.ipynb"
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.time()
        done = subprocess.run([str(papermill_bin), NOTEBOOK, str(output), "-p", "seed", str(seed)],
                              cwd=root, capture_output=True, text=True, timeout=600)
        finished = time.time()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise RuntimeError(f"papermill CLI failed ({done.returncode}):\n{done.stderr[-3000:]}")
        cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
        runs.append(RunTiming(started, finished, papermill_cells(json.loads(output.read_text())), cpu))
    return SweepResult(CLI, round_, submitted, time.time(), runs, 1, fill=0)  # every run is a fresh process


# -- way 2: two warm papermill API workers ------------------------------------------------------
def _api_worker_init() -> None:
    import papermill  # noqa: F401  (imported before any clock starts: a warm worker)

    # papermill's kernels warn on stderr that they use TCP; failures still come back as exceptions
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)


def _api_run(job: tuple[str, str, int]) -> dict[str, Any]:
    import papermill

    source, output, seed = job
    started = time.time()
    executed = papermill.execute_notebook(source, output, parameters={"seed": seed}, progress_bar=False)
    finished = time.time()
    return {"pid": os.getpid(), "started": started, "finished": finished, "cells": papermill_cells(executed),
            "pngs": count_pngs(executed)}


class ApiWorkers:
    """Two spawned processes with papermill imported, each having run the notebook once."""

    def __init__(self, root: Path, outputs: Path, workers: int = 2) -> None:
        self.source, self.outputs, self.workers = str(root / NOTEBOOK), outputs, workers
        self.pool = multiprocessing.get_context("spawn").Pool(workers, initializer=_api_worker_init)
        self.pids: set[int] = set()
        for attempt in range(4):  # one warm-up run in each worker
            warm = self.pool.map(_api_run, [(self.source, str(outputs / f"warm-{attempt}-{i}.ipynb"), i)
                                            for i in range(workers)], chunksize=1)
            self.pids |= {result["pid"] for result in warm}
            if len(self.pids) >= workers:
                break

    def sweep(self, seeds: list[int], round_: int) -> SweepResult:
        jobs = [(self.source, str(self.outputs / f"api-{round_}-{seed}.ipynb"), seed) for seed in seeds]
        submitted = time.time()
        results = self.pool.map(_api_run, jobs, chunksize=1)
        ended = time.time()
        if any(r["pngs"] != 1 for r in results):
            raise RuntimeError("a papermill API run did not produce exactly one PNG")
        runs = [RunTiming(r["started"], r["finished"], [tuple(c) for c in r["cells"]]) for r in results]
        return SweepResult(API, round_, submitted, ended, runs, self.workers)

    def close(self) -> None:
        self.pool.terminate()
        self.pool.join()


# -- way 3: RunService in this process ----------------------------------------------------------
def record_timing(record: Any) -> RunTiming:
    return RunTiming(record.started_at, record.finished_at,
                     [(t.started_at, t.finished_at) for t in record.cell_timings
                      if t.started_at is not None and t.finished_at is not None])


class AcquireLog:
    """Wraps ``KernelPool.acquire``: how many kernels were warm when a run asked, and how long it waited."""

    def __init__(self) -> None:
        self.calls: list[dict[str, float]] = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def patched(self) -> Iterator[None]:
        from jupyter_mlx.execute.kernels import KernelPool

        original = KernelPool.acquire

        def acquire(pool: Any, kernel_name: str, cwd: Path, startup_timeout: float) -> Any:
            warm = pool.warm(kernel_name)
            start = time.perf_counter()
            lease = original(pool, kernel_name, cwd, startup_timeout)
            with self._lock:
                self.calls.append({"warm": warm, "wait_ms": (time.perf_counter() - start) * 1000,
                                   "cold_start": lease.chdir is None})
            return lease

        with mock.patch.object(KernelPool, "acquire", acquire):
            yield

    def summary(self) -> dict[str, Any]:
        waits = [c["wait_ms"] for c in self.calls]
        return {
            "acquires": len(self.calls),
            "none_warm_at_acquire": sum(1 for c in self.calls if c["warm"] == 0),
            "cold_starts": sum(1 for c in self.calls if c["cold_start"]),
            "wait_ms": _distribution(waits) if waits else None,
        }


def inprocess_sweep(root: Path, seeds: list[int], round_: int, acquire_log: AcquireLog | None = None) -> SweepResult:
    from jupyter_mlx.execute.runner import wait_for_kernel_shutdowns
    from jupyter_mlx.service import RunService

    service = RunService(root)
    try:
        concurrency = service.executor(_local()).concurrency
        with (acquire_log.patched() if acquire_log is not None else contextlib.nullcontext()):
            submitted = time.time()
            _, queued = service.sweep(NOTEBOOK, {"grid": {"seed": seeds}}, kernel_name=KERNEL)
            records = service.wait(queued, poll=0.05)
            ended = time.time()
        bad = [r for r in records if r.status != "succeeded"]
        if bad:
            raise RuntimeError(f"{len(bad)} in-process runs did not succeed: {bad[0].ref} {bad[0].status} {bad[0].error}")
        pngs = count_pngs(service.executed_notebook(records[0].id))
        if pngs != 1:
            raise RuntimeError(f"the executed notebook has {pngs} PNGs, not 1")
    finally:
        service.close()
        wait_for_kernel_shutdowns()
    return SweepResult(INPROC, round_, submitted, ended, [record_timing(r) for r in records], concurrency)


def _local() -> Any:
    from jupyter_mlx.execute.backends import BackendChoice

    return BackendChoice("local")


# -- way 4: a real jupyter server -----------------------------------------------------------------
def _request(connection: http.client.HTTPConnection, method: str, path: str, token: str,
             body: dict[str, Any] | None = None) -> tuple[int, Any]:
    payload = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"token {token}"}
    if payload is not None:
        headers["Content-Type"] = "application/json"
    connection.request(method, path, body=payload, headers=headers)
    response = connection.getresponse()
    data = response.read()
    return response.status, json.loads(data) if data else None


def server_pid(port: int) -> int:
    """The pid of the jupyter server this process started on ``port``."""
    processes = read_proc()
    for pid in descendants(processes, os.getpid()):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"--port={port}".encode() in command and b"jupyter_server" in command:
            return pid
    raise RuntimeError(f"no jupyter server of ours on port {port}")


def server_sweep(port: int, token: str, pid: int, seeds: list[int], round_: int) -> SweepResult:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        rss_before = rss_now(pid)
        submitted = time.time()
        status, body = _request(connection, "POST", "/mlx/sweeps", token,
                                {"notebook": NOTEBOOK, "grid": {"seed": seeds}, "kernel": KERNEL})
        post_s = time.time() - submitted
        if status != 201:
            raise RuntimeError(f"POST /mlx/sweeps: HTTP {status}: {body}")
        sweep_id = body["sweep"]["id"]
        polls = []
        while True:
            time.sleep(POLL_SECONDS)
            start = time.perf_counter()
            status, body = _request(connection, "GET", f"/mlx/sweeps/{sweep_id}", token)
            polls.append(time.perf_counter() - start)
            if status != 200:
                raise RuntimeError(f"GET /mlx/sweeps/{sweep_id}: HTTP {status}: {body}")
            if body["sweep"]["status"] not in ("queued", "running"):
                break
        ended = time.time()
        if body["sweep"]["status"] != "succeeded":
            raise RuntimeError(f"server sweep {body['sweep']['status']}: {body['sweep']['counts']}")
        runs = []
        for run in body["runs"]:  # the per-cell timings are in the run's details
            status, details = _request(connection, "GET", f"/mlx/runs/{run['id']}", token)
            cells = [(t["started_at"], t["finished_at"]) for t in details["cell_timings"]]
            runs.append(RunTiming(_epoch(details["started_at"]), _epoch(details["finished_at"]), cells))
        status, executed = _request(connection, "GET", f"/mlx/runs/{body['runs'][0]['id']}/notebook", token)
        if count_pngs(executed) != 1:
            raise RuntimeError("the server's executed notebook does not have exactly one PNG")
        time.sleep(SETTLE_SECONDS)
        rss_after = rss_now(pid)
    finally:
        connection.close()
    return SweepResult(SERVER, round_, submitted, ended, runs, cores(), {
        "server_pid": pid, "post_ms": post_s * 1000, "poll_get_ms": _distribution([p * 1000 for p in polls]),
        "server_rss_before": rss_before[0], "server_children_rss_before": rss_before[1],
        "server_rss_after": rss_after[0], "server_children_rss_after": rss_after[1],
    })


# -- diagnostics ----------------------------------------------------------------------------------
def kernel_boot_cost(starts: int = 4) -> dict[str, Any]:
    """Start kernels one at a time as the pool does, spawned and (when the library can) forked from
    its zygote: wall, the kernel's CPU to get ready, the starting process's CPU, an immediate shutdown."""
    import inspect

    from jupyter_mlx.config import MLXConfig
    from jupyter_mlx.execute import kernels

    ways = {"spawned": {}}
    if "fork" in inspect.signature(kernels.start_local_kernel).parameters:
        ways["forked (zygote)"] = {"fork": True}
    result: dict[str, Any] = {"pool_forks_by_default": bool(getattr(MLXConfig(), "fork_kernels", False))}
    for way, options in ways.items():
        rows = []
        for attempt in range(starts + (1 if options else 0)):  # forked: a first, untimed start starts the zygote
            cpu_before = time.process_time()
            start = time.perf_counter()
            km = kernels.start_local_kernel(KERNEL, tempfile.gettempdir(), 60, **options)
            kernels.wait_until_ready(km, 60)
            wall = time.perf_counter() - start
            parent_cpu = time.process_time() - cpu_before
            pid = getattr(km.provisioner, "pid", None) if getattr(km, "provisioner", None) else None
            kernel = read_proc().get(pid) if pid else None
            start = time.perf_counter()
            kernels.run_sync(km.shutdown_kernel)(now=True)
            if options and attempt == 0:
                continue
            rows.append({"ready_s": wall, "kernel_cpu_s": kernel.cpu if kernel else None, "parent_cpu_s": parent_cpu,
                         "kernel_rss": kernel.rss if kernel else None, "shutdown_now_s": time.perf_counter() - start})
        result[way] = rows
    if len(ways) > 1:
        from jupyter_mlx.execute.forked import Zygote

        Zygote.close_all()
    imports = {}
    for label, code in (("python -c pass", "pass"), ("import ipykernel.kernelapp", "import ipykernel.kernelapp"),
                        ("import numpy, matplotlib.pyplot", "import numpy, matplotlib.pyplot")):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        imports[label] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    result["process_cpu_s"] = imports
    return result


def connect_cost(kernels: int = 3) -> dict[str, Any]:
    """Connecting a new client to an already-ready kernel, as each run does: jupyter_client's
    ``wait_for_ready`` (what nbclient calls) against one ``kernel_info`` round trip that also
    proves IOPub is subscribed (its status-idle message for that request arrived)."""
    from queue import Empty

    from jupyter_mlx.execute.kernels import run_sync, start_local_kernel, wait_until_ready

    rows = []
    for _ in range(kernels):
        km = start_local_kernel(KERNEL, tempfile.gettempdir(), 60)
        try:
            wait_until_ready(km, 60)
            kc = km.blocking_client()
            kc.start_channels()
            start = time.perf_counter()
            kc.wait_for_ready(timeout=60)
            ready_ms = (time.perf_counter() - start) * 1000
            kc.stop_channels()
            kc = km.blocking_client()
            kc.start_channels()
            start, attempts, done = time.perf_counter(), 0, False
            while not done:
                attempts += 1
                msg_id = kc.kernel_info()
                kc.get_shell_msg(timeout=10)
                try:
                    while True:  # the request's status-idle on IOPub: the subscription is live
                        msg = kc.get_iopub_msg(timeout=0.05)
                        if (msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "status"
                                and msg["content"]["execution_state"] == "idle"):
                            done = True
                            break
                except Empty:
                    pass  # IOPub joined too late for this request: ask again
            fast_ms = (time.perf_counter() - start) * 1000
            kc.stop_channels()
            rows.append({"wait_for_ready_ms": ready_ms, "kernel_info_roundtrip_ms": fast_ms, "attempts": attempts})
        finally:
            run_sync(km.shutdown_kernel)(now=True)
    return {"kernels": rows}


class PhaseLog:
    """Times calls of wrapped functions, per thread, to split each run's queue slot into phases."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, int, float, float, Any]] = []
        self._lock = threading.Lock()

    def add(self, name: str, start: float, end: float, extra: Any = None) -> None:
        thread = threading.current_thread()
        with self._lock:
            self.events.append((name, thread.name, thread.ident or 0, start, end, extra))

    def wrap(self, name: str, function: Callable[..., Any], before: Callable[..., Any] | None = None) -> Callable[..., Any]:
        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            extra = before(*args, **kwargs) if before is not None else None
            start = time.time()
            try:
                return function(*args, **kwargs)
            finally:
                self.add(name, start, time.time(), extra)

        return timed

    def client_class(self) -> type:
        """The runner's notebook client, with its kernel connection and its execution timed."""
        import jupyter_mlx.execute.runner as runner

        phases = self

        class TimedClient(runner._client_class()):  # type: ignore[misc]
            async def async_start_new_kernel_client(self) -> Any:
                start = time.time()
                try:
                    return await super().async_start_new_kernel_client()
                finally:
                    phases.add("connect (channels, kernel_info, chdir)", start, time.time())

            start_new_kernel_client = runner.run_sync(async_start_new_kernel_client)

            def execute(self, **kwargs: Any) -> Any:
                start = time.time()
                try:
                    return super().execute(**kwargs)
                finally:
                    phases.add("client.execute", start, time.time())

        return TimedClient


def instrumented_sweep(root: Path, seeds: list[int], sampler: ProcSampler) -> dict[str, Any]:
    """An in-process sweep with each phase of each run timed (wrappers cost microseconds)."""
    import jupyter_mlx.execute.kernels as kernels
    import jupyter_mlx.execute.runner as runner
    import jupyter_mlx.provenance as provenance
    import jupyter_mlx.service as service_module
    from jupyter_client.client import KernelClient
    from jupyter_mlx.execute.kernels import KernelPool
    from jupyter_mlx.service import RunService

    phases = PhaseLog()

    service = RunService(root)
    store = service.store
    patches = [
        mock.patch.object(service, "_execute_queued", phases.wrap(
            "slot", service._execute_queued, before=lambda prepared, *a, **k: prepared.record.id)),
        mock.patch.object(service, "_publish_run", phases.wrap("publish event", service._publish_run)),
        mock.patch.object(store, "cancel_requests", phases.wrap("store.cancel_requests", store.cancel_requests)),
        mock.patch.object(store, "mark_running", phases.wrap("store.mark_running", store.mark_running)),
        mock.patch.object(store, "set_progress", phases.wrap("store.set_progress", store.set_progress)),
        mock.patch.object(store, "finish_run", phases.wrap("store.finish_run", store.finish_run)),
        mock.patch.object(runner, "_prepare", phases.wrap("prepare (nbformat, parameterize)", runner._prepare)),
        mock.patch.object(runner, "_cell_timings", phases.wrap("result (timings)", runner._cell_timings)),
        mock.patch.object(runner, "_as_dict", phases.wrap("result (notebook copy)", runner._as_dict)),
        mock.patch.object(runner, "_CLIENT_CLASS", phases.client_class()),
        mock.patch.object(service_module, "read_metrics", phases.wrap("read_metrics", service_module.read_metrics)),
        mock.patch.object(provenance, "kernel_environment",
                          phases.wrap("environment fingerprint (thread)", provenance.kernel_environment)),
        mock.patch.object(KernelPool, "acquire", phases.wrap(
            "kernel acquire", KernelPool.acquire, before=lambda pool, name, *a, **k: pool.warm(name))),
        mock.patch.object(kernels, "start_local_kernel", phases.wrap("kernel start (spawn)", kernels.start_local_kernel)),
        mock.patch.object(kernels, "wait_until_ready", phases.wrap("kernel start (until ready)", kernels.wait_until_ready)),
        mock.patch.object(kernels, "shutdown_in_background",
                          phases.wrap("kernel release", kernels.shutdown_in_background)),
        mock.patch.object(KernelClient, "stop_channels", phases.wrap("stop_channels", KernelClient.stop_channels)),
    ]
    try:
        with contextlib.ExitStack() as stack:
            for patch in patches:
                stack.enter_context(patch)
            submitted = time.time()
            _, queued = service.sweep(NOTEBOOK, {"grid": {"seed": seeds}}, kernel_name=KERNEL)
            records = service.wait(queued, poll=0.05)
            ended = time.time()
    finally:
        service.close()
        runner.wait_for_kernel_shutdowns()
    sweep = SweepResult(INPROC + " (instrumented)", 0, submitted, ended, [record_timing(r) for r in records],
                        service.config.concurrency or cores())
    return {"sweep": sweep, "phases": phases, "records": records,
            "cpu": sampler.window(submitted, ended)}


def profiled_sweep(root: Path, seeds: list[int], top: int = 30) -> str:
    """cProfile, by thread CPU time, of every run's queue-slot thread in an in-process sweep, merged:
    where the process driving the runs spends its CPU (the kernels' CPU is not in it)."""
    import cProfile
    import io
    import pstats

    from jupyter_mlx.execute.runner import wait_for_kernel_shutdowns
    from jupyter_mlx.service import RunService

    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()
    service = RunService(root)
    original = service._execute_queued

    def profiled(*args: Any, **kwargs: Any) -> Any:
        profiler = cProfile.Profile(time.thread_time)
        profiler.enable()
        try:
            return original(*args, **kwargs)
        finally:
            profiler.disable()
            with lock:
                profiles.append(profiler)

    try:
        with mock.patch.object(service, "_execute_queued", profiled):
            _, queued = service.sweep(NOTEBOOK, {"grid": {"seed": seeds}}, kernel_name=KERNEL)
            service.wait(queued, poll=0.05)
    finally:
        service.close()
        wait_for_kernel_shutdowns()
    out = io.StringIO()
    stats = pstats.Stats(profiles[0], stream=out)
    for profiler in profiles[1:]:
        stats.add(profiler)
    out.write(f"cProfile of the run threads of a {len(seeds)}-run sweep, thread CPU time, totals over all runs\n")
    stats.strip_dirs().sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


def phase_breakdown(result: dict[str, Any]) -> dict[str, Any]:
    """Per run: each phase's time inside its queue slot; kernel starts in the background."""
    phases: PhaseLog = result["phases"]
    by_id = {r.id: r for r in result["records"]}
    per_run: list[tuple[float, dict[str, float]]] = []
    for name, _, ident, start, end, run_id in phases.events:
        if name != "slot":
            continue
        row: dict[str, float] = {"slot (whole run on its worker thread)": end - start}
        for other, _, thread, s, e, _ in phases.events:
            if thread == ident and start <= s and e <= end and other != "slot":
                row[other] = row.get(other, 0.0) + (e - s)
        timing = record_timing(by_id[run_id])
        row["cells (compute)"] = timing.compute
        row["between cells"] = timing.between_cells
        per_run.append((by_id[run_id].started_at or start, row))
    per_run.sort(key=lambda item: item[0])
    steady = [row for _, row in per_run[result["sweep"].concurrency:]]
    names = sorted({name for row in steady for name in row})
    acquires = [e for e in phases.events if e[0] == "kernel acquire"]
    spawns = [e for e in phases.events if e[0] == "kernel start (spawn)"]
    background = [e for e in spawns if e[1].startswith("mlx-kernel-prestart")]
    readies = [e for e in phases.events if e[0] == "kernel start (until ready)"]
    return {
        "steady_runs": len(steady),
        "phases_ms": {name: _distribution([row.get(name, 0.0) * 1000 for row in steady]) for name in names},
        "acquire": {
            "count": len(acquires),
            "none_warm_at_acquire": sum(1 for e in acquires if not e[5]),
            "wait_ms": _distribution([(e[4] - e[3]) * 1000 for e in acquires]),
            "cold_starts_on_run_thread": len(spawns) - len(background),
        },
        "background_kernel_starts": {
            "count": len(background),
            "spawn_ms": _distribution([(e[4] - e[3]) * 1000 for e in background]),
            "until_ready_ms": _distribution([(e[4] - e[3]) * 1000 for e in readies]),
        },
    }


# -- statistics -------------------------------------------------------------------------------------
def _distribution(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}
    deciles = statistics.quantiles(ordered, n=10) if len(ordered) > 1 else [ordered[0]] * 9
    return {"p10": deciles[0], "p50": statistics.median(ordered), "p90": deciles[8],
            "max": ordered[-1], "min": ordered[0], "mean": statistics.fmean(ordered), "n": len(ordered)}


# -- the benchmark ----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=32, help="runs in a sweep (default 32)")
    parser.add_argument("--cli-runs", type=int, default=6,
                        help="papermill CLI runs in all, spread over the rounds (default 6, extrapolated to --runs)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of all ways; the server does one sweep a round (default 3)")
    parser.add_argument("--skip-cli", action="store_true", help="no papermill CLI runs")
    parser.add_argument("--skip-api", action="store_true", help="no papermill API workers")
    parser.add_argument("--skip-server", action="store_true", help="no jupyter server")
    parser.add_argument("--skip-diagnose", action="store_true", help="no kernel start cost and phase timing")
    parser.add_argument("--profile", action="store_true",
                        help="also a cProfile (thread CPU time) of the run threads of one in-process sweep")
    args = parser.parse_args(argv)
    seeds = list(range(args.runs))
    git = shutil.which("git") is not None
    papermill_bin = Path(sys.executable).parent / "papermill"

    from bench_list import jupyter_server

    sampler = ProcSampler().start()
    results: list[SweepResult] = []
    diagnostics: dict[str, Any] = {}
    acquire_log = AcquireLog()
    load_at_start = os.getloadavg()
    started_at = time.time()
    tmp = Path(tempfile.mkdtemp(prefix="mlx-bench-sweep-"))
    workers: ApiWorkers | None = None
    try:
        roots = {name: tmp / name for name in ("papermill", "inprocess", "server")}
        for root in roots.values():
            root.mkdir()
            make_project(root, git)
        outputs = tmp / "papermill-outputs"
        outputs.mkdir()
        with contextlib.ExitStack() as stack:
            server = None
            if not args.skip_server:
                print("starting jupyter server ...", flush=True)
                port, token = stack.enter_context(jupyter_server(roots["server"], tmp / "scratch"))
                server = (port, token, server_pid(port))
                sampler.server = server[2]
            if not args.skip_api:
                print("starting 2 papermill API workers (import + one warm-up run each) ...", flush=True)
                workers = ApiWorkers(roots["papermill"], outputs)
            cli_per_round = _spread(0 if args.skip_cli else args.cli_runs, args.rounds)
            ways: list[tuple[str, Callable[[int], SweepResult]]] = []
            if not args.skip_cli:
                ways.append((CLI, lambda r: cli_runs(papermill_bin, roots["papermill"], outputs,
                                                     seeds[sum(cli_per_round[:r]):sum(cli_per_round[:r + 1])] or [0], r)))
            if workers is not None:
                ways.append((API, lambda r: workers.sweep(seeds, r)))
            ways.append((INPROC, lambda r: inprocess_sweep(roots["inprocess"], seeds, r, acquire_log)))
            if server is not None:
                ways.append((SERVER, lambda r: server_sweep(server[0], server[1], server[2], seeds, r)))
            # warm-ups, untimed: this process and the server import papermill on their first run,
            # and the server's pool keeps kernels warm only once it has been used
            print("warm-up: a 2-run sweep in this process ...", flush=True)
            diagnostics["inprocess_warmup"] = inprocess_sweep(roots["inprocess"], [0, 1], -1).summary(None)
            if server is not None:
                rss = rss_now(server[2])
                diagnostics["server_rss_at_start"] = {"server": rss[0], "children": rss[1]}
                print("warm-up: a 2-run sweep on the server ...", flush=True)
                diagnostics["server_warmup"] = server_sweep(server[0], server[1], server[2], [0, 1], -1).summary(None)
            for round_ in range(args.rounds):
                shift = round_ % len(ways)
                for name, way in ways[shift:] + ways[:shift]:
                    if name == CLI and not cli_per_round[round_]:
                        continue
                    print(f"round {round_ + 1}/{args.rounds}: {name} (load {os.getloadavg()[0]:.2f}) ...", flush=True)
                    load = os.getloadavg()[0]
                    result = way(round_)
                    result.extra.update(load_avg_1m_before=load, load_avg_1m_after=os.getloadavg()[0])
                    results.append(result)
                    print(f"  {result.wall:.1f} s for {len(result.runs)} runs", flush=True)
            if not args.skip_diagnose:
                print("diagnostics: kernel start cost ...", flush=True)
                diagnostics["kernel_boot"] = kernel_boot_cost()
                diagnostics["connect"] = connect_cost()
                print("diagnostics: an instrumented in-process sweep ...", flush=True)
                instrumented = instrumented_sweep(roots["inprocess"], seeds, sampler)
                diagnostics["instrumented"] = {
                    "wall_s": instrumented["sweep"].wall,
                    "summary": instrumented["sweep"].summary(None),
                    "cpu": instrumented["cpu"],
                    **phase_breakdown(instrumented),
                }
            if args.profile:
                print("diagnostics: a profiled in-process sweep (CPU time of the run threads) ...", flush=True)
                diagnostics["profile"] = profiled_sweep(roots["inprocess"], seeds)
    finally:
        if workers is not None:
            workers.close()
        sampler.stop()
        leftovers = kill_leftovers({pid: start for pid, start in sampler.mine.items() if pid != _resource_tracker()})
        shutil.rmtree(tmp, ignore_errors=True)
    report(args, results, sampler, diagnostics, acquire_log, load_at_start, time.time() - started_at, leftovers)
    return 0


def _resource_tracker() -> int | None:
    """multiprocessing's resource tracker: it exits with this process, and must outlive the pool."""
    from multiprocessing import resource_tracker

    return getattr(resource_tracker._resource_tracker, "_pid", None)


def _spread(total: int, rounds: int) -> list[int]:
    return [total // rounds + (1 if i < total % rounds else 0) for i in range(rounds)]


# -- the report -----------------------------------------------------------------------------------
def report(args: argparse.Namespace, results: list[SweepResult], sampler: ProcSampler, diagnostics: dict[str, Any],
           acquire_log: AcquireLog, load_at_start: tuple[float, float, float], elapsed: float,
           leftovers: list[int]) -> None:
    n, ncores = args.runs, cores()
    by_way: dict[str, list[SweepResult]] = {}
    for result in results:
        by_way.setdefault(result.way, []).append(result)
    summaries = {way: [r.summary(sampler) for r in rs] for way, rs in by_way.items()}

    # the uncontended compute of one run: the sequential CLI runs (nothing else of ours running)
    cli = [run for r in by_way.get(CLI, []) for run in r.runs]
    uncontended = statistics.median(run.compute for run in cli) if cli else None
    limit_issue = uncontended * n / ncores if uncontended else None

    walls: dict[str, float] = {}
    if cli:
        cli_measured = len(cli) >= n
        walls[CLI] = sum(run.wall for run in cli) if cli_measured else statistics.fmean(run.wall for run in cli) * n
    for way in (API, INPROC, SERVER):
        if way in by_way:
            walls[way] = statistics.median(r.wall for r in by_way[way])

    rows = []
    for way, wall in walls.items():
        sweeps = by_way[way]
        own_limit = statistics.median(s["compute_s"] / len(r.runs) * n for s, r in zip(summaries[way], sweeps)) / ncores
        steady = [run.overhead * 1000 for r in sweeps for run in r.steady()]
        dist = _distribution(steady)
        label = way
        if way == CLI:
            label = f"{CLI} ({len(cli)} of {n} runs, extrapolated)" if len(cli) < n else f"{CLI} ({len(cli)} runs)"
        rows.append([
            label, wall,
            f"{wall / limit_issue:.2f}x" if limit_issue else "n/a",
            f"{wall / own_limit:.2f}x",
            f"{walls[CLI] / wall:.1f}x" if CLI in walls else "n/a",
            f"{walls[API] / wall:.2f}x" if API in walls else "n/a",
            statistics.median(run.compute for r in sweeps for run in r.runs),
            dist.get("p10", 0.0), dist.get("p50", 0.0), dist.get("p90", 0.0), dist.get("max", 0.0),
        ])
    print(f"\n{n} runs of {NOTEBOOK} (seed 0..{n - 1}); {ncores} cores; walls are medians over "
          f"{args.rounds} rounds (CLI: sum of sequential runs); load avg at start {load_at_start[0]:.2f}")
    if limit_issue:
        print(f"limit = {n} x {uncontended:.3f} s (median cell compute of a sequential CLI run) / {ncores} cores "
              f"= {limit_issue:.1f} s; 'own' limit = the sweep's own recorded cell compute / {ncores} cores")
    harness.print_table(
        ["way", "wall s", "/limit", "/own limit", "vs CLI", "vs 2 API", "compute s/run",
         "ovh p10 ms", "ovh p50 ms", "ovh p90 ms", "ovh max ms"], rows)

    # where each way's per-run overhead goes, and the cost of starting a sweep
    rows = []
    for way, sweeps in by_way.items():
        steady = [run for r in sweeps for run in r.steady()]
        ss = summaries[way]
        rows.append([
            way, len(steady),
            statistics.median(run.before_cells for run in steady) * 1000,
            statistics.median(run.between_cells for run in steady) * 1000,
            statistics.median(run.after_cells for run in steady) * 1000,
            statistics.median(s["slot_overhead_ms"] for s in ss) if way != CLI else
            statistics.fmean(run.overhead for run in steady) * 1000,
            statistics.median(s["first_start_s"] for s in ss) * 1000,
            statistics.median(s["first_cell_s"] for s in ss) * 1000,
        ])
    print("\nPer-run overhead at steady state (medians, ms): before the first cell, between cells, after the last;"
          "\n'slot' = (wall x concurrency - sum of cell compute) / runs, everything a run costs a slot beyond its cells")
    harness.print_table(["way", "steady runs", "before cells", "between", "after cells", "slot ovh/run",
                         "submit->1st start", "submit->1st cell"], rows)

    # CPU: what the processes of each way spent per run, and how busy the machine was
    rows = []
    for way, ss in summaries.items():
        cpus = [s.get("cpu") or {} for s in ss]
        if not all(cpus):
            continue
        per = lambda key: statistics.median(c.get(key, 0.0) / s["runs"] for c, s in zip(cpus, ss))  # noqa: E731
        own = per("server_cpu_s") if way == SERVER else per("this_process_cpu_s")
        kids = per("server_children_cpu_s") if way == SERVER else per("children_cpu_s")
        rows.append([way, statistics.median(s["compute_s"] / s["runs"] for s in ss), kids, own, kids + own,
                     statistics.median(c["busy_cores"] for c in cpus), max(c["foreign_cores"] for c in cpus),
                     max(s["load_avg_1m_after"] for s in ss)])
    print(f"\nCPU per run (s, medians over rounds; /proc every {SAMPLE_SECONDS} s, exited processes counted through "
          "their parents): the way's child processes (kernels, workers, CLI processes); the process driving the runs "
          "(this benchmark, or the server); cores busy; cores busy with anything else (noise)")
    harness.print_table(["way", "cell compute", "children CPU", "driver CPU", "total CPU", "busy cores",
                         "foreign max", "max load 1m"], rows)

    noisy = [(s["way"], s["round"] + 1, s["cpu"]["foreign_cores"]) for ss in summaries.values() for s in ss
             if (s.get("cpu") or {}).get("foreign_cores", 0.0) > 0.15]
    for way, round_, foreign in noisy:
        print(f"WARNING: other processes kept {foreign:.2f} cores busy during {way}, round {round_}: "
              "its numbers are noisy; rerun on a quiet machine")

    # server memory over consecutive sweeps
    memory = None
    if SERVER in by_way:
        mib = 1024 * 1024
        rows = []
        for s in summaries[SERVER]:
            c = s["cpu"]
            rows.append([f"sweep {s['round'] + 1}", s["server_rss_before"] / mib, c["server_rss_peak"] / mib,
                         s["server_rss_after"] / mib, c["server_children_rss_peak"] / mib,
                         s["server_children_rss_after"] / mib])
        print(f"\nServer memory (MiB): RSS before each sweep, its peak during the sweep, {SETTLE_SECONDS:.0f} s after; "
              "its kernels (children) at peak and after")
        harness.print_table(["sweep", "server before", "server peak", "server after", "kernels peak", "kernels after"], rows)
        afters = [s["server_rss_after"] for s in summaries[SERVER]]
        memory = {"after_bytes": afters, "growth_first_to_last_bytes": afters[-1] - afters[0] if len(afters) > 1 else None,
                  "peak_bytes": [s["cpu"]["server_rss_peak"] for s in summaries[SERVER]]}

    verdicts = []
    print()
    for way in (INPROC, SERVER):
        if way not in walls:
            continue
        wall = walls[way]
        steady = [run.overhead * 1000 for r in by_way[way] for run in r.steady()]
        dist = _distribution(steady)
        checks = []
        if limit_issue:
            checks.append(("wall <= 1.5x the limit", wall / limit_issue, wall / limit_issue <= TARGET_LIMIT_RATIO,
                           f"{wall:.1f} s vs {TARGET_LIMIT_RATIO * limit_issue:.1f} s"))
        own = statistics.median(s["compute_s"] / ncores for s in summaries[way])
        checks.append(("wall <= 1.5x its own-compute limit", wall / own, wall / own <= TARGET_LIMIT_RATIO,
                       f"{wall:.1f} s vs {TARGET_LIMIT_RATIO * own:.1f} s"))
        if CLI in walls:
            checks.append(("speedup vs papermill CLI >= 8x", walls[CLI] / wall, walls[CLI] / wall >= TARGET_VS_CLI,
                           f"{walls[CLI]:.1f} s / {wall:.1f} s"))
        if API in walls:
            checks.append(("speedup vs 2 warm API workers >= 1.6x", walls[API] / wall, walls[API] / wall >= TARGET_VS_API,
                           f"{walls[API]:.1f} s / {wall:.1f} s"))
        checks.append(("steady overhead p50 < 150 ms", dist["p50"], dist["p50"] < TARGET_OVERHEAD_MS,
                       f"p90 {dist['p90']:.0f} ms, max {dist['max']:.0f} ms"))
        for name, value, ok, detail in checks:
            line = f"{way}: {name}: {value:.2f} -> {'MET' if ok else 'MISSED'} ({detail})"
            print(line)
            verdicts.append({"way": way, "check": name, "value": value, "met": ok, "detail": detail})
    if memory and memory["growth_first_to_last_bytes"] is not None:
        growth = memory["growth_first_to_last_bytes"] / 1024 / 1024
        print(f"{SERVER}: RSS after sweep 1 -> after sweep {len(memory['after_bytes'])}: {growth:+.1f} MiB")

    if acquire_log.calls:
        a = acquire_log.summary()
        print(f"\nIn-process kernel acquires: {a['acquires']}; none warm when asked: {a['none_warm_at_acquire']}; "
              f"cold starts on the run's thread: {a['cold_starts']}; wait p50 {a['wait_ms']['p50']:.0f} ms, "
              f"p90 {a['wait_ms']['p90']:.0f} ms, max {a['wait_ms']['max']:.0f} ms")
    print_diagnostics(diagnostics)
    if leftovers:
        print(f"\nWARNING: processes still alive after cleanup: {leftovers}")

    path = harness.write_results("bench_sweep", {
        "runs": n, "cores": ncores, "rounds": args.rounds, "cli_runs": len(cli), "elapsed_s": elapsed,
        "sampler_cpu_s": sampler.own_cpu_s,
        "load_avg_at_start": load_at_start,
        "targets": {"wall_over_limit": TARGET_LIMIT_RATIO, "vs_cli": TARGET_VS_CLI, "vs_api": TARGET_VS_API,
                    "overhead_ms": TARGET_OVERHEAD_MS},
        "uncontended_compute_s": uncontended, "limit_s": limit_issue,
        "walls_s": walls, "cli_extrapolated": bool(cli) and len(cli) < n,
        "verdicts": verdicts, "memory": memory,
        "overhead_steady_ms": {way: _distribution([run.overhead * 1000 for r in rs for run in r.steady()])
                               for way, rs in by_way.items()},
        "sweeps": {way: [{**s, "per_run": [{**asdict(run), "overhead": run.overhead, "compute": run.compute}
                                           for run in r.runs]} for s, r in zip(summaries[way], by_way[way])]
                   for way in by_way},
        "acquires": acquire_log.summary() if acquire_log.calls else None,
        "diagnostics": _jsonable(diagnostics),
        "notes": "limit = runs x the median cell compute of a sequential CLI run / cores (the issue's 1.5x target "
                 "is against it); 'own limit' uses the sweep's own recorded cell compute, which contention "
                 "inflates. Overhead = a run's wall minus its cells' durations (papermill's cell metadata); "
                 "steady = all but the first `concurrency` runs to start. CPU from /proc sampled every "
                 f"{SAMPLE_SECONDS} s: a process tree's own plus reaped-children time, so exited kernels count "
                 "in full; foreign cores = busy cores (/proc/stat) minus this benchmark's process tree.",
    })
    print(f"\nresults: {path}")


def print_diagnostics(diagnostics: dict[str, Any]) -> None:
    for key, label in (("inprocess_warmup", "in-process"), ("server_warmup", "server")):
        warm = diagnostics.get(key)
        if warm:
            print(f"\nWarm-up (untimed, first sweep of the {label} process, {warm['runs']} runs): {warm['wall_s']:.1f} s; "
                  f"submit -> first cell {warm['first_cell_s'] * 1000:.0f} ms")
    boot = diagnostics.get("kernel_boot")
    if boot:
        for way in ("spawned", "forked (zygote)"):
            starts = boot.get(way)
            if not starts:
                continue
            med = lambda key: statistics.median(s[key] for s in starts if s[key] is not None)  # noqa: E731
            print(f"\nKernel start, {way} ({len(starts)} one at a time, as the pool does): ready in "
                  f"{med('ready_s') * 1000:.0f} ms; kernel CPU to get ready {med('kernel_cpu_s') * 1000:.0f} ms; CPU of "
                  f"the starting process {med('parent_cpu_s') * 1000:.0f} ms; RSS {med('kernel_rss') / 2**20:.0f} MiB; "
                  f"shutdown(now=True) {med('shutdown_now_s') * 1000:.0f} ms")
        print(f"  the pool forks by default: {boot['pool_forks_by_default']}; process CPU: "
              + "; ".join(f"{k} {v * 1000:.0f} ms" for k, v in boot["process_cpu_s"].items()))
    if diagnostics.get("profile"):
        print("\n" + diagnostics["profile"])
    connect = diagnostics.get("connect")
    if connect:
        rows = connect["kernels"]
        print(f"Connecting a new client to a ready kernel ({len(rows)} kernels): wait_for_ready "
              f"{statistics.median(r['wait_for_ready_ms'] for r in rows):.0f} ms (nbclient's default: it ends by waiting for "
              f"0.2 s of IOPub silence); one kernel_info + its IOPub status (the runner's handshake) "
              f"{statistics.median(r['kernel_info_roundtrip_ms'] for r in rows):.1f} ms "
              f"({max(r['attempts'] for r in rows)} attempt(s) at most)")
    inst = diagnostics.get("instrumented")
    if inst:
        s = inst["summary"]
        print(f"\nInstrumented in-process sweep: {inst['wall_s']:.1f} s, compute {s['compute_s']:.1f} s; "
              f"{inst['steady_runs']} steady runs; phases inside each run's queue slot (ms):")
        rows = [[name, d["p50"], d["p90"], d["max"]] for name, d in
                sorted(inst["phases_ms"].items(), key=lambda item: -item[1]["p50"])]
        harness.print_table(["phase", "p50", "p90", "max"], rows)
        a = inst["acquire"]
        b = inst["background_kernel_starts"]
        print(f"  acquires {a['count']}: none warm when asked {a['none_warm_at_acquire']}, wait p50 "
              f"{a['wait_ms']['p50']:.0f} ms p90 {a['wait_ms']['p90']:.0f} ms max {a['wait_ms']['max']:.0f} ms; "
              f"cold starts on a run's thread {a['cold_starts_on_run_thread']}")
        if b["until_ready_ms"]:
            print(f"  background kernel starts {b['count']}: spawn p50 {b['spawn_ms']['p50']:.0f} ms, until ready p50 "
                  f"{b['until_ready_ms']['p50']:.0f} ms (p90 {b['until_ready_ms']['p90']:.0f} ms) while runs compete "
                  "for the same cores")
        cpu = inst.get("cpu") or {}
        if cpu:
            runs = s["runs"]
            print(f"  CPU per run: kernels {cpu['children_cpu_s'] / runs * 1000:.0f} ms, this process "
                  f"{cpu['this_process_cpu_s'] / runs * 1000:.0f} ms, cell compute {s['compute_s'] / runs * 1000:.0f} ms; "
                  f"busy cores {cpu['busy_cores']:.2f}, foreign {cpu['foreign_cores']:.2f}")


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda o: repr(o)))


if __name__ == "__main__":
    sys.exit(main())
