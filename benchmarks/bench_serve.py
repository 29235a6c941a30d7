"""Serving a notebook function: jupyter_mlx endpoints against Kernel Gateway and a bare server.

One notebook (scikit-learn LogisticRegression on iris, trained at start-up; ``predict``; a
``# POST /predict`` cell for Kernel Gateway, tagged ``mlx:no-serve`` so jupyter_mlx skips it) is
served, each way started fresh and measured in the same run on the same machine:

- Kernel Gateway 3, notebook-http mode, 1 kernel, then ``prespawn_count=2``;
- ``jupyter mlx deploy --function predict`` with 1, 2 and 4 workers (no auth), and 1 worker with
  a token (concurrency 1 only: the cost of auth);
- ``jupyter mlx deploy api.ipynb@v1`` with 1 worker: a run of the notebook, recorded once before
  any way starts, served from the state it captured (issue 15) instead of re-executing the cells;
- the anchor: a bare single-process tornado server (written here, run as a subprocess) running the
  same cells, ``POST /predict`` with the same JSON contract. It is run first and last.

For each: the start-up time to the first answered ``POST /predict`` (from the process launch or the
``deploy`` command's start), then ``--requests`` requests at concurrency 1 and at concurrency 8,
each after ``--warmup`` requests: p50/p90/p99 latency and throughput. Concurrency 8 is repeated
``--rounds`` times with a fresh pool of connections (which forked worker gets which keep-alive
connection is decided when the pool connects), the median kept. The client is one process
with an epoll loop over persistent keep-alive sockets and pre-built requests (the same for every
way); its own CPU time is measured, and so is each server process's. Memory: RSS, PSS and USS from
``/proc/<pid>/smaps_rollup`` of every serving process (PSS shows copy-on-write sharing).

Run: ``.venv/bin/python benchmarks/bench_serve.py [--requests 2000] [--rounds 5] [--skip-kg] [--profile]``
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import harness
from jupyter_mlx.ports import free_port
from jupyter_mlx.service import RunService

CONCURRENCY = (1, 8)
START_TIMEOUT = 120.0
REQUEST_TIMEOUT = 60.0
VENV_BIN = Path(sys.executable).parent

# targets from the issue
TARGET_VS_KG = 15.0  # c8 throughput, x Kernel Gateway with 1 kernel
TARGET_VS_MLFLOW = 2.0  # x `mlflow models serve`; mlflow is not installed: the bare server is the anchor
TARGET_VS_BARE = 1.0  # c8 throughput, x the bare single-process server
TARGET_P50_MS = 1.5  # concurrency 1, workers=1
TARGET_P99_MS = 5.0

# -- the notebook ---------------------------------------------------------------------------
IMPORTS = "from sklearn.datasets import load_iris\nfrom sklearn.linear_model import LogisticRegression"
TRAIN = "X, y = load_iris(return_X_y=True)\nmodel = LogisticRegression(max_iter=200).fit(X, y)"
PREDICT = (
    "def predict(features: list[list[float]]) -> list[int]:\n"
    "    return [int(c) for c in model.predict(features)]"
)
# Kernel Gateway defines REQUEST; a run of the notebook (the "from run" way) runs this cell without it
KG_CELL = ("# POST /predict\nimport json\nif 'REQUEST' in globals():\n"
           "    print(json.dumps(predict(**json.loads(REQUEST)['body'])))")

# the anchor: the same cells, then a plain tornado handler with the same JSON contract
BARE_SERVER = f'''
import json, sys
{IMPORTS}
{TRAIN}
{PREDICT}
from tornado import ioloop, web

class Predict(web.RequestHandler):
    def post(self):
        result = predict(**json.loads(self.request.body))
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(result))

web.Application([("/predict", Predict)]).listen(int(sys.argv[1]), "127.0.0.1")
ioloop.IOLoop.current().start()
'''

# request bodies: one iris-like flower each, of every class, cycled through
ROWS = [
    [5.1, 3.5, 1.4, 0.2], [4.9, 3.0, 1.4, 0.2], [5.7, 3.8, 1.7, 0.3], [5.0, 3.4, 1.5, 0.2],
    [7.0, 3.2, 4.7, 1.4], [6.4, 3.2, 4.5, 1.5], [5.5, 2.3, 4.0, 1.3], [6.0, 2.7, 5.1, 1.6],
    [6.3, 3.3, 6.0, 2.5], [5.8, 2.7, 5.1, 1.9], [7.1, 3.0, 5.9, 2.1], [6.5, 3.0, 5.2, 2.0],
    [6.2, 2.8, 4.8, 1.8], [5.9, 3.0, 4.2, 1.5], [6.1, 2.6, 5.6, 1.4], [5.4, 3.9, 1.3, 0.4],
]
BODIES = [json.dumps({"features": [row]}).encode() for row in ROWS]


def write_notebook(folder: Path) -> Path:
    return harness.write_notebook(folder / "api.ipynb", [
        harness.markdown_cell("# Iris classifier\nTrained at start-up; `predict` is served."),
        harness.code_cell(IMPORTS),
        harness.code_cell(TRAIN),
        harness.code_cell(PREDICT),
        harness.code_cell(KG_CELL, tags=["mlx:no-serve"]),
    ])


def expected_answers() -> list[list[int]]:
    """What every way must answer, from the same cells run here."""
    namespace: dict[str, Any] = {}
    exec(f"{IMPORTS}\n{TRAIN}\n{PREDICT}", namespace)
    return [namespace["predict"](features=[row]) for row in ROWS]


# -- processes ------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        return [int(p) for p in text.split()]
    except OSError:
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry.name))
                except (OSError, IndexError, ValueError):
                    continue
        return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def cpu_seconds(pid: int) -> float:
    """user + system CPU time of a process so far (clock ticks, 10 ms here)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory(pid: int) -> dict[str, float]:
    """RSS, PSS and USS (private) of a process, in MiB, from smaps_rollup."""
    values: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
            key, _, rest = line.partition(":")
            values[key] = int(rest.split()[0])
    except OSError:
        return {}
    mib = 1024.0
    return {
        "rss_mib": values.get("Rss", 0) / mib,
        "pss_mib": values.get("Pss", 0) / mib,
        "uss_mib": (values.get("Private_Clean", 0) + values.get("Private_Dirty", 0)) / mib,
        "shared_mib": (values.get("Shared_Clean", 0) + values.get("Shared_Dirty", 0)) / mib,
    }


def _stop_process(process: subprocess.Popen, timeout: float = 15.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)


def _kill_leftovers(pids: list[int]) -> list[int]:
    """Processes we started that outlived their stop: killed by pid, and listed."""
    left = [pid for pid in pids if _alive(pid)]
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left


# -- a client request -----------------------------------------------------------------------
def post(port: int, body: bytes, token: str | None = None, timeout: float = REQUEST_TIMEOUT) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("POST", "/predict", body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def first_answer(port: int, started: float, alive: Callable[[], bool], token: str | None = None,
                 request: bytes = BODIES[0], timeout: float = START_TIMEOUT) -> float:
    """Seconds from ``started`` to the first 200 to ``POST /predict``: connects until the port
    listens, then waits for the answer (a request queued while the set-up runs counts)."""
    deadline = started + timeout
    while time.perf_counter() < deadline:
        try:
            status, body = post(port, request, token, timeout=timeout)
            if status == 200:
                return time.perf_counter() - started
            raise RuntimeError(f"first POST /predict answered {status}: {body[:300]!r}")
        except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected):
            if not alive():
                raise RuntimeError("the server exited before answering") from None
            time.sleep(0.02)
    raise RuntimeError(f"no answer within {timeout:g} s")


def check_answers(port: int, expected: list[list[int]], token: str | None = None) -> None:
    """Every request body must get the same answer as the cells run here, or nothing compares."""
    for body, answer in zip(BODIES, expected):
        status, payload = post(port, body, token)
        if status != 200 or json.loads(payload) != answer:
            raise RuntimeError(f"POST /predict {body!r}: HTTP {status} {payload[:200]!r}, expected {answer}")


# -- the load generator ---------------------------------------------------------------------
@dataclass
class _Connection:
    sock: socket.socket
    buffer: bytearray = field(default_factory=bytearray)
    index: int = 0
    sent_at: float = 0.0


def drive(port: int, requests: int, concurrency: int, token: str | None = None,
          connect_gap_s: float = 0.0) -> dict[str, Any]:
    """``requests`` POSTs over ``concurrency`` persistent keep-alive connections, each sending
    its next request as soon as the last is answered (closed loop). One process, one epoll loop,
    requests pre-built: a few tens of microseconds of client CPU a request. The connections are
    opened at once (as a client's pool does), or ``connect_gap_s`` apart."""
    auth = f"Authorization: Bearer {token}\r\n".encode() if token else b""
    wire = [b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n%s"
            b"Content-Length: %d\r\n\r\n%s" % (port, auth, len(body), body) for body in BODIES]
    selector = selectors.EpollSelector()
    connections = []
    for number in range(min(concurrency, requests)):
        if number and connect_gap_s:
            time.sleep(connect_gap_s)
        sock = socket.create_connection(("127.0.0.1", port), timeout=REQUEST_TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        connection = _Connection(sock)
        selector.register(sock, selectors.EVENT_READ, connection)
        connections.append(connection)
    latencies = [0.0] * requests
    answers: list[set[bytes]] = [set() for _ in BODIES]
    failures: dict[int, int] = {}
    issued = done = 0
    clock = time.perf_counter

    def send(connection: _Connection) -> None:
        nonlocal issued
        connection.index = issued
        data = wire[issued % len(wire)]
        issued += 1
        connection.sent_at = clock()
        if connection.sock.send(data) != len(data):  # a few hundred bytes on loopback: never partial
            raise RuntimeError("partial send")

    cpu_start, wall_start = time.process_time(), clock()
    for connection in connections:
        send(connection)
    while done < requests:
        events = selector.select(REQUEST_TIMEOUT)
        if not events:
            raise RuntimeError(f"no answer within {REQUEST_TIMEOUT:g} s ({done} of {requests} done)")
        for key, _ in events:
            connection = key.data
            chunk = connection.sock.recv(65536)
            if not chunk:
                raise RuntimeError("the server closed a keep-alive connection")
            buffer = connection.buffer
            buffer += chunk
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                continue
            head = bytes(buffer[:end]).lower()
            at = head.find(b"content-length:")
            if at < 0:
                raise RuntimeError(f"a response without Content-Length: {head[:300]!r}")
            length = int(head[at + 15: head.find(b"\r\n", at) if head.find(b"\r\n", at) > 0 else None])
            if len(buffer) < end + 4 + length:
                continue
            now = clock()
            latencies[connection.index] = now - connection.sent_at
            status = int(head[9:12])
            if status == 200:
                answers[connection.index % len(BODIES)].add(bytes(buffer[end + 4: end + 4 + length]))
            else:
                failures[status] = failures.get(status, 0) + 1
            del buffer[: end + 4 + length]
            done += 1
            if issued < requests:
                send(connection)
    wall = clock() - wall_start
    cpu = time.process_time() - cpu_start
    for connection in connections:
        selector.unregister(connection.sock)
        connection.sock.close()
    selector.close()
    if failures:
        raise RuntimeError(f"non-200 answers under load: {failures}")
    ms = sorted(seconds * 1000 for seconds in latencies)
    return {
        "requests": requests, "concurrency": concurrency, "wall_s": wall, "req_per_s": requests / wall,
        "p50_ms": _percentile(ms, 50), "p90_ms": _percentile(ms, 90), "p99_ms": _percentile(ms, 99),
        "mean_ms": statistics.fmean(ms), "max_ms": ms[-1],
        "client_cpu_s": cpu, "client_cpu_us_per_request": cpu / requests * 1e6, "client_cpu_share": cpu / wall,
        "_answers": answers,
    }


def _percentile(sorted_ms: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    rank = max(1, -(-len(sorted_ms) * q // 100))
    return sorted_ms[int(rank) - 1]


def _check_load_answers(result: dict[str, Any], expected: list[list[int]]) -> None:
    for index, seen in enumerate(result.pop("_answers")):
        for payload in seen:
            if json.loads(payload) != expected[index]:
                raise RuntimeError(f"wrong answer under load for body {index}: {payload[:200]!r}")


# -- the ways -------------------------------------------------------------------------------
@dataclass
class Served:
    """A server that answers: its port, start-up time and the processes to watch."""

    port: int
    startup_s: float
    processes: Callable[[], dict[str, int]]  # role -> pid, read when needed
    token: str | None = None
    notes: dict[str, Any] = field(default_factory=dict)


@contextmanager
def bare_tornado(folder: Path) -> Iterator[Served]:
    script = folder / "bare_server.py"
    script.write_text(BARE_SERVER)
    port = free_port()
    log = open(folder / f"bare-{port}.log", "wb")
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, str(script), str(port)], stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, cwd=folder)
    try:
        startup = first_answer(port, started, lambda: process.poll() is None)
        yield Served(port, startup, lambda: {"server": process.pid})
    finally:
        _stop_process(process)
        log.close()


@contextmanager
def kernel_gateway(folder: Path, notebook: Path, prespawn: int | None) -> Iterator[Served]:
    port = free_port()
    command = [
        str(VENV_BIN / "jupyter-kernelgateway"),
        "--KernelGatewayApp.api=kernel_gateway.notebook_http", f"--KernelGatewayApp.seed_uri={notebook}",
        "--KernelGatewayApp.ip=127.0.0.1", f"--KernelGatewayApp.port={port}",
    ]
    if prespawn is not None:
        command.append(f"--KernelGatewayApp.prespawn_count={prespawn}")
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(folder / "kg-runtime")}
    log_path = folder / f"kg-{port}.log"
    log = open(log_path, "wb")
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               cwd=folder, env=env)
    kernels: list[int] = []
    try:
        try:
            startup = first_answer(port, started, lambda: process.poll() is None)
        except RuntimeError as exc:
            raise RuntimeError(f"Kernel Gateway: {exc}\n{log_path.read_text(errors='replace')[-2000:]}") from None
        kernels = _children(process.pid)

        def processes() -> dict[str, int]:
            return {"gateway": process.pid, **{f"kernel {i + 1}": pid for i, pid in enumerate(kernels)}}

        yield Served(port, startup, processes, notes={"kernels": len(kernels)})
    finally:
        _stop_process(process)
        log.close()
        time.sleep(0.2)
        left = _kill_leftovers(kernels)
        if left:
            print(f"  (killed {len(left)} kernel(s) left after Kernel Gateway stopped)", file=sys.stderr)


def record_run(project: Path) -> str:
    """Run api.ipynb once (it captures ``predict``'s state) and return its ref, ``api.ipynb@v1``."""
    service = RunService(project)
    try:
        run = service.run("api.ipynb")
    finally:
        service.close()
    if run.status != "succeeded" or "predict" not in (run.state or {}).get("functions", []):
        raise RuntimeError(f"the run of api.ipynb did not capture predict: {run.status} {run.error or run.state}")
    return run.ref


def _mlx(project: Path, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jupyter_mlx.cli", *args], cwd=project, capture_output=True,
                          text=True, timeout=timeout)


@contextmanager
def mlx_endpoint(project: Path, name: str, workers: int, token: str | None,
                 target: str = "api.ipynb") -> Iterator[Served]:
    """``jupyter mlx deploy TARGET``: the notebook file (its cells re-executed) or a run (its state)."""
    port = free_port()
    command = [sys.executable, "-m", "jupyter_mlx.cli", "deploy", target, "--function", "predict",
               "--name", name, "--workers", str(workers), "--port", str(port)]
    command.append(f"--token={token}" if token else "--no-auth")  # a token may start with "-"
    status_path = project / ".mlx" / "endpoints" / name / "status.json"
    started = time.perf_counter()
    deploy = subprocess.Popen(command, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    supervisor = None
    try:
        try:
            startup = first_answer(port, started, lambda: deploy.poll() in (None, 0), token)
        except RuntimeError as exc:
            _, err = deploy.communicate(timeout=START_TIMEOUT) if deploy.poll() is not None else ("", "")
            raise RuntimeError(f"jupyter mlx deploy: {exc}: {err.strip()[-2000:]}") from None
        out, err = deploy.communicate(timeout=START_TIMEOUT)
        cli_s = time.perf_counter() - started
        if deploy.returncode != 0:
            raise RuntimeError(f"jupyter mlx deploy failed ({deploy.returncode}): {err or out}")
        status = json.loads(status_path.read_text())
        supervisor, version = status["supervisor_pid"], status["version_pid"]
        workers_pids = _children(version) if workers > 1 else []

        def processes() -> dict[str, int]:
            found = {"supervisor": supervisor, "version": version}
            found.update({f"worker {i + 1}": pid for i, pid in enumerate(workers_pids)})
            return found

        yield Served(port, startup, processes, token,
                     notes={"deploy_cli_s": cli_s, "workers": workers, "serves": status.get("serves")})
    finally:
        if deploy.poll() is None:
            deploy.wait(START_TIMEOUT)
        if supervisor is None and status_path.exists():
            supervisor = json.loads(status_path.read_text()).get("supervisor_pid")
        tree = ([supervisor, *_children(supervisor)] if supervisor else [])
        tree += [pid for parent in tree[1:] for pid in _children(parent)]
        stopped = _mlx(project, "stop", name)
        if stopped.returncode != 0:
            print(f"  jupyter mlx stop {name}: {stopped.stderr.strip()}", file=sys.stderr)
        time.sleep(0.2)
        left = _kill_leftovers(tree)
        if left:
            print(f"  (killed {len(left)} endpoint process(es) left after jupyter mlx stop)", file=sys.stderr)


def health(port: int, token: str | None) -> dict[str, Any] | None:
    """The endpoint's /healthz with its details (request counts, latencies): they need the token."""
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/healthz", headers={"Authorization": f"Bearer {token}"} if token else {})
        response = connection.getresponse()
        return json.loads(response.read()) if response.status == 200 else None
    except (OSError, ValueError):
        return None


# -- measuring one way ----------------------------------------------------------------------
def measure(label: str, served: Served, expected: list[list[int]], requests: int, warmup: int,
            concurrencies: tuple[int, ...], rounds: int = 1) -> dict[str, Any]:
    """Warm-up, then ``requests`` at each concurrency. Above 1, ``rounds`` times, each with a
    fresh pool of connections: with forked workers, which worker accepts which connection is
    decided when the pool connects, so one pool's figure is one draw. The round with the median
    throughput is kept as the figure; every round is in ``rounds``."""
    check_answers(served.port, expected, served.token)
    result: dict[str, Any] = {"way": label, "startup_s": served.startup_s, **served.notes, "load": {}}
    for concurrency in concurrencies:
        drive(served.port, warmup, concurrency, served.token)  # warm-up, not kept
        runs = []
        for _ in range(rounds if concurrency > 1 else 1):
            pids = served.processes()
            before = {role: cpu_seconds(pid) for role, pid in pids.items()}
            run = drive(served.port, requests, concurrency, served.token)
            _check_load_answers(run, expected)
            used = {role: cpu_seconds(pid) - before[role] for role, pid in pids.items()}
            run["server_cpu_s"] = used
            run["server_cpu_ms_per_request"] = sum(used.values()) / requests * 1000
            runs.append(run)
            print(f"  {label:<28} c{concurrency}: p50 {run['p50_ms']:7.2f} ms  p99 {run['p99_ms']:7.2f} ms  "
                  f"{run['req_per_s']:8.1f} req/s  (client CPU {run['client_cpu_share']:.0%}, server CPU "
                  f"{run['server_cpu_ms_per_request']:.2f} ms/req: {_split(used)})", flush=True)
        kept = dict(sorted(runs, key=lambda r: r["req_per_s"])[len(runs) // 2])
        if len(runs) > 1:
            kept["rounds"] = [{k: r[k] for k in ("req_per_s", "p50_ms", "p90_ms", "p99_ms", "server_cpu_s")}
                              for r in runs]
        result["load"][f"c{concurrency}"] = kept
    result["memory"] = {role: memory(pid) for role, pid in served.processes().items()}
    result["health"] = health(served.port, served.token) if label.startswith("jupyter_mlx") else None
    return result


def _piled(used: dict[str, float]) -> bool:
    """Every connection of the pool on one worker: it did over 90% of the workers' CPU."""
    workers = [v for role, v in used.items() if role.startswith("worker")]
    return len(workers) > 1 and max(workers) > 0.9 * (sum(workers) or 1.0)


def _split(used: dict[str, float]) -> str:
    """Each process's share of the server CPU: the workers (not their idle parent and supervisor),
    the gateway and its kernels, or the one serving process."""
    shown = {r: v for r, v in used.items() if r != "supervisor" and not (r == "version" and "worker 1" in used)}
    total = sum(shown.values()) or 1.0
    if len(shown) == 1:
        return "100%"
    return " ".join(f"{role.replace('worker ', 'w').replace('kernel ', 'k')} {v / total:.0%}"
                    for role, v in shown.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="timed requests per concurrency (default 2000)")
    parser.add_argument("--kg-requests", type=int, help="for Kernel Gateway (default: --requests)")
    parser.add_argument("--warmup", type=int, default=100, help="untimed requests before each (default 100)")
    parser.add_argument("--skip-kg", action="store_true", help="leave Kernel Gateway out")
    parser.add_argument("--rounds", type=int, default=5,
                        help="concurrency-8 rounds, each with a fresh connection pool (default 5; Kernel Gateway: 1)")
    parser.add_argument("--profile", action="store_true",
                        help="also cProfile a jupyter_mlx worker in this process, driven at concurrency 1")
    args = parser.parse_args(argv)
    kg_requests = args.kg_requests or args.requests

    load_before = os.getloadavg()
    expected = expected_answers()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="mlx-bench-serve-") as tmp:
        project = Path(tmp) / "project"
        (project / ".mlx").mkdir(parents=True)  # the project root, whatever is above the temp folder
        notebook = write_notebook(project)
        ref = record_run(project)
        token = secrets.token_urlsafe(24)
        rounds = args.rounds
        ways: list[tuple[str, Callable[[], Any], int, tuple[int, ...], int]] = [
            ("bare tornado (anchor)", lambda: bare_tornado(project), args.requests, CONCURRENCY, rounds),
        ]
        if not args.skip_kg:
            ways += [
                ("Kernel Gateway, 1 kernel", lambda: kernel_gateway(project, notebook, None), kg_requests,
                 CONCURRENCY, 1),
                ("Kernel Gateway, prespawn 2", lambda: kernel_gateway(project, notebook, 2), kg_requests,
                 CONCURRENCY, 1),
            ]
        ways += [
            ("jupyter_mlx workers=1", lambda: mlx_endpoint(project, "w1", 1, None), args.requests, CONCURRENCY,
             rounds),
            ("jupyter_mlx workers=1 from run", lambda: mlx_endpoint(project, "w1-run", 1, None, ref), args.requests,
             CONCURRENCY, rounds),
            ("jupyter_mlx workers=1 token", lambda: mlx_endpoint(project, "w1-auth", 1, token), args.requests,
             (1,), 1),
            ("jupyter_mlx workers=2", lambda: mlx_endpoint(project, "w2", 2, None), args.requests, CONCURRENCY,
             rounds),
            ("jupyter_mlx workers=4", lambda: mlx_endpoint(project, "w4", 4, None), args.requests, CONCURRENCY,
             rounds),
            ("bare tornado (anchor, again)", lambda: bare_tornado(project), args.requests, CONCURRENCY, rounds),
        ]
        print(f"{len(ways)} ways, {args.requests:,} requests at concurrency {' and '.join(map(str, CONCURRENCY))} "
              f"after {args.warmup} warm-up; load average {load_before[0]:.2f} on {os.cpu_count()} cores", flush=True)
        for label, start, requests, concurrencies, way_rounds in ways:
            with start() as served:
                print(f"  {label:<28} start-up to first answer {served.startup_s:.2f} s", flush=True)
                results.append(measure(label, served, expected, requests, args.warmup, concurrencies, way_rounds))
    load_after = os.getloadavg()
    report(results, args, kg_requests, load_before, load_after)
    if args.profile:
        profile_worker(args.requests)
    return 0


def profile_worker(requests: int) -> None:
    """cProfile of a jupyter_mlx function worker run here (its set-up, app and access log as a
    deployed one has them), driven at concurrency 1 by a client in another process. cProfile slows
    the worker about 2x: read the shares, not the times."""
    import cProfile
    import io
    import logging
    import pstats

    from tornado import httpserver, ioloop

    from jupyter_mlx.serve.base import EndpointState
    from jupyter_mlx.serve.process import build_app
    from jupyter_mlx.serve.spec import EndpointSpec
    from jupyter_mlx.serve.stats import SharedStats

    with tempfile.TemporaryDirectory(prefix="mlx-bench-serve-profile-") as tmp:
        log = open(Path(tmp) / "endpoint.log", "w")
        handler = logging.StreamHandler(log)  # as the endpoint process's basicConfig(level=INFO)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        level, root.level = root.level, logging.INFO
        try:
            spec = EndpointSpec(name="profile", notebook="api.ipynb", ref=None, cells=[IMPORTS, TRAIN, PREDICT],
                                mode="function", function="predict")
            app = build_app(spec, EndpointState(spec, SharedStats(1), time.time()), io.StringIO())
            listener = socket.socket()
            listener.bind(("127.0.0.1", 0))
            listener.listen(128)
            listener.setblocking(False)
            server = httpserver.HTTPServer(app)
            server.add_sockets([listener])
            port = listener.getsockname()[1]
            client = subprocess.Popen([sys.executable, "-c", (
                f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import bench_serve as b; "
                f"b.drive({port}, 200, 1); r = b.drive({port}, {requests}, 1); "
                "print(f\"{r['req_per_s']:.0f} req/s, p50 {r['p50_ms']:.2f} ms under cProfile\")")])
            loop = ioloop.IOLoop.current()

            def watch() -> None:
                if client.poll() is None:
                    loop.call_later(0.05, watch)
                else:
                    loop.stop()

            loop.call_later(0.05, watch)
            profiler = cProfile.Profile()
            profiler.enable()
            loop.start()
            profiler.disable()
            server.stop()
            listener.close()
        finally:
            root.removeHandler(handler)
            root.level = level
            log.close()
    print(f"\ncProfile of a jupyter_mlx worker, {requests + 200:,} requests at concurrency 1 (top 25 by cumulative)")
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(25)
    print("top 15 by own time")
    stats.sort_stats("tottime").print_stats(15)


# -- report ---------------------------------------------------------------------------------
def _way(results: list[dict[str, Any]], label: str) -> dict[str, Any] | None:
    return next((r for r in results if r["way"] == label), None)


def _rate(result: dict[str, Any] | None, concurrency: int) -> float | None:
    if result is None or f"c{concurrency}" not in result["load"]:
        return None
    return result["load"][f"c{concurrency}"]["req_per_s"]


def verdicts(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    mlx = [r for r in results if r["way"].startswith("jupyter_mlx") and not r["way"].endswith(("token", "run"))]
    best = max(mlx, key=lambda r: _rate(r, 8) or 0)
    two = _way(results, "jupyter_mlx workers=2")
    one = _way(results, "jupyter_mlx workers=1")
    kg = _way(results, "Kernel Gateway, 1 kernel")
    anchors = [r for r in results if r["way"].startswith("bare tornado")]
    bare = max(_rate(r, 8) or 0 for r in anchors)  # the faster anchor run: the harder target
    found = []

    def ratio(name: str, numerator: float | None, denominator: float | None, target: float) -> None:
        if numerator is None or not denominator:
            return
        value = numerator / denominator
        found.append({"check": name, "value": f"{value:.2f}x", "target": f">= {target:g}x", "met": value >= target})

    for result in (best, two) if best is not two else (best,):
        short = result["way"].replace("jupyter_mlx ", "")
        ratio(f"c8 req/s, mlx {short} / KG 1 kernel", _rate(result, 8), _rate(kg, 8), TARGET_VS_KG)
        ratio(f"c8 req/s, mlx {short} / bare tornado", _rate(result, 8), bare, TARGET_VS_BARE)
        rounds = result["load"]["c8"].get("rounds", [])
        if result.get("workers", 1) > 1 and rounds:
            piled = sum(_piled(r["server_cpu_s"]) for r in rounds)
            found[-1]["value"] += f" ({piled} of {len(rounds)} rounds on one worker)"
    found.append({"check": "c8 req/s, mlx / mlflow models serve", "value": "not measured (mlflow not installed)",
                  "target": f">= {TARGET_VS_MLFLOW:g}x", "met": None})
    if one is not None:
        c1 = one["load"]["c1"]
        found.append({"check": "c1 p50, mlx workers=1", "value": f"{c1['p50_ms']:.2f} ms",
                      "target": f"< {TARGET_P50_MS:g} ms", "met": c1["p50_ms"] < TARGET_P50_MS})
        found.append({"check": "c1 p99, mlx workers=1", "value": f"{c1['p99_ms']:.2f} ms",
                      "target": f"< {TARGET_P99_MS:g} ms", "met": c1["p99_ms"] < TARGET_P99_MS})
        if kg is not None:
            found.append({"check": "start-up, mlx workers=1 vs KG 1 kernel",
                          "value": f"{one['startup_s']:.2f} s vs {kg['startup_s']:.2f} s",
                          "target": "< KG", "met": one["startup_s"] < kg["startup_s"]})
        state = _way(results, "jupyter_mlx workers=1 from run")
        if state is not None:  # issue 15: serving the run's state leaves the serving path as it was
            for key, what in (("c1", "p50_ms"), ("c1", "p99_ms"), ("c8", "req_per_s")):
                mine, theirs = state["load"][key][what], one["load"][key][what]
                found.append({"check": f"{key} {what.replace('_', ' ')}, from run ({state.get('serves')}) / "
                                       f"workers=1 (re-executed)",
                              "value": f"{mine / theirs:.2f}x ({mine:.2f} vs {theirs:.2f})",
                              "target": "unchanged (c8 noise 10-20%)", "met": None})
    return found


def report(results: list[dict[str, Any]], args: argparse.Namespace, kg_requests: int,
           load_before: tuple[float, ...], load_after: tuple[float, ...]) -> None:
    print(f"\nPOST /predict, {args.requests:,} requests (Kernel Gateway {kg_requests:,}) per concurrency after "
          f"{args.warmup} warm-up; c8: the median of {args.rounds} rounds (Kernel Gateway: 1)\nload average "
          f"{load_before[0]:.2f} before, {load_after[0]:.2f} after ({os.cpu_count()} cores; the client shares them)")
    rows = []
    for result in results:
        for key, run in result["load"].items():
            rows.append([result["way"], key, run["p50_ms"], run["p90_ms"], run["p99_ms"], run["req_per_s"],
                         run["server_cpu_ms_per_request"], f"{run['client_cpu_us_per_request']:.0f}",
                         f"{run['client_cpu_share']:.0%}"])
    harness.print_table(["way", "conc", "p50 ms", "p90 ms", "p99 ms", "req/s", "server CPU ms/req",
                         "client CPU us/req", "client CPU"], rows)

    print("\nStart-up to the first answered POST /predict (jupyter_mlx: from the deploy command's start)")
    harness.print_table(["way", "first answer s", "deploy CLI returned s"],
                        [[r["way"], r["startup_s"], r.get("deploy_cli_s", "")] for r in results])

    print("\nMemory after the load (MiB; PSS shares pages among the processes mapping them, USS = private)")
    rows = []
    for result in results:
        for role, mem in result["memory"].items():
            if mem:
                rows.append([result["way"], role, mem["rss_mib"], mem["pss_mib"], mem["uss_mib"]])
        total = [m for m in result["memory"].values() if m]
        rows.append([result["way"], "total", sum(m["rss_mib"] for m in total), sum(m["pss_mib"] for m in total),
                     sum(m["uss_mib"] for m in total)])
    harness.print_table(["way", "process", "RSS", "PSS", "USS"], rows)

    print("\nConcurrency 8, every round (a fresh pool of 8 connections each): req/s, and the share of the "
          "server CPU each worker or kernel took (an idle worker got no connection)")
    rows = []
    for result in results:
        run = result["load"].get("c8")
        if run:
            for number, round_ in enumerate(run.get("rounds", [run]), 1):
                rows.append([result["way"], number, round_["req_per_s"], round_["p50_ms"], round_["p99_ms"],
                             _split(round_["server_cpu_s"])])
    harness.print_table(["way", "round", "req/s", "p50 ms", "p99 ms", "CPU share by process"], rows)

    found = verdicts(results)
    print("\nVerdicts (mlflow is not installed: the bare tornado server anchors that target; the faster of its "
          "two runs is used)")
    harness.print_table(["check", "value", "target", "met"], [
        [f["check"], f["value"], f["target"], "n/a" if f["met"] is None else "yes" if f["met"] else "NO"]
        for f in found])
    path = harness.write_results("bench_serve", {
        "requests": args.requests, "kg_requests": kg_requests, "warmup": args.warmup,
        "load_avg_before": list(load_before), "load_avg_after": list(load_after),
        "client": "one process, epoll loop, persistent keep-alive connections, pre-built requests, closed loop",
        "notes": "mlflow is not installed; the bare single-process tornado server is the anchor for that target. "
                 "Latencies are end to end on 127.0.0.1 with the client on the same cores.",
        "ways": results, "verdicts": found,
    })
    print(f"\nresults: {path}")


if __name__ == "__main__":
    sys.exit(main())
