"""Warm runs (issue 16): kernels forked from a zygote that has the notebook's modules imported,
against the ``papermill`` CLI on ``examples/train.ipynb``, measured in the same run.

Targets (issue): through a server, the second and later runs of a notebook at least 3x faster end
to end than ``papermill train.ipynb out.ipynb``; a 32-run sweep warm at least 2.5x faster than cold
(``warm_runs=False``) and within 1.5x of the warm compute limit; outputs unchanged.

1. One run as a user waits for it, with a server up. Real ``jupyter server`` processes with the
   extension, each on a temporary git project holding a copy of ``train.ipynb``: one with the
   default configuration (warm), one with ``--MLXConfig.warm_runs=False`` (kernels forked from a
   zygote with only ipykernel imported: cold). Each run is ``POST /mlx/runs {"notebook":
   "train.ipynb"}``, then ``GET /mlx/runs/<id>`` every ``--poll`` s until final, from the request to
   the answer that says final. The servers are started ``--starts`` times on the same projects;
   each start gives a 1st run and ``--runs`` - 1 later ones. In the same rounds, the order rotated
   each run: the anchor ``papermill train.ipynb out.ipynb`` (a process, from start to exit), and two
   ``jupyter mlx run train.ipynb`` processes: ``--local`` (in-process, on a freshly spawned kernel)
   and ``--server`` (submitted through a third warm server of its own, which serves its project,
   then waiting on the store: the CLI's door since commit e7cdb2f). Every measurement starts once
   the benchmark's processes are quiet (pools refilled, kernels shut down). Each REST run is split
   with its own record: queued -> started, the kernel wait (its ``kernel_start``, or its notes),
   started -> first cell, its cells, after the last cell, and the poll's lag.
2. A ``--sweep``-run sweep over ``C`` (``RunService(root, config=MLXConfig(...))``, ``.sweep`` +
   ``.wait``, a fresh service each, as ``jupyter mlx sweep`` does), three ways rotated for
   ``--sweep-rounds``: cold as when the issue was filed (the anchor: ``warm_runs=False,
   threads_per_run=-1``), cold with the cores shared (``warm_runs=False``: each run of the sweep
   with cores // runs-at-once BLAS/OpenMP threads), and warm (the defaults). The warm compute limit: the notebook's code cells run once
   each (timed with ``perf_counter``) in a fresh process that has imported the modules a warm
   kernel starts with, with the thread limit the warm sweep's runs had, through an IPython shell with the inline matplotlib backend (figures
   rendered to PNG as in a kernel, no messaging), median of ``--limit-repeats`` processes,
   x runs / cores. The sweep's own recorded cell time / cores is shown too (contention inflates it).
3. Memory: PSS, RSS and USS (``/proc/<pid>/smaps_rollup``) of two idle kernels pre-started by the
   pool (``LocalExecutor.prepare``) with the modules the warm sweep's kernels started with, of two
   cold forked ones, of their zygotes, and of a spawned kernel (``jupyter mlx run --local``'s).
Then outputs: every warm run of the last sweep is compared with the cold run of the same ``C``
(``RunService.compare(a, b).unexpected()``), which must report nothing. And a profile of warm runs
in this process (``RunService.submit`` + ``wait`` with pre-started kernels kept warm, as the server
does), each phase timed by wrappers: what the remaining time is made of.

Run: ``.venv/bin/python benchmarks/bench_warm_runs.py [--runs 5] [--starts 2] [--sweep 32]
[--sweep-rounds 2] [--limit-repeats 3] [--poll 0.1] [--skip-cli] [--skip-sweep] [--skip-memory]
[--skip-profile]`` (about 8 min on a quiet 2-core machine with the defaults, 12 under load)
"""
from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator
from unittest import mock

import harness
from bench_list import _wait_ready
from bench_sweep import (PhaseLog, ProcSampler, _distribution, _epoch, _request, cores, descendants, kill_leftovers,
                         read_proc, tree_cpu)
from jupyter_mlx.ports import free_port

NOTEBOOK = "train.ipynb"
SOURCE = harness.REPO / "examples" / NOTEBOOK
VENV_BIN = Path(sys.executable).parent
TARGET_LATER_VS_PAPERMILL = 3.0
TARGET_SWEEP_WARM_VS_COLD = 2.5
TARGET_SWEEP_VS_LIMIT = 1.5
WARMUP_RUNS = 2  # untimed runs before the profiled ones
FINAL = ("succeeded", "failed", "cancelled", "interrupted")
WAITED = re.compile(r"it waited ([0-9.]+) s for its kernel")

PAPERMILL = "papermill CLI (anchor)"
WARM = "jupyter_mlx REST, warm (default)"
COLD = "jupyter_mlx REST, cold forked (warm_runs=False)"
CLI = "jupyter mlx run --local (in-process, spawned kernel)"
CLI_SERVER = "jupyter mlx run --server (warm server)"

# a fresh process with a warm kernel's modules imported runs each code cell once, then again (hot)
LIMIT_SCRIPT = """
import importlib, json, sys, time
for name in [m for m in sys.argv[1].split(",") if m]:
    importlib.import_module(name)
from IPython.core.interactiveshell import InteractiveShell

class Shell(InteractiveShell):
    def enable_gui(self, gui=None):  # the inline backend needs no event loop
        pass

shell = Shell.instance()
shell.enable_matplotlib("inline")  # figures rendered to PNG after each cell, as in a kernel
cells = json.loads(open(sys.argv[2]).read())
passes = []
for _ in range(2):
    times = []
    for source in cells:
        start = time.perf_counter()
        result = shell.run_cell(source, store_history=False)
        times.append(time.perf_counter() - start)
        if not result.success:
            raise SystemExit(f"a cell failed: {result.error_in_exec or result.error_before_exec}")
    passes.append(times)
print(json.dumps(passes), file=sys.__stderr__)
"""


# -- projects and processes -----------------------------------------------------------------
def make_project(root: Path) -> Path:
    """A git project with a copy of the notebook committed (runs record the git state)."""
    root.mkdir(parents=True)
    shutil.copy(SOURCE, root / NOTEBOOK)
    for command in (["git", "init", "-q"], ["git", "add", NOTEBOOK],
                    ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid", "commit", "-q", "-m", "nb"]):
        subprocess.run(command, cwd=root, check=True, capture_output=True, timeout=60)
    return root


def wait_quiet(max_seconds: float = 20.0, window: float = 0.5, threshold: float = 0.03) -> float:
    """Wait until this benchmark's processes (servers, zygotes, kernels) used under ``threshold`` CPU
    seconds in ``window``: pools refilled, kernels shut down. Returns the seconds waited."""
    started = time.perf_counter()
    me = os.getpid()
    before = tree_cpu(read_proc(), me) - time.process_time()
    while time.perf_counter() - started < max_seconds:
        time.sleep(window)
        after = tree_cpu(read_proc(), me) - time.process_time()
        if after - before < threshold:
            break
        before = after
    return time.perf_counter() - started


@contextlib.contextmanager
def jupyter_server(root: Path, scratch: Path, extra: list[str]) -> Iterator[tuple[int, str, int]]:
    """A ``jupyter server`` with jupyter_mlx on 127.0.0.1 (as ``bench_list.jupyter_server``, with
    ``extra`` arguments; its runtime file in ``scratch/runtime``): yields (port, token, pid);
    always stopped."""
    port, token = free_port(), secrets.token_hex(16)
    config = scratch / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": {"jupyter_mlx": True}}}))
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config), "JUPYTER_RUNTIME_DIR": str(scratch / "runtime")}
    command = [sys.executable, "-m", "jupyter_server", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
               "--ServerApp.log_level=WARN", *extra]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log_path = scratch / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
    try:
        _wait_ready(process, port, token, 90.0, log_path)
        yield port, token, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


# -- 1. one run, as a user waits ------------------------------------------------------------
def papermill_run(root: Path) -> dict[str, Any]:
    started = time.perf_counter()
    done = subprocess.run([str(VENV_BIN / "papermill"), NOTEBOOK, "out.ipynb"], cwd=root, capture_output=True,
                          text=True, timeout=300)
    wall = time.perf_counter() - started
    if done.returncode != 0 or not (root / "model.pkl").exists():
        raise RuntimeError(f"papermill failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return {"wall_s": wall}


def cli_run(root: Path, door: str, runtime: Path) -> dict[str, Any]:
    """``jupyter mlx run train.ipynb --local`` or ``--server``: finds the servers of ``runtime``
    only (a server of someone else's whose root holds the project must not take the run)."""
    env = {name: value for name, value in os.environ.items() if name != "JUPYTER_MLX_TRANSPORT"}
    env["JUPYTER_RUNTIME_DIR"] = str(runtime)
    started = time.perf_counter()
    done = subprocess.run([str(VENV_BIN / "jupyter"), "mlx", "run", NOTEBOOK, door], cwd=root, capture_output=True,
                          text=True, timeout=300, env=env)
    wall = time.perf_counter() - started
    if done.returncode != 0 or "succeeded" not in done.stdout:
        raise RuntimeError(f"jupyter mlx run {door} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    if door == "--server" and "via the Jupyter server" not in done.stderr:
        raise RuntimeError(f"jupyter mlx run --server did not go through the server:\n{done.stderr[-2000:]}")
    return {"wall_s": wall}


def cli_start_cost(repeats: int = 3) -> float:
    """Median seconds of ``jupyter mlx --version``: the launcher, the interpreter and the CLI's imports."""
    walls = []
    for _ in range(repeats):
        wait_quiet()
        walls.append(harness.timed(lambda: subprocess.run([str(VENV_BIN / "jupyter"), "mlx", "--version"], check=True,
                                                          capture_output=True, timeout=60))[0])
    return statistics.median(walls)


def rest_run(port: int, token: str, pid: int, poll: float) -> dict[str, Any]:
    """``POST /mlx/runs``, then ``GET /mlx/runs/<id>`` every ``poll`` s until final; the run's own
    record splits the time."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        cpu_before = tree_cpu(read_proc(), pid)
        submitted = time.time()
        started = time.perf_counter()
        status, run = _request(connection, "POST", "/mlx/runs", token, {"notebook": NOTEBOOK})
        if status != 201:
            raise RuntimeError(f"POST /mlx/runs: HTTP {status}: {run}")
        deadline = started + 300
        while True:
            time.sleep(poll)
            status, details = _request(connection, "GET", f"/mlx/runs/{run['id']}", token)
            if status != 200:
                raise RuntimeError(f"GET /mlx/runs/{run['id']}: HTTP {status}: {details}")
            if details["status"] in FINAL or time.perf_counter() > deadline:
                break
        wall = time.perf_counter() - started
        seen = time.time()
        server_cpu = tree_cpu(read_proc(), pid) - cpu_before
    finally:
        connection.close()
    if details["status"] != "succeeded":
        raise RuntimeError(f"REST run {details.get('ref')}: {details['status']} {details.get('error')}")
    return {"wall_s": wall, "ref": details["ref"], "server_tree_cpu_s": server_cpu,
            **split_run(details, submitted, seen)}


def kernel_start(details: dict[str, Any]) -> dict[str, Any]:
    """Whether the run's kernel started warm, with what, and how long the run waited for it: its
    ``kernel_start`` (store revision 0009), else its notes ("started warm (...); it waited X s")."""
    start = details.get("kernel_start")
    if isinstance(start, dict):
        return {"warm": bool(start.get("warm")), "kernel_wait_s": start.get("waited"),
                "modules": list(start.get("modules") or []), "cold_why": start.get("cold")}
    notes = details.get("notes") or []
    return {"warm": any(note.startswith("started warm") for note in notes),
            "kernel_wait_s": next((float(m.group(1)) for m in map(WAITED.search, notes) if m), None),
            "modules": [], "cold_why": None}


def split_run(details: dict[str, Any], submitted: float, seen: float) -> dict[str, Any]:
    """Where a run's time went, from its record (epoch seconds; the server shares our clock)."""
    cells = sorted((t["started_at"], t["finished_at"]) for t in details["cell_timings"]
                   if t["started_at"] is not None and t["finished_at"] is not None)
    started, finished = _epoch(details["started_at"]), _epoch(details["finished_at"])
    return {
        **kernel_start(details),
        "submit_to_started_s": started - submitted,
        "started_to_first_cell_s": cells[0][0] - started,
        "cells_s": sum(end - start for start, end in cells),
        "between_cells_s": sum(b[0] - a[1] for a, b in zip(cells, cells[1:])),
        "after_last_cell_s": finished - cells[-1][1],
        "poll_lag_s": seen - finished,
    }


def single_runs(args: argparse.Namespace, tmp: Path, sampler: ProcSampler) -> list[dict[str, Any]]:
    """Rounds of the four ways, the order rotated each round; the servers started ``--starts`` times."""
    projects = {name: make_project(tmp / name) for name in ("papermill", "cli", "warm", "cold", "cli-server")}
    nowhere = tmp / "no-server-runtime"  # the in-process CLI must find no server
    nowhere.mkdir()
    rows: list[dict[str, Any]] = []
    turn = 0
    for start in range(args.starts):
        with contextlib.ExitStack() as stack:
            kinds = {WARM: ("warm", []), COLD: ("cold", ["--MLXConfig.warm_runs=False"])}
            if not args.skip_cli:
                kinds[CLI_SERVER] = ("cli-server", [])  # its own warm server: its 1st run is the CLI's
            print(f"start {start + 1}/{args.starts}: {len(kinds)} jupyter servers ...", flush=True)
            servers = {way: stack.enter_context(jupyter_server(projects[name], tmp / f"scratch-{name}-{start}", extra))
                       for way, (name, extra) in kinds.items()}
            ways: list[tuple[str, Callable[[], dict[str, Any]]]] = [
                (PAPERMILL, lambda: papermill_run(projects["papermill"])),
                (WARM, lambda: rest_run(*servers[WARM], args.poll)),
                (COLD, lambda: rest_run(*servers[COLD], args.poll)),
            ]
            if not args.skip_cli:
                ways.append((CLI, lambda: cli_run(projects["cli"], "--local", nowhere)))
                ways.append((CLI_SERVER, lambda: cli_run(projects["cli-server"], "--server",
                                                         tmp / f"scratch-cli-server-{start}" / "runtime")))
            for number in range(args.runs):
                shift = turn % len(ways)
                turn += 1
                for name, way in ways[shift:] + ways[:shift]:
                    quiet = wait_quiet()
                    load = os.getloadavg()[0]
                    begin = time.time()
                    result = way()
                    result.update(way=name, start=start, number=number, quiet_wait_s=quiet, load_avg_1m=load,
                                  noise=sampler.window(begin, time.time()).get("foreign_cores"))
                    rows.append(result)
                    print(f"  run {number + 1}/{args.runs} {name}: {result['wall_s']:.2f} s", flush=True)
            wait_quiet()
    return rows


# -- 2. a sweep, cold and warm, and the warm compute limit ----------------------------------
def sweep_values(count: int) -> list[float]:
    """``count`` values of C, log-spaced from 0.01 to 100."""
    return [round(10 ** (-2 + 4 * i / max(1, count - 1)), 6) for i in range(count)]


# the sweeps compared: the issue's anchor is the cold sweep as it was when filed (kernels forked with
# ipykernel only, each with the libraries' default thread pools); since then a sweep's runs share
# the cores (threads_per_run), cold ones too
SWEEP_MODES = {
    "cold": {"warm_runs": False, "threads_per_run": -1},
    "cold, cores shared": {"warm_runs": False},
    "warm": {},
}


def one_sweep(root: Path, mode: str, values: list[float], sampler: ProcSampler) -> dict[str, Any]:
    from jupyter_mlx.config import MLXConfig
    from jupyter_mlx.execute.kernels import wait_for_kernel_shutdowns
    from jupyter_mlx.service import RunService

    service = RunService(root, config=MLXConfig(**SWEEP_MODES[mode]))
    try:
        submitted = time.time()
        started = time.perf_counter()
        _, queued = service.sweep(NOTEBOOK, {"grid": {"C": values}})
        records = service.wait(queued, poll=0.05)
        wall = time.perf_counter() - started
        ended = time.time()
    finally:
        service.close()
        wait_for_kernel_shutdowns()
    bad = [r for r in records if r.status != "succeeded"]
    if bad:
        raise RuntimeError(f"{len(bad)} sweep runs did not succeed: {bad[0].ref} {bad[0].status} {bad[0].error}")
    starts = [kernel_start(r.to_json()) for r in records]
    cells = [sum(t.finished_at - t.started_at for t in r.cell_timings
                 if t.started_at is not None and t.finished_at is not None) for r in records]
    return {"mode": mode, "wall_s": wall, "runs": len(records),
            "threads": max((r.kernel_start or {}).get("threads", 0) for r in records),
            "warm_notes": sum(1 for start in starts if start["warm"]),
            "modules": max((start["modules"] for start in starts), key=len),
            "cells_s": sum(cells), "cells_per_run_s": statistics.median(cells),
            "refs": {str(r.parameters.get("C")): r.ref for r in records},
            "cpu": sampler.window(submitted, ended)}


def notebook_cells() -> list[str]:
    notebook = json.loads(SOURCE.read_text())
    return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in notebook["cells"] if c["cell_type"] == "code"]


def preloadable() -> tuple[str, ...]:
    """The modules the notebook's cells import that a warm kernel may start with."""
    from jupyter_mlx.execute.preload import warm_modules

    return warm_modules(notebook_cells())[0]


def warm_limit_once(modules: list[str], folder: Path, threads: int = 0) -> dict[str, Any]:
    """One fresh process with a warm kernel's ``modules`` imported: each code cell's time, twice;
    with ``threads``, the BLAS/OpenMP thread limit the sweep's runs had."""
    from jupyter_mlx.execute.threads import THREAD_VARIABLES

    cells = notebook_cells()
    folder.mkdir(exist_ok=True)
    (folder / "cells.json").write_text(json.dumps(cells))
    (folder / "limit.py").write_text(LIMIT_SCRIPT)
    env = {**os.environ, **(dict.fromkeys(THREAD_VARIABLES, str(threads)) if threads else {})}
    done = subprocess.run([sys.executable, "limit.py", ",".join(modules), "cells.json"], cwd=folder,
                          capture_output=True, text=True, timeout=300, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"the limit process failed:\n{done.stderr[-3000:]}")
    first, hot = json.loads(done.stderr.strip().splitlines()[-1])
    return {"modules": modules, "threads": threads, "cells_s": sum(first), "hot_cells_s": sum(hot),
            "per_cell_s": first}


def sweeps(args: argparse.Namespace, tmp: Path, sampler: ProcSampler) -> dict[str, Any]:
    root = make_project(tmp / "sweep")
    values = sweep_values(args.sweep)
    rounds: list[dict[str, Any]] = []
    limits: list[dict[str, Any]] = []
    for round_ in range(args.sweep_rounds):
        modes = list(SWEEP_MODES)
        order = modes[round_ % len(modes):] + modes[:round_ % len(modes)]  # rotated each round
        for mode in order:
            wait_quiet()
            print(f"sweep round {round_ + 1}/{args.sweep_rounds}: {args.sweep} runs {mode} "
                  f"(load {os.getloadavg()[0]:.2f}) ...", flush=True)
            result = one_sweep(root, mode, values, sampler)
            result["round"] = round_
            rounds.append(result)
            print(f"  {result['wall_s']:.1f} s", flush=True)
        warm = next(r for r in reversed(rounds) if r["mode"] == "warm")
        modules = warm["modules"] or list(preloadable())
        for _ in range(args.limit_repeats if round_ == 0 else 0):  # what the warm kernels started with
            wait_quiet()
            limits.append(warm_limit_once(modules, tmp / "limit", warm["threads"]))
    return {"root": root, "values": values, "rounds": rounds, "limits": limits, "modules": modules}


def compare_outputs(root: Path, cold: dict[str, Any], warm: dict[str, Any]) -> dict[str, Any]:
    """Every warm run against the cold run of the same C: the unexpected changes of each pair."""
    name = f"{cold['mode']} vs {warm['mode']}"
    from jupyter_mlx.service import RunService

    service = RunService(root)
    try:
        pairs = []
        for value, cold_ref in cold["refs"].items():
            warm_ref = warm["refs"][value]
            pairs.append({"C": value, "cold": cold_ref, "warm": warm_ref,
                          "unexpected": service.compare(cold_ref, warm_ref).unexpected()})
    finally:
        service.close()
    return {"name": name, "pairs": len(pairs), "with_unexpected": [p for p in pairs if p["unexpected"]],
            "first": pairs[0]}


# -- 3. memory ------------------------------------------------------------------------------
def smaps(pid: int) -> dict[str, float]:
    """RSS, PSS and USS (private clean + dirty) of a process, in bytes, and the CPU seconds it has
    used (a forked kernel: since its fork)."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0]) * 1024
    process = read_proc().get(pid)
    return {"rss": fields.get("Rss", 0), "pss": fields.get("Pss", 0),
            "uss": fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0),
            "cpu_s": process.cpu if process else 0.0}


# a process with the warm modules imported forks two children, each runs one full collection (as
# a kernel soon does) then sleeps: their private memory, with and without gc.freeze() before the fork
COW_SCRIPT = """
import gc, importlib, json, os, sys, time
import ipykernel.kernelapp, ipykernel.ipkernel
for name in [m for m in sys.argv[1].split(",") if m]:
    importlib.import_module(name)
if sys.argv[2] == "freeze":
    gc.collect()
    gc.freeze()
def uss(pid):
    fields = dict(line.split(":", 1) for line in open(f"/proc/{pid}/smaps_rollup").read().splitlines()[1:])
    return sum(int(fields[k].split()[0]) * 1024 for k in ("Private_Clean", "Private_Dirty"))
children, seconds = [], []
for _ in range(2):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        start = time.perf_counter()
        gc.collect()
        os.write(write, str(time.perf_counter() - start).encode())
        time.sleep(60)
        os._exit(0)
    os.close(write)
    seconds.append(float(os.read(read, 100)))
    children.append(pid)
time.sleep(1)
print(json.dumps({"uss": [uss(pid) for pid in children], "collect_s": seconds}))
for pid in children:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
"""


def copy_on_write(modules: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """USS of a forked child after one gc.collect(), and how long that took, the parent frozen
    (gc.freeze) or not."""
    found = {}
    for mode in ("plain", "freeze"):
        done = subprocess.run([sys.executable, "-c", COW_SCRIPT, ",".join(modules), mode], capture_output=True,
                              text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"the copy-on-write check failed:\n{done.stderr[-2000:]}")
        measured = json.loads(done.stdout.strip().splitlines()[-1])
        found[mode] = {key: statistics.median(values) for key, values in measured.items()}
    return found


def zygote_pids() -> list[int]:
    """This process's zygotes (its kernels, forked without exec, have the same command line)."""
    processes = read_proc()
    found = []
    for pid in descendants(processes, os.getpid()):
        if processes[pid].ppid != os.getpid():
            continue
        try:
            if b"jupyter_mlx.execute.zygote" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except OSError:
            continue
    return found


def pool_memory(preload: tuple[str, ...], kernels: int) -> dict[str, Any]:
    """``kernels`` kernels pre-started by the pool (forked, starting with ``preload``), idle."""
    from jupyter_mlx.execute.kernels import wait_for_kernel_shutdowns
    from jupyter_mlx.execute.local import LocalExecutor

    executor = LocalExecutor(concurrency=kernels, fork=True)
    try:
        executor.prepare(kernels, "python3", preload)
        deadline = time.monotonic() + 180
        while executor.pool.warm("python3", preload) < kernels and time.monotonic() < deadline:
            time.sleep(0.2)
        wait_quiet()
        zygotes = zygote_pids()
        children = [pid for zygote in zygotes for pid in descendants(read_proc(), zygote)]
        if len(zygotes) != 1 or len(children) != kernels:
            raise RuntimeError(f"expected 1 zygote and {kernels} kernels, found {zygotes} and {children}")
        return {"zygote": smaps(zygotes[0]), "kernels": [smaps(pid) for pid in children]}
    finally:
        executor.close()
        wait_for_kernel_shutdowns()


def spawned_memory() -> dict[str, Any]:
    """A kernel started the usual way (``jupyter mlx run``'s), idle."""
    from jupyter_mlx.execute.kernels import run_sync, start_local_kernel, wait_until_ready

    km = start_local_kernel("python3", tempfile.gettempdir(), 60)
    try:
        wait_until_ready(km, 60)
        wait_quiet()
        return {"kernels": [smaps(km.provisioner.pid)]}
    finally:
        run_sync(km.shutdown_kernel)(now=True)


def memory(preload: tuple[str, ...], kernels: int = 2) -> dict[str, Any]:
    print("memory: pre-started warm, cold forked and spawned kernels ...", flush=True)
    found = {"warm": pool_memory(preload, kernels), "cold forked": pool_memory((), kernels), "spawned": spawned_memory()}
    return {**found, "copy_on_write": copy_on_write(preload)}


# -- profile of warm runs -------------------------------------------------------------------
def profile_warm_runs(root: Path, runs: int) -> list[dict[str, float]]:
    """Warm runs in this process on a pool kept warm (as the server's), every phase timed, after
    ``WARMUP_RUNS`` untimed ones."""
    import jupyter_mlx.execute.kernels as kernels
    import jupyter_mlx.execute.runner as runner
    import jupyter_mlx.provenance as provenance
    from jupyter_mlx.execute.kernels import KernelPool, wait_for_kernel_shutdowns
    from jupyter_mlx.service import RunService
    from jupyter_mlx.workdir.run_files import RunFiles

    phases = PhaseLog()

    service = RunService(root, keep_warm=True)
    store = service.store
    patches = [
        mock.patch.object(service, "_plan", phases.wrap("submit: read, plan", service._plan)),
        mock.patch.object(provenance, "git_state", phases.wrap("submit: git state", provenance.git_state)),
        mock.patch.object(service, "_execute_queued", phases.wrap("slot", service._execute_queued)),
        mock.patch.object(RunFiles, "open", phases.wrap("run folder: open", RunFiles.open)),
        mock.patch.object(RunFiles, "collect", phases.wrap("run folder: collect files", RunFiles.collect)),
        mock.patch.object(RunFiles, "close", phases.wrap("run folder: close", RunFiles.close)),
        mock.patch.object(KernelPool, "acquire", phases.wrap("kernel acquire", KernelPool.acquire)),
        mock.patch.object(runner, "_prepare", phases.wrap("prepare (nbformat, parameters)", runner._prepare)),
        mock.patch.object(runner, "_CLIENT_CLASS", phases.client_class()),
        mock.patch.object(runner, "_capture_state", phases.wrap("capture state", runner._capture_state)),
        mock.patch.object(kernels, "shutdown_in_background", phases.wrap("kernel release", kernels.shutdown_in_background)),
        mock.patch.object(store, "mark_running", phases.wrap("store: mark_running", store.mark_running)),
        mock.patch.object(store, "finish_run", phases.wrap("store: finish_run", store.finish_run)),
    ]
    rows = []
    try:
        with contextlib.ExitStack() as stack:
            for patch in patches:
                stack.enter_context(patch)
            # not counted: the 1st run starts a zygote with the modules the cells import, the 2nd
            # one with those the 1st ended with too (learned, when the library learns them)
            for number in range(runs + WARMUP_RUNS):
                wait_quiet()
                phases.events.clear()
                start = time.time()
                run = service.submit(NOTEBOOK)
                submitted = time.time()
                record = service.wait([run], poll=0.02)[0]
                end = time.time()
                if record.status != "succeeded":
                    raise RuntimeError(f"profiled run {record.ref}: {record.status} {record.error}")
                if number >= WARMUP_RUNS:
                    rows.append(_phase_row(phases, record, start, submitted, end))
    finally:
        service.close()
        wait_for_kernel_shutdowns()
    return rows


def _phase_row(phases: PhaseLog, record: Any, start: float, submitted: float, end: float) -> dict[str, float]:
    totals: dict[str, float] = {}
    for name, _, _, begin, finish, _ in phases.events:
        totals[name] = totals.get(name, 0.0) + (finish - begin)
    slot = next(e for e in phases.events if e[0] == "slot")
    cells = sorted((t.started_at, t.finished_at) for t in record.cell_timings)
    compute = sum(b - a for a, b in cells)
    row = {
        "end to end": end - start,
        "submit (returns queued)": submitted - start,
        "submit -> slot start": slot[3] - start,
        "cells (compute)": compute,
        "between cells (messaging, outputs)": sum(b[0] - a[1] for a, b in zip(cells, cells[1:])),
        "client.execute other (connect excluded)": totals.get("client.execute", 0.0) - compute
        - sum(b[0] - a[1] for a, b in zip(cells, cells[1:])) - totals.get("connect (channels, kernel_info, chdir)", 0.0),
        "slot -> wait returns": end - slot[4],
    }
    row.update({name: value for name, value in totals.items() if name not in ("client.execute",)})
    inside = ("run folder: open", "kernel acquire", "prepare (nbformat, parameters)", "client.execute", "capture state",
              "run folder: collect files", "run folder: close", "kernel release", "store: mark_running",
              "store: finish_run")
    row["slot: the rest"] = slot[4] - slot[3] - sum(totals.get(name, 0.0) for name in inside)
    return row


# -- the report -----------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="REST runs per server start: the 1st and N-1 later (default 5)")
    parser.add_argument("--starts", type=int, default=2, help="times the two servers are started (default 2)")
    parser.add_argument("--poll", type=float, default=0.1, help="seconds between GET /mlx/runs/<id> (default 0.1)")
    parser.add_argument("--sweep", type=int, default=32, help="runs in a sweep (default 32)")
    parser.add_argument("--sweep-rounds", type=int, default=2, help="sweeps of each way (default 2)")
    parser.add_argument("--limit-repeats", type=int, default=3, help="fresh processes for the warm limit (default 3)")
    parser.add_argument("--profile-runs", type=int, default=4, help="profiled warm runs in this process (default 4)")
    parser.add_argument("--skip-cli", action="store_true", help="no jupyter mlx run processes")
    parser.add_argument("--skip-sweep", action="store_true", help="no sweeps (nor output check)")
    parser.add_argument("--skip-memory", action="store_true", help="no memory measurement")
    parser.add_argument("--skip-profile", action="store_true", help="no profiled warm runs")
    args = parser.parse_args(argv)
    if args.runs < 2:
        parser.error("--runs must be at least 2 (a 1st run and a later one)")
    if args.sweep_rounds < 1 and not args.skip_sweep:
        parser.error("--sweep-rounds must be at least 1 (or --skip-sweep)")

    sampler = ProcSampler(interval=0.5).start()
    load_at_start = os.getloadavg()
    began = time.time()
    tmp = Path(tempfile.mkdtemp(prefix="mlx-bench-warm-"))
    results: dict[str, Any] = {"code": code_version()}
    try:
        results["single"] = single_runs(args, tmp, sampler)
        if not args.skip_cli:
            results["cli_start_s"] = cli_start_cost()
        if not args.skip_sweep:
            swept = sweeps(args, tmp, sampler)
            last = {r["mode"]: r for r in swept["rounds"]}
            print("comparing every warm run with the cold runs of the same C ...", flush=True)
            root = swept.pop("root")
            swept["compare"] = [compare_outputs(root, last[cold], last["warm"]) for cold in ("cold, cores shared", "cold")]
            results["sweep"] = swept
        if not args.skip_memory:
            # the modules the warm sweep's kernels started with, else those the cells import
            modules = (results.get("sweep") or {}).get("modules") or preloadable()
            results["memory"] = memory(tuple(modules))
        if not args.skip_profile:
            print(f"profile: {args.profile_runs} warm runs in this process, each phase timed ...", flush=True)
            results["profile"] = profile_warm_runs(make_project(tmp / "profile"), args.profile_runs)
    finally:
        sampler.stop()
        leftovers = kill_leftovers(sampler.mine)
        shutil.rmtree(tmp, ignore_errors=True)
    results["code"] = code_version()
    report(args, results, load_at_start, time.time() - began, leftovers, sampler.own_cpu_s)
    return 0


def code_version() -> dict[str, Any]:
    """The commit measured, and the library's files changed since (others edit them meanwhile)."""
    def git(*argv: str) -> str:
        return subprocess.run(["git", *argv], cwd=harness.REPO, capture_output=True, text=True, timeout=30).stdout

    return {"head": git("rev-parse", "--short", "HEAD").strip(),
            "uncommitted": git("status", "--short", "--", "jupyter_mlx").split("\n")[:-1]}


def report(args: argparse.Namespace, results: dict[str, Any], load_at_start: tuple[float, float, float],
           elapsed: float, leftovers: list[int], sampler_cpu: float) -> None:
    ncores = cores()
    verdicts: list[dict[str, Any]] = []
    code = results["code"]
    print(f"\n{NOTEBOOK} (examples/); {ncores} cores; load avg at start {load_at_start[0]:.2f}; "
          f"{args.starts} server starts x {args.runs} runs; REST polled every {args.poll:g} s; commit {code['head']}"
          + (f" with {len(code['uncommitted'])} library files changed since" if code["uncommitted"] else ""))

    single = results["single"]
    by_way: dict[str, list[dict[str, Any]]] = {}
    for row in single:
        by_way.setdefault(row["way"], []).append(row)
    anchor = statistics.median(r["wall_s"] for r in by_way[PAPERMILL])
    rows, summary = [], {}
    for way, runs in by_way.items():
        first = [r["wall_s"] for r in runs if r["number"] == 0]
        later = [r["wall_s"] for r in runs if r["number"] > 0]
        is_rest = way in (WARM, COLD, CLI_SERVER)  # a server's 1st run, then its later ones
        later_median = statistics.median(later if is_rest else first + later)
        summary[way] = {"first_s": first if is_rest else None, "later": _distribution(later if is_rest else first + later)}
        rows.append([way, statistics.median(first) if is_rest else "-", later_median,
                     f"{min(later):.2f}-{max(later):.2f}", f"{anchor / later_median:.2f}x",
                     f"{anchor / statistics.median(first):.2f}x" if is_rest else "-",
                     max((r["noise"] or 0.0) for r in runs)])
    print("\n1. One run, end to end as a user waits (s): REST = POST /mlx/runs, then GET /mlx/runs/<id> until final;"
          "\n   the CLI ways are whole processes. 'later' = the 2nd..Nth runs of each server start (CLI ways: every run)")
    harness.print_table(["way", "1st run", "later median", "later range", "papermill / later", "papermill / 1st",
                         "noise cores max"], rows)
    warm_later = summary[WARM]["later"]["p50"]
    ratio = anchor / warm_later
    verdicts.append(_verdict(f"{WARM}: later runs >= {TARGET_LATER_VS_PAPERMILL:g}x faster than papermill", ratio,
                             ratio >= TARGET_LATER_VS_PAPERMILL, f"{anchor:.2f} s / {warm_later:.2f} s"))
    for way in (WARM, COLD, CLI_SERVER):
        for start in range(args.starts):
            walls = [f"{r['wall_s']:.2f}" for r in sorted(by_way.get(way, []), key=lambda r: r["number"])
                     if r["start"] == start]
            if walls:
                print(f"   {way}, start {start + 1}, runs in order: {', '.join(walls)} s")
    not_warm = [r["ref"] for r in by_way[WARM] if not r["warm"]]
    warm_cold = [r["ref"] for r in by_way[COLD] if r["warm"]]
    if not_warm or warm_cold:
        print(f"   WARNING: warm server runs that did not start warm: {not_warm}; cold server runs that did: {warm_cold}")
    later = [r for r in by_way[WARM] if r["number"] > 0]
    print(f"   a later warm run's kernel started with {len(later[-1]['modules'])} modules: "
          f"{', '.join(later[-1]['modules'])}")
    print("   jupyter mlx run now submits through the server that serves the project (commit e7cdb2f): the --server"
          "\n   row is that door; --local is the in-process run on a freshly spawned kernel")
    if results.get("cli_start_s"):
        print(f"   `jupyter mlx --version` (launcher, interpreter, the CLI's imports): {results['cli_start_s']:.2f} s")

    parts = ["submit_to_started_s", "kernel_wait_s", "started_to_first_cell_s", "cells_s", "between_cells_s",
             "after_last_cell_s", "poll_lag_s", "server_tree_cpu_s", "wall_s"]
    rows = []
    for way in (WARM, COLD):
        for label, selected in (("1st", [r for r in by_way[way] if r["number"] == 0]),
                                ("later", [r for r in by_way[way] if r["number"] > 0])):
            rows.append([f"{way.split(', ')[1]} {label}"] + [
                _median_or_dash([r[p] for r in selected if r[p] is not None]) for p in parts])
    print("\n   Each REST run split by its own record (medians, s): queued -> started; its kernel wait (kernel_start,"
          "\n   else its notes); started -> first cell (kernel wait, connect, chdir); its cells; between them;"
          "\n   after the last cell (capture, files, store); finished -> the client saw it; the server's process tree CPU")
    harness.print_table(["runs", "queued->started", "kernel wait", "->1st cell", "cells", "between", "after cells",
                         "poll lag", "server CPU", "end to end"], rows)

    sweep = results.get("sweep")
    if sweep:
        report_sweep(args, sweep, ncores, verdicts)
    if results.get("memory"):
        report_memory(results["memory"])
    if sweep and results.get("memory"):
        warm, n = results["memory"]["warm"], args.sweep
        boot = statistics.median(k["cpu_s"] for k in warm["kernels"])
        cells = statistics.median(l["cells_s"] for l in sweep["limits"])
        zygote = warm["zygote"]["cpu_s"] / n
        total = sweep["cpu_per_run_s"]["warm"]
        in_kernel = statistics.median(r["cells_s"] for r in single if r["way"] == WARM and r["number"] > 0)
        print(f"\n   A warm sweep run's CPU, {total:.2f} s: its cells alone (the limit's) {cells:.2f} s (in a kernel, the"
              f" warm REST runs' own: {in_kernel:.2f} s),\n   a forked kernel's start to ready {boot:.2f} s, the zygote's "
              f"imports shared by {n} runs {zygote:.2f} s, the rest (messages and outputs,\n   capture, shutdown, the pool, "
              f"this process) {total - cells - boot - zygote:.2f} s")
    if results.get("profile"):
        rows = results["profile"]
        names = list(dict.fromkeys(name for row in rows for name in row))
        print(f"\nProfile of {len(rows)} warm runs in this process (submit + wait, pool kept warm as on the server; "
              "medians, ms; phases nest: the slot holds the run folder, acquire, prepare, client.execute, capture, store)")
        harness.print_table(["phase", "median ms", "max ms"],
                            [[name, statistics.median(r.get(name, 0.0) for r in rows) * 1000,
                              max(r.get(name, 0.0) for r in rows) * 1000] for name in names])

    print()
    for verdict in verdicts:
        print(f"{verdict['check']}: {verdict['value']:.2f} -> {'MET' if verdict['met'] else 'MISSED'} ({verdict['detail']})")
    if leftovers:
        print(f"\nWARNING: processes still alive after cleanup: {leftovers}")
    path = harness.write_results("bench_warm_runs", {
        "args": vars(args), "cores": ncores, "elapsed_s": elapsed, "load_avg_at_start": load_at_start,
        "sampler_cpu_s": sampler_cpu, "anchor_papermill_s": anchor, "single_summary": summary,
        "verdicts": verdicts, **_jsonable(results),
        "notes": "REST: the runs of a real jupyter server, end to end from POST to the GET that says final; the CLI "
                 "ways are whole processes. Limit = runs x the summed first-execution cell time in a fresh process "
                 "with the warm modules imported (IPython shell, inline backend) / cores. Noise = cores busy with "
                 "processes outside this benchmark's tree, from /proc every 0.5 s.",
    })
    print(f"\nresults: {path}")


def report_sweep(args: argparse.Namespace, sweep: dict[str, Any], ncores: int, verdicts: list[dict[str, Any]]) -> None:
    n = args.sweep
    rounds = sweep["rounds"]
    limits = sweep["limits"]
    limit_cells = statistics.median(l["cells_s"] for l in limits)
    limit = n * limit_cells / ncores
    rows, walls = [], {}
    for mode in SWEEP_MODES:
        mine = [r for r in rounds if r["mode"] == mode]
        walls[mode] = statistics.median(r["wall_s"] for r in mine)
        cpu = [r["cpu"] for r in mine if r["cpu"]]
        rows.append([mode, walls[mode], ", ".join(f"{r['wall_s']:.1f}" for r in mine), walls[mode] / limit,
                     statistics.median(r["cells_per_run_s"] for r in mine),
                     statistics.median(r["cells_s"] for r in mine) / ncores,
                     statistics.median(c["children_cpu_s"] / n for c in cpu) if cpu else "-",
                     statistics.median(c["this_process_cpu_s"] / n for c in cpu) if cpu else "-",
                     max(c["foreign_cores"] for c in cpu) if cpu else "-",
                     f"{min(r['warm_notes'] for r in mine)}/{n}"])
    noisy = [(r["mode"], r["round"] + 1, r["cpu"]["foreign_cores"]) for r in rounds
             if (r.get("cpu") or {}).get("foreign_cores", 0.0) > 0.15]
    print(f"\n2. A {n}-run sweep over C (RunService.sweep + wait, a fresh service each; medians of {args.sweep_rounds})")
    threads = limits[0].get("threads") if limits else 0
    print(f"   'cold' is the anchor as when the issue was filed (warm_runs=False, threads_per_run=-1: each kernel with "
          f"the libraries' default thread pools);\n   the warm sweep's runs had {threads or 'default'} BLAS/OpenMP "
          f"thread(s) each ({ncores} cores shared by the runs at once), and so had the limit's process")
    print(f"   warm limit = {n} x {limit_cells:.3f} s (the cells once each in a fresh process with the modules imported, "
          f"median of {len(limits)}) / {ncores} cores = {limit:.1f} s; hot (the same cells again, same process): "
          f"{statistics.median(l['hot_cells_s'] for l in limits):.3f} s")
    harness.print_table(["sweep", "wall s", "rounds", "/limit", "cells s/run", "own cells / cores s",
                         "kernels CPU s/run", "driver CPU s/run", "noise cores max", "started warm"], rows)
    for mode, round_, foreign in noisy:
        print(f"   WARNING: other processes kept {foreign:.2f} cores busy during the {mode} sweep of round {round_}: "
              "its wall time is noisy")
    cpu = {mode: statistics.median((r["cpu"]["children_cpu_s"] + r["cpu"]["this_process_cpu_s"]) / n
                                   for r in rounds if r["mode"] == mode and r["cpu"]) for mode in SWEEP_MODES}
    print("   CPU per run (kernels, zygote, git; and this process): "
          + ", ".join(f"{mode} {cpu[mode]:.2f} s" for mode in SWEEP_MODES)
          + f": cold / warm {cpu['cold'] / cpu['warm']:.2f}x (what the wall ratio tends to on a quiet machine, the sweeps CPU-bound);"
          f"\n   the warm runs' CPU beyond the limit's cells: {cpu['warm'] - limit_cells:.2f} s a run")
    sweep["cpu_per_run_s"] = cpu
    print(f"   warm vs cold with the cores shared too: {walls['cold, cores shared'] / walls['warm']:.2f}x "
          f"({walls['cold, cores shared']:.1f} s / {walls['warm']:.1f} s)")
    ratio = walls["cold"] / walls["warm"]
    verdicts.append(_verdict(f"sweep: warm >= {TARGET_SWEEP_WARM_VS_COLD:g}x faster than cold", ratio,
                             ratio >= TARGET_SWEEP_WARM_VS_COLD, f"{walls['cold']:.1f} s / {walls['warm']:.1f} s"))
    over = walls["warm"] / limit
    verdicts.append(_verdict(f"sweep: warm within {TARGET_SWEEP_VS_LIMIT:g}x of the warm compute limit", over,
                             over <= TARGET_SWEEP_VS_LIMIT, f"{walls['warm']:.1f} s vs {limit:.1f} s"))
    for compare in sweep.get("compare") or []:
        first = compare["first"]
        print(f"\n   Outputs ({compare['name']}): RunService.compare(cold, warm).unexpected() for each of the "
              f"{compare['pairs']} values of C; pairs with unexpected changes: {len(compare['with_unexpected'])}")
        print(f"   e.g. C={first['C']}: compare({first['cold']}, {first['warm']}).unexpected() = {first['unexpected']}")
        for pair in compare["with_unexpected"][:5]:
            print(f"   C={pair['C']} {pair['cold']} vs {pair['warm']}: {pair['unexpected'][:5]}")
        ok = not compare["with_unexpected"]
        verdicts.append(_verdict(f"outputs: warm runs compare with cold ones ({compare['name']}) with no unexpected change",
                                 float(len(compare["with_unexpected"])), ok, f"{compare['pairs']} pairs"))


def report_memory(found: dict[str, Any]) -> None:
    mib = 1024 * 1024
    rows = []
    for mode, parts in found.items():
        if mode == "copy_on_write":
            continue
        kernels = parts["kernels"]
        rows.append([f"{mode} kernel", len(kernels), *(statistics.median(k[key] for k in kernels) / mib
                                                      for key in ("rss", "pss", "uss")),
                     statistics.median(k["cpu_s"] for k in kernels)])
        if "zygote" in parts:
            z = parts["zygote"]
            rows.append([f"{mode} zygote", 1, z["rss"] / mib, z["pss"] / mib, z["uss"] / mib, z["cpu_s"]])
    print("\n3. Memory of idle pre-started kernels (MiB, medians; /proc/<pid>/smaps_rollup): PSS shares a page among"
          "\n   the processes mapping it (zygote and its kernels), USS = private, what one more kernel costs;"
          "\n   CPU s = what the process used up to now (a forked kernel: since its fork, to get ready)")
    harness.print_table(["process", "n", "RSS", "PSS", "USS", "CPU s"], rows)
    cow = found.get("copy_on_write")
    if cow:
        plain, frozen = cow["plain"], cow["freeze"]
        print(f"   A fork of a process with the same modules imported, one gc.collect() in the child: it takes "
              f"{plain['collect_s']:.3f} s and leaves\n   a USS of {plain['uss'] / mib:.1f} MiB; with gc.freeze() in the "
              f"parent before the fork: {frozen['collect_s']:.3f} s, {frozen['uss'] / mib:.1f} MiB")


def _verdict(check: str, value: float, met: bool, detail: str) -> dict[str, Any]:
    return {"check": check, "value": value, "met": met, "detail": detail}


def _median_or_dash(values: list[float]) -> Any:
    return statistics.median(values) if values else "-"


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


if __name__ == "__main__":
    sys.exit(main())
