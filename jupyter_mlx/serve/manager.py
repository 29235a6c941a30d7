"""Managed endpoints: named, deployed from a run version, redeployed, rolled back, stopped.

Each endpoint has a folder ``.mlx/endpoints/<name>/``: ``record.json`` (what was deployed, in
order, which one serves, the port and the token's hash), ``spec.json`` (what its supervisor serves
now), ``status.json`` (written by the supervisor), ``stats-*.bin`` (the serving version's request
counts) and ``endpoint.log``. The supervisor is a detached process: endpoints outlive the CLI call
and JupyterLab; ``restore`` (at server start) restarts those that should run and do not.

The manager serves what its caller resolved: ``resolve(target, base)`` turns ``train.ipynb@v5``
(or a notebook file) into the ``ServedCode``; ``RunService.endpoints`` hands it its own.
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
from typing import Any, Callable, Iterator

from ..errors import MLXError
from ..ports import free_port
from ..processes import pid_alive
from .base import hash_token, new_token
from .exposure import exposure_warning, is_loopback
from .source import ServedCode, check_servable, describe_source, served_from, state_settings, write_state
from .spec import DEFAULT_MAX_BODY, DEFAULT_TIMEOUT, EndpointSpec
from .stats import read_stats

Resolver = Callable[[str, Path | None], ServedCode]  # (target, base folder) -> the code to serve

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
    reexecute: bool = False  # asked to re-execute the notebook rather than load the run's state
    allow_version_drift: bool = False
    serves: str = "reexecution"  # or "state": the run's captured state (see source.served_from)
    reexecute_reason: str | None = None
    state_hash: str | None = None

    def describe(self) -> str:
        """Where its function comes from: the run's state, or a re-execution and why."""
        return describe_source(self.serves, self.state_hash, self.reexecute_reason)


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
    allow_public_unauthenticated: bool = False  # confirmed: beyond loopback without a token

    @property
    def deployment(self) -> Deployment:
        return self.history[self.current]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def exposure_warning(self) -> str | None:
        """What to warn about when it listens beyond loopback (None on loopback)."""
        return exposure_warning(self.name, self.host, self.port, self.token_hash is not None)

    def to_json(self, status: dict[str, Any] | None = None) -> dict[str, Any]:
        data = asdict(self)
        data.pop("token_hash")
        data.update(url=self.url, auth=self.token_hash is not None, status=status,
                    serving={**asdict(self.deployment), "source": self.deployment.describe()})
        return data


@dataclass
class Deployed:
    record: EndpointRecord
    token: str | None  # shown once, when the endpoint is created

    @property
    def warning(self) -> str | None:
        """Said by every door (stderr, the server log, the answer) when it listens beyond loopback."""
        return self.record.exposure_warning()

    def to_json(self) -> dict[str, Any]:
        return {**self.record.to_json(), "token": self.token, "warning": self.warning}


class EndpointManager:
    """The named endpoints of one project, kept in ``folder``; ``root`` is the project root
    (supervisors run there), ``resolve`` gives the code a target names."""

    def __init__(self, folder: Path, root: Path, resolve: Resolver) -> None:
        self.folder = folder
        self.root = root
        self.resolve = resolve

    # -- public ------------------------------------------------------------------------------
    def deploy(self, target: str, *, function: str | None = None, cells: bool = False, name: str | None = None,
               host: str = "127.0.0.1", port: int | None = None, token: str | None = None, no_auth: bool = False,
               allow_public_unauthenticated: bool = False, workers: int = 1, timeout: float = DEFAULT_TIMEOUT,
               max_body: int = DEFAULT_MAX_BODY, base: Path | None = None, reexecute: bool = False,
               allow_version_drift: bool = False) -> Deployed:
        """Serve ``target`` (``train.ipynb@v5``, or a notebook file) under ``name``: a new endpoint, or
        a zero-downtime redeploy of an existing one (its port and token stay). The function comes
        from the run's captured state when it holds it (``reexecute``: run the notebook instead;
        ``allow_version_drift``: load a state captured with other package versions). Listening
        beyond loopback without a token needs ``allow_public_unauthenticated``."""
        check_endpoint_settings(workers, timeout, max_body)
        check_exposure(host, not no_auth, allow_public_unauthenticated)
        mode = endpoint_mode(function, cells)
        code = self.resolve(target, base)
        check_servable(code, mode, function)
        served_from(code, mode, function, reexecute)  # a failed run is refused before anything is written
        name = name or _default_name(code, function)
        _check_name(name)
        with self._locked(name, create=True):
            record = self._read(name)
            deployment = Deployment(code.notebook, code.ref, code.run_id, mode, function, time.time(), reexecute,
                                    allow_version_drift)
            if record is not None and record.desired == "running" and self._alive(record):
                record.history = record.history[: record.current + 1] + [deployment]
                record.current = len(record.history) - 1
                self._swap(record, code)
                return Deployed(record, None)
            issued = None if no_auth else (token or new_token())
            known = record is not None
            record = EndpointRecord(name, host, port or free_port(host), hash_token(issued) if issued else None,
                                    workers, timeout, max_body, [*(record.history if record else []), deployment],
                                    allow_public_unauthenticated=allow_public_unauthenticated and no_auth)
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
            code = self.resolve(previous.ref or previous.notebook, None)
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
            if not (pid and pid_alive(pid)):  # its copy of the run's state: copied again if it starts again
                for path in (self.folder / name).glob("state-*.pkl"):
                    path.unlink(missing_ok=True)
            return record

    def try_request(self, name: str, *, method: str = "POST", path: str, body: Any = None,
                    token: str | None = None) -> dict[str, Any]:
        """One request to the endpoint ``name`` (see ``try_request.try_endpoint``)."""
        from .try_request import try_endpoint

        return try_endpoint(self, name, method=method, path=path, body=body, token=token)

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
            result["health"] = self._health(record, status)
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
            with self._locked(name):
                record = self._read(name)
                if record is None or record.desired != "running" or self._alive(record):
                    continue
                try:
                    deployment = record.deployment
                    self._start(record, self.resolve(deployment.ref or deployment.notebook, None))
                except MLXError as exc:  # its status says why (jupyter mlx endpoints shows it)
                    if not self._status(name).get("error"):
                        self._write_status(name, {"state": "failed", "error": exc.message, "since": time.time()})
                    continue
                restarted.append(name)
        return restarted

    # -- internals ---------------------------------------------------------------------------
    def _spec(self, record: EndpointRecord, code: ServedCode) -> EndpointSpec:
        """The spec of the deployment that serves; the run's state (when it serves from it) copied
        from the blob store next to the endpoint, its hash checked."""
        deployment = record.deployment
        source = served_from(code, deployment.mode, deployment.function, deployment.reexecute)
        deployment.serves, deployment.reexecute_reason = source.serves, source.reason
        deployment.state_hash = source.state.sha256 if source.state else None
        state = None
        if source.state is not None and source.state.sha256:
            path = self.folder / record.name / f"state-{source.state.sha256[:16]}.pkl"
            if not path.is_file():
                write_state(source.state, code.label, path)
            state = state_settings(source.state, code.label, path, deployment.allow_version_drift)
        return EndpointSpec(
            name=record.name, notebook=code.notebook, ref=code.ref, cells=code.cells, mode=deployment.mode,
            function=deployment.function, host=record.host, port=record.port, token_hash=record.token_hash,
            workers=record.workers, timeout=record.timeout, max_body=record.max_body,
            cwd=str((self.root / code.notebook).parent), state=state, reexecute_reason=source.reason,
        )

    def _drop_other_states(self, record: EndpointRecord) -> None:
        """Remove the state files of versions that no longer serve (each was loaded at its start)."""
        keep = record.deployment.state_hash
        for path in (self.folder / record.name).glob("state-*.pkl"):
            if keep is None or not path.name.startswith(f"state-{keep[:16]}"):
                path.unlink(missing_ok=True)

    def _start(self, record: EndpointRecord, code: ServedCode) -> None:
        check_exposure(record.host, record.token_hash is not None, record.allow_public_unauthenticated)
        folder = self.folder / record.name
        record.desired = "running"
        self._spec(record, code).write(folder / "spec.json")
        for stale in [folder / "status.json", *folder.glob("stats-*.bin"), *folder.glob("version-*.json")]:
            stale.unlink(missing_ok=True)  # left by a supervisor that was killed: none runs now
        self._write(record)
        subprocess.Popen([sys.executable, "-m", "jupyter_mlx.serve.supervisor", str(folder)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True, cwd=str(self.root))
        status = self._wait_for_status(record.name, lambda s: s.get("state") in ("serving", "failed"))
        if status.get("state") != "serving":
            raise MLXError("execution_error", f"endpoint {record.name} did not start: {status.get('error')}")
        self._drop_other_states(record)

    def _swap(self, record: EndpointRecord, code: ServedCode) -> None:
        folder = self.folder / record.name
        before = self._status(record.name).get("since", 0)
        self._spec(record, code).write(folder / "spec.json")
        os.kill(self._status(record.name)["supervisor_pid"], signal.SIGHUP)
        status = self._wait_for_status(record.name, lambda s: s.get("since", 0) > before and s.get("state") == "serving")
        if status.get("error"):
            raise MLXError("execution_error", f"endpoint {record.name}: {status['error']}")
        self._write(record)
        self._drop_other_states(record)

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

    def _write_status(self, name: str, status: dict[str, Any]) -> None:
        temporary = self.folder / name / "status.json.tmp"
        temporary.write_text(json.dumps(status))
        temporary.replace(self.folder / name / "status.json")

    def _health(self, record: EndpointRecord, status: dict[str, Any]) -> dict[str, Any] | None:
        """The endpoint answers its ``/healthz`` probe; its request counts come from the stats file
        its workers map (the probe tells them only to its token, which is not kept here)."""
        if not _answers_health_probe(record):
            return None
        stats = read_stats(self.folder / record.name / status["stats"]) if status.get("stats") else None
        return {"status": "ok", **(stats or {})}

    def _read(self, name: str) -> EndpointRecord | None:
        path = self.folder / name / "record.json"
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        data["history"] = [Deployment(**d) for d in data["history"]]
        return EndpointRecord(**data)  # a record written before a field existed takes its default

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
    def _locked(self, name: str, create: bool = False) -> Iterator[None]:
        """One change to an endpoint at a time, across processes. Without ``create``, an unknown
        name is ``not_found`` before anything is written (no folder, no lock file)."""
        folder = self.folder / name
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        elif not (folder / "record.json").exists():
            raise MLXError("not_found", f"no endpoint named {name}")
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


def check_exposure(host: str, authenticated: bool, confirmed: bool) -> None:
    """Listening beyond loopback without a token only when the caller said so, by its own name."""
    if authenticated or confirmed or is_loopback(host):
        return
    raise MLXError("invalid_request", f"refusing to serve on {host or 'every interface'} without a token: anyone "
                   "who can reach this machine could call it. Keep the token (drop --no-auth / no_auth), or listen "
                   "on 127.0.0.1, or confirm with --allow-public-unauthenticated "
                   "(REST: \"allow_public_unauthenticated\": true)")


def check_endpoint_settings(workers: int, timeout: float, max_body: int) -> None:
    if workers < 1 or workers > 64:
        raise MLXError("invalid_request", f"workers must be between 1 and 64, not {workers}")
    if timeout <= 0:
        raise MLXError("invalid_request", f"timeout must be positive, not {timeout}")
    if max_body < 1:
        raise MLXError("invalid_request", f"max body size must be positive, not {max_body}")


def _wait_until(condition: Any, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return bool(condition())


def _answers_health_probe(record: EndpointRecord) -> bool:
    import http.client

    from .try_request import loopback_address

    try:
        connection = http.client.HTTPConnection(loopback_address(record.host), record.port, timeout=2)
        try:
            connection.request("GET", "/healthz")
            response = connection.getresponse()
            return response.status == 200 and json.loads(response.read()).get("status") == "ok"
        finally:
            connection.close()
    except (OSError, ValueError, AttributeError):
        return False
