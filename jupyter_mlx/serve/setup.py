"""Running a notebook's code in-process, once, before an endpoint serves: an IPython shell, not a
kernel, so magics and ``display`` work and a request costs a function call, not a round trip."""
from __future__ import annotations

import contextlib
import io
import os
from typing import Any

class SetupError(Exception):
    """The notebook cannot be served: a cell failed at start-up, or the function is missing."""


def make_shell() -> Any:
    """A quiet IPython shell: no history file, no prompts, charts rendered off-screen."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False  # no SQLite file, no history thread (workers fork)
    config.InteractiveShell.colors = "NoColor"
    config.InteractiveShell.xmode = "Plain"
    shell = InteractiveShell.instance(config=config)
    shell.displayhook.do_full_cache = False
    return shell


def run_cells(shell: Any, cells: list[str], log: Any = None) -> None:
    """Execute ``cells`` in order in ``shell``; the first failure raises ``SetupError`` naming the
    cell. Their printed output goes to ``log`` (a text stream), or nowhere."""
    sink = log if log is not None else io.StringIO()
    for index, source in enumerate(cells):
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            result = shell.run_cell(source, store_history=False, silent=False)
        error = result.error_before_exec or result.error_in_exec
        if error is not None:
            raise SetupError(f"code cell {index + 1} failed at start-up: {type(error).__name__}: {error}")


def find_function(shell: Any, name: str) -> Any:
    """The notebook's function ``name``, after set-up."""
    value = shell.user_ns.get(name)
    if value is None:
        defined = sorted(k for k, v in shell.user_ns.items() if callable(v) and getattr(v, "__module__", "") == "__main__"
                         and not k.startswith("_"))
        raise SetupError(f"the notebook defines no function {name!r}" + (f"; it defines {', '.join(defined)}" if defined else ""))
    if not callable(value):
        raise SetupError(f"{name!r} in the notebook is a {type(value).__name__}, not a function")
    return value
