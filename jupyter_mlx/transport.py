"""How the notebook doors (``%mlx``, ``jupyter_mlx.run()``, the widgets) reach the run service.

Two transports behind one small interface, both speaking the REST API's JSON:

- ``ServerTransport``: the jupyter_mlx service of a running Jupyter server that serves this
  project, over REST with the server's token, so runs show in its panel and share its queue;
- ``LocalTransport``: a ``RunService`` in this process, when no such server runs.

``connect()`` picks one (``$JUPYTER_MLX_TRANSPORT`` = ``server`` or ``local`` forces it).
"""
from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Protocol

from .errors import HTTP_STATUS, MLXError

TRANSPORT_ENV = "JUPYTER_MLX_TRANSPORT"
PROBE_TIMEOUT = 10.0  # a server whose root holds the project, busy starting: worth waiting for
REQUEST_TIMEOUT = 120.0


@dataclass
class ComparisonResult:
    """A comparison as JSON (``comparison.schema.json``), with its full HTML report on demand."""

    data: dict[str, Any]
    report: Callable[[], str]
    comparison: Any = None  # the ``Comparison`` object, in-process only


class Transport(Protocol):
    """What every door needs of the service; runs and sweeps are their REST JSON."""

    kind: str  # "server" or "local"

    def describe(self) -> str: ...
    def submit(self, notebook: str, parameters: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]: ...
    def sweep(self, notebook: str, spec: dict[str, Any], options: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]: ...
    def get_run(self, ref: str) -> dict[str, Any]: ...
    def list_runs(self, notebook: str | None, status: str | None, limit: int, sweep_id: str | None,
                  filter: str | None = None) -> list[dict[str, Any]]: ...
    def cancel(self, target: str, kind: str | None = None) -> list[dict[str, Any]]: ...
    def executed_notebook(self, run_id: str) -> dict[str, Any]: ...
    def run_files(self, run_id: str) -> dict[str, Any]: ...
    def artifact(self, run_id: str, path: str) -> bytes: ...
    def compare(self, a: str, b: str, overrides: dict[str, Any]) -> ComparisonResult: ...
    def deploy(self, target: str, options: dict[str, Any]) -> dict[str, Any]: ...
    def link(self, run: dict[str, Any]) -> str: ...


# -- in-process ------------------------------------------------------------------------------------
class LocalTransport:
    """A ``RunService`` of the project in this process; its queue runs the runs on threads here."""

    kind = "local"

    def __init__(self, root: Path, why: str = "no Jupyter server for this project") -> None:
        from .config import MLXConfig, load_file_config
        from .service import RunService

        self.root = root
        self.why = why
        self.service = RunService(root, MLXConfig(config=load_file_config(root)))

    def describe(self) -> str:
        return f"in-process ({self.why}; project {self.root})"

    def submit(self, notebook: str, parameters: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
        return self.service.submit(notebook, parameters, base=Path.cwd(), **options).to_json()

    def sweep(self, notebook: str, spec: dict[str, Any], options: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        confirm = bool(options.pop("confirm", False))
        sweep, runs = self.service.sweep(notebook, spec, confirm=confirm, base=Path.cwd(), **options)
        return sweep.to_json(), [run.to_json() for run in runs]

    def get_run(self, ref: str) -> dict[str, Any]:
        return self.service.get_run(ref, base=Path.cwd()).to_json()

    def list_runs(self, notebook: str | None, status: str | None, limit: int, sweep_id: str | None,
                  filter: str | None = None) -> list[dict[str, Any]]:
        terms = {"filter": filter} if filter else {}
        page = self.service.list_runs(notebook, status, limit, 0, base=Path.cwd(), sweep_id=sweep_id, **terms)
        return [run.to_json() for run in page.runs]

    def cancel(self, target: str, kind: str | None = None) -> list[dict[str, Any]]:
        return [run.to_json() for run in self.service.cancel(target, base=Path.cwd(), kind=kind)]

    def executed_notebook(self, run_id: str) -> dict[str, Any]:
        return self.service.executed_notebook(run_id)

    def run_files(self, run_id: str) -> dict[str, Any]:
        return self.service.run_files(run_id)

    def artifact(self, run_id: str, path: str) -> bytes:
        return b"".join(self.service.artifact(run_id, path)[1])

    def compare(self, a: str, b: str, overrides: dict[str, Any]) -> ComparisonResult:
        from .diff.report import report_html

        comparison = self.service.compare(a, b, overrides, base=Path.cwd(), anywhere=True)
        return ComparisonResult(comparison.to_json(), lambda: report_html(comparison), comparison)

    def deploy(self, target: str, options: dict[str, Any]) -> dict[str, Any]:
        return self.service.endpoints.deploy(target, base=Path.cwd(), **options).to_json()

    def link(self, run: dict[str, Any]) -> str:
        return f"jupyter mlx show {run['ref']}"

    def close(self) -> None:
        self.service.close()


# -- a Jupyter server, over REST ---------------------------------------------------------------------
@dataclass(frozen=True)
class ServerInfo:
    """A running Jupyter server, from its ``jpserver-*.json`` runtime file."""

    url: str  # with the base URL and a trailing slash
    token: str
    root: Path
    pid: int


class ServerTransport:
    """The jupyter_mlx REST API of a running Jupyter server (``/mlx/...``), with its token."""

    kind = "server"

    def __init__(self, server: ServerInfo) -> None:
        self.server = server

    def describe(self) -> str:
        return f"via Jupyter server {self.server.url} (project {self.server.root})"

    # -- requests --
    def request(self, method: str, path: str, params: dict[str, Any] | None = None,
                body: dict[str, Any] | None = None, raw: bool = False, timeout: float = REQUEST_TIMEOUT,
                binary: bool = False) -> Any:
        """``METHOD /mlx/<path>``: the JSON answer (``raw``: the text, ``binary``: the bytes); an error
        answer raises ``MLXError``."""
        import urllib.error
        import urllib.parse
        import urllib.request

        query = {k: v for k, v in (params or {}).items() if v is not None}
        url = self.server.url + "mlx/" + path + ("?" + urllib.parse.urlencode(query, doseq=True) if query else "")
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        if self.server.token:
            request.add_header("Authorization", f"token {self.server.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                content = response.read()
        except urllib.error.HTTPError as exc:
            raise _error_of(exc) from None
        except (urllib.error.URLError, OSError) as exc:
            raise MLXError("backend_unavailable", f"the Jupyter server at {self.server.url} does not answer ({exc})") from None
        if binary:
            return content
        text = content.decode("utf-8")
        if raw:
            return text
        return json.loads(text) if text else None

    # -- paths: the server resolves notebooks against its project root, not our cwd --
    def project_path(self, name: str) -> str:
        """A notebook path typed here, relative to the server's project root."""
        path = (Path.cwd() / name).resolve()
        try:
            return path.relative_to(self.server.root).as_posix()
        except ValueError:
            raise MLXError("invalid_path", f"{name} is outside the Jupyter server's project {self.server.root}") from None

    def project_ref(self, ref: str) -> str:
        """``train.ipynb@v3`` typed here, with the notebook made project-relative when the file is here."""
        from .refs import is_run_id

        if is_run_id(ref):
            return ref
        if "@" not in ref:
            return self.project_path(ref)
        notebook, _, version = ref.rpartition("@")
        if (Path.cwd() / notebook).is_file():
            return f"{self.project_path(notebook)}@{version}"
        return ref

    # -- the interface --
    def submit(self, notebook: str, parameters: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
        body = {"notebook": self.project_path(notebook), "parameters": parameters, **_launch_fields(options)}
        return self.request("POST", "runs", body=body)

    def sweep(self, notebook: str, spec: dict[str, Any], options: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        confirm = bool(options.pop("confirm", False))
        body = {"notebook": self.project_path(notebook), **spec, "confirm": confirm, **_launch_fields(options)}
        answer = self.request("POST", "sweeps", body=body)
        return answer["sweep"], answer["runs"]

    def get_run(self, ref: str) -> dict[str, Any]:
        from .refs import parse_ref

        ref = self.project_ref(ref)
        parsed = parse_ref(ref)
        if parsed.run_id is not None:
            return self.request("GET", f"runs/{parsed.run_id}")
        offset = 0
        while True:  # newest first; versions are never reused
            page = self.request("GET", "runs", {"notebook": parsed.notebook, "limit": 500 if parsed.version else 1,
                                                "offset": offset})
            for run in page["runs"]:
                if parsed.version is None or run["version"] == parsed.version:
                    return run
            offset += len(page["runs"])
            if not page["runs"] or offset >= page["total"] or parsed.version is None:
                raise MLXError("not_found", f"no run {ref}" if parsed.version else f"{parsed.notebook} has no runs")

    def list_runs(self, notebook: str | None, status: str | None, limit: int, sweep_id: str | None,
                  filter: str | None = None) -> list[dict[str, Any]]:
        if notebook and (Path.cwd() / notebook).is_file():
            notebook = self.project_path(notebook)
        query = {"notebook": notebook, "status": status, "limit": limit, "sweep": sweep_id, "filter": filter}
        return self.request("GET", "runs", query)["runs"]

    def cancel(self, target: str, kind: str | None = None) -> list[dict[str, Any]]:
        from .refs import is_run_id

        if kind == "sweep" or (kind is None and is_run_id(target) and self._is_sweep(target)):
            return self.request("POST", f"sweeps/{target}/cancel")["runs"]
        run = self.get_run(target)
        return self.request("POST", f"runs/{run['id']}/cancel")["runs"]

    def _is_sweep(self, target: str) -> bool:
        try:
            self.request("GET", f"runs/{target}")
        except MLXError as exc:
            if exc.code == "not_found":
                return True
            raise
        return False

    def executed_notebook(self, run_id: str) -> dict[str, Any]:
        return self.request("GET", f"runs/{run_id}/notebook")

    def run_files(self, run_id: str) -> dict[str, Any]:
        return self.request("GET", f"runs/{run_id}/artifacts")

    def artifact(self, run_id: str, path: str) -> bytes:
        from urllib.parse import quote

        return self.request("GET", f"runs/{run_id}/artifacts/{quote(path)}", binary=True)

    def compare(self, a: str, b: str, overrides: dict[str, Any]) -> ComparisonResult:
        params: dict[str, Any] = {"a": self.project_ref(a), "b": self.project_ref(b)}
        names = {"rtol": "rtol", "atol": "atol", "image_changed_fraction": "image_tolerance", "ignore_patterns": "ignore",
                 "ignore_artifacts": "ignore_artifact", "ignore_state": "ignore_state"}
        for option, value in overrides.items():
            if option not in names:
                raise MLXError("invalid_request", f"the compare option {option!r} cannot be sent to a Jupyter server")
            params[names[option]] = value
        data = self.request("GET", "compare", params)
        return ComparisonResult(data, lambda: self.request("GET", "compare", {**params, "format": "html"}, raw=True))

    def deploy(self, target: str, options: dict[str, Any]) -> dict[str, Any]:
        target = self.project_ref(target) if "@" in target or (Path.cwd() / target).is_file() else target
        body = {"target": target, **{k: v for k, v in options.items() if v is not None}}
        return self.request("POST", "endpoints", body=body)

    def link(self, run: dict[str, Any]) -> str:
        return f"{self.server.url}lab/tree/{run['notebook']}"


def _launch_fields(options: dict[str, Any]) -> dict[str, Any]:
    """``RunService.submit`` keyword arguments as the REST launch body's fields."""
    names = {"backend": "backend", "tags": "tags", "kernel_name": "kernel", "cell_timeout": "cell_timeout",
             "run_timeout": "timeout", "backend_token": "gateway_token", "in_place": "in_place"}
    body = {names[k]: v for k, v in options.items() if k in names and v not in (None, [], ())}
    address = options.get("backend_address")
    if address:
        body["scheduler" if options.get("backend") == "dask" else "gateway_url"] = address
    unknown = set(options) - set(names) - {"backend_address"}
    if unknown:
        raise MLXError("invalid_request", f"unknown run option(s) {', '.join(sorted(unknown))}")
    return body


def _error_of(exc: Any) -> MLXError:
    """The server's one-shape JSON error as an ``MLXError``."""
    try:
        body = json.loads(exc.read().decode("utf-8"))
        code, message = body["error"], body["message"]
    except Exception:
        code, message = "", f"HTTP {exc.code} {exc.reason}"
    if code not in HTTP_STATUS:
        code = "not_found" if exc.code == 404 else "invalid_request" if 400 <= exc.code < 500 else "execution_error"
        if exc.code in (401, 403):
            message = f"the Jupyter server refused the request ({message}): is its token valid?"
    return MLXError(code, message)


# -- finding a server --------------------------------------------------------------------------------
def running_servers() -> list[ServerInfo]:
    """Jupyter servers of this user that are alive, from their runtime files (as
    ``jupyter_server.serverapp.list_running_servers`` reads them, without importing the server)."""
    from jupyter_core.paths import jupyter_runtime_dir

    from .processes import pid_alive

    found = []
    for path in sorted(Path(jupyter_runtime_dir()).glob("jpserver-*.json")):
        try:
            info = json.loads(path.read_text())
            server = ServerInfo(info["url"].rstrip("/") + "/", info.get("token") or "",
                                Path(info["root_dir"]).expanduser().resolve(), int(info["pid"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if pid_alive(server.pid):
            found.append(server)
    return found


def find_server(folder: Path) -> ServerInfo | None:
    """The running Jupyter server with jupyter_mlx whose root holds ``folder``: the one that started
    this kernel first, else the one with the deepest root."""
    parent = os.environ.get("JPY_PARENT_PID")
    candidates = [s for s in running_servers() if s.root == folder or s.root in folder.parents]
    candidates.sort(key=lambda s: (str(s.pid) != parent, -len(s.root.parts)))
    for server in candidates:
        try:
            info = ServerTransport(server).request("GET", "info", {}, timeout=PROBE_TIMEOUT)
        except MLXError:  # not answering, or jupyter_mlx not enabled there
            continue
        # the project may be set apart from the server's root (MLXExtensionApp.root_dir)
        project = Path(info["root"]).resolve()
        if project == folder or project in folder.parents:
            return replace(server, root=project)
    return None


_lock = threading.Lock()
_local: dict[Path, LocalTransport] = {}


def connect(root: str | Path | None = None, mode: str | None = None) -> Transport:
    """The transport for the project holding the current folder (or ``root``).

    ``mode``: ``"server"`` (fail without one), ``"local"``, or ``None``/``"auto"`` (a server when one
    serves the project, else in-process); default ``$JUPYTER_MLX_TRANSPORT``.
    """
    from .config import find_project_root

    mode = (mode or os.environ.get(TRANSPORT_ENV) or "auto").lower()
    if mode not in ("auto", "server", "local"):
        raise MLXError("invalid_request", f"transport {mode!r}: use server, local or auto")
    folder = Path(root).expanduser().resolve() if root else Path.cwd().resolve()
    if mode != "local":
        server = find_server(folder)
        if server is not None:
            return ServerTransport(server)
        if mode == "server":
            raise MLXError("backend_unavailable", f"no running Jupyter server with jupyter_mlx serves {folder}")
    project = folder if root else find_project_root(folder)
    with _lock:
        transport = _local.get(project)
        if transport is None:
            transport = _local[project] = LocalTransport(project)
            if len(_local) == 1:
                _close_at_exit()
        transport.why = "as asked" if mode == "local" else "no Jupyter server for this project"
        return transport


def close_local() -> None:
    """Stop the in-process services (their queued and running runs are recorded as cancelled)."""
    with _lock:
        transports = list(_local.values())
        _local.clear()
    for transport in transports:
        transport.close()


def _close_at_exit() -> None:
    """Close the services when the interpreter exits, before ``concurrent.futures`` stops its
    threads (the kernel pools shut their kernels down on them): the hook it uses itself."""
    register = getattr(threading, "_register_atexit", None)
    if register is None:  # pragma: no cover - not CPython >= 3.9
        import atexit

        atexit.register(close_local)
    else:
        register(close_local)
