"""What an endpoint process serves and how: written to a JSON file the process reads at start."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_TIMEOUT = 30.0  # seconds a request may take
DEFAULT_MAX_BODY = 10 * 1024 * 1024  # bytes


@dataclass
class EndpointSpec:
    """One endpoint: the notebook code, the form, and the HTTP settings.

    ``mode`` is ``function`` (``POST /<function>`` calls the notebook's function with the JSON
    body as keyword arguments) or ``cells`` (Kernel Gateway notebook-http: ``# GET /path``
    annotated cells are the routes). ``token_hash`` is the SHA-256 of the bearer token, or None
    for an endpoint without auth.
    """

    name: str
    notebook: str  # the notebook's project path (for messages and headers)
    ref: str | None  # the run served (train.ipynb@v5), or None for the notebook file as it is
    cells: list[str]  # the code cells' sources, parameters injected, in order
    mode: str = "function"
    function: str | None = None
    host: str = "127.0.0.1"
    port: int = 8500
    token_hash: str | None = None
    workers: int = 1
    timeout: float = DEFAULT_TIMEOUT
    max_body: int = DEFAULT_MAX_BODY
    cwd: str = "."
    reuse_port: bool = False  # a redeploy binds the port while the old process still serves
    metadata: dict[str, Any] = field(default_factory=dict)
    # the run's captured state to load instead of running the cells (``state.load_served_state``
    # settings: path, sha256, packages, allow_version_drift, label), or None: run the cells, and why
    state: dict[str, Any] | None = None
    reexecute_reason: str | None = None

    @property
    def serves(self) -> str:
        """``state`` (the run's captured objects) or ``reexecution`` (the cells run at start)."""
        return "state" if self.state is not None else "reexecution"

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=1))
        return path

    @classmethod
    def read(cls, path: Path) -> "EndpointSpec":
        return cls(**json.loads(path.read_text()))
