"""``jupyter mlx serve``: one endpoint in the foreground, its supervisor in this process, until
Ctrl-C. The same checks as a managed deployment, made before anything runs."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Callable

from ..errors import MLXError
from .base import hash_token, new_token
from .manager import check_endpoint_settings, check_exposure, endpoint_mode
from .source import ServedCode, check_servable, served_from, state_settings, write_state
from .spec import DEFAULT_MAX_BODY, DEFAULT_TIMEOUT, EndpointSpec

DEFAULT_PORT = 8500


def serve_in_foreground(code: ServedCode, *, root: Path, announce: Callable[[str], None], function: str | None = None,
                        host: str = "127.0.0.1", port: int | None = None, token: str | None = None,
                        no_auth: bool = False, allow_public_unauthenticated: bool = False, workers: int = 1,
                        timeout: float = DEFAULT_TIMEOUT, max_body: int = DEFAULT_MAX_BODY, reexecute: bool = False,
                        allow_version_drift: bool = False) -> None:
    """Serve ``code`` until SIGINT/SIGTERM, from the run's captured state when it holds the
    function; ``MLXError`` when it cannot start (after announcing the end of its log, where the
    set-up's failure is)."""
    from .supervisor import run

    check_endpoint_settings(workers, timeout, max_body)
    check_exposure(host, not no_auth, allow_public_unauthenticated)
    mode = endpoint_mode(function, False)
    check_servable(code, mode, function)
    source = served_from(code, mode, function, reexecute)
    issued = None if no_auth else (token or new_token())
    with tempfile.TemporaryDirectory(prefix="mlx-serve-") as temporary:
        folder = Path(temporary)
        state = None
        if source.state is not None:
            path = write_state(source.state, code.label, folder / "state.pkl")
            state = state_settings(source.state, code.label, path, allow_version_drift)
        EndpointSpec(
            name=Path(code.notebook).stem, notebook=code.notebook, ref=code.ref, cells=code.cells, mode=mode,
            function=function, host=host, port=DEFAULT_PORT if port is None else port,
            token_hash=hash_token(issued) if issued else None, workers=workers, timeout=timeout,
            max_body=max_body, cwd=str((root / code.notebook).parent), state=state, reexecute_reason=source.reason,
        ).write(folder / "spec.json")
        announce(f"serving {code.label} ({'POST /' + function if function else 'annotated cells'}); "
                 f"{source.describe()}; Ctrl-C stops")
        if issued:
            announce(f"token (shown once): {issued}")
        if run(folder, echo=True):
            log = folder / "endpoint.log"
            if log.exists():  # the set-up's output and traceback, before the one-line error
                announce(log.read_text(errors="replace")[-2000:].rstrip())
            error = json.loads((folder / "status.json").read_text()).get("error")
            raise MLXError("execution_error", error or "the endpoint did not start")
