"""``%mlx``: run, sweep, list, compare and serve notebooks from a notebook.

``%load_ext jupyter_mlx``, then ``%mlx --help``. The magic parses its line like the CLI (the same
argument helpers), talks to the Jupyter server serving this project when there is one (else runs
in this process; it says which), and shows widgets with plain-text fallbacks. A mistake is one
line (IPython's ``UsageError``: no traceback, and the cell fails, so a papermill driver stops).
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any, Callable

from .arguments import (
    backend_arguments,
    backend_options,
    compare_arguments,
    compare_overrides,
    endpoint_arguments,
    endpoint_settings,
    parameter_arguments,
    parameters_of,
    sweep_spec,
)
from .errors import MLXError

PROG = "%mlx"


class _HelpShown(Exception):
    """argparse printed help (or a usage message) and wants to stop."""


class MagicArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that raises instead of exiting the kernel."""

    def error(self, message: str) -> None:  # type: ignore[override]
        from IPython.core.error import UsageError

        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            sys.stderr.write(message)
        raise _HelpShown()


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_argument_group("where (default: the Jupyter server serving this project, else in-process; "
                                      "$JUPYTER_MLX_TRANSPORT=server|local sets it)")
    choice = where.add_mutually_exclusive_group()
    choice.add_argument("--local", dest="transport", action="store_const", const="local",
                        help="in this process, even when a Jupyter server serves the project")
    choice.add_argument("--server", dest="transport", action="store_const", const="server",
                        help="through the Jupyter server serving the project (an error if none does)")
    common.add_argument("-o", "--return", dest="return_value", action="store_true",
                        help="return the result (x = %%mlx ... -o), as %%timeit -o does")
    return common


def _run_options(parser: argparse.ArgumentParser, each: str = "the run") -> None:
    parser.add_argument("--tag", action="append", default=[], help=f"tag {each} (repeatable)")
    parser.add_argument("--kernel", help="kernel name (default: the notebook's)")
    parser.add_argument("--cell-timeout", type=float, help="seconds a cell may run (0: no limit)")
    parser.add_argument("--timeout", type=float, help=f"seconds {each} may take (0: no limit)")
    parser.add_argument("--no-wait", action="store_true",
                        help="return at once; the progress widget follows the run(s) and can cancel them")
    backend_arguments(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = MagicArgumentParser(
        prog=PROG,
        description="Versioned, parameterized notebook runs from a notebook. A run is named NOTEBOOK@vN, "
        "NOTEBOOK@latest or by its id. '%mlx COMMAND --help' describes a command.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = [_common()]

    run = commands.add_parser("run", parents=common, help="run a notebook with parameters (a new version); "
                              "progress while it runs, then a summary")
    run.add_argument("notebook", help="path of the notebook")
    parameter_arguments(run)
    _run_options(run)

    sweep = commands.add_parser("sweep", parents=common, help="run a notebook over a grid of parameter values",
                                description="Each -p NAME v1,v2,... is one axis; the runs are every combination.")
    sweep.add_argument("notebook", help="path of the notebook")
    parameter_arguments(sweep, axis=True)
    sweep.add_argument("--params-file", help="JSON or YAML file with a list of parameter sets")
    sweep.add_argument("--yes", action="store_true", help="confirm a sweep of more than 10,000 runs")
    _run_options(sweep, "each run")

    runs = commands.add_parser("runs", parents=common, help="runs as a table (a pandas DataFrame: parameters and "
                               "metrics as columns); select two to compare")
    runs.add_argument("notebook", nargs="?", help="only the runs of this notebook")
    runs.add_argument("--status", help="only runs with this status")
    runs.add_argument("--sweep", help="only the runs of this sweep (its id)")
    runs.add_argument("--limit", type=int, default=50, help="the newest this many (default 50)")
    runs.add_argument("--filter", metavar="EXPR", help="terms that must all hold, as 'jupyter mlx runs --filter': "
                      "NAME<op>VALUE (op = != < <= > >=) or a word to find")

    diff = commands.add_parser("diff", parents=common, help="compare two runs (or notebook files): parameters, "
                               "metrics, sources, outputs")
    diff.add_argument("a", help="NOTEBOOK@vN, a run id, or a notebook file")
    diff.add_argument("b", help="NOTEBOOK@vN, a run id, or a notebook file")
    diff.add_argument("--html", metavar="FILE", help="also write the full self-contained HTML report")
    compare_arguments(diff, outputs=False)

    serve = commands.add_parser("serve", parents=common, help="serve a notebook function of a run as a managed "
                                "endpoint (as 'jupyter mlx deploy'); shows its URL and token")
    serve.add_argument("target", help="NOTEBOOK@vN (a run: its code and parameters) or a notebook file")
    serve.add_argument("--name", help="endpoint name (default: notebook-function); an existing one is redeployed")
    endpoint_arguments(serve)

    cancel = commands.add_parser("cancel", parents=common, help="cancel a queued or running run, or a whole sweep")
    cancel.add_argument("target", help="NOTEBOOK@vN, a run id or a sweep id")
    return parser


# -- commands ----------------------------------------------------------------------------------------
def _launch_options(args: argparse.Namespace) -> dict[str, Any]:
    return {**backend_options(args), "tags": args.tag, "kernel_name": args.kernel,
            "cell_timeout": args.cell_timeout, "run_timeout": args.timeout}


def _cmd_run(transport: Any, args: argparse.Namespace) -> Any:
    from .notebook_api import RunHandle
    from .widgets import follow

    record = transport.submit(args.notebook, parameters_of(args.parameter), _launch_options(args))
    handle = RunHandle(transport, record)
    follow([handle], wait=not args.no_wait)
    return handle


def _cmd_sweep(transport: Any, args: argparse.Namespace) -> Any:
    from .notebook_api import SweepHandle
    from .widgets import follow

    found, records = transport.sweep(args.notebook, sweep_spec(args), {**_launch_options(args), "confirm": args.yes})
    handle = SweepHandle(transport, found, records)
    follow(handle.runs, handle.id, wait=not args.no_wait)
    return handle


def _cmd_runs(transport: Any, args: argparse.Namespace) -> Any:
    from IPython.display import display

    from .notebook_api import runs_frame
    from .widgets import RunsView

    frame = runs_frame(transport.list_runs(args.notebook, args.status, args.limit, args.sweep, args.filter))
    display(RunsView(frame, transport))
    return frame


def _cmd_diff(transport: Any, args: argparse.Namespace) -> Any:
    from IPython.display import display

    from .widgets import ComparisonView

    view = ComparisonView(transport.compare(args.a, args.b, compare_overrides(args)))
    if args.html:
        Path(args.html).write_text(view.result.report(), encoding="utf-8")
        print(f"report: {args.html}")
    display(view)
    return view


def _cmd_serve(transport: Any, args: argparse.Namespace) -> Any:
    options = {"function": args.function, "name": args.name, **endpoint_settings(args)}
    deployed = transport.deploy(args.target, options)
    if deployed.get("warning"):
        print(f"warning: {deployed['warning']}")
    serving = deployed["serving"]
    route = f"POST {deployed['url']}/{serving['function']}" if serving.get("function") else deployed["url"]
    print(f"{deployed['name']}: {serving.get('ref') or serving['notebook']} serving at {route}")
    print(f"  {serving['source']}")
    if deployed.get("token"):
        print(f"token (shown once, send 'Authorization: Bearer <token>'): {deployed['token']}")
    elif deployed.get("auth"):
        print("token: unchanged (this redeploys an existing endpoint)")
    return deployed


def _cmd_cancel(transport: Any, args: argparse.Namespace) -> Any:
    runs = transport.cancel(args.target)
    if not runs:
        print(f"nothing to cancel: no run of {args.target} is queued or running")
    for run in runs:
        print(f"{run['ref']} {run['status']}" + (" (cancel requested)" if run["status"] == "running" else ""))
    return runs


COMMANDS: dict[str, Callable[[Any, argparse.Namespace], Any]] = {
    "run": _cmd_run,
    "sweep": _cmd_sweep,
    "runs": _cmd_runs,
    "diff": _cmd_diff,
    "serve": _cmd_serve,
    "cancel": _cmd_cancel,
}


def mlx(line: str) -> Any:
    """``%mlx COMMAND ...``: see ``%mlx --help``."""
    from IPython.core.error import UsageError

    from .transport import connect

    try:
        argv = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"{PROG}: {exc} (see {PROG} --help)") from None
    try:
        args = build_parser().parse_args(argv)
    except _HelpShown:
        return None
    prog = f"{PROG} {args.command}"
    try:
        transport = connect(mode=args.transport)
        print(transport.describe())
        result = COMMANDS[args.command](transport, args)
    except MLXError as exc:
        raise UsageError(f"{prog}: {exc.message}") from None
    except KeyboardInterrupt:
        raise UsageError(f"{prog}: interrupted (runs still open were cancelled)") from None
    return result if args.return_value else None


def load_ipython_extension(ipython: Any) -> None:
    ipython.register_magic_function(mlx, "line", "mlx")
