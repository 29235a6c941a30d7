"""Comparing two executed notebooks: at least 10x faster than nbdime, its CLI 5x faster than nbdiff.

On a seeded pair of 60-cell notebooks (30 matplotlib PNGs of 6x4 in at 100 dpi, 15 stream outputs,
15 pandas HTML tables; about 2.2 MB each; B has 9 outputs and 2 sources changed), measured in
interleaved rounds on the same files, medians:
- near-limit: ``json.loads`` of both files + sha1 of every output's JSON;
- anchor: nbdime's ``diff_notebooks(a, b)`` in-process (inputs read with nbformat, untimed);
- jupyter_mlx: ``compare_sides(file_side(A), file_side(B)).to_json()`` in-process, after one
  untimed comparison (imports warm, as in a server); target < 1/10 of the anchor;
- the HTML report (``write_report``) of that comparison, on its own;
- the command lines, whole processes: ``nbdiff --no-color a b`` and ``jupyter-mlx diff a b``;
  target: jupyter-mlx at least 5x faster;
- the runs table of 50 runs with metrics (``RunService.runs_table(...).to_json()`` and
  ``.frame()``) from a real store filled without kernels; target < 100 ms;
- memory: two ~50 MB notebooks compared in a child process (and by the CLI); its peak RSS,
  target < 1 GB.

Run: ``.venv/bin/python benchmarks/bench_compare.py [--rounds 5] [--cli-rounds 3] [--skip-cli]
[--skip-memory] [--profile]``
"""
from __future__ import annotations

import argparse
import base64
import cProfile
import hashlib
import io
import json
import os
import pstats
import random
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any, Callable

import harness

from jupyter_mlx.metrics import Metric
from jupyter_mlx.service import RunService
from jupyter_mlx.store import CellTiming, NewRun, RunOutcome


from jupyter_mlx.diff.comparison import compare_sides  # noqa: E402
from jupyter_mlx.diff.report import write_report  # noqa: E402
from jupyter_mlx.diff.sides import file_side  # noqa: E402

SPEEDUP_API = 10.0  # nbdime diff_notebooks / jupyter_mlx comparison
SPEEDUP_CLI = 5.0  # nbdiff / jupyter-mlx diff
TABLE_TARGET_MS = 100.0
MEMORY_TARGET_MB = 1024.0
ISSUE = {"diff_notebooks_s": 2.16, "nbdiff_s": 5.7, "near_limit_s": 0.04}

CELLS = 60  # kinds cycle png, stream, png, table: 30 PNGs, 15 streams, 15 tables
CHANGED_PER_KIND = 3  # outputs changed in B per kind: 9 in all
SOURCES_CHANGED = 2
PLOT_POINTS = 200  # tuned so a PNG is ~52 KB (~70 KB base64) and a notebook ~2.2 MB
TABLE_SHAPE = (20, 5)  # ~3.6 KB of HTML
BIG_TARGET_BYTES = 50_000_000
BIG_CHANGED_EVERY = 10  # one output in ten changed in the 50 MB pair


# -- the notebooks ------------------------------------------------------------------------------
def _png(seed: int, redrawn: bool = False) -> str:
    """A noisy line + scatter plot, Figure 6x4 in at 100 dpi through Agg, as base64."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rng = np.random.default_rng(seed)
    x = np.linspace(0, 10, PLOT_POINTS)
    y = np.sin(x + seed) + rng.normal(0, 0.3, PLOT_POINTS)
    jitter = rng.normal(0, 0.2, PLOT_POINTS // 2)
    colours = rng.random(PLOT_POINTS // 2)
    if redrawn:  # slightly different data: a short stretch of the series moved
        y[100:110] += 0.4
    figure = Figure(figsize=(6, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot(x, y, lw=0.8)
    axes.scatter(x[::2], y[::2] + jitter, s=6, alpha=0.6, c=colours, cmap="viridis")
    axes.set_title(f"experiment {seed}")
    axes.set_xlabel("t")
    axes.set_ylabel("signal")
    axes.grid(alpha=0.3)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode()


def _table(seed: int, changed: bool = False) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(1000 + seed)
    frame = pd.DataFrame(rng.normal(size=TABLE_SHAPE), columns=[f"feature_{c}" for c in "abcde"])
    if changed:
        frame.iloc[7, 2] += 0.25
    return {"text/html": frame._repr_html_(), "text/plain": frame.to_string()}


def _stream(seed: int, changed: bool = False) -> str:
    rng = random.Random(2000 + seed)
    lines = [f"epoch {e}: loss={rng.uniform(0.1, 1):.4f} accuracy={rng.uniform(0.6, 0.99):.4f} lr={1e-3 / (e + 1):.2e}"
             for e in range(6)]
    if changed:
        lines[3] = lines[3].replace("loss=", "loss=1")  # one printed number changed
    return "\n".join(lines) + "\n"


def _kind(index: int) -> str:
    return ("png", "stream", "png", "table")[index % 4]


def _source(index: int, kind: str, changed: bool = False) -> str:
    source = {
        "png": f"fig = plot_experiment(seed={index})\nfig",
        "stream": f"for epoch, stats in enumerate(history[{index}]):\n    print(format_epoch(epoch, stats))",
        "table": f"frame_{index} = features(seed={index})\nframe_{index}",
    }[kind]
    return source + ("\n# tweaked: rerun with the new defaults" if changed else "")


def _cell(index: int, output: dict[str, Any], source: str) -> dict[str, Any]:
    return {"cell_type": "code", "execution_count": index + 1, "id": f"cell-{index:03d}", "metadata": {},
            "outputs": [output], "source": source}


def _png_output(data: str) -> dict[str, Any]:
    return {"output_type": "display_data", "metadata": {},
            "data": {"image/png": data, "text/plain": "<Figure size 600x400 with 1 Axes>"}}


def make_pair(folder: Path, seed: int = 0) -> dict[str, Any]:
    """a.ipynb and B = A with 3 PNGs, 3 streams and 3 tables changed and 2 sources edited."""
    rng = random.Random(seed)
    by_kind: dict[str, list[int]] = {}
    for index in range(CELLS):
        by_kind.setdefault(_kind(index), []).append(index)
    changed_outputs = {i for kind in ("png", "stream", "table") for i in rng.sample(by_kind[kind], CHANGED_PER_KIND)}
    changed_sources = set(rng.sample([i for i in range(CELLS) if i not in changed_outputs], SOURCES_CHANGED))
    cells_a, cells_b, pngs = [], [], {}
    for index in range(CELLS):
        kind, changed = _kind(index), index in changed_outputs
        if kind == "png":
            pngs[index] = (_png(seed * 1000 + index), _png(seed * 1000 + index, redrawn=True) if changed else None)
            out_a = _png_output(pngs[index][0])
            out_b = _png_output(pngs[index][1]) if changed else out_a
        elif kind == "stream":
            out_a = {"output_type": "stream", "name": "stdout", "text": _stream(index)}
            out_b = {"output_type": "stream", "name": "stdout", "text": _stream(index, changed)}
        else:
            out_a = {"output_type": "execute_result", "execution_count": index + 1, "metadata": {}, "data": _table(index)}
            out_b = {**out_a, "data": _table(index, changed)}
        cells_a.append(_cell(index, out_a, _source(index, kind)))
        cells_b.append(_cell(index, out_b, _source(index, kind, index in changed_sources)))
    path_a = harness.write_notebook(folder / "a.ipynb", cells_a)
    path_b = harness.write_notebook(folder / "b.ipynb", cells_b)
    return {
        "a": path_a, "b": path_b, "bytes_a": path_a.stat().st_size, "bytes_b": path_b.stat().st_size,
        "changed_outputs": sorted(changed_outputs), "changed_sources": sorted(changed_sources),
        "png_base64_bytes": [len(a) for a, _ in pngs.values()],
        "pngs": [(a, b) for a, b in pngs.values()],
    }


def make_big_pair(folder: Path, pngs: list[tuple[str, str | None]]) -> dict[str, Any]:
    """Two ~50 MB notebooks of PNG outputs (the pair's images reused), one in ten redrawn in B."""
    originals = [a for a, _ in pngs]
    redrawn = [(a, b) for a, b in pngs if b is not None]
    average = sum(map(len, originals)) / len(originals)
    count = int(BIG_TARGET_BYTES / (average + 200)) + 1
    cells_a, cells_b = [], []
    for index in range(count):
        if index % BIG_CHANGED_EVERY == 0:
            data_a, data_b = redrawn[(index // BIG_CHANGED_EVERY) % len(redrawn)]
        else:
            data_a = data_b = originals[index % len(originals)]
        source = f"fig = plot_experiment(seed={index})\nfig"
        cells_a.append(_cell(index, _png_output(data_a), source))
        cells_b.append(_cell(index, _png_output(data_b), source))
    path_a = harness.write_notebook(folder / "big_a.ipynb", cells_a)
    path_b = harness.write_notebook(folder / "big_b.ipynb", cells_b)
    return {"a": path_a, "b": path_b, "bytes_a": path_a.stat().st_size, "bytes_b": path_b.stat().st_size,
            "outputs": count, "changed_outputs": len(range(0, count, BIG_CHANGED_EVERY))}


# -- the ways -------------------------------------------------------------------------------------
def near_limit(path_a: Path, path_b: Path) -> int:
    """Parse both files and hash every output: no comparison can do less."""
    hashes = 0
    for path in (path_a, path_b):
        notebook = json.loads(path.read_bytes())
        for cell in notebook["cells"]:
            for output in cell.get("outputs", ()):
                hashlib.sha1(json.dumps(output, sort_keys=True).encode()).hexdigest()
                hashes += 1
    return hashes


def mlx_compare(path_a: Path, path_b: Path) -> tuple[Any, dict[str, Any]]:
    folder = path_a.parent
    comparison = compare_sides(file_side("A", path_a.name, folder), file_side("B", path_b.name, folder))
    return comparison, comparison.to_json()


def check_comparison(data: dict[str, Any], pair: dict[str, Any]) -> None:
    """The comparison must find exactly the changes made, or its time means nothing."""
    summary = data["summary"]
    found = [c["index_a"] for c in data["cells"]
             if any(o["judgement"] != "identical" for o in c["outputs"])]
    sources = [c["index_a"] for c in data["cells"] if c["source"]["changed"]]
    assert found == pair["changed_outputs"], f"changed outputs found {found}, made {pair['changed_outputs']}"
    assert sources == pair["changed_sources"], f"changed sources found {sources}, made {pair['changed_sources']}"
    assert summary["outputs"]["changed"] == 3 * CHANGED_PER_KIND, summary["outputs"]
    images = [o for c in data["cells"] for o in c["outputs"] if o["kind"] == "image" and o["judgement"] == "changed"]
    assert len(images) == CHANGED_PER_KIND and all(o["detail"].get("changed_pixels") for o in images), \
        "changed images were not diffed pixel by pixel"


def interleave(ways: dict[str, Callable[[], Any]], rounds: int) -> dict[str, list[float]]:
    """Each round runs every way once, the order rotated each round, so they share the noise."""
    samples: dict[str, list[float]] = {name: [] for name in ways}
    names = list(ways)
    for round_ in range(rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            seconds, _ = harness.timed(ways[name])
            samples[name].append(seconds)
    return samples


def _cli_commands(path_a: Path, path_b: Path) -> dict[str, list[str]]:
    bin_dir = Path(sys.executable).parent
    nbdiff = [str(bin_dir / "nbdiff")] if (bin_dir / "nbdiff").exists() else [sys.executable, "-m", "nbdime", "diff"]
    mlx = [str(bin_dir / "jupyter-mlx")] if (bin_dir / "jupyter-mlx").exists() else [sys.executable, "-m", "jupyter_mlx.cli"]
    return {
        "nbdiff --no-color (anchor)": [*nbdiff, "--no-color", str(path_a), str(path_b)],
        "jupyter-mlx diff": [*mlx, "diff", str(path_a), str(path_b)],
        "python -c pass (interpreter start)": [sys.executable, "-c", "pass"],
    }


def cli_env(pycache: Path | None) -> dict[str, str]:
    """The environment of the timed commands. With ``pycache``, bytecode is cached there (as an
    installed package has it), whatever ``PYTHONDONTWRITEBYTECODE`` says; the tree is not touched."""
    env = {**os.environ, "NO_COLOR": "1"}
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def run_process(command: list[str], cwd: Path, env: dict[str, str], timeout: float = 300.0) -> float:
    """Wall seconds of a whole process, stdout to /dev/null; raises if it fails."""
    with tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        try:
            done = subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=stderr,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"{command[0]} did not finish in {timeout:.0f} s") from None
        wall = time.perf_counter() - start
        if done.returncode not in (0, 1):  # nbdiff exits 1 when the notebooks differ
            stderr.seek(0)
            raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n"
                               f"{stderr.read().decode(errors='replace')[-2000:]}")
    return wall


CLI_NO_CACHE = "jupyter-mlx diff, bytecode not cached (as this shell runs it)"


def measure_cli(path_a: Path, path_b: Path, cwd: Path, rounds: int, pycache: Path) -> dict[str, Any]:
    commands = _cli_commands(path_a, path_b)
    envs = {name: cli_env(pycache) for name in commands}
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):  # then every start compiles jupyter_mlx from source
        commands[CLI_NO_CACHE] = commands["jupyter-mlx diff"]
        envs[CLI_NO_CACHE] = cli_env(None)
    created_store = False

    def way(name: str, command: list[str]) -> Callable[[], float]:
        def call() -> float:
            nonlocal created_store
            wall = run_process(command, cwd, envs[name])
            if (cwd / ".mlx").exists():  # each run starts in a folder without a store
                created_store = True
                shutil.rmtree(cwd / ".mlx")
            return wall
        return call

    ways = {name: way(name, command) for name, command in commands.items()}
    for call in ways.values():  # untimed: byte-compile, page cache
        call()
    samples = interleave(ways, rounds)
    return {"samples": samples, "commands": commands, "created_store": created_store}


# -- the runs table -------------------------------------------------------------------------------
def populate_runs(service: RunService, count: int = 50, seed: int = 0) -> None:
    """``count`` finished runs of train.ipynb with parameters and metrics, through the store API."""
    rng = random.Random(seed)
    source = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode()
    for _ in range(count):
        parameters = {"C": round(10 ** rng.uniform(-3, 2), 5), "max_iter": rng.choice([100, 200, 500]),
                      "solver": rng.choice(["lbfgs", "saga"]), "seed": rng.randrange(5), "test_size": 0.3}
        record = service.store.create_run(NewRun(notebook="train.ipynb", source=source, parameters=parameters,
                                                 host="bench-host", pid=1))
        started = time.time()
        service.store.mark_running(record.id, started)
        accuracy = rng.uniform(0.7, 0.95)
        metrics = [Metric("accuracy", accuracy), Metric("f1_macro", accuracy - 0.02),
                   Metric("precision", accuracy + 0.01), Metric("recall", accuracy - 0.03),
                   Metric("roc_auc", min(0.999, accuracy + 0.05)), Metric("fit_seconds", rng.uniform(0.5, 5))]
        metrics += [Metric("loss", round(1 / (step + 1 + rng.random()), 4), step) for step in range(10)]
        notebook = {"cells": [{"cell_type": "code", "execution_count": 1, "metadata": {}, "outputs": [],
                               "source": "train()"}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
        service.store.finish_run(record.id, RunOutcome(
            status="succeeded", notebook=notebook, started_at=started, finished_at=started + 2.5,
            cell_timings=[CellTiming(0, started, started + 2.4)], metrics=metrics))


def measure_table(root: Path, rounds: int) -> dict[str, Any]:
    service = RunService(root)
    try:
        populate_runs(service)
        ways = {
            "runs_table(limit=50)": lambda: service.runs_table("train.ipynb", limit=50),
            "runs_table(limit=50).to_json()": lambda: service.runs_table("train.ipynb", limit=50).to_json(),
            "runs_table(limit=50).frame()": lambda: service.runs_table("train.ipynb", limit=50).frame(),
        }
        for call in ways.values():
            call()  # warm: pandas imported, SQLite pages cached
        table = service.runs_table("train.ipynb", limit=50)
        shape = list(table.frame().shape)
        assert len(table.runs) == 50, f"the table has {len(table.runs)} runs, not 50"
        samples = interleave(ways, rounds)
    finally:
        service.close()
    return {"samples": samples, "frame_shape": shape, "metrics": table.metrics, "parameters": table.parameters}


# -- memory -------------------------------------------------------------------------------------
_MEMORY_CHILD = textwrap.dedent("""
    import json, resource, sys, time
    from pathlib import Path
    def peak_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    path_a, path_b = sys.argv[1:3]
    from jupyter_mlx.diff import comparison, sides
    import numpy, PIL.Image  # what an image comparison imports anyway
    result = {"after_imports_mb": peak_mb()}
    start = time.perf_counter()
    a = sides.file_side("A", path_a, Path("."))
    b = sides.file_side("B", path_b, Path("."))
    result["after_loading_mb"] = peak_mb()
    compared = comparison.compare_sides(a, b)
    result["after_compare_mb"] = peak_mb()
    data = compared.to_json()
    text = json.dumps(data)
    result["seconds"] = time.perf_counter() - start
    result["peak_mb"] = peak_mb()
    with open("/proc/self/status") as status:  # the same figure from the kernel's per-process counter
        result["vmhwm_mb"] = next((int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM")), None)
    result["json_bytes"] = len(text)
    result["outputs"] = data["summary"]["outputs"]
    print(json.dumps(result))
""")

_NBDIME_CHILD = textwrap.dedent("""
    import json, resource, sys, time
    import nbformat
    from nbdime import diff_notebooks
    start = time.perf_counter()
    a, b = (nbformat.read(p, as_version=4) for p in sys.argv[1:3])
    diff = diff_notebooks(a, b)
    print(json.dumps({"seconds": time.perf_counter() - start,
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "top_level_diff_entries": len(diff)}))
""")

# Linux keeps a process's peak RSS across fork and exec: a child started from this process (a few
# hundred MB, with matplotlib and the notebooks) would report at least this process's peak. So the
# children whose memory is measured are started from a small launcher process; their peak is then
# their own. The launcher reports the child's wall time, exit status and peak RSS (wait4) and its
# output, and kills the child (by its pid) if it runs out of time.
_LAUNCHER = textwrap.dedent("""
    import json, os, signal, subprocess, sys, threading, time
    timeout, command = float(sys.argv[1]), sys.argv[2:]
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    captured = {}
    readers = [threading.Thread(target=lambda name, pipe: captured.__setitem__(name, pipe.read()), args=item)
               for item in (("out", child.stdout), ("err", child.stderr))]
    for reader in readers:
        reader.start()
    timed_out = False
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() - start > timeout:
            os.kill(child.pid, signal.SIGKILL)
            _, status, usage = os.wait4(child.pid, 0)
            timed_out = True
            break
        time.sleep(0.005)
    seconds = time.perf_counter() - start
    for reader in readers:
        reader.join()
    out, err = captured.get("out", b""), captured.get("err", b"")
    print(json.dumps({"seconds": seconds, "status": os.waitstatus_to_exitcode(status), "timed_out": timed_out,
                      "peak_mb": usage.ru_maxrss / 1024, "stdout": out.decode(errors="replace")[-20000:],
                      "stdout_bytes": len(out), "stderr": err.decode(errors="replace")[-3000:]}))
""")


def launch(command: list[str], cwd: Path, env: dict[str, str], timeout: float) -> dict[str, Any]:
    """Run ``command`` from the launcher: its wall time, exit status, peak RSS (MB) and output."""
    done = subprocess.run([sys.executable, "-c", _LAUNCHER, str(timeout), *command], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout + 60)
    if done.returncode != 0:
        return {"status": None, "error": done.stderr[-2000:]}
    return json.loads(done.stdout)


def _child_result(ran: dict[str, Any]) -> dict[str, Any]:
    """The child's own JSON line, with the launcher's figures; or what went wrong."""
    if ran.get("timed_out"):
        return {"timed_out_after_s": round(ran["seconds"], 1), "peak_mb_so_far": ran["peak_mb"]}
    if ran.get("status") != 0:
        return {"error": ran.get("stderr") or ran.get("error") or str(ran)}
    return {**json.loads(ran["stdout"].strip().splitlines()[-1]), "process_seconds": ran["seconds"],
            "wait4_peak_mb": ran["peak_mb"]}


def measure_memory(folder: Path, pngs: list[tuple[str, str | None]], cwd: Path, skip_cli: bool,
                   nbdime_timeout: float, pycache: Path) -> dict[str, Any]:
    start = time.perf_counter()
    big = make_big_pair(folder, pngs)
    big["generate_seconds"] = time.perf_counter() - start
    paths = [str(big["a"]), str(big["b"])]
    env = cli_env(pycache)
    result: dict[str, Any] = {"pair": {k: v for k, v in big.items() if k not in ("a", "b")}}
    ran = launch([sys.executable, "-c", _MEMORY_CHILD, *paths], cwd, env, timeout=600)
    result["jupyter_mlx_in_process"] = _child_result(ran)
    if not skip_cli:
        ran = launch(_cli_commands(big["a"], big["b"])["jupyter-mlx diff"], cwd, env, timeout=600)
        shutil.rmtree(cwd / ".mlx", ignore_errors=True)
        result["jupyter_mlx_cli"] = ({"seconds": ran["seconds"], "peak_mb": ran["peak_mb"],
                                      "stdout_bytes": ran["stdout_bytes"]} if ran.get("status") == 0
                                     else {"error": ran.get("stderr") or ran.get("error") or str(ran)})
    if nbdime_timeout > 0:
        ran = launch([sys.executable, "-c", _NBDIME_CHILD, *paths], cwd, env, timeout=nbdime_timeout)
        result["nbdime_diff_notebooks"] = _child_result(ran)
    big["a"].unlink()
    big["b"].unlink()
    return result


# -- profile ------------------------------------------------------------------------------------
def profile_compare(path_a: Path, path_b: Path, top: int = 15) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    mlx_compare(path_a, path_b)
    profiler.disable()
    sections = []
    for order, count in (("cumulative", top), ("tottime", 10)):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order).print_stats(count)
        lines = out.getvalue().splitlines()
        start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
        sections.append(f"by {order} time, top {count}:\n" + "\n".join(line for line in lines[start:] if line.strip()))
    return "\n\n".join(sections)


_CLI_PROFILE_CHILD = textwrap.dedent("""
    import contextlib, cProfile, io, pstats, sys
    profiler = cProfile.Profile()
    with contextlib.redirect_stdout(io.StringIO()):
        profiler.enable()
        from jupyter_mlx.cli import main
        main(["diff", *sys.argv[1:3]])
        profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("cumulative").print_stats(int(sys.argv[3]))
    print(out.getvalue())
""")


def profile_cli(path_a: Path, path_b: Path, cwd: Path, pycache: Path, top: int = 25) -> str:
    """Where a cold ``jupyter mlx diff`` process spends its time: imports, then cProfile."""
    env = cli_env(pycache)
    command = [sys.executable, "-X", "importtime", "-m", "jupyter_mlx.cli", "diff", str(path_a), str(path_b)]
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, env=env)
    rows = []  # (cumulative us, nesting level, module)
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        _, cumulative_us, raw = line[len("import time:"):].split("|", 2)
        raw = raw[1:]
        rows.append((int(cumulative_us), (len(raw) - len(raw.lstrip())) // 2, raw.strip()))
    total = sum(cumulative for cumulative, level, _ in rows if level == 0)
    longest: dict[str, int] = {}  # a module can be listed twice (once nested, once where it was asked for)
    for cumulative, _, name in rows:
        longest[name] = max(cumulative, longest.get(name, 0))
    ours = sorted(((us, name) for name, us in longest.items() if name.startswith("jupyter_mlx.")), reverse=True)[:10]
    others = sorted(((us, name) for name, us in longest.items()
                     if "." not in name and not name.startswith(("_", "jupyter_mlx"))), reverse=True)[:10]
    lines = [f"imports of a cold `jupyter mlx diff` (python -X importtime, bytecode cached): {total / 1000:.0f} ms "
             "in all. Cumulative, where first imported; jupyter_mlx modules:"]
    lines += [f"  {cumulative / 1000:8.1f} ms  {name}" for cumulative, name in ours]
    lines += ["other packages:"] + [f"  {cumulative / 1000:8.1f} ms  {name}" for cumulative, name in others]
    done = subprocess.run([sys.executable, "-c", _CLI_PROFILE_CHILD, str(path_a), str(path_b), str(top)],
                          cwd=cwd, capture_output=True, text=True, timeout=120, env=env)
    shutil.rmtree(cwd / ".mlx", ignore_errors=True)
    profile = done.stdout.splitlines()
    start = next((i for i, line in enumerate(profile) if "ncalls" in line), 0)
    lines += ["", "cProfile of the same cold process (imports included), by cumulative time:"]
    lines += [line for line in profile[start:] if line.strip()] or [done.stderr[-2000:]]
    return "\n".join(lines)


# -- main -----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved in-process rounds (default 5)")
    parser.add_argument("--cli-rounds", type=int, default=3, help="interleaved command-line rounds (default 3)")
    parser.add_argument("--table-rounds", type=int, default=30, help="rounds of the runs table (default 30)")
    parser.add_argument("--skip-cli", action="store_true", help="do not time nbdiff and jupyter-mlx diff")
    parser.add_argument("--skip-memory", action="store_true", help="do not compare the two 50 MB notebooks")
    parser.add_argument("--nbdime-memory-timeout", type=float, default=120.0,
                        help="seconds nbdime may take on the 50 MB pair (0: skip it; default 120)")
    parser.add_argument("--profile", action="store_true", help="print the cProfile even within target")
    args = parser.parse_args(argv)

    import nbformat
    from nbdime import diff_notebooks

    load_before = os.getloadavg()
    results: dict[str, Any] = {"rounds": args.rounds, "cli_rounds": args.cli_rounds,
                               "issue_figures": ISSUE, "load_avg_before": load_before}
    with tempfile.TemporaryDirectory(prefix="mlx-bench-compare-") as tmp:
        folder, cwd, root = Path(tmp) / "notebooks", Path(tmp) / "cwd", Path(tmp) / "project"
        pycache = Path(tmp) / "pycache"
        for path in (folder, cwd, root):
            path.mkdir()
        print("writing the notebook pair ...", flush=True)
        seconds, pair = harness.timed(lambda: make_pair(folder))
        path_a, path_b = pair["a"], pair["b"]
        pngs = pair.pop("pngs")
        print(f"  {seconds:.1f} s; a.ipynb {pair['bytes_a']:,} bytes, b.ipynb {pair['bytes_b']:,} bytes; "
              f"PNG base64 {min(pair['png_base64_bytes']):,}-{max(pair['png_base64_bytes']):,} bytes")
        results["pair"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in pair.items()}

        # warm: imports of both tools, one untimed comparison each; the comparison must be right
        _, data = mlx_compare(path_a, path_b)
        check_comparison(data, pair)
        nb_a, nb_b = nbformat.read(path_a, as_version=4), nbformat.read(path_b, as_version=4)
        nbdime_diff = diff_notebooks(nb_a, nb_b)
        assert nbdime_diff, "nbdime found no difference"
        report_path = Path(tmp) / "report.html"

        def mlx_full() -> None:
            mlx_compare(path_a, path_b)

        comparison, _ = mlx_compare(path_a, path_b)

        def report() -> None:
            write_report(comparison, report_path)

        ways: dict[str, Callable[[], Any]] = {
            "near-limit: json.loads + sha1 per output": lambda: near_limit(path_a, path_b),
            "nbdime diff_notebooks (anchor)": lambda: diff_notebooks(nb_a, nb_b),
            "nbdime nbformat.read x2 + diff_notebooks": lambda: diff_notebooks(
                nbformat.read(path_a, as_version=4), nbformat.read(path_b, as_version=4)),
            "jupyter_mlx compare_sides + to_json": mlx_full,
        }
        report()
        ways["jupyter_mlx write_report (on top)"] = report
        print(f"timing in-process, {args.rounds} interleaved rounds ...", flush=True)
        api = interleave(ways, args.rounds)
        results["in_process"] = {name: harness.summary_ms(s) for name, s in api.items()}
        results["report_bytes"] = report_path.stat().st_size

        if not args.skip_cli:
            print(f"timing the command lines, {args.cli_rounds} interleaved rounds ...", flush=True)
            cli = measure_cli(path_a, path_b, cwd, args.cli_rounds, pycache)
            results["cli"] = {name: harness.summary_ms(s) for name, s in cli["samples"].items()}
            results["cli_commands"] = cli["commands"]
            results["cli_created_store"] = cli["created_store"]

        print(f"timing the runs table of 50 runs, {args.table_rounds} rounds ...", flush=True)
        table = measure_table(root, args.table_rounds)
        results["runs_table"] = {name: harness.summary_ms(s) for name, s in table["samples"].items()}
        results["runs_table_shape"] = table["frame_shape"]

        if not args.skip_memory:
            print("comparing two ~50 MB notebooks in child processes ...", flush=True)
            results["memory"] = measure_memory(folder, pngs, cwd, args.skip_cli, args.nbdime_memory_timeout,
                                               pycache)

        mlx_ms = results["in_process"]["jupyter_mlx compare_sides + to_json"]["median_ms"]
        nbdime_ms = results["in_process"]["nbdime diff_notebooks (anchor)"]["median_ms"]
        missed = nbdime_ms / mlx_ms < SPEEDUP_API
        if args.profile or missed:
            results["profile"] = profile_compare(path_a, path_b)
        if (args.profile or (not args.skip_cli and results["cli"]["nbdiff --no-color (anchor)"]["median_ms"]
                             / results["cli"]["jupyter-mlx diff"]["median_ms"] < SPEEDUP_CLI)):
            results["cli_profile"] = profile_cli(path_a, path_b, cwd, pycache)
    results["load_avg_after"] = os.getloadavg()
    report_results(results, args)
    return 0


def _verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def report_results(results: dict[str, Any], args: argparse.Namespace) -> None:
    api, pair = results["in_process"], results["pair"]
    print(f"\nA pair of {CELLS}-cell notebooks: a.ipynb {pair['bytes_a']:,} bytes, b.ipynb {pair['bytes_b']:,} bytes; "
          f"{3 * CHANGED_PER_KIND} outputs and {SOURCES_CHANGED} sources changed")
    print(f"medians of {args.rounds} interleaved in-process rounds; load average before "
          f"{'/'.join(f'{x:.2f}' for x in results['load_avg_before'])}, after "
          f"{'/'.join(f'{x:.2f}' for x in results['load_avg_after'])} on {os.cpu_count()} CPUs\n")
    rows = [[name, s["median_ms"], s["min_ms"], s["max_ms"]] for name, s in api.items()]
    for name, s in results.get("cli", {}).items():
        rows.append([f"CLI: {name}", s["median_ms"], s["min_ms"], s["max_ms"]])
    for name, s in results["runs_table"].items():
        rows.append([f"50 runs: {name}", s["median_ms"], s["min_ms"], s["max_ms"]])
    harness.print_table(["way", "median ms", "min ms", "max ms"], rows)

    mlx = api["jupyter_mlx compare_sides + to_json"]["median_ms"]
    nbdime = api["nbdime diff_notebooks (anchor)"]["median_ms"]
    limit = api["near-limit: json.loads + sha1 per output"]["median_ms"]
    ratios = [["nbdime diff_notebooks / jupyter_mlx", f"{nbdime / mlx:.1f}x", f">= {SPEEDUP_API:.0f}x",
               _verdict(nbdime / mlx >= SPEEDUP_API)],
              ["jupyter_mlx absolute (issue: < 220 ms)", f"{mlx:.0f} ms", f"< {nbdime / SPEEDUP_API:.0f} ms here",
               _verdict(mlx < nbdime / SPEEDUP_API)],
              ["jupyter_mlx / near-limit", f"{mlx / limit:.1f}x", "", ""]]
    if "jupyter_mlx write_report (on top)" in api:
        report = api["jupyter_mlx write_report (on top)"]["median_ms"]
        ratios.append(["nbdime / (jupyter_mlx + report)", f"{nbdime / (mlx + report):.1f}x", "(context)", ""])
    if "cli" in results:
        nbdiff = results["cli"]["nbdiff --no-color (anchor)"]["median_ms"]
        mlx_cli = results["cli"]["jupyter-mlx diff"]["median_ms"]
        ratios.append(["nbdiff CLI / jupyter-mlx diff CLI", f"{nbdiff / mlx_cli:.1f}x", f">= {SPEEDUP_CLI:.0f}x",
                       _verdict(nbdiff / mlx_cli >= SPEEDUP_CLI)])
        if CLI_NO_CACHE in results["cli"]:
            uncached = results["cli"][CLI_NO_CACHE]["median_ms"]
            ratios.append(["nbdiff CLI / jupyter-mlx diff, bytecode not cached", f"{nbdiff / uncached:.1f}x",
                           "(context)", ""])
    for name in ("runs_table(limit=50).to_json()", "runs_table(limit=50).frame()"):
        ms = results["runs_table"][name]["median_ms"]
        ratios.append([f"50 runs: {name}", f"{ms:.1f} ms", f"< {TABLE_TARGET_MS:.0f} ms", _verdict(ms < TABLE_TARGET_MS)])
    memory = results.get("memory")
    if memory:
        child = memory["jupyter_mlx_in_process"]
        if "peak_mb" in child:
            ratios.append(["50 MB pair: jupyter_mlx peak RSS", f"{child['peak_mb']:.0f} MB",
                           f"< {MEMORY_TARGET_MB:.0f} MB", _verdict(child["peak_mb"] < MEMORY_TARGET_MB)])
        else:
            ratios.append(["50 MB pair: jupyter_mlx", str(child)[:80], f"< {MEMORY_TARGET_MB:.0f} MB", "MISSED"])
        cli_child = memory.get("jupyter_mlx_cli", {})
        if "peak_mb" in cli_child:
            ratios.append(["50 MB pair: jupyter-mlx diff CLI peak RSS", f"{cli_child['peak_mb']:.0f} MB",
                           f"< {MEMORY_TARGET_MB:.0f} MB", _verdict(cli_child["peak_mb"] < MEMORY_TARGET_MB)])
    print()
    harness.print_table(["figure", "value", "target", "verdict"], ratios)

    if memory:
        big = memory["pair"]
        print(f"\n50 MB pair: {big['outputs']:,} PNG outputs, {big['changed_outputs']} redrawn in B; "
              f"big_a.ipynb {big['bytes_a']:,} bytes, big_b.ipynb {big['bytes_b']:,} bytes")
        for name, figures in memory.items():
            if name != "pair":
                print(f"  {name}: " + ", ".join(f"{k} {v:,.1f}" if isinstance(v, float) else f"{k} {v}"
                                               for k, v in figures.items()))
    if results.get("cli_created_store"):
        print("\nnote: jupyter-mlx diff created a .mlx folder in the working directory (removed after each run)")
    if results.get("profile"):
        print("\ncProfile of one in-process jupyter_mlx comparison (compare_sides + to_json), warm:")
        print(results["profile"])
    if results.get("cli_profile"):
        print("\n" + results["cli_profile"])
    path = harness.write_results("bench_compare", {
        **results,
        "targets": {"speedup_vs_diff_notebooks": SPEEDUP_API, "speedup_vs_nbdiff": SPEEDUP_CLI,
                    "runs_table_ms": TABLE_TARGET_MS, "memory_mb": MEMORY_TARGET_MB},
        "notes": "in-process timings exclude nbformat.read for nbdime's anchor (a row with it is given); "
                 "jupyter_mlx's include reading and parsing both files. CLI times are whole processes, "
                 "stdout to /dev/null, from a folder without .mlx, after one untimed run each, with bytecode "
                 "cached in a temporary PYTHONPYCACHEPREFIX (as an installed package has it) even when "
                 "PYTHONDONTWRITEBYTECODE is set; the row 'bytecode not cached' is the shell's own environment.",
    })
    print(f"\nresults: {path}")


if __name__ == "__main__":
    sys.exit(main())
