"""Loading a run's captured state into an endpoint process: once, at start, before the workers fork.

The state is a file the run store wrote (``jupyter mlx deploy`` copies the run's blob next to the
endpoint; an exported service carries it): never anything a request sent. Before unpickling, its
hash is checked against the run's record, and the versions of the packages its objects come from
against this environment: a major or minor version that differs refuses the state (naming the
packages) unless drift is allowed. Part of the endpoint runtime that ``jupyter mlx export`` copies:
standard library only, besides cloudpickle for what the state holds.
"""
from __future__ import annotations

import hashlib
import importlib
import pickle
import platform
import sys
from pathlib import Path
from typing import Any

from .setup import SetupError


def load_state(data: bytes) -> dict[str, Any]:
    """The captured objects by name, ready to be a namespace (modules imported again). Only ever
    called with a state from the run store: unpickling runs code."""
    import cloudpickle  # noqa: F401 (objects pickled by value need it importable)

    state = pickle.loads(data)
    namespace = {name: importlib.import_module(module) for name, module in state["modules"].items()}
    namespace.update(state["objects"])
    return namespace


def installed_version(distribution: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(version.split("+")[0].split(".")[:2])


def version_drift(packages: dict[str, str]) -> list[str]:
    """The packages of the state whose major.minor version differs here (or that are missing),
    as ``name 1.5.1 (state) vs 1.4.2 (here)``."""
    drift = []
    for name, version in sorted(packages.items()):
        here = installed_version(name)
        if here is None:
            drift.append(f"{name} {version} (state) is not installed here")
        elif _major_minor(here) != _major_minor(version):
            drift.append(f"{name} {version} (state) vs {here} (here)")
    return drift


def environment(packages: dict[str, str]) -> dict[str, Any]:
    """Where a state was loaded: this Python, and the versions here of the state's packages."""
    return {"python": platform.python_version(), "executable": sys.executable,
            "packages": {name: installed_version(name) for name in sorted(packages)}}


def load_served_state(settings: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the namespace, the environment it was loaded into) of a spec's ``state``: ``path``,
    ``sha256``, ``packages``, ``allow_version_drift``, ``label`` (the run, for messages).
    ``SetupError`` (one line, with the remedy) when the file is missing, corrupted, or made with
    package versions this environment does not have."""
    label = settings.get("label") or "the run"
    path = Path(settings["path"])
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SetupError(f"the captured state of {label} cannot be read ({path}: {exc.strerror}): "
                         "serve with --reexecute to run its source instead") from None
    if hashlib.sha256(data).hexdigest() != settings["sha256"]:
        raise SetupError(f"the captured state of {label} is corrupted (its hash is not the run's): "
                         "serve with --reexecute to run its source instead")
    packages = settings.get("packages") or {}
    drift = version_drift(packages)
    if drift and not settings.get("allow_version_drift"):
        raise SetupError(f"the state of {label} was captured with other package versions: {'; '.join(drift)}. "
                         "Install those versions, or serve with --allow-version-drift (or --reexecute)")
    try:
        namespace = load_state(data)
    except Exception as exc:  # noqa: BLE001 - a class that moved, a module gone: say which
        raise SetupError(f"the captured state of {label} cannot be loaded here: {type(exc).__name__}: {exc}; "
                         "serve with --reexecute to run its source instead") from None
    return namespace, {**environment(packages), "drift": drift}
