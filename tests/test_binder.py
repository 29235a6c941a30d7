"""The Binder set-up, reproduced without Docker, then the example driver notebook end to end.

What mybinder.org (repo2docker) does with ``binder/``, and what this test does instead:

1. a conda environment from ``binder/environment.yml``: here a ``python -m venv`` (this
   machine's Python) with the file's pip-installable packages (JupyterLab) installed by pip;
   Node comes from the machine;
2. ``binder/postBuild`` from the root of a clone: here the script itself, unchanged, run from the
   root of a copy of the working tree (the files git tracks or would add), with the venv first on
   ``PATH``. Its ``pip install --no-cache-dir ".[examples]"`` is a real install: build isolation,
   hatchling building the wheel, every dependency installed from the preconfigured pip index.

The venv is kept between test runs (``tests/venv_cache.py``, outside the checkout), keyed by the
hash of what decides its packages (``environment.yml``, ``postBuild``, ``pyproject.toml`` and the
Python): with a warm cache both steps still run, unchanged, but pip finds the dependencies already
installed and only builds and reinstalls jupyter_mlx from the copy (about a minute saved on two
cores); on a cold cache (the first run on a machine, or a changed input) everything is installed
from scratch, as mybinder.org would.

One shortcut, to stay off the npm registry and to save the npm install + production build (about
40-70 s): the copy gets the lab extension this checkout already built (``jupyter_mlx/labextension``,
git-ignored), so the build hook's ``skip-if-exists`` skips npm, exactly as it would for a clone
holding a build. Set ``JUPYTER_MLX_BINDER_NPM=1`` to leave it out and let pip run npm as on
mybinder.org (this needs the npm registry). Without a built lab extension (and without that
variable) the test is skipped.

Then ``examples/driver.ipynb`` runs with the venv's papermill from ``examples/`` (as JupyterLab
starts its kernel) and from the repository root, with no Jupyter server around (an empty runtime
dir), so ``%mlx`` runs in-process, in the project postBuild prepared. Everything happens in a
temporary folder that is removed at the end; the working tree is only read.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from venv_cache import CachedVenv, cached_venv, inputs_digest

REPO = Path(__file__).resolve().parents[1]
BUILT_LABEXTENSION = Path("jupyter_mlx") / "labextension"
NPM_ENV = "JUPYTER_MLX_BINDER_NPM"
SWEEP_C = [0.1, 1.0, 10.0]  # the driver's default grid
# What decides the packages of the Binder venv (with the Python that makes it): a change rebuilds it.
VENV_INPUTS = ["binder/environment.yml", "binder/postBuild", "pyproject.toml"]

# Bounded steps (seconds): generous, for a loaded machine; together well under the test timeout.
VENV_TIMEOUT = 120
ENVIRONMENT_TIMEOUT = 420
POSTBUILD_TIMEOUT = 600
PAPERMILL_TIMEOUT = 300
CLI_TIMEOUT = 60

pytestmark = pytest.mark.timeout(VENV_TIMEOUT + ENVIRONMENT_TIMEOUT + POSTBUILD_TIMEOUT + 2 * PAPERMILL_TIMEOUT)


# -- the steps -----------------------------------------------------------------------------------------
def working_tree_files() -> list[Path]:
    """The files a clone would hold (tracked, or new and not ignored), as paths relative to the repo."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs the git checkout: git lists the files a clone holds")
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO, capture_output=True, check=True, timeout=CLI_TIMEOUT,
    ).stdout.decode().split("\0")
    return [Path(name) for name in listed if name and (REPO / name).is_file()]  # not the deleted ones


def copy_repository(target: Path, with_built_labextension: bool) -> None:
    for name in working_tree_files():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target / name)
    if with_built_labextension:
        shutil.copytree(REPO / BUILT_LABEXTENSION, target / BUILT_LABEXTENSION)


def environment_requirements(environment_yml: Path) -> list[str]:
    """The pip requirements for ``environment.yml``'s packages, less those a venv has already
    (Python, pip) and Node (the machine's): ``jupyterlab>=4.4,<5`` stays, ``name=1.2`` becomes
    ``name==1.2.*``, a ``pip:`` list is taken as it is."""
    spec = yaml.safe_load(environment_yml.read_text())
    requirements: list[str] = []
    for dependency in spec.get("dependencies", []):
        if isinstance(dependency, dict):
            requirements.extend(dependency.get("pip", []))
            continue
        dependency = str(dependency).replace(" ", "")
        name = re.split(r"[<>=!]", dependency, maxsplit=1)[0]
        if name in ("python", "pip", "nodejs"):
            continue
        exact = re.fullmatch(r"([A-Za-z0-9_.\-]+)=([^=<>!,]+)", dependency)
        requirements.append(f"{exact[1]}=={exact[2]}.*" if exact else dependency)
    return requirements


@dataclass
class Binder:
    """The installed copy: its root, its venv, what each step printed and how long it took."""

    root: Path
    venv: Path
    env: dict[str, str]
    outputs: Path
    timings: dict[str, float] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)

    @property
    def bin(self) -> Path:
        return self.venv / "bin"

    def run(self, step: str, command: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        try:
            done = subprocess.run(command, cwd=cwd, env=self.env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"{step} took more than {timeout}s; its output so far:\n{_tail(exc.stdout)}\n{_tail(exc.stderr)}")
        self.timings[step] = time.monotonic() - started
        self.logs[step] = done.stdout + done.stderr
        assert done.returncode == 0, f"{step} failed ({done.returncode}):\n{_tail(done.stdout)}\n{_tail(done.stderr)}"
        return done


def _tail(text: str | bytes | None, lines: int = 60) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return "\n".join((text or "").splitlines()[-lines:])


def isolated_env(venv: Path, scratch: Path) -> dict[str, str]:
    """The environment of the steps: the venv first on PATH, Jupyter's and IPython's folders (and
    npm's cache) in the scratch folder, nothing of this checkout's venv or Jupyter servers. The
    machine's pip settings (``PIP_*``: the preconfigured index) are kept."""
    dropped = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "CONDA_PREFIX", "JUPYTER_PATH",
               "JUPYTER_CONFIG_PATH", "JUPYTER_PREFER_ENV_PATH", "JUPYTER_MLX_TRANSPORT", "JUPYTER_MLX_WIDGETS",
               "JPY_PARENT_PID", "MPLBACKEND")
    env = {key: value for key, value in os.environ.items() if key not in dropped}
    this_venv = str(Path(sys.prefix) / "bin")
    path = [entry for entry in env.get("PATH", "").split(os.pathsep) if entry and entry != this_venv]
    env["PATH"] = os.pathsep.join([str(venv / "bin"), *path])
    env["VIRTUAL_ENV"] = str(venv)
    for name, folder in (("JUPYTER_CONFIG_DIR", "jupyter-config"), ("JUPYTER_DATA_DIR", "jupyter-data"),
                         ("JUPYTER_RUNTIME_DIR", "jupyter-runtime"), ("IPYTHONDIR", "ipython"),
                         ("MPLCONFIGDIR", "matplotlib")):
        env[name] = str(scratch / folder)
        (scratch / folder).mkdir(parents=True, exist_ok=True)
    env["NPM_CONFIG_CACHE"] = str(scratch / "npm-cache")  # postBuild cleans npm's cache: this one
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"  # quiet debugpy's warning in every kernel
    return env


def leftover_processes(folder: Path) -> list[int]:
    """Processes still running a program of ``folder`` (the venv): kernels that outlived their run."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(folder) in command:
            found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def binder() -> Iterator[Binder]:
    """A copy of the repository with the Binder environment installed and postBuild run."""
    npm_build = os.environ.get(NPM_ENV, "") not in ("", "0")
    if not npm_build and not (REPO / BUILT_LABEXTENSION / "static" / "style.js").is_file():
        pytest.skip(f"no built lab extension in {BUILT_LABEXTENSION} (pip install -e . builds it), and {NPM_ENV} is unset")
    scratch = Path(tempfile.mkdtemp(prefix="jupyter-mlx-binder-"))
    try:
        with binder_venv() as cached:
            root, venv = scratch / "repo", cached.venv
            started = time.monotonic()
            copy_repository(root, with_built_labextension=not npm_build)
            setup = Binder(root, venv, isolated_env(venv, scratch), scratch / "outputs")
            setup.outputs.mkdir()
            setup.timings["copy"] = time.monotonic() - started
            try:
                if not cached.warm:
                    setup.run("venv", [sys.executable, "-m", "venv", str(venv)], scratch, VENV_TIMEOUT)
                requirements = environment_requirements(root / "binder" / "environment.yml")
                setup.run("environment.yml", [str(setup.bin / "python"), "-m", "pip", "install", *requirements],
                          root, ENVIRONMENT_TIMEOUT)  # warm: only checks that they are installed
                setup.run("postBuild", ["bash", str(root / "binder" / "postBuild")], root, POSTBUILD_TIMEOUT)
                cached.completed()
                yield setup
                print(f"binder steps (s, {'warm' if cached.warm else 'cold'} venv cache): "
                      + ", ".join(f"{step} {seconds:.1f}" for step, seconds in setup.timings.items()))
            finally:
                kill_leftovers(scratch, venv)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@contextmanager
def binder_venv() -> Iterator[CachedVenv]:
    """The venv of the Binder environment, reused from an earlier run while the inputs that decide
    its packages are unchanged (tests/venv_cache.py). Warm, the environment.yml and postBuild steps
    still run, unchanged: pip finds the dependencies installed and installs jupyter_mlx from this
    copy again (a local folder is always reinstalled); cold (the first run, or after a change of
    an input), the venv is made from scratch, as before."""
    digest = inputs_digest(REPO, VENV_INPUTS)
    try:
        with cached_venv("binder-venv", digest, lock_timeout=ENVIRONMENT_TIMEOUT + POSTBUILD_TIMEOUT) as cached:
            yield cached
    except TimeoutError as exc:
        pytest.fail(str(exc))


def kill_leftovers(*folders: Path) -> None:
    """Kill what still runs a program of ``folders``: only ours (the venv is locked while we use it)."""
    for folder in folders:
        for pid in leftover_processes(folder):
            try:
                os.kill(pid, 9)
            except OSError:
                pass


# -- reading an executed notebook -------------------------------------------------------------------------
def code_cells(nb: dict[str, Any]) -> list[dict[str, Any]]:
    return [cell for cell in nb["cells"] if cell["cell_type"] == "code"]


def cell_starting(nb: dict[str, Any], prefix: str) -> dict[str, Any]:
    matches = [cell for cell in code_cells(nb) if "".join(cell["source"]).lstrip().startswith(prefix)]
    assert len(matches) == 1, f"one code cell should start with {prefix!r}"
    return matches[0]


def text_of(cell: dict[str, Any], output_type: str | None = None) -> str:
    """What the cell printed and displayed, as text."""
    parts = []
    for output in cell["outputs"]:
        if output_type and output["output_type"] != output_type:
            continue
        value = output.get("text") if output["output_type"] == "stream" else output.get("data", {}).get("text/plain", "")
        parts.append("".join(value) if isinstance(value, list) else value or "")
    return "\n".join(parts)


def frame_rows(text: str, row_prefix: str) -> list[dict[str, str]]:
    """The rows of a DataFrame printed by ``to_string()``: values are right-aligned with their
    column's label, so each one is the last word before the label's end."""
    lines = text.splitlines()
    ends = {match.group(): match.end() for match in re.finditer(r"\S+", lines[0])}
    return [{column: line[:end].split()[-1] for column, end in ends.items()}
            for line in lines if line.startswith(row_prefix)]


def run_driver(binder: Binder, cwd: Path, notebook: str, name: str) -> dict[str, Any]:
    output = binder.outputs / f"{name}.ipynb"
    binder.run(f"driver from {name}", [str(binder.bin / "python"), "-m", "papermill", notebook, str(output),
                                       "--kernel", "python3"], cwd, PAPERMILL_TIMEOUT)
    return json.loads(output.read_text())


def check_driver(nb: dict[str, Any], root: Path) -> None:
    errors = [output for cell in code_cells(nb) for output in cell["outputs"] if output["output_type"] == "error"]
    assert not errors, f"error outputs: {errors}"
    assert all(cell.get("execution_count") for cell in code_cells(nb)), "every code cell ran"

    sweep = cell_starting(nb, "sweep = %mlx sweep")
    where = text_of(sweep, "stream")
    assert where.startswith("in-process (no Jupyter server for this project"), where
    assert f"project {root.resolve()}" in where, f"the runs go to postBuild's project at the repository root: {where}"
    assert re.search(r"sweep [0-9a-f]{32}: 3 runs of examples/train\.ipynb: 3 succeeded", text_of(sweep, "display_data"))

    table = text_of(cell_starting(nb, "%mlx runs --sweep"), "display_data")
    rows = frame_rows(table, "examples/train.ipynb@v")
    assert len(rows) == len(SWEEP_C), table
    assert {row["status"] for row in rows} == {"succeeded"}, table
    assert sorted(float(row["C"]) for row in rows) == SWEEP_C, table
    assert all(0.5 < float(row["accuracy"]) <= 1.0 for row in rows), table

    plot = cell_starting(nb, "jupyter_mlx.plot_metric(")
    assert any("image/png" in output.get("data", {}) for output in plot["outputs"]), "plot_metric drew a figure"

    diff = text_of(cell_starting(nb, "low, high ="), "display_data")
    assert "parameters:" in diff and re.search(r"C\s+0\.1 -> 10", diff), diff
    assert "accuracy" in text_of(cell_starting(nb, "comparison = jupyter_mlx.compare("))
    assert "serve it with:  %mlx serve examples/train.ipynb@v" in text_of(cell_starting(nb, "best ="), "stream")


# -- the tests -------------------------------------------------------------------------------------------
def test_postbuild_installs_both_extensions_and_records_runs(binder: Binder) -> None:
    assert "Successfully installed" in binder.logs["postBuild"] and "jupyter_mlx" in binder.logs["postBuild"]
    assert not (binder.root / "node_modules").exists(), "postBuild leaves no npm packages in the image"
    assert not Path(binder.env["NPM_CONFIG_CACHE"]).exists(), "nor npm's cache"
    labextensions = binder.run("labextension list", [str(binder.bin / "jupyter"), "labextension", "list"],
                               binder.root, CLI_TIMEOUT)
    assert re.search(r"jupyter-mlx v\S+ \S*enabled\S* \S*OK", labextensions.stdout + labextensions.stderr)
    installed = binder.venv / "share" / "jupyter" / "labextensions" / "jupyter-mlx" / "package.json"
    assert installed.is_file(), "the wheel put the lab extension where JupyterLab looks"
    servers = binder.run("server extension list", [str(binder.bin / "jupyter"), "server", "extension", "list"],
                         binder.root, CLI_TIMEOUT)
    assert re.search(r"jupyter_mlx \S*enabled", servers.stdout + servers.stderr)
    runs = binder.run("runs", [str(binder.bin / "jupyter"), "mlx", "runs", "examples/train.ipynb", "--json"],
                      binder.root, CLI_TIMEOUT)
    recorded = json.loads(runs.stdout)
    recorded = recorded["runs"] if isinstance(recorded, dict) else recorded
    assert sorted(run["parameters"]["C"] for run in recorded) == [0.5, 5.0]
    assert {run["status"] for run in recorded} == {"succeeded"}
    assert (binder.root / ".mlx").is_dir(), "the project's store is at the repository root"


def test_driver_runs_from_examples_folder(binder: Binder) -> None:
    """As JupyterLab runs it: the kernel works in examples/."""
    nb = run_driver(binder, binder.root / "examples", "driver.ipynb", "examples")
    check_driver(nb, binder.root)
    assert not (binder.root / "examples" / ".mlx").exists(), "no second project inside examples/"


def test_driver_runs_from_repository_root(binder: Binder) -> None:
    """As CI runs it: ``papermill examples/driver.ipynb ...`` from the repository root."""
    nb = run_driver(binder, binder.root, "examples/driver.ipynb", "root")
    check_driver(nb, binder.root)
    deadline = time.monotonic() + 15  # kernels shut down in the background, just after the run
    while leftover_processes(binder.venv) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not leftover_processes(binder.venv), "the driver's kernels (and the runs' kernels) are gone"
