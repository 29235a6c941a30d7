"""``jupyter mlx``: run notebooks with parameters and look at their versioned runs."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from .errors import MLXError
from .formatting import format_details, format_run_line, format_runs_table

EXIT_RUN_FAILED = 1
EXIT_BAD_INPUT = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jupyter mlx",
        description="Versioned, parameterized notebook runs. A run is named NOTEBOOK@vN, NOTEBOOK@latest or by its id.",
    )
    parser.add_argument("--root", help="project root (default: the nearest folder with .mlx/, else the current one)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser("run", help="execute a notebook with parameters and record it as a new version")
    run.add_argument("notebook", help="path of the notebook")
    run.add_argument(
        "-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
        help="set a parameter of the notebook's 'parameters' cell (converted to its default's type)",
    )
    run.add_argument("--tag", action="append", default=[], help="tag the run (repeatable)")
    run.add_argument("--kernel", help="kernel name (default: the notebook's)")
    run.add_argument("--cell-timeout", type=float, help="seconds a cell may run (0: no limit)")
    run.add_argument("--timeout", type=float, help="seconds the whole run may take (0: no limit)")
    run.add_argument("--json", action="store_true", help="print the recorded run as JSON")

    runs = commands.add_parser("runs", help="list runs, newest first")
    runs.add_argument("notebook", nargs="?", help="only the runs of this notebook (path or file name)")
    runs.add_argument("--status", help="only runs with this status")
    runs.add_argument("--limit", type=int, default=50, help="page size (default 50)")
    runs.add_argument("--offset", type=int, default=0, help="skip this many runs")
    runs.add_argument("--json", action="store_true", help="print JSON")

    show = commands.add_parser("show", help="everything recorded of one run")
    show.add_argument("ref", help="NOTEBOOK@vN, NOTEBOOK@latest or a run id")
    show.add_argument("--json", action="store_true", help="print JSON")

    open_ = commands.add_parser("open", help="write a run's executed notebook (or its source) to a file")
    open_.add_argument("ref", help="NOTEBOOK@vN, NOTEBOOK@latest or a run id")
    open_.add_argument("-o", "--output", help="file to write (default: NAME-vN.ipynb here; - for stdout)")
    open_.add_argument("--source", action="store_true", help="the notebook as it was before execution")
    open_.add_argument("--force", action="store_true", help="overwrite an existing file")

    rm = commands.add_parser("rm", help="delete runs and the stored outputs no other run uses")
    rm.add_argument("refs", nargs="+", metavar="REF", help="NOTEBOOK@vN or a run id")
    return parser


def _service(args: argparse.Namespace) -> Any:
    from .config import MLXConfig, find_project_root, load_file_config
    from .service import RunService

    if args.root:
        root = Path(args.root).resolve()
        if not root.is_dir():
            raise MLXError("invalid_path", f"project root {args.root} is not a folder")
    else:
        root = find_project_root(Path(os.environ.get("JUPYTER_MLX_ROOT", os.getcwd())))
    return RunService(root, MLXConfig(config=load_file_config(root)))


def _progress(index: int, count: int) -> None:
    sys.stderr.write(f"\r  cell {index + 1}/{count} ")
    sys.stderr.flush()


def _cmd_run(service: Any, args: argparse.Namespace) -> int:
    from .execute.runner import wait_for_kernel_shutdowns

    parameters: dict[str, Any] = {}
    for name, value in args.parameter:
        if name in parameters:
            raise MLXError("invalid_parameter", f"parameter {name} is given twice")
        parameters[name] = value
    prepared = service.prepare(
        args.notebook,
        parameters,
        base=Path.cwd(),
        tags=args.tag,
        kernel_name=args.kernel,
        cell_timeout=args.cell_timeout,
        run_timeout=args.timeout,
    )
    service.interrupt_orphans()
    if not args.json:
        print(f"{prepared.record.ref} queued", file=sys.stderr)
    on_cell = _progress if sys.stderr.isatty() and not args.json else None
    run = service.execute(prepared, on_cell)
    if on_cell is not None:
        sys.stderr.write("\r\033[K")
    wait_for_kernel_shutdowns()
    print(json.dumps(run.to_json(), indent=2) if args.json else format_run_line(run))
    return 0 if run.status == "succeeded" else EXIT_RUN_FAILED


def _cmd_runs(service: Any, args: argparse.Namespace) -> int:
    page = service.list_runs(args.notebook, args.status, args.limit, args.offset, base=Path.cwd())
    if args.json:
        print(json.dumps(page.to_json(), indent=2))
    else:
        print(format_runs_table(page, show_notebook=args.notebook is None))
    return 0


def _cmd_show(service: Any, args: argparse.Namespace) -> int:
    details = service.run_details(args.ref, base=Path.cwd())
    print(json.dumps(details, indent=2) if args.json else format_details(details))
    return 0


def _cmd_open(service: Any, args: argparse.Namespace) -> int:
    run = service.get_run(args.ref, base=Path.cwd())
    if args.source:
        content = service.store.source_notebook(run.id)
    else:
        content = (json.dumps(service.store.executed_notebook(run.id), indent=1) + "\n").encode()
    if args.output == "-":
        sys.stdout.buffer.write(content)
        return 0
    target = Path(args.output or f"{Path(run.notebook).stem}-v{run.version}.ipynb")
    if target.exists() and not args.force:
        raise MLXError("conflict", f"{target} exists; use --force to overwrite it")
    if not target.parent.is_dir():
        raise MLXError("invalid_path", f"folder {target.parent} does not exist")
    target.write_bytes(content)
    print(f"wrote {run.ref} ({'source' if args.source else 'executed'}) to {target}")
    return 0


def _cmd_rm(service: Any, args: argparse.Namespace) -> int:
    runs = [service.get_run(ref, base=Path.cwd()) for ref in args.refs]  # all exist, or none go
    for run in runs:
        service.delete_run(run.id)
        print(f"deleted {run.ref}")
    return 0


COMMANDS = {"run": _cmd_run, "runs": _cmd_runs, "show": _cmd_show, "open": _cmd_open, "rm": _cmd_rm}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``jupyter-mlx`` (and ``jupyter mlx``); returns the exit status."""
    args = _parser().parse_args(argv)
    service = None
    try:
        service = _service(args)
        return COMMANDS[args.command](service, args)
    except MLXError as exc:
        print(f"jupyter mlx {args.command}: error: {exc.message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"jupyter mlx {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        if service is not None:
            service.close()


if __name__ == "__main__":
    sys.exit(main())
