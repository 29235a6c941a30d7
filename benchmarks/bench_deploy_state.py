"""Deploying from a run's captured state (issue 15): ``deploy`` to the first answered request.

A notebook whose training cell takes ``--train-seconds`` (a ``time.sleep`` standing for a long
fit, then a real scikit-learn ``MLPClassifier`` fit on iris, no seed: every training gives other
weights) is run once with ``RunService.run``, which captures ``predict``'s state. Then, in the same
run on the same machine, the time from the start of the deploy to the first 200 to
``POST /predict`` (polled from the start, so a request queued while the endpoint starts counts):

- ``RunService.endpoints.deploy("train.ipynb@v1", function="predict")``: loads the run's state
  (``--rounds`` times, a new endpoint each, stopped between; the median is the figure);
- ``jupyter mlx deploy train.ipynb@v1 --function predict`` (the command line, as many rounds);
- the same call with ``reexecute=True``: runs every cell again at start (once);
- Kernel Gateway 3 notebook-http on the same notebook, ``prespawn_count=1``: from its launch (once).

The once-only ways run between the state rounds, so they share the machine's noise. The state's
answer must be the run's own (what its last cell printed); a re-execution and Kernel Gateway train
new weights, so their answers differ: both are printed as facts. A diagnosis times, in fresh
processes, what the 2 s budget holds: interpreter start, the endpoint's imports, the IPython shell,
loading the state (cold: its packages imported; warm: hash, version check, unpickle).

Run: ``.venv/bin/python benchmarks/bench_deploy_state.py [--train-seconds 30] [--rounds 3] [--skip-kg]``
(about 3 min with the defaults; ``--train-seconds 2``: under 1 min)
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import harness
from bench_serve import ROWS, VENV_BIN, _children, _kill_leftovers, first_answer, mlx_endpoint, post
from jupyter_mlx.errors import MLXError
from jupyter_mlx.ports import free_port
from jupyter_mlx.serve.source import state_settings, write_state
from jupyter_mlx.service import RunService

TARGET_S = 2.0  # from the state: deploy to the first answer, whatever the training time
MARGIN_S = 120.0  # start-up allowed beyond the training time
BODY = json.dumps({"features": ROWS}).encode()

IMPORTS = ("import json\nimport time\nimport warnings\nimport numpy as np\nfrom sklearn.datasets import load_iris\n"
           "from sklearn.neural_network import MLPClassifier")
TRAIN = ("time.sleep({seconds})  # stands for the long part of a training\n"
         "X, y = load_iris(return_X_y=True)\n"
         "with warnings.catch_warnings():\n"
         "    warnings.simplefilter('ignore')  # ConvergenceWarning\n"
         "    model = MLPClassifier(hidden_layer_sizes=(16,), max_iter=300).fit(X, y)  # no seed")
PREDICT = ("def predict(features: list[list[float]]) -> list[list[float]]:\n"
           "    return model.predict_proba(np.asarray(features, dtype=float)).tolist()")
# Kernel Gateway defines REQUEST; the run of the notebook runs this cell without it
KG_CELL = ("# POST /predict\nif 'REQUEST' in globals():\n"
           "    print(json.dumps(predict(**json.loads(REQUEST)['body'])))")
CHECK = f"ROWS = {ROWS!r}\nprint(json.dumps(predict(ROWS)))"

# a fresh process doing what an endpoint's version process does, each step stamped (CLOCK_MONOTONIC)
# (load_served_state's steps one by one: read and hash, the packages' versions, unpickle)
PHASES = """
import hashlib, json, sys, time
from pathlib import Path
stamps = {"started": time.monotonic()}
from jupyter_mlx.serve import process
from jupyter_mlx.serve.state import load_served_state, load_state, version_drift
stamps["imported"] = time.monotonic()
shell = process.make_shell()
stamps["shell"] = time.monotonic()
settings = json.loads(Path(sys.argv[1]).read_text())
data = Path(settings["path"]).read_bytes()
assert hashlib.sha256(data).hexdigest() == settings["sha256"]
stamps["hashed"] = time.monotonic()
assert not version_drift(settings["packages"])
stamps["versions"] = time.monotonic()
shell.user_ns.update(load_state(data))
stamps["unpickled"] = time.monotonic()
load_served_state(settings)
stamps["again"] = time.monotonic()
print(json.dumps(stamps))
"""


def write_notebook(project: Path, seconds: float) -> Path:
    return harness.write_notebook(project / "train.ipynb", [
        harness.markdown_cell(f"# A slow training\nAbout {seconds:g} s; `predict` is served."),
        harness.code_cell(IMPORTS),
        harness.code_cell(TRAIN.format(seconds=seconds)),
        harness.code_cell(PREDICT),
        harness.code_cell(KG_CELL, tags=["mlx:no-serve"]),
        harness.code_cell(CHECK),
    ])


def record_run(service: RunService) -> tuple[Any, list[list[float]], float]:
    """The run (it captures ``predict``), what its last cell printed, and its wall time."""
    started = time.perf_counter()
    run = service.run("train.ipynb")
    wall = time.perf_counter() - started
    if run.status != "succeeded" or "predict" not in (run.state or {}).get("functions", []):
        raise RuntimeError(f"the run did not capture predict: {run.status} {run.error or run.state}")
    printed = service.executed_notebook(run.id)["cells"][-1]["outputs"][0]["text"]
    return run, json.loads(printed if isinstance(printed, str) else "".join(printed)), wall


# -- the ways -------------------------------------------------------------------------------
def answer(port: int) -> list[list[float]]:
    status, payload = post(port, BODY)
    if status != 200:
        raise RuntimeError(f"POST /predict answered {status}: {payload[:300]!r}")
    return json.loads(payload)


def endpoint_pids(service: RunService, name: str) -> list[int]:
    """The endpoint's supervisor and its descendants, from its status.json."""
    try:
        status = json.loads((service.project.root / ".mlx" / "endpoints" / name / "status.json").read_text())
    except (OSError, ValueError):
        return []
    tree = [status["supervisor_pid"]] if status.get("supervisor_pid") else []
    for pid in tree:  # grows while it is walked: children, then theirs
        tree += _children(pid)
    return tree


def stop_endpoint(service: RunService, name: str) -> None:
    """``endpoints.stop``; any process of it left after that is killed by pid."""
    tree = endpoint_pids(service, name)
    try:
        service.endpoints.stop(name)
    except MLXError as exc:
        if exc.code != "not_found":
            print(f"  endpoints.stop({name}): {exc.message}", file=sys.stderr)
    time.sleep(0.2)
    left = _kill_leftovers(tree)
    if left:
        print(f"  (killed {len(left)} process(es) of {name} left after endpoints.stop)", file=sys.stderr)


def deploy_in_process(service: RunService, ref: str, name: str, timeout: float, **options: Any) -> dict[str, Any]:
    """``service.endpoints.deploy`` in a thread, ``POST /predict`` polled from its start."""
    port = free_port()
    outcome: dict[str, Any] = {}

    def deploy() -> None:
        try:
            outcome["deployment"] = service.endpoints.deploy(ref, function="predict", name=name, port=port,
                                                             no_auth=True, **options).record.deployment
            outcome["returned_s"] = time.perf_counter() - started
        except BaseException as exc:  # noqa: BLE001 - raised again below, in this thread
            outcome["error"] = exc

    try:
        started = time.perf_counter()
        thread = threading.Thread(target=deploy)
        thread.start()
        try:
            first = first_answer(port, started, lambda: "error" not in outcome, request=BODY, timeout=timeout)
        finally:
            thread.join(timeout)
        if "error" in outcome:
            raise outcome["error"]
        deployment = outcome["deployment"]
        return {"first_answer_s": first, "returned_s": outcome["returned_s"], "serves": deployment.serves,
                "reason": deployment.reexecute_reason, "answer": answer(port)}
    finally:
        stop_endpoint(service, name)


def deploy_command(service: RunService, ref: str, name: str) -> dict[str, Any]:
    """``jupyter mlx deploy REF --function predict`` (bench_serve's way), timed from its launch."""
    try:
        with mlx_endpoint(service.project.root, name, 1, None, ref) as served:
            return {"first_answer_s": served.startup_s, "returned_s": served.notes["deploy_cli_s"],
                    "serves": served.notes["serves"], "reason": None, "answer": answer(served.port)}
    finally:
        stop_endpoint(service, name)  # mlx_endpoint stopped it; this kills what a failure left


@contextmanager
def kernel_gateway(project: Path, notebook: Path, timeout: float) -> Iterator[dict[str, Any]]:
    """Kernel Gateway notebook-http, one prespawned kernel, in a process group of its own; timed
    from its launch. Stopped by SIGTERM (it shuts its kernels down), then its group and its
    kernels (each in a session of its own) are killed."""
    port = free_port()
    command = [str(VENV_BIN / "jupyter-kernelgateway"), "--KernelGatewayApp.api=kernel_gateway.notebook_http",
               f"--KernelGatewayApp.seed_uri={notebook}", "--KernelGatewayApp.ip=127.0.0.1",
               f"--KernelGatewayApp.port={port}", "--KernelGatewayApp.prespawn_count=1"]
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(project / "kg-runtime")}
    log_path = project / "kg.log"
    kernels: set[int] = set()
    with open(log_path, "wb") as log:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   cwd=project, env=env, start_new_session=True)
        try:
            try:
                first = first_answer(port, started, lambda: process.poll() is None, request=BODY, timeout=timeout)
            except RuntimeError as exc:
                raise RuntimeError(f"Kernel Gateway: {exc}\n{log_path.read_text(errors='replace')[-2000:]}") from None
            kernels.update(_children(process.pid))
            yield {"first_answer_s": first, "returned_s": None, "serves": "kernel", "reason": None,
                   "answer": answer(port), "kernels": len(kernels)}
        finally:
            kernels.update(_children(process.pid))
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    pass
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()
            time.sleep(0.2)
            left = _kill_leftovers(sorted(kernels))
            if left:
                print(f"  (killed {len(left)} kernel(s) left after Kernel Gateway stopped)", file=sys.stderr)


def run_kernel_gateway(project: Path, notebook: Path, timeout: float) -> dict[str, Any]:
    with kernel_gateway(project, notebook, timeout) as result:
        return result


# -- what the budget holds ------------------------------------------------------------------
def diagnose(service: RunService, ref: str, folder: Path, rounds: int) -> dict[str, Any]:
    """Medians over ``rounds`` fresh processes: interpreter start (``python -c pass``), the
    supervisor's imports, and the version process's steps up to a loaded state (the run's state
    written as ``deploy`` writes it for an endpoint)."""
    found: dict[str, list[float]] = {}
    for number in range(rounds):
        seconds, state = harness.timed(lambda: service.served_code(ref).state)
        found.setdefault("deploy call: resolve the run (store, source)", []).append(seconds)
        seconds, path = harness.timed(lambda: write_state(state, ref, folder / f"state-{number}.pkl"))
        found.setdefault("deploy call: copy the state blob, hash it", []).append(seconds)
        settings_path = folder / "state.json"
        settings_path.write_text(json.dumps(state_settings(state, ref, path, False)))
        for label, code in (("python -c pass", "pass"),
                            ("python, import jupyter_mlx.serve.supervisor", "import jupyter_mlx.serve.supervisor"),
                            ("python, import sklearn.neural_network (exit included)", "import sklearn.neural_network")):
            found.setdefault(label, []).append(harness.timed(
                lambda: subprocess.run([sys.executable, "-c", code], check=True))[0])
        launched = time.monotonic()
        done = subprocess.run([sys.executable, "-c", PHASES, str(settings_path)], capture_output=True, text=True)
        ended = time.monotonic()
        if done.returncode != 0:
            raise RuntimeError(f"the start-up diagnosis failed: {done.stderr.strip()[-2000:]}")
        stamps = json.loads(done.stdout)
        previous = launched
        for step, label in (("started", "version process: interpreter start"),
                            ("imported", "  import jupyter_mlx.serve.process (tornado, ...)"),
                            ("shell", "  make_shell (IPython)"),
                            ("hashed", "  read the state, SHA-256"),
                            ("versions", "  its packages' versions (importlib.metadata)"),
                            ("unpickled", "  unpickle (imports sklearn, numpy: cold)"),
                            ("again", "  load_served_state again (warm: all steps)")):
            found.setdefault(label, []).append(stamps[step] - previous)
            previous = stamps[step]
        found.setdefault("version process: launch to exit (its exit included)", []).append(ended - launched)
    return {label: statistics.median(values) for label, values in found.items()}


# -- main -----------------------------------------------------------------------------------
def schedule(rounds: int, once: list[str]) -> list[tuple[str, int]]:
    """The state rounds, with one once-only way after each round while any are left."""
    order: list[tuple[str, int]] = []
    pending = list(once)
    for number in range(rounds):
        order += [("state", number), ("state CLI", number)]
        if pending:
            order.append((pending.pop(0), 0))
    return order + [(way, 0) for way in pending]


LABELS = {
    "state": "from the state: endpoints.deploy(NB@v1)",
    "state CLI": "from the state: jupyter mlx deploy NB@v1",
    "reexecute": "re-execute: deploy(..., reexecute=True)",
    "kg": "Kernel Gateway notebook-http, prespawn 1",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-seconds", type=float, default=30.0,
                        help="seconds the training cell sleeps before its fit (default 30)")
    parser.add_argument("--rounds", type=int, default=3, help="deploys from the state, each way (default 3)")
    parser.add_argument("--skip-kg", action="store_true", help="leave Kernel Gateway out")
    args = parser.parse_args(argv)
    timeout = args.train_seconds + MARGIN_S

    load_before = os.getloadavg()
    measured: dict[str, list[dict[str, Any]]] = {way: [] for way in LABELS}
    with tempfile.TemporaryDirectory(prefix="mlx-bench-deploy-state-") as tmp:
        project = Path(tmp) / "project"
        (project / ".mlx").mkdir(parents=True)  # the project root, whatever is above the temp folder
        notebook = write_notebook(project, args.train_seconds)
        service = RunService(project)
        try:
            print(f"running train.ipynb (training {args.train_seconds:g} s); load average {load_before[0]:.2f} "
                  f"on {os.cpu_count()} cores", flush=True)
            run, printed, run_wall = record_run(service)
            ref = run.ref
            state_bytes = sum(o.get("size", 0) for o in run.state.get("objects", []))
            print(f"  {ref}: {run_wall:.1f} s, state {run.state_hash[:12]} ({state_bytes:,} bytes pickled, captured "
                  f"in {run.state.get('seconds', 0) * 1000:.0f} ms)", flush=True)
            ways = {
                "state": lambda n: deploy_in_process(service, ref, f"state-{n}", timeout),
                "state CLI": lambda n: deploy_command(service, ref, f"cli-{n}"),
                "reexecute": lambda n: deploy_in_process(service, ref, "reexecute", timeout, reexecute=True),
                "kg": lambda n: run_kernel_gateway(project, notebook, timeout),
            }
            for way, number in schedule(args.rounds, ["reexecute"] + ([] if args.skip_kg else ["kg"])):
                result = ways[way](number)
                result["same_as_run"] = result["answer"] == printed
                measured[way].append(result)
                returned = f", returned {result['returned_s']:.2f} s" if result["returned_s"] else ""
                print(f"  {LABELS[way]:<44} first answer {result['first_answer_s']:6.2f} s{returned}  "
                      f"serves {result['serves']}, answer {'==' if result['same_as_run'] else '!='} the run's",
                      flush=True)
            breakdown = diagnose(service, ref, Path(tmp), args.rounds)
        finally:
            for record, _ in service.endpoints.list():  # after a failure: whatever still runs
                stop_endpoint(service, record.name)
            service.close()
    load_after = os.getloadavg()
    identical = report(measured, breakdown, printed, run_wall, state_bytes, args, load_before, load_after)
    return 0 if identical else 1  # the state must answer as the run did: anything else is a bug


def report(measured: dict[str, list[dict[str, Any]]], breakdown: dict[str, float], printed: list[list[float]],
           run_wall: float, state_bytes: int, args: argparse.Namespace, load_before: tuple[float, ...],
           load_after: tuple[float, ...]) -> bool:
    medians = {way: statistics.median(r["first_answer_s"] for r in results)
               for way, results in measured.items() if results}
    anchor = medians["state"]
    print(f"\nDeploy to the first answered POST /predict; training {args.train_seconds:g} s (the run took "
          f"{run_wall:.1f} s); medians; load average {load_before[0]:.2f} before, {load_after[0]:.2f} after "
          f"({os.cpu_count()} cores)")
    rows = []
    for way, results in measured.items():
        if results:
            returned = [r["returned_s"] for r in results if r["returned_s"] is not None]
            rows.append([LABELS[way], len(results), medians[way],
                         statistics.median(returned) if returned else "",
                         f"{medians[way] / anchor:.2f}x", results[0]["serves"],
                         "identical" if all(r["same_as_run"] for r in results) else "differs"])
    harness.print_table(["way", "n", "first answer s", "deploy returned s", "/ state", "serves",
                         "answer vs the run's"], rows)

    print("\nWhat the start-up holds (fresh processes, medians; an endpoint from the CLI starts three "
          "interpreters: the command, the supervisor, the version process)")
    harness.print_table(["step", "ms"], [[step, seconds * 1000] for step, seconds in breakdown.items()])
    print(f"state file: {state_bytes:,} bytes pickled")

    for way in ("reexecute", "kg"):
        if measured[way]:
            same = measured[way][0]["same_as_run"]
            print(f"fact: {LABELS[way]} answers {'the same as' if same else 'differently from'} the run "
                  f"({'unexpected: a new training should give new weights' if same else 'new random weights'})")
    met = anchor < TARGET_S
    identical = all(r["same_as_run"] for r in measured["state"] + measured["state CLI"])
    print(f"from the state: {anchor:.2f} s to the first answer (target < {TARGET_S:g} s, whatever the training) "
          f"-> {'MET' if met else 'MISSED'}; its answer is {'IDENTICAL to' if identical else 'NOT'} the run's")
    ratios = {f"{way} / state": medians[way] / anchor for way in ("reexecute", "kg", "state CLI") if way in medians}
    path = harness.write_results("bench_deploy_state", {
        "train_seconds": args.train_seconds, "rounds": args.rounds, "run_wall_s": run_wall,
        "state_bytes": state_bytes, "load_avg_before": list(load_before), "load_avg_after": list(load_after),
        "run_answer": printed, "median_first_answer_s": medians, "ratios": ratios,
        "target_s": TARGET_S, "met": met, "identical_to_run": identical, "startup_breakdown_s": breakdown,
        "ways": measured,
    })
    print(f"\nresults: {path}")
    return identical


if __name__ == "__main__":
    sys.exit(main())
