"""Configuration shared by every door: the same traits from the same Jupyter config files.

Set them in ``jupyter_mlx_config.py`` / ``.json`` (any Jupyter config directory or the project
root), e.g. ``c.MLXConfig.cell_timeout = 600``; the server extension also reads them from
``jupyter_server_config``.
"""
from __future__ import annotations

import os
from pathlib import Path

from traitlets import Bool, Dict, Float, Int, List, Type, Unicode, default
from traitlets.config import Config, Configurable

CONFIG_FILE_NAME = "jupyter_mlx_config"
STORE_DIRNAME = ".mlx"


# folders of tools, not of the experiment (version control, environments, caches)
DEFAULT_TOOL_FOLDERS = (".git", ".hg", ".svn", ".venv", "venv", "node_modules", "__pycache__", ".ipynb_checkpoints",
                        ".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".hypothesis", STORE_DIRNAME)


class MLXConfig(Configurable):
    """Where runs are stored and how notebooks execute."""

    store_class = Type(
        default_value=None,
        allow_none=True,
        klass="jupyter_mlx.store.base.RunStore",
        config=True,
        help="RunStore implementation; constructed with (store_url, blob_dir). Default: "
        "jupyter_mlx.store.sql.SqlRunStore (imported when the store is first used: SQLAlchemy is slow "
        "to import, and comparing two notebook files needs no store).",
    )
    store_url = Unicode(
        "",
        config=True,
        help="SQLAlchemy URL of the run index. Default: SQLite at <project root>/.mlx/runs.sqlite.",
    )
    blob_dir = Unicode(
        "",
        config=True,
        help="Folder of the content-addressed blob store. Default: <project root>/.mlx/blobs. Every "
        "process sharing one run index (a team's servers on one PostgreSQL) must use the same folder.",
    )
    migrate_store = Bool(
        True,
        config=True,
        help="Bring a run index at an older schema revision up to date when opening it. Off (a team's "
        "shared database, migrated by one person on purpose): such an index is refused with both "
        "revisions named, and `jupyter mlx migrate-store` migrates it.",
    )
    user = Unicode(
        "",
        config=True,
        help="Who the runs started from the CLI and the magic are recorded as (default: the operating "
        "system's user). Runs started through the server's REST API and panel record the Jupyter user.",
    )
    kernel_name = Unicode(
        "",
        config=True,
        help="Kernel to run notebooks with. Default: the notebook's own kernelspec, else python3.",
    )
    cell_timeout = Float(
        0.0,
        config=True,
        help="Seconds one cell may run before the run fails (0: no limit).",
    )
    run_timeout = Float(
        0.0,
        config=True,
        help="Seconds a whole run may take before it is interrupted and fails (0: no limit).",
    )
    startup_timeout = Float(60.0, config=True, help="Seconds to wait for a kernel to start.")
    default_backend = Unicode(
        "local", config=True, help="Backend of runs that do not name one: local, gateway or dask."
    )
    concurrency = Int(
        0, config=True, help="Local runs executing at once (0: the number of cores this process may use)."
    )
    prestart_kernels = Bool(
        True,
        config=True,
        help="Keep kernels pre-started (up to the concurrency) while runs are coming, so a run does "
        "not wait for a kernel to boot.",
    )
    fork_kernels = Bool(
        True,
        config=True,
        help="Fork pre-started Python kernels from a process that has imported ipykernel already "
        "(saves most of a kernel start's CPU); each run still gets a fresh kernel.",
    )
    warm_runs = Bool(
        True,
        config=True,
        help="Start a notebook's forked kernels with the modules its cells import already imported "
        "(numpy, pandas, scikit-learn...): those safe to import before the kernel exists (see "
        "jupyter_mlx/execute/preload.py), so that a warm run's outputs are a cold run's. A notebook "
        "opts out with metadata.jupyter_mlx.warm = false.",
    )
    preload_modules = List(
        Unicode(),
        default_value=[],
        config=True,
        help="Modules imported once in that process, so forked kernels start with them imported "
        "(e.g. ['numpy', 'pandas']): faster runs, at the price of module-level state being "
        "initialised before the notebook starts.",
    )
    threads_per_run = Int(
        0,
        config=True,
        help="BLAS/OpenMP threads (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, MKL_NUM_THREADS...) of each "
        "run of a local sweep: 0 gives the runs executing at once an equal share of the cores, as "
        "joblib and Dask do for their workers (not when the environment sets a thread count); a "
        "negative number leaves the libraries' defaults. A single run always keeps them.",
    )
    kernel_idle_timeout = Float(
        600.0, config=True, help="Seconds an unused pre-started kernel is kept before it is shut down."
    )
    gateway_url = Unicode(
        config=True,
        help="Base URL of a Jupyter Kernel/Enterprise Gateway for the gateway backend "
        "(default: $JUPYTER_MLX_GATEWAY_URL).",
    )
    gateway_token = Unicode(
        "",
        config=True,
        help="Auth token of the gateway at gateway_url (default: $JUPYTER_MLX_GATEWAY_TOKEN). It is only "
        "ever sent to gateway_url: a run on another gateway sends the token given with it, or none.",
    )
    allowed_gateways = List(
        Unicode(),
        default_value=[],
        config=True,
        help="Gateway URLs, besides gateway_url, that a request to the Jupyter server (REST, the panel, "
        "%mlx through the server) may name in gateway_url; any other is refused (400). The CLI and the "
        "Python API in your own process may name any URL. The configured token is never sent to these.",
    )
    allowed_schedulers = List(
        Unicode(),
        default_value=[],
        config=True,
        help="Dask scheduler addresses, besides dask_scheduler, that a request to the Jupyter server may "
        "name in scheduler; any other is refused (400). The CLI and the Python API may name any.",
    )
    gateway_concurrency = Int(2, config=True, help="Runs executing at once on the gateway.")
    dask_scheduler = Unicode(
        "", config=True, help="Address of a dask.distributed scheduler for the dask backend (tcp://host:port)."
    )
    dask_concurrency = Int(
        0, config=True, help="Runs executing at once on the cluster (0: its worker threads)."
    )
    compare = Dict(
        {},
        config=True,
        help="The project's compare options (keys of jupyter_mlx.diff.CompareOptions), e.g. "
        "{'rtol': 1e-6, 'ignore_patterns': ['took \\d+ ms'], 'metrics': {'accuracy': {'atol': 0.01}}}; "
        "a notebook's metadata.jupyter_mlx.compare and the caller's options apply on top.",
    )

    run_folder = Unicode(
        "auto",
        config=True,
        help="Where a local run executes. 'auto': its own folder, an overlay of the project where this "
        "process may mount one (set-up costs one mount, whatever the project's size), else a copy of the "
        "project; 'overlay' or 'copy' to insist on one; 'in-place': in the project folder itself, as "
        "before run folders (a run's writes land in the project; a sweep then runs one at a time).",
    )
    run_folders_dir = Unicode(
        "",
        config=True,
        help="Where run folders are made (outside the project: an overlay's layers may not overlap). "
        "Default: <temp dir>/jupyter_mlx-runs-<uid>/<project hash>.",
    )
    keep_run_folders = Bool(
        False, config=True, help="Keep each run's folder after its files were collected (for debugging)."
    )
    artifact_exclude = List(
        Unicode(),
        ["__pycache__", "*/__pycache__/*", ".ipynb_checkpoints", "*/.ipynb_checkpoints/*", ".mlx", ".mlx/*",
         "*.pyc"],
        config=True,
        help="Glob patterns (fnmatch, on paths relative to the project) of files a run writes that are "
        "not kept as artifacts; a pattern naming a folder skips what is under it.",
    )
    artifact_include = List(
        Unicode(),
        ["*"],
        config=True,
        help="Glob patterns of the files a run writes that are kept (default: all, except artifact_exclude).",
    )
    artifact_max_file_size = Int(
        1 << 30, config=True, help="Bytes: a larger file a run writes is skipped, with a note on the run."
    )
    artifact_max_run_size = Int(
        1 << 30, config=True, help="Bytes of artifacts kept per run; files past it are skipped, with a note."
    )
    tool_folders = List(
        Unicode(),
        list(DEFAULT_TOOL_FOLDERS),
        config=True,
        help="Names of folders that belong to tools, not to the experiment (.git, .venv, node_modules, caches), "
        "at any depth: the inputs fingerprint does not enter them and a copied run folder leaves them out "
        "(an overlay shows everything).",
    )
    capture_state = Bool(
        True,
        config=True,
        help="When a run succeeds, capture the state its notebook's functions need (the globals they use, "
        "pickled with cloudpickle) so an endpoint can serve the run's own objects. A notebook opts out "
        "with metadata.jupyter_mlx.capture = false.",
    )
    serve_functions = List(
        Unicode(), [], config=True,
        help="Capture only the state of these notebook functions (default: every top-level function).",
    )
    capture_timeout = Float(60.0, config=True, help="Seconds the capture may take at the end of a run.")
    capture_max_size = Int(2 << 30, config=True, help="Bytes of captured state per run; objects past it are not captured.")
    mlflow_tracking_uri = Unicode(
        "",
        config=True,
        help="MLflow tracking server (e.g. http://127.0.0.1:5000) every finished run is logged to, in the "
        "background (one worker thread; a run never waits for it nor fails by it): parameters, metrics with "
        "their steps, tags, the executed notebook and the comparison report with the notebook's previous run, "
        "as jupyter mlx mlflow-export does. An unreachable server is tried again a few times, then the failure "
        "is logged and kept on the run (exports.mlflow in show --json). Empty: none. Needs "
        "pip install 'jupyter_mlx[mlflow]'.",
    )
    mlflow_experiment = Unicode(
        "",
        config=True,
        help="MLflow experiment of the runs logged to mlflow_tracking_uri (and of jupyter mlx mlflow-export "
        "without --experiment). Default: the notebook's path in the project (examples/train.ipynb), one "
        "experiment per notebook.",
    )
    input_hash_max_size = Int(
        256 << 20,
        config=True,
        help="Bytes: a larger project file is fingerprinted by its size and modification time, not hashed.",
    )

    @default("gateway_url")
    def _default_gateway_url(self) -> str:
        return os.environ.get("JUPYTER_MLX_GATEWAY_URL", "")


def find_project_root(start: Path) -> Path:
    """The nearest folder at or above ``start`` holding a ``.mlx`` store, else ``start``.

    Like git, so ``jupyter mlx`` works from any subfolder of a project.
    """
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / STORE_DIRNAME).is_dir():
            return folder
    return start


def load_file_config(root: Path) -> Config:
    """Read ``jupyter_mlx_config`` files from the Jupyter config path, then the project root."""
    from jupyter_core.paths import jupyter_config_path
    from traitlets.config.loader import JSONFileConfigLoader, PyFileConfigLoader

    merged = Config()
    folders = [*reversed(jupyter_config_path()), str(root)]
    for folder in folders:
        for loader_class, suffix in ((JSONFileConfigLoader, ".json"), (PyFileConfigLoader, ".py")):
            path = Path(folder) / (CONFIG_FILE_NAME + suffix)
            if path.is_file():
                merged.merge(loader_class(path.name, path=str(path.parent)).load_config())
    return merged


def default_store_url(root: Path) -> str:
    return f"sqlite:///{root / STORE_DIRNAME / 'runs.sqlite'}"
