"""``jupyter mlx``: run notebooks with parameters and look at their versioned runs."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from .arguments import backend_arguments as _backend_arguments
from .arguments import backend_options as _backend_options
from .arguments import compare_arguments as _compare_arguments
from .arguments import compare_overrides as _compare_overrides
from .arguments import endpoint_arguments as _endpoint_arguments
from .arguments import endpoint_settings as _endpoint_settings
from .arguments import parameter_arguments, parameters_of
from .arguments import sweep_spec as _sweep_spec
from .cli_door import choose_door, wait_for_runs
from .errors import MLXError
from .refs import names_a_run
from .formatting import format_details, format_run_line, format_runs_table

EXIT_RUN_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_CHECK_FAILED = 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jupyter mlx",
        description="Versioned, parameterized notebook runs. A run is named NOTEBOOK@vN, NOTEBOOK@latest or by its id.",
    )
    parser.add_argument("--root", help="project root (default: the nearest folder with .mlx/, else the current one)")
    parser.add_argument("--version", action="version", version=f"jupyter mlx {_version()}")
    commands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND",
                                     description="'jupyter mlx COMMAND --help' says more about each")

    run = commands.add_parser("run", help="execute a notebook with parameters and record it as a new version")
    run.add_argument("notebook", help="path of the notebook")
    parameter_arguments(run)
    run.add_argument("--tag", action="append", default=[], help="tag the run (repeatable)")
    run.add_argument("--kernel", help="kernel name (default: the notebook's)")
    run.add_argument("--cell-timeout", type=float, help="seconds a cell may run (0: no limit)")
    run.add_argument("--timeout", type=float, help="seconds the whole run may take (0: no limit)")
    run.add_argument("--json", action="store_true", help="print the recorded run as JSON")
    _backend_arguments(run)
    _folder_arguments(run)

    sweep = commands.add_parser(
        "sweep",
        help="run a notebook over a grid of parameter values (or a list of parameter sets), in parallel",
        description="Each -p NAME v1,v2,... is one axis; the runs are every combination. "
        "--params-file takes an explicit list of parameter sets (JSON or YAML) instead.",
    )
    sweep.add_argument("notebook", help="path of the notebook")
    parameter_arguments(sweep, axis=True)
    sweep.add_argument("--params-file", help="JSON or YAML file with a list of parameter sets")
    sweep.add_argument("--yes", action="store_true", help="confirm a sweep of more than 10,000 runs")
    sweep.add_argument("--tag", action="append", default=[], help="tag every run (repeatable)")
    sweep.add_argument("--kernel", help="kernel name (default: the notebook's)")
    sweep.add_argument("--cell-timeout", type=float, help="seconds a cell may run (0: no limit)")
    sweep.add_argument("--timeout", type=float, help="seconds each run may take (0: no limit)")
    sweep.add_argument("--concurrency", type=int, help="local runs at once (default: the number of cores)")
    sweep.add_argument("--json", action="store_true", help="print the sweep and its runs as JSON")
    _backend_arguments(sweep)
    _folder_arguments(sweep)

    sweeps = commands.add_parser("sweeps", help="list sweeps, newest first")
    sweeps.add_argument("notebook", nargs="?", help="only the sweeps of this notebook")
    sweeps.add_argument("--limit", type=int, default=50, help="how many (default 50)")
    sweeps.add_argument("--json", action="store_true", help="print JSON")

    cancel = commands.add_parser("cancel", help="cancel a queued or running run, or every run of a sweep")
    cancel.add_argument("target", help="NOTEBOOK@vN, a run id or a sweep id")
    cancel.add_argument("--wait", type=float, default=30.0, help="seconds to wait for the runs to stop (default 30)")

    requeue = commands.add_parser(
        "requeue", help="run interrupted or cancelled runs (of a run or a sweep) again, as new versions"
    )
    requeue.add_argument("target", help="NOTEBOOK@vN, a run id or a sweep id")
    requeue.add_argument("--failed", action="store_true", help="failed runs too")
    requeue.add_argument("--json", action="store_true", help="print the new runs as JSON")

    runs = commands.add_parser("runs", help="list runs, newest first")
    runs.add_argument("notebook", nargs="?", help="only the runs of this notebook (path or file name)")
    runs.add_argument("--status", help="only runs with this status")
    runs.add_argument("--limit", type=int, default=50, help="page size (default 50)")
    runs.add_argument("--offset", type=int, default=0, help="skip this many runs")
    runs.add_argument(
        "--sort", metavar="KEY",
        help="queued_at (default), version, duration, status, notebook, metrics.NAME or params.NAME "
        "(descending; runs without the value last)",
    )
    runs.add_argument("--asc", action="store_true", help="sort ascending")
    runs.add_argument(
        "--filter", metavar="EXPR",
        help="terms that must all hold: NAME<op>VALUE (op = != < <= > >=; NAME status, version, backend, "
        "notebook, user, tag, metrics.X, params.X, or X: the parameter or metric X) or a word to find",
    )
    runs.add_argument("--json", action="store_true", help="print JSON")

    show = commands.add_parser("show", help="everything recorded of one run")
    show.add_argument("ref", help="NOTEBOOK@vN, NOTEBOOK@latest or a run id")
    show.add_argument("--json", action="store_true", help="print JSON")

    open_ = commands.add_parser("open", help="write a run's executed notebook (or its source, or an artifact) to a file")
    open_.add_argument("ref", help="NOTEBOOK@vN, NOTEBOOK@latest or a run id")
    open_.add_argument("-o", "--output", help="file to write (default: NAME-vN.ipynb, or the artifact's file "
                                              "name, here; - for stdout)")
    what = open_.add_mutually_exclusive_group()
    what.add_argument("--source", action="store_true", help="the notebook as it was before execution")
    what.add_argument("--artifact", metavar="PATH", help="a file the run wrote (a path `jupyter mlx artifacts` lists)")
    open_.add_argument("--force", action="store_true", help="overwrite an existing file")

    artifacts = commands.add_parser("artifacts", help="the files a run wrote (kept as artifacts) and the project "
                                                      "files it saw")
    artifacts.add_argument("ref", help="NOTEBOOK@vN, NOTEBOOK@latest or a run id")
    artifacts.add_argument("--inputs", action="store_true", help="also list the project's files when it started")
    artifacts.add_argument("--json", action="store_true", help="machine-readable output")

    rm = commands.add_parser("rm", help="delete runs and the stored outputs no other run uses")
    rm.add_argument("refs", nargs="+", metavar="REF", help="NOTEBOOK@vN or a run id")

    diff = commands.add_parser("diff", help="compare two runs (or two notebook files): parameters, metrics, sources, outputs")
    diff.add_argument("a", help="NOTEBOOK@vN, a run id, or a notebook file")
    diff.add_argument("b", help="NOTEBOOK@vN, a run id, or a notebook file")
    _compare_arguments(diff)

    check = commands.add_parser(
        "check", help="compare a run with its notebook's baseline; exit 1 on unexpected changes (for CI)"
    )
    check.add_argument("ref", help="the run to check: NOTEBOOK@vN, NOTEBOOK@latest or a run id")
    check.add_argument("--baseline", help="compare with this run instead of the approved baseline")
    check.add_argument("--junit", metavar="FILE", help="also write the result as JUnit XML")
    _compare_arguments(check)

    serve = commands.add_parser(
        "serve", help="serve a notebook function (or its '# GET /path' cells) over HTTP, in the foreground"
    )
    serve.add_argument("target", help="NOTEBOOK@vN (a run: its code and parameters) or a notebook file")
    _endpoint_arguments(serve)

    deploy = commands.add_parser("deploy", help="serve as a managed, named endpoint in the background (or redeploy it)")
    deploy.add_argument("target", help="NOTEBOOK@vN (a run: its code and parameters) or a notebook file")
    deploy.add_argument("--name", help="endpoint name (default: notebook-function); an existing one is redeployed")
    _endpoint_arguments(deploy)

    endpoints = commands.add_parser("endpoints", help="list managed endpoints: name, version, url, status, requests")
    endpoints.add_argument("--json", action="store_true", help="print JSON")
    rollback = commands.add_parser("rollback", help="serve an endpoint's previous version again")
    rollback.add_argument("name")
    stop = commands.add_parser("stop", help="stop a managed endpoint")
    stop.add_argument("name")
    logs = commands.add_parser("logs", help="the last lines of a managed endpoint's log")
    logs.add_argument("name")
    logs.add_argument("-n", "--lines", type=int, default=50)

    export = commands.add_parser("export", help="write a standalone service folder (app, requirements, README) that "
                                 "serves the function without Jupyter")
    export.add_argument("target", help="NOTEBOOK@vN or a notebook file")
    export.add_argument("--function", help="the function to serve (default: the annotated cells)")
    export.add_argument("-o", "--output", required=True, help="the folder to write")
    export.add_argument("--force", action="store_true", help="write into a folder that is not empty")
    export.add_argument("--reexecute", action="store_true", help="run the notebook's code at start instead of "
                        "loading the state the run captured")
    export.add_argument("--format", choices=("service", "mlflow"), default="service",
                        help="service: the folder above; mlflow: an MLflow pyfunc model of --function, for "
                        "mlflow models serve and the platforms serving MLflow models")

    mlflow_export = commands.add_parser(
        "mlflow-export", help="log runs to an MLflow tracking server (again: nothing duplicated)",
        description="Each finished run becomes an MLflow run named by its ref: parameters, metrics with their "
        "steps, tags (mlx.run_id, git, user, sweep), the executed notebook and the comparison report with the "
        "notebook's previous run. A run logged before is found, not logged again.")
    mlflow_export.add_argument("target", nargs="?", help="NOTEBOOK (all its runs), NOTEBOOK@vN or a run id")
    mlflow_export.add_argument("--sweep", metavar="ID", help="the runs of this sweep")
    mlflow_export.add_argument("--tracking-uri", metavar="URI", help="the tracking server (default: "
                               "c.MLXConfig.mlflow_tracking_uri, else $MLFLOW_TRACKING_URI)")
    mlflow_export.add_argument("--experiment", metavar="NAME", help="the MLflow experiment (default: "
                               "c.MLXConfig.mlflow_experiment, else the notebook's path)")
    mlflow_export.add_argument("--json", action="store_true", help="print JSON")

    baseline = commands.add_parser("baseline", help="approve a run as its notebook's baseline, or show the baseline")
    baseline.add_argument("ref", help="NOTEBOOK@vN to approve it; a notebook alone shows its baseline")
    baseline.add_argument("--note", default="", help="why this run is the baseline")
    baseline.add_argument("--json", action="store_true", help="print JSON")
    commands.add_parser("migrate-store", help="bring the run index's schema up to date (when "
                        "c.MLXConfig.migrate_store is off: a team's shared database, migrated on purpose)")
    return parser


def _folder_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_argument_group("where the notebook runs (default: a folder of its own per run)")
    where.add_argument("--in-place", action="store_true",
                       help="in the project folder itself, as papermill does: what it writes lands in the project")
    where.add_argument("--keep-folder", action="store_true",
                       help="keep each run's folder after its files were collected (it is printed by show)")
    door = parser.add_mutually_exclusive_group()
    door.add_argument("--server", dest="door", action="store_const", const="server",
                      help="submit through the Jupyter server that serves the project (its warm kernels, its "
                      "panel); the default when one runs")
    door.add_argument("--local", dest="door", action="store_const", const="local",
                      help="run in this process even when a Jupyter server serves the project")


def _service(args: argparse.Namespace) -> Any:
    from .config import MLXConfig, find_project_root, load_file_config
    from .service import RunService

    if args.root:
        root = Path(args.root).resolve()
        if not root.is_dir():
            raise MLXError("invalid_path", f"project root {args.root} is not a folder")
    else:
        root = find_project_root(Path(os.environ.get("JUPYTER_MLX_ROOT", os.getcwd())))
    config = MLXConfig(config=load_file_config(root))
    if getattr(args, "concurrency", None) is not None:
        if args.concurrency < 1:
            raise MLXError("invalid_request", f"--concurrency must be 1 or more, not {args.concurrency}")
        config.concurrency = args.concurrency
    if getattr(args, "keep_folder", False):
        config.keep_run_folders = True
    return RunService(root, config)


def _progress(index: int, count: int) -> None:
    sys.stderr.write(f"\r  cell {index + 1}/{count} ")
    sys.stderr.flush()


def _local_only(args: argparse.Namespace) -> str | None:
    """An option that only this process can honour (the server has its own configuration)."""
    if getattr(args, "keep_folder", False):
        return "--keep-folder"
    if getattr(args, "concurrency", None) is not None:
        return "--concurrency"
    return None


def _launch_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"tags": args.tag, "kernel_name": args.kernel, "cell_timeout": args.cell_timeout,
            "run_timeout": args.timeout, "in_place": args.in_place, **_backend_options(args)}


def _cmd_run(service: Any, args: argparse.Namespace) -> int:
    parameters = parameters_of(args.parameter)
    options = _backend_options(args)
    door = choose_door(service, args.door, _local_only(args))
    if door is not None:
        run = service.store.get_run(door.submit(args.notebook, parameters, _launch_options(args))["id"])
        if not args.json:
            print(f"{run.ref} queued via the Jupyter server at {door.server.url}", file=sys.stderr)
        on_cell = _progress if sys.stderr.isatty() and not args.json else None
        (run,) = wait_for_runs(service, [run], on_cell=on_cell)
        if on_cell is not None:
            sys.stderr.write("\r\033[K")
        print(json.dumps(run.to_json(), indent=2) if args.json else format_run_line(run))
        return 0 if run.status == "succeeded" else EXIT_RUN_FAILED
    if (options["backend"] or service.config.default_backend) != "local":
        queued = service.submit(
            args.notebook, parameters, base=Path.cwd(), tags=args.tag, kernel_name=args.kernel,
            cell_timeout=args.cell_timeout, run_timeout=args.timeout, in_place=args.in_place, **options,
        )
        if not args.json:
            print(f"{queued.ref} queued on {queued.backend}", file=sys.stderr)
        run = _wait_or_cancel(service, [queued])[0]
        print(json.dumps(run.to_json(), indent=2) if args.json else format_run_line(run))
        return 0 if run.status == "succeeded" else EXIT_RUN_FAILED
    prepared = service.prepare(
        args.notebook,
        parameters,
        base=Path.cwd(),
        tags=args.tag,
        kernel_name=args.kernel,
        cell_timeout=args.cell_timeout,
        run_timeout=args.timeout,
        in_place=args.in_place,
    )
    service.interrupt_orphans()
    if not args.json:
        print(f"{prepared.record.ref} queued", file=sys.stderr)
    on_cell = _progress if sys.stderr.isatty() and not args.json else None
    run = service.execute(prepared, on_cell)
    if on_cell is not None:
        sys.stderr.write("\r\033[K")
    print(json.dumps(run.to_json(), indent=2) if args.json else format_run_line(run))
    return 0 if run.status == "succeeded" else EXIT_RUN_FAILED


def _cmd_runs(service: Any, args: argparse.Namespace) -> int:
    page = service.list_runs(
        args.notebook, args.status, args.limit, args.offset, base=Path.cwd(),
        sort=args.sort, order="asc" if args.asc else None, filter=args.filter,
    )
    if args.json:
        print(json.dumps(page.to_json(), indent=2))
    else:
        print(format_runs_table(page, show_notebook=args.notebook is None))
    return 0


def _cmd_show(service: Any, args: argparse.Namespace) -> int:
    details = service.run_details(args.ref, base=Path.cwd())
    print(json.dumps(details, indent=2) if args.json else format_details(details))
    return 0


def _cmd_artifacts(service: Any, args: argparse.Namespace) -> int:
    from .formatting import format_run_files

    files = service.run_files(args.ref, base=Path.cwd())
    if not args.inputs:
        files.pop("inputs")
    print(json.dumps(files, indent=2) if args.json else format_run_files(files))
    return 0


def _write_artifact(service: Any, args: argparse.Namespace) -> int:
    artifact, chunks = service.artifact(args.ref, args.artifact, base=Path.cwd())
    if args.output == "-":
        for chunk in chunks:
            sys.stdout.buffer.write(chunk)
        return 0
    target = Path(args.output or Path(artifact.path).name)
    if target.exists() and not args.force:
        raise MLXError("conflict", f"{target} exists; use --force to overwrite it")
    if not target.parent.is_dir():
        raise MLXError("invalid_path", f"folder {target.parent} does not exist")
    with open(target, "wb") as handle:
        for chunk in chunks:
            handle.write(chunk)
    print(f"wrote {artifact.path} of {args.ref} ({artifact.size} bytes) to {target}")
    return 0


def _cmd_open(service: Any, args: argparse.Namespace) -> int:
    if args.artifact:
        return _write_artifact(service, args)
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


def _wait_or_cancel(service: Any, runs: list[Any], report: Any = None) -> list[Any]:
    """Wait for ``runs``, reporting each as it finishes; Ctrl-C cancels those still open.

    The wait wakes up every ``INTERRUPT_CHECK_SECONDS``: Ctrl-C's signal may be delivered to any
    of the process's threads, and a main thread blocked until a run ends would only see it then."""
    from concurrent.futures import FIRST_COMPLETED, wait

    from .queue import INTERRUPT_CHECK_SECONDS, wait_all

    futures = [f for f in (service.queue.future(run.id) for run in runs) if f is not None]
    try:
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=INTERRUPT_CHECK_SECONDS, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=futures.index):
                if report is not None and future.exception() is None:
                    report(future.result())
    except KeyboardInterrupt:
        print("\ninterrupted: cancelling the runs still open ...", file=sys.stderr)
        service.queue.cancel([run.id for run in runs], "cancelled from the command line (Ctrl-C)")
        wait_all(futures, 30)
        raise
    return service.wait(runs, timeout=5)


def _cmd_sweep(service: Any, args: argparse.Namespace) -> int:
    import time

    from .formatting import format_counts

    started = time.monotonic()
    report = None if args.json else (lambda run: print(format_run_line(run, with_parameters=True), flush=True))
    door = choose_door(service, args.door, _local_only(args))
    if door is not None:
        answer, queued = door.sweep(args.notebook, _sweep_spec(args), {"confirm": args.yes, **_launch_options(args)})
        sweep, runs = service.get_sweep(answer["id"]), [service.store.get_run(run["id"]) for run in queued]
        if not args.json:
            print(f"sweep {sweep.id}: {len(runs)} runs of {sweep.notebook} on {sweep.backend} "
                  f"via the Jupyter server at {door.server.url}", file=sys.stderr)
        final = wait_for_runs(service, runs, report)
    else:
        sweep, runs = service.sweep(
            args.notebook, _sweep_spec(args), confirm=args.yes, base=Path.cwd(), tags=args.tag,
            kernel_name=args.kernel, cell_timeout=args.cell_timeout, run_timeout=args.timeout, in_place=args.in_place,
            **_backend_options(args),
        )
        if not args.json:
            print(
                f"sweep {sweep.id}: {len(runs)} runs of {sweep.notebook} on {sweep.backend} "
                f"({service.concurrency(**_backend_options(args))} at a time)",
                file=sys.stderr,
            )
        final = _wait_or_cancel(service, runs, report)
    if args.json:
        print(json.dumps({"sweep": service.get_sweep(sweep.id).to_json(), "runs": [r.to_json() for r in final]}, indent=2))
    else:
        counts: dict[str, int] = {}
        for run in final:
            counts[run.status] = counts.get(run.status, 0) + 1
        print(f"{len(final)} runs: {format_counts(counts)} in {time.monotonic() - started:.1f}s (sweep {sweep.id})")
    return 0 if all(run.status == "succeeded" for run in final) else EXIT_RUN_FAILED


def _cmd_sweeps(service: Any, args: argparse.Namespace) -> int:
    from .formatting import format_sweeps_table

    sweeps = service.list_sweeps(args.notebook, limit=args.limit, base=Path.cwd())
    print(json.dumps([s.to_json() for s in sweeps], indent=2) if args.json else format_sweeps_table(sweeps))
    return 0


def _cmd_cancel(service: Any, args: argparse.Namespace) -> int:
    open_runs = service.cancel(args.target, base=Path.cwd())
    if not open_runs:
        print(f"nothing to cancel: no run of {args.target} is queued or running")
        return 0
    final = service.wait(open_runs, timeout=max(0.0, args.wait))
    for run in final:
        print(f"{run.ref} {run.status}" + ("" if run.status != "running" else " (cancel requested; still stopping)"))
    return 0


def _cmd_requeue(service: Any, args: argparse.Namespace) -> int:
    runs = service.requeue(args.target, base=Path.cwd(), include_failed=args.failed)
    if not args.json:
        print(f"re-queued {len(runs)} run(s) of {args.target}", file=sys.stderr)
    report = None if args.json else (lambda run: print(format_run_line(run, with_parameters=True), flush=True))
    final = _wait_or_cancel(service, runs, report)
    if args.json:
        print(json.dumps([run.to_json() for run in final], indent=2))
    return 0 if all(run.status == "succeeded" for run in final) else EXIT_RUN_FAILED


def _show_comparison(comparison: Any, args: argparse.Namespace) -> None:
    data = comparison.to_json()
    if args.html:
        from .diff.report import write_report

        write_report(comparison, Path(args.html))
    if args.json:
        print(json.dumps(data, indent=1))
    else:
        from .diff.terminal import format_comparison

        print(format_comparison(data, show_identical=args.all))
        if args.html:
            print(f"report: {args.html}")


def _cmd_diff(service: Any, args: argparse.Namespace) -> int:
    comparison = service.compare(args.a, args.b, _compare_overrides(args), base=Path.cwd(), anywhere=True)
    _show_comparison(comparison, args)
    return 0


def _cmd_check(service: Any, args: argparse.Namespace) -> int:
    comparison = service.check(args.ref, args.baseline, _compare_overrides(args), base=Path.cwd())
    _show_comparison(comparison, args)
    if args.junit:
        from .diff.junit import junit_xml

        Path(args.junit).write_text(junit_xml(comparison))
    return EXIT_CHECK_FAILED if comparison.unexpected() else 0


def _cmd_baseline(service: Any, args: argparse.Namespace) -> int:
    if names_a_run(args.ref):
        baseline = service.approve_baseline(args.ref, args.note, base=Path.cwd())
        message = f"{baseline.ref} is now the baseline of {baseline.notebook}"
    else:
        baseline = service.baseline(args.ref, base=Path.cwd())
        message = f"baseline of {baseline.notebook}: {baseline.ref} (approved {baseline.to_json()['approved_at']})"
    print(json.dumps(baseline.to_json(), indent=2) if args.json else message)
    return 0


def _cmd_serve(service: Any, args: argparse.Namespace) -> int:
    service.serve(args.target, base=Path.cwd(), announce=lambda text: print(text, file=sys.stderr, flush=True),
                  function=args.function, **_endpoint_settings(args))
    return 0


def _cmd_deploy(service: Any, args: argparse.Namespace) -> int:
    deployed = service.endpoints.deploy(args.target, function=args.function, name=args.name, base=Path.cwd(),
                                        **_endpoint_settings(args))
    if deployed.warning:
        print(f"warning: {deployed.warning}", file=sys.stderr)
    record = deployed.record
    serving = record.deployment
    route = f"POST {record.url}/{serving.function}" if serving.function else record.url
    print(f"{record.name}: {serving.ref or serving.notebook} serving at {route}")
    print(f"  {serving.describe()}")
    if deployed.token:
        print(f"token (shown once, send 'Authorization: Bearer <token>'): {deployed.token}")
    return 0


def _cmd_endpoints(service: Any, args: argparse.Namespace) -> int:
    from .formatting import format_endpoints_table

    found = service.endpoints.list()
    if args.json:
        print(json.dumps([record.to_json(status) for record, status in found], indent=2))
    else:
        print(format_endpoints_table(found) if found else "no endpoints; start one with jupyter mlx deploy NOTEBOOK@vN --function NAME")
    return 0


def _cmd_rollback(service: Any, args: argparse.Namespace) -> int:
    record = service.endpoints.rollback(args.name)
    print(f"{record.name}: back to {record.deployment.ref or record.deployment.notebook} at {record.url}")
    print(f"  {record.deployment.describe()}")
    return 0


def _cmd_stop(service: Any, args: argparse.Namespace) -> int:
    record = service.endpoints.stop(args.name)
    print(f"{record.name}: stopped")
    return 0


def _cmd_logs(service: Any, args: argparse.Namespace) -> int:
    print(service.endpoints.logs(args.name, args.lines))
    return 0


def _cmd_export(service: Any, args: argparse.Namespace) -> int:
    folder = service.export_endpoint(args.target, Path(args.output), args.function, args.force, base=Path.cwd(),
                                     reexecute=args.reexecute, format=args.format)
    if args.format == "mlflow":
        print(f"wrote {folder}: mlflow models serve -m {folder} --env-manager local")
        return 0
    print(f"wrote {folder}: pip install -r {folder / 'requirements.txt'}; ENDPOINT_TOKEN=... python {folder / 'app.py'}")
    return 0


def _cmd_mlflow_export(service: Any, args: argparse.Namespace) -> int:
    from .mlflow_tracking import export_runs, select_runs, summary

    runs = select_runs(service, args.target, args.sweep, base=Path.cwd())
    uri = args.tracking_uri or service.config.mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", "")
    report = None if args.json else (lambda result: print(result.describe(), flush=True))
    results = export_runs(service, runs, uri, args.experiment or service.config.mlflow_experiment, report)
    print(json.dumps([result.to_json() for result in results], indent=2) if args.json else summary(results))
    return EXIT_RUN_FAILED if any(result.action == "failed" for result in results) else 0


def _cmd_migrate_store(service: Any, args: argparse.Namespace) -> int:
    from .store.migrate import HEAD

    before, after = service.migrate_store()
    where = service.store_status_url()
    if before == after:
        print(f"{where}: already at schema revision {HEAD}")
    else:
        print(f"{where}: schema revision {before or 'none (a new index)'} -> {after}")
    return 0


COMMANDS = {
    "run": _cmd_run,
    "runs": _cmd_runs,
    "show": _cmd_show,
    "open": _cmd_open,
    "artifacts": _cmd_artifacts,
    "rm": _cmd_rm,
    "sweep": _cmd_sweep,
    "sweeps": _cmd_sweeps,
    "cancel": _cmd_cancel,
    "requeue": _cmd_requeue,
    "diff": _cmd_diff,
    "check": _cmd_check,
    "baseline": _cmd_baseline,
    "serve": _cmd_serve,
    "deploy": _cmd_deploy,
    "endpoints": _cmd_endpoints,
    "rollback": _cmd_rollback,
    "stop": _cmd_stop,
    "export": _cmd_export,
    "mlflow-export": _cmd_mlflow_export,
    "migrate-store": _cmd_migrate_store,
    "logs": _cmd_logs,
}


def _version() -> str:
    from ._version import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``jupyter-mlx`` (and ``jupyter mlx``); returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:  # `jupyter mlx` alone: what it can do, as `--help` says it
        parser.print_help()
        return 0
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
