"""Where ``jupyter mlx run`` and ``sweep`` execute: through the Jupyter server that serves the
project (its queue, its warm kernels, its panel shows them live), or in this process.

The server is found as the magic finds it (``transport.find_server``); ``--server`` requires one,
``--local`` never uses one, ``$JUPYTER_MLX_TRANSPORT`` (``server``/``local``) sets the default.
Runs submitted through the server are recorded in the same store: this process waits for them
by reading it, and Ctrl-C asks the server to cancel them, as ``jupyter mlx cancel`` does.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Any, Callable

from .errors import MLXError
from .transport import TRANSPORT_ENV, ServerTransport, find_server

POLL_SECONDS = 0.2
CANCEL_WAIT_SECONDS = 30.0


def choose_door(service: Any, force: str | None, local_only: str | None = None) -> ServerTransport | None:
    """The server to submit through, or None to run here. ``force``: ``server``, ``local`` or None
    (``$JUPYTER_MLX_TRANSPORT``, else a server when one serves the project); ``local_only``: why
    this command must run here (an option a server does not take), if it must."""
    mode = (force or os.environ.get(TRANSPORT_ENV) or "auto").lower()
    if mode == "local":
        return None
    if local_only and mode == "server":
        raise MLXError("invalid_request", f"{local_only} cannot go through a Jupyter server: drop it, or --local")
    if local_only:
        return None
    server = find_server(service.project.root)
    if server is None and mode == "server":
        raise MLXError("backend_unavailable", f"no running Jupyter server with jupyter_mlx serves {service.project.root}:"
                       " start one (jupyter lab), or drop --server")
    return None if server is None else ServerTransport(server)


def wait_for_runs(service: Any, runs: list[Any], report: Callable[[Any], None] | None = None,
                  on_cell: Callable[[int, int], None] | None = None) -> list[Any]:
    """Wait for runs another process executes, reporting each as it ends (and the progress of a
    single run to ``on_cell``); Ctrl-C asks for the open ones to be cancelled, waits for them to stop
    (at most 30 s), and raises ``KeyboardInterrupt``."""
    from .store.records import FINAL_STATUSES

    current = list(runs)
    reported: set[str] = set()
    try:
        while True:
            current = [service.store.get_run(run.id) for run in current]
            for run in current:
                if run.status in FINAL_STATUSES and run.id not in reported:
                    reported.add(run.id)
                    if report is not None:
                        report(run)
            if len(reported) == len(current):
                return current
            if on_cell is not None and len(current) == 1 and current[0].progress:
                on_cell(current[0].progress["cell"] - 1, current[0].progress["cells"])
            time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        print("\ninterrupted: cancelling the runs still open ...", file=sys.stderr)
        open_ids = [run.id for run in current if run.status not in FINAL_STATUSES]
        service.store.request_cancel(open_ids)  # the server sees it, as with `jupyter mlx cancel`
        service.wait([run for run in current if run.id in open_ids], timeout=CANCEL_WAIT_SECONDS)
        raise
