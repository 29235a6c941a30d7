"""Managed endpoints: named, deployed from a run version, redeployed, rolled back, stopped.

Each endpoint has a folder ``.mlx/endpoints/<name>/``: ``record.json`` (what was deployed, in
order, which one serves, the port and the token's hash), ``spec.json`` (what its supervisor serves
now), ``status.json`` (written by the supervisor) and ``endpoint.log``. The supervisor is a
detached process: endpoints outlive the CLI call and JupyterLab; ``restore`` (at server start)
restarts those that should run and do not.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from ..config import STORE_DIRNAME
from ..errors import MLXError
from ..processes import pid_alive
from .base import hash_token, new_token
from .source import ServedCode, check_servable, served_code
from .spec import DEFAULT_MAX_BODY, DEFAULT_TIMEOUT, EndpointSpec

if TYPE_CHECKING:
    from ..service import RunService

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
START_TIMEOUT = 600.0


@dataclass
class Deployment:
    """One version deployed under a name."""

    notebook: str
    ref: str | None
    run_id: str | None
    mode: str
    function: str | None
    deployed_at: float


@dataclass
class EndpointRecord:
    name: str
    host: str
    port: int
    token_hash: str | None
    workers: int
    timeout: float
    max_body: int
    history: list[Deployment] = field(default_factory=list)
    current: int = -1  # index in history of the version that serves
    desired: str = "running"  # or "stopped"

    @property
    def deployment(self) -> Deployment:
        return self.history[self.current]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def to_json(self, status: dict[str, Any] | None = None) -> dict[str, Any]:
        data = asdict(self)
        data.pop("token_hash")
        data.update(url=self.url, auth=self.token_hash is not None, serving=asdict(self.deployment), status=status)
        return data


@dataclass
class Deployed:
    record: EndpointRecord
    token: str | None  # shown once, when the endpoint is created


class EndpointManager:
    def __init__(self, service: "RunService") -> None:
        self.service = service
        self.folder = service.project.root / STORE_DIRNAME / "endpoints"

    # -- public ------------------------------------------------------------------------------
    def deploy(self, target: str, *, function: str | None = None, cells: bool = False, name: str | None = None,
               host: str = "127.0.0.1", port: int | None = None, token: str | None = None, no_auth: bool = False,
               workers: int = 1, timeout: float = DEFAULT_TIMEOUT, max_body: int = DEFAULT_MAX_BODY,
               base: Path | None = None) -> Deployed:
        """Serve ``target`` (``train.ipynb@v5``, or a notebook file) under ``name``: a new endpoint, or
        a zero-downtime redeploy of an existing one (its port and token stay)."""
        mode = endpoint_mode(function, cells)
        code = served_code(self.service, target, base)
        check_servable(code, mode)
        name = name or _default_name(code, function)
        _check_name(name)
        check_endpoint_settings(workers, timeout, max_body)
        with self._locked(name):
            record = self._read(name)
            deployment = Deployment(code.notebook, code.ref, code.run_id, mode, function, time.time())
            if record is not None and record.desired == "running" and self._alive(record):
                record.history = record.history[: record.current + 1] + [deployment]
                record.current = len(record.history) - 1
                self._swap(record, code)
                return Deployed(record, None)
            issued = None if no_auth else (token or new_token())
            known = record is not None
            record = EndpointRecord(name, host, port or _free_port(host), hash_token(issued) if issued else None,
                                    workers, timeout, max_body, [*(record.history if record else []), deployment])
            record.current = len(record.history) - 1
            try:
                self._start(record, code)
            except MLXError:
                if known:  # keep its history, not running
                    record.desired = "stopped"
                    self._write(record)
                else:  # nothing was ever served under this name
                    shutil.rmtree(self.folder / name, ignore_errors=True)
                raise
            return Deployed(record, issued)

    def rollback(self, name: str) -> EndpointRecord:
        """Serve the version deployed before the current one again."""
        with self._locked(name):
            record = self._require(name)
            if record.current < 1:
                raise MLXError("conflict", f"endpoint {name} has no earlier version to roll back to")
            previous = record.history[record.current - 1]
            target = previous.ref or previous.notebook
            code = served_code(self.service, target)
            record.current -= 1
            if self._alive(record):
                self._swap(record, code)
            else:
                self._start(record, code)
            return record

    def stop(self, name: str) -> EndpointRecord:
        with self._locked(name):
            record = self._require(name)
            record.desired = "stopped"
            self._write(record)
            pid = self._status(name).get("supervisor_pid")
            if pid and pid_alive(pid):
                os.kill(pid, signal.SIGTERM)
                _wait_until(lambda: not pid_alive(pid), 20.0)
            return record

    def list(self) -> list[tuple[EndpointRecord, dict[str, Any]]]:
        """Every endpoint with its live status (and request stats when it serves)."""
        found = []
        for folder in sorted(self.folder.glob("*/record.json")):
            record = self._read(folder.parent.name)
            if record is not None:
                found.append((record, self.live_status(record)))
        return found

    def get(self, name: str) -> tuple[EndpointRecord, dict[str, Any]]:
        record = self._require(name)
        return record, self.live_status(record)

    def live_status(self, record: EndpointRecord) -> dict[str, Any]:
        status = self._status(record.name)
        alive = self._alive(record)
        state = status.get("state", "unknown") if alive else ("stopped" if record.desired == "stopped" else "down")
        result = {"state": state, "error": status.get("error")}
        if alive and state == "serving":
            result["health"] = _health(record)
        return result

    def logs(self, name: str, lines: int = 100) -> str:
        self._require(name)
        path = self.folder / name / "endpoint.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def restore(self) -> list[str]:
        """Restart the endpoints that should run but do not (after a reboot or a server restart)."""
        restarted = []
        for folder in sorted(self.folder.glob("*/record.json")):
            name = folder.parent.name
            try:
                with self._locked(name):
                    record = self._read(name)
                    if record is None or record.desired != "running" or self._alive(record):
                        continue
                    deployment = record.deployment
                    self._start(record, served_code(self.service, deployment.ref or deployment.notebook))
                    restarted.append(name)
            except MLXError:
                continue  # its status.json says why
        return restarted

    # -- internals ---------------------------------------------------------------------------
    def _spec(self, record: EndpointRecord, code: ServedCode) -> EndpointSpec:
        deployment = record.deployment
        return EndpointSpec(
            name=record.name, notebook=code.notebook, ref=code.ref, cells=code.cells, mode=deployment.mode,
            function=deployment.function, host=record.host, port=record.port, token_hash=record.token_hash,
            workers=record.workers, timeout=record.timeout, max_body=record.max_body,
            cwd=str((self.service.project.root / code.notebook).parent),
        )

    def _start(self, record: EndpointRecord, code: ServedCode) -> None:
        folder = self.folder / record.name
        record.desired = "running"
        self._spec(record, code).write(folder / "spec.json")
        (folder / "status.json").unlink(missing_ok=True)
        self._write(record)
        subprocess.Popen([sys.executable, "-m", "jupyter_mlx.serve.supervisor", str(folder)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True, cwd=str(self.service.project.root))
        status = self._wait_for_status(record.name, lambda s: s.get("state") in ("serving", "failed"))
        if status.get("state") != "serving":
            raise MLXError("execution_error", f"endpoint {record.name} did not start: {status.get('error')}")

    def _swap(self, record: EndpointRecord, code: ServedCode) -> None:
        folder = self.folder / record.name
        before = self._status(record.name).get("since", 0)
        self._spec(record, code).write(folder / "spec.json")
        os.kill(self._status(record.name)["supervisor_pid"], signal.SIGHUP)
        status = self._wait_for_status(record.name, lambda s: s.get("since", 0) > before and s.get("state") == "serving")
        if status.get("error"):
            raise MLXError("execution_error", f"endpoint {record.name}: {status['error']}")
        self._write(record)

    def _wait_for_status(self, name: str, done: Any) -> dict[str, Any]:
        status: dict[str, Any] = {}

        def check() -> bool:
            nonlocal status
            status = self._status(name)
            return bool(done(status))

        if not _wait_until(check, START_TIMEOUT):
            raise MLXError("execution_error", f"endpoint {name} did not answer within {START_TIMEOUT:g} s")
        return status

    def _alive(self, record: EndpointRecord) -> bool:
        pid = self._status(record.name).get("supervisor_pid")
        return bool(pid) and pid_alive(pid)

    def _status(self, name: str) -> dict[str, Any]:
        try:
            return json.loads((self.folder / name / "status.json").read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def _read(self, name: str) -> EndpointRecord | None:
        path = self.folder / name / "record.json"
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        data["history"] = [Deployment(**d) for d in data["history"]]
        return EndpointRecord(**data)

    def _require(self, name: str) -> EndpointRecord:
        record = self._read(name)
        if record is None:
            raise MLXError("not_found", f"no endpoint named {name}")
        return record

    def _write(self, record: EndpointRecord) -> None:
        folder = self.folder / record.name
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / "record.json.tmp"
        temporary.write_text(json.dumps(asdict(record), indent=1))
        temporary.replace(folder / "record.json")

    @contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        """One change to an endpoint at a time, across processes."""
        folder = self.folder / name
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield


def endpoint_mode(function: str | None, cells: bool) -> str:
    if function and cells:
        raise MLXError("invalid_request", "give --function or serve the annotated cells, not both")
    return "cells" if cells or not function else "function"


def _default_name(code: ServedCode, function: str | None) -> str:
    stem = Path(code.notebook).stem.lower()
    return re.sub(r"[^a-z0-9_-]+", "-", f"{stem}-{function}" if function else stem).strip("-")[:63] or "endpoint"


def _check_name(name: str) -> None:
    if not NAME.match(name):
        raise MLXError("invalid_request", f"invalid endpoint name {name!r}: lowercase letters, digits, - and _ (at most 63)")


def check_endpoint_settings(workers: int, timeout: float, max_body: int) -> None:
    if workers < 1 or workers > 64:
        raise MLXError("invalid_request", f"workers must be between 1 and 64, not {workers}")
    if timeout <= 0:
        raise MLXError("invalid_request", f"timeout must be positive, not {timeout}")
    if max_body < 1:
        raise MLXError("invalid_request", f"max body size must be positive, not {max_body}")


def _free_port(host: str) -> int:
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _wait_until(condition: Any, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return bool(condition())


def _health(record: EndpointRecord) -> dict[str, Any] | None:
    import http.client

    try:
        connection = http.client.HTTPConnection(record.host, record.port, timeout=2)
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        return json.loads(response.read()) if response.status == 200 else None
    except (OSError, ValueError):
        return None
