"""A standalone service folder from a run version: the endpoint without Jupyter or jupyter_mlx.

``service/state.pkl`` is the run's captured state when the run captured the function (then the
service loads it at start, as ``jupyter mlx deploy`` does, and ``function.py`` is the captured
functions' source, for reading); ``service/notebook_code.py`` is the notebook's code (its
parameters injected) as nbconvert's Python exporter writes it, run at start when there is no state
(or with ``--reexecute``); ``service/mlx_endpoint/`` is a copy of the endpoint runtime that
``jupyter mlx serve`` uses (tornado, IPython and cloudpickle only); ``service/app.py`` starts it;
``requirements.txt`` pins what the code imports and what the state's objects come from to the
versions the run used; ``README.md`` says how to run and call it.
"""
from __future__ import annotations

import ast
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from ..errors import MLXError
from .source import ServedCode, check_servable, served_from, write_state

RUNTIME_MODULES = ("spec", "stats", "base", "schema", "apidoc", "responses", "function_app", "setup", "process",
                   "annotations", "cells_app", "exposure", "state")
ALWAYS = ("tornado", "ipython")


def export_endpoint(code: ServedCode, output: Path, function: str | None = None, force: bool = False,
                    packages: dict[str, str] | None = None, reexecute: bool = False) -> Path:
    """Write the service folder serving ``code`` to ``output``, from the run's captured state when
    it holds ``function`` (else, or with ``reexecute``, by running the code at start);
    ``packages`` (distribution -> version, those of the run's environment) pin its requirements."""
    mode = "function" if function else "cells"
    check_servable(code, mode, function)
    source = served_from(code, mode, function, reexecute)
    if output.exists() and any(output.iterdir()) and not force:
        raise MLXError("conflict", f"{output} exists and is not empty (--force to overwrite)")
    output.mkdir(parents=True, exist_ok=True)
    state_packages: dict[str, str] = {}
    if source.state is not None:
        write_state(source.state, code.label, output / "state.pkl")
        state_packages = dict(source.state.manifest.get("packages") or {})
        (output / "function.py").write_text(captured_source(code.cells, source.state.manifest))
    else:
        (output / "state.pkl").unlink(missing_ok=True)  # a --force export over one that had it
    script = _script(code.cells)
    (output / "notebook_code.py").write_text(script)
    runtime = output / "mlx_endpoint"
    runtime.mkdir(exist_ok=True)
    (runtime / "__init__.py").write_text('"""The endpoint runtime of jupyter_mlx, copied by jupyter mlx export."""\n')
    here = Path(__file__).parent
    for name in RUNTIME_MODULES:
        if (here / f"{name}.py").exists():
            shutil.copyfile(here / f"{name}.py", runtime / f"{name}.py")
    shutil.copyfile(here.parent / "errors.py", runtime / "errors.py")  # base.py's error codes
    settings: dict[str, Any] = {"name": Path(code.notebook).stem, "notebook": code.notebook, "ref": code.ref,
                                "mode": "function" if function else "cells", "function": function}
    if not function:  # the annotated cells are the routes: they stay cells
        settings["cells"] = code.cells
    settings["reexecute_reason"] = source.reason
    if source.state is not None:
        settings["state"] = {"path": "state.pkl", "sha256": source.state.sha256, "label": code.label,
                             "packages": state_packages, "allow_version_drift": False}
    (output / "endpoint.json").write_text(json.dumps(settings, indent=1) + "\n")
    (output / "app.py").write_text(APP)
    if any("jupyter_mlx" in _imported(source) for source in code.cells):
        (output / "jupyter_mlx.py").write_text(METRICS_STAND_IN)
    extra = (*state_packages, "cloudpickle") if source.state is not None else ()
    (output / "requirements.txt").write_text(requirements(code.cells, {**(packages or {}), **state_packages}, extra))
    (output / "README.md").write_text(_readme(settings))
    return output


def _script(cells: list[str]) -> str:
    """The cells as one Python script, through nbconvert (magics become get_ipython() calls)."""
    import nbformat
    from nbconvert import PythonExporter

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    notebook.metadata["language_info"] = {"name": "python"}
    body, _ = PythonExporter().from_notebook_node(notebook)
    return body


def captured_source(cells: list[str], manifest: dict[str, Any]) -> str:
    """The source of the notebook functions the state holds, as the cells define them."""
    from IPython.core.inputtransformer2 import TransformerManager

    wanted = {o["name"] for o in manifest.get("objects") or [] if o.get("kind") == "function"}
    found: dict[str, str] = {}
    for cell in cells:
        python = TransformerManager().transform_cell(cell)
        try:
            tree = ast.parse(python)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in wanted:
                found[node.name] = ast.get_source_segment(python, node, padded=False) or ""
    header = ('"""The notebook functions the run captured, as its cells defined them (for reading: the service\n'
              'loads them, with the objects they use, from state.pkl)."""\n')
    return header + "".join(f"\n\n{found[name]}\n" for name in sorted(found))


def requirements(cells: list[str], versions: dict[str, str], extra: tuple[str, ...] = (),
                 always: tuple[str, ...] = ALWAYS) -> str:
    """What the code imports, the ``extra`` distributions and ``always`` (the service runtime's),
    pinned to the run's versions (or this Python's)."""
    from importlib import metadata

    modules = _requirement_modules(cells)
    by_module = metadata.packages_distributions()
    lower = {name.lower().replace("_", "-"): version for name, version in versions.items()}
    lines = []
    wanted = {*always, *extra, *(d for m in modules for d in by_module.get(m, ()))}
    for distribution in sorted(wanted, key=str.lower):
        key = distribution.lower().replace("_", "-")
        version = lower.get(key)
        if version is None:
            try:
                version = metadata.version(distribution)
            except metadata.PackageNotFoundError:
                version = None
        lines.append(f"{distribution}=={version}" if version else distribution)
    return "\n".join(dict.fromkeys(lines)) + "\n"


def _imported(source: str) -> set[str]:
    """Top-level modules a cell imports (magics and shell lines are skipped)."""
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError:
        return set()
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return {name for name in found if name not in sys.stdlib_module_names}


def _requirement_modules(cells: list[str]) -> set[str]:
    """The modules to install: jupyter_mlx itself is replaced by a stand-in in the folder."""
    return {name for source in cells for name in _imported(source)} - {"jupyter_mlx"}


def _readme(settings: dict[str, Any]) -> str:
    route = f"POST /{settings['function']}" if settings["function"] else "the notebook's annotated routes"
    call = (f"curl -X POST http://127.0.0.1:8500/{settings['function']} -H \"Authorization: Bearer $ENDPOINT_TOKEN\" "
            "-H 'Content-Type: application/json' -d '{...the function arguments...}'") if settings["function"] else \
        "curl http://127.0.0.1:8500/<route> -H \"Authorization: Bearer $ENDPOINT_TOKEN\""
    if settings.get("state"):
        start = ("the run's captured state (`state.pkl`: the objects its functions use, as the run left them; "
                 "`function.py` shows their source) is loaded once at start-up, refused if its packages' "
                 "major.minor versions differ from these unless `--allow-version-drift`; `--reexecute` runs "
                 "`notebook_code.py` instead")
    else:
        start = (f"the notebook's code (`notebook_code.py`, its parameters injected) runs once at start-up "
                 f"({settings.get('reexecute_reason') or 'no state was captured'})")
    return f"""# {settings['name']}: {route}

Exported by `jupyter mlx export` from `{settings['ref'] or settings['notebook']}`: the code that produced the
experiment's results is the code that serves. No Jupyter needed.

```
pip install -r requirements.txt
ENDPOINT_TOKEN=$(python -c "import secrets; print(secrets.token_urlsafe(24))") python app.py --port 8500
{call}
```

- `app.py [--host 127.0.0.1] [--port 8500] [--workers 1] [--timeout 30] [--max-body BYTES] [--no-auth]
  [--reexecute] [--allow-version-drift]`: {start}; then `--workers` processes answer requests
  (globals are per worker).
- Clients send `Authorization: Bearer <ENDPOINT_TOKEN>`; without `ENDPOINT_TOKEN` set, the app
  refuses to start unless `--no-auth` is given.
- `GET /healthz`: `{{"status": "ok"}}` without a token (a load balancer's probe); with the token, also
  what it serves, request counts and latencies. `GET /openapi.json`: the API.
- Errors are JSON `{{"error", "message"}}`: 400 for a malformed body or wrong arguments, 413 for a
  body over the limit, 500 when the function raises (the traceback goes to the log), 504 past the timeout.
"""


METRICS_STAND_IN = '''"""Stands in for jupyter_mlx in an exported service: the notebook logs metrics for its runs;
a service answering requests records none."""

METRIC_MIMETYPE = "application/vnd.jupyter-mlx.metric+json"


def log_metric(name, value, step=None):
    """Recorded in a jupyter_mlx run; nothing to record in a service."""
'''


APP = '''"""Serve the exported notebook code (see README.md): python app.py --port 8500."""
import argparse
import hashlib
import json
import logging
import os
import sys
from pathlib import Path

from mlx_endpoint.process import serve_standalone
from mlx_endpoint.spec import EndpointSpec

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8500)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--max-body", type=int, default=10 * 1024 * 1024)
    parser.add_argument("--no-auth", action="store_true", help="serve without a token")
    parser.add_argument("--reexecute", action="store_true", help="run notebook_code.py instead of loading state.pkl")
    parser.add_argument("--allow-version-drift", action="store_true",
                        help="load state.pkl although its packages' versions (major.minor) differ from these")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    token = os.environ.get("ENDPOINT_TOKEN", "")
    if not token and not args.no_auth:
        print("set ENDPOINT_TOKEN (clients send Authorization: Bearer <token>), or pass --no-auth", file=sys.stderr)
        return 2
    settings = json.loads((HERE / "endpoint.json").read_text())
    cells = settings.pop("cells", None) or [(HERE / "notebook_code.py").read_text()]
    state = settings.pop("state", None)
    if state is not None and args.reexecute:
        state, settings["reexecute_reason"] = None, "asked for (--reexecute)"
    if state is not None:
        state.update(path=str(HERE / state["path"]), allow_version_drift=args.allow_version_drift)
    spec = EndpointSpec(
        state=state,
        cells=cells, host=args.host, port=args.port,
        token_hash=None if args.no_auth else hashlib.sha256(token.encode()).hexdigest(),
        workers=args.workers, timeout=args.timeout, max_body=args.max_body, cwd=str(HERE), **settings,
    )
    os.chdir(HERE)
    return serve_standalone(spec)


if __name__ == "__main__":
    sys.exit(main())
'''
