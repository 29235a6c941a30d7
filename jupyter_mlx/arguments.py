"""Command-line arguments shared by the doors that parse a command line: ``jupyter mlx`` and ``%mlx``.

Each helper adds one group of arguments to an ``argparse`` parser, or turns the parsed values
into what ``RunService`` takes, so both doors accept (and reject) exactly the same input.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .errors import MLXError


def parameter_arguments(parser: argparse.ArgumentParser, axis: bool = False) -> None:
    """``-p NAME VALUE`` (repeatable); ``axis``: the value is a comma-separated axis of a sweep."""
    if axis:
        parser.add_argument(
            "-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUES"),
            help="an axis of the grid: comma-separated values of one parameter",
        )
    else:
        parser.add_argument(
            "-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
            help="set a parameter of the notebook's 'parameters' cell (converted to its default's type)",
        )


def parameters_of(pairs: list[list[str]]) -> dict[str, Any]:
    """``-p`` pairs as a parameter dict; a name given twice is an error."""
    parameters: dict[str, Any] = {}
    for name, value in pairs:
        if name in parameters:
            raise MLXError("invalid_parameter", f"parameter {name} is given twice")
        parameters[name] = value
    return parameters


def backend_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("backend")
    group.add_argument("--backend", choices=("local", "gateway", "dask"), help="where runs execute (default: local)")
    group.add_argument("--gateway-url", help="gateway backend: base URL of a Kernel/Enterprise Gateway")
    group.add_argument("--gateway-token", help="gateway backend: auth token (default: $JUPYTER_MLX_GATEWAY_TOKEN)")
    group.add_argument("--scheduler", help="dask backend: scheduler address, e.g. tcp://127.0.0.1:8786")


def backend_options(args: argparse.Namespace) -> dict[str, Any]:
    """``RunService.submit``/``sweep`` keyword arguments from ``backend_arguments``."""
    if args.gateway_url and args.scheduler:
        raise MLXError("invalid_request", "give --gateway-url or --scheduler, not both")
    return {
        "backend": args.backend,
        "backend_address": args.gateway_url or args.scheduler,
        "backend_token": args.gateway_token,
    }


def sweep_spec(args: argparse.Namespace) -> dict[str, Any]:
    """``{"grid": {name: [values]}}`` from ``-p NAME v1,v2`` axes, or ``{"list": [...]}`` from ``--params-file``."""
    from .sweeps import load_parameter_sets, split_axis

    params_file = getattr(args, "params_file", None)
    if params_file and args.parameter:
        raise MLXError("invalid_request", "give -p axes or --params-file, not both")
    if params_file:
        return {"list": load_parameter_sets(Path(params_file))}
    grid: dict[str, list[str]] = {}
    for name, values in args.parameter:
        if name in grid:
            raise MLXError("invalid_parameter", f"parameter {name} is given twice")
        grid[name] = split_axis(values)
    if not grid:
        raise MLXError("invalid_request", "the sweep grid is empty: give -p NAME v1,v2,... or --params-file")
    return {"grid": grid}


def compare_arguments(parser: argparse.ArgumentParser, outputs: bool = True) -> None:
    """Tolerances of a comparison; ``outputs``: also --html, --json and --all (what the CLI prints)."""
    if outputs:
        parser.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report")
        parser.add_argument("--json", action="store_true", help="print the comparison as JSON")
        parser.add_argument("--all", action="store_true", help="show identical cells, outputs and values too")
    group = parser.add_argument_group("tolerances (on top of the project's and the notebook's compare options)")
    group.add_argument("--rtol", type=float, help="relative tolerance of numbers (default 1e-9)")
    group.add_argument("--atol", type=float, help="absolute tolerance of numbers (default 1e-12)")
    group.add_argument("--ignore", action="append", default=[], metavar="REGEX",
                       help="text to ignore in outputs (repeatable)")
    group.add_argument("--ignore-artifact", action="append", default=[], metavar="PATTERN",
                       help="glob of artifact paths to ignore, e.g. 'logs/*' (repeatable)")
    group.add_argument("--ignore-state", action="append", default=[], metavar="PATTERN",
                       help="glob of names in the captured state to ignore, e.g. 'model' (repeatable)")
    group.add_argument("--image-tolerance", type=float, metavar="FRACTION",
                       help="fraction of an image's pixels that may change (default 0)")


def compare_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Compare options from ``compare_arguments``."""
    overrides: dict[str, Any] = {}
    for name, value in (("rtol", args.rtol), ("atol", args.atol), ("image_changed_fraction", args.image_tolerance)):
        if value is not None:
            overrides[name] = value
    if args.ignore:
        overrides["ignore_patterns"] = args.ignore
    if args.ignore_artifact:
        overrides["ignore_artifacts"] = args.ignore_artifact
    if args.ignore_state:
        overrides["ignore_state"] = args.ignore_state
    return overrides


def endpoint_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--function", help="the notebook function to serve as POST /FUNCTION (default: the "
                        "notebook's '# GET /path' annotated cells, as Kernel Gateway's notebook-http mode)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, help="port (default: 8500 for serve, a free one for deploy)")
    parser.add_argument("--token", help="bearer token clients must send (default: a new one, shown once)")
    parser.add_argument("--no-auth", action="store_true", help="serve without a token (anyone who can connect may call it)")
    parser.add_argument("--allow-public-unauthenticated", action="store_true",
                        help="confirm --no-auth on a --host beyond this machine's loopback (refused without it)")
    parser.add_argument("--workers", type=int, default=1, help="processes serving requests at once; globals are "
                        "per worker then, as with Kernel Gateway's prespawn_count (default 1: shared state)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds a request may take (default 30)")
    parser.add_argument("--max-body", type=int, default=10 * 1024 * 1024, help="largest request body in bytes (default 10 MiB)")
    parser.add_argument("--reexecute", action="store_true", help="run the notebook's code at start instead of loading "
                        "the objects the run captured (the default for a run that captured the function)")
    parser.add_argument("--allow-version-drift", action="store_true", help="load a state captured with package "
                        "versions (major.minor) other than this environment's")


def endpoint_settings(args: argparse.Namespace) -> dict[str, Any]:
    """``RunService.endpoints.deploy`` / ``serve`` keyword arguments from ``endpoint_arguments``."""
    return {"host": args.host, "port": args.port, "token": args.token, "no_auth": args.no_auth,
            "allow_public_unauthenticated": args.allow_public_unauthenticated, "workers": args.workers,
            "timeout": args.timeout, "max_body": args.max_body, "reexecute": args.reexecute,
            "allow_version_drift": args.allow_version_drift}
