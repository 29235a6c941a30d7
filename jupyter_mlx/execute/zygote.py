"""A kernel "zygote": a process that has imported ipykernel once and forks a fresh kernel per request.

Starting an ipykernel costs about 0.3 s of CPU, almost all of it imports; on a machine busy with a
sweep that CPU is taken from the runs. Forked from this process, a kernel starts with ipykernel
already imported (copy-on-write) and nothing else: no cell has run in it, so each run still gets a
fresh kernel. ``--preload`` names modules the notebook imports (``preload.py`` chose them): each
is imported here once, and checked. A module that warns or prints at import (a cold kernel would
show it in the importing cell), starts a thread (other than the BLAS and allocator pools that
handle a fork), keeps a file or socket open, or takes longer than ``--import-timeout`` is refused: the zygote says so and exits, and its parent starts another
without it. A module that fails to import is simply not preloaded.

A forked kernel is then made to look as a cold one would: it runs in ``cwd`` with exactly ``env``
and ``sys.path`` without the zygote's folder (``ipykernel_launcher`` removes its own), and matplotlib, if preloaded, takes its settings from that folder
and environment (``matplotlibrc``, ``MPLBACKEND``, else the inline backend ipykernel sets) as its
import in a cold kernel would have.

Protocol (one JSON object per line): the zygote first writes ``{"ready": PID, "loaded": [...],
"failed": {module: error}}``, or ``{"refused": {module: why}}`` before exiting. Then the parent
writes ``{"argv": [...], "cwd": "...", "env": {...}}`` on stdin; the zygote forks and answers
``{"pid": N}`` (or ``{"error": "..."}``) on stdout. The child becomes a session leader (so signals
to its process group reach only it) and runs ``ipykernel_launcher`` with ``argv``. Run as
``python -m jupyter_mlx.execute.zygote [--preload numpy,pandas] [--import-timeout 30]``.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
from typing import Any

INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
# imported by every kernel as it starts (ipykernel's debugger: 70 ms), so by the zygote once
KERNEL_MODULES = ("ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.debugger")  # what ipykernel sets when MPLBACKEND is not
# packages whose import starts native thread pools that survive a fork by design (OpenBLAS and
# jemalloc re-create theirs in the child): their threads do not refuse them
FORK_SAFE_POOLS = ("numpy", "scipy", "pandas", "pyarrow", "sklearn", "numexpr", "statsmodels", "seaborn",
                   "matplotlib", "PIL", "skimage", "xgboost", "lightgbm")


def _reap(_signum: int, _frame: Any) -> None:
    """Collect exited kernels so none stays a zombie (their manager polls /proc, not wait)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _child(request: dict[str, Any], protocol_out: int) -> None:
    """In the forked child: become the kernel. Never returns."""
    code = 1
    try:
        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.close(protocol_out)
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(2, 1)  # the zygote's stdout is the protocol: kernel output goes to stderr
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        if sys.path and sys.path[0] == _STARTED_IN:  # ipykernel_launcher removes its cwd: so does this
            del sys.path[0]
        _configure_as_cold()
        parent = str(os.getppid())
        os.environ["JPY_PARENT_PID"] = parent
        # the trait's default was read from the zygote's environment at import: set it here,
        # so the kernel ends with the zygote (which ends with the process that uses it)
        sys.argv = ["ipykernel_launcher", *request["argv"], f"--IPKernelApp.parent_handle={parent}"]
        from ipykernel import kernelapp

        kernelapp.launch_new_instance()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        os._exit(code)


def _configure_as_cold() -> None:
    """Settings a preloaded module took from the zygote's folder and environment at import, taken
    again from the kernel's, as its import in a cold kernel would."""
    matplotlib = sys.modules.get("matplotlib")
    if matplotlib is not None:
        settings = matplotlib.rc_params_from_file(matplotlib.matplotlib_fname(), use_default_template=True)
        # ipykernel sets MPLBACKEND before any cell runs, so a cold import reads this backend
        settings["backend"] = os.environ.get("MPLBACKEND") or INLINE_BACKEND
        matplotlib.rcParams.update(settings)
        matplotlib.rcParamsOrig.update(settings)


def _threads() -> set[str]:
    try:
        return set(os.listdir("/proc/self/task"))
    except OSError:
        return {str(t.ident) for t in threading.enumerate()}


def _open_files() -> set[str]:
    """What this process's file descriptors point to (files, sockets, pipes)."""
    found = set()
    try:
        descriptors = os.listdir("/proc/self/fd")
    except OSError:
        return found
    for fd in descriptors:
        try:
            found.add(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:  # the listing's own descriptor, closed by now
            pass
    return found


class _ImportTimeout(BaseException):
    pass


def _expire(_signum: int, _frame: Any) -> None:
    raise _ImportTimeout()


def preload(modules: list[str], timeout: float) -> tuple[list[str], dict[str, str], dict[str, str]]:
    """Import ``modules`` one by one, checking each: (loaded, failed: error, refused: why). The first
    refusal stops the loading (this process is no longer as a cold kernel's start would be)."""
    import contextlib
    import importlib
    import io
    import warnings

    loaded: list[str] = []
    failed: dict[str, str] = {}
    previous = signal.signal(signal.SIGALRM, _expire)
    try:
        for name in modules:
            python_threads = set(threading.enumerate())
            threads, files = _threads(), _open_files()
            signal.setitimer(signal.ITIMER_REAL, timeout)
            printed = io.StringIO()
            try:  # what a cold kernel would show in the importing cell must not happen here unseen
                with warnings.catch_warnings(record=True) as warned, contextlib.redirect_stdout(printed), \
                        contextlib.redirect_stderr(printed):
                    importlib.import_module(name)
            except _ImportTimeout:
                return loaded, failed, {name: f"its import took longer than {timeout:g} s"}
            except BaseException as exc:  # noqa: BLE001 - any failure: not preloaded, the kernel imports it
                failed[name] = f"{type(exc).__name__}: {exc}"[:200]
                continue
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            if warned:
                return loaded, failed, {name: f"its import warns ({warned[0].category.__name__}: "
                                              f"{str(warned[0].message)[:80]}), which a cold kernel shows in the cell"}
            if printed.getvalue():
                return loaded, failed, {name: "its import prints, which a cold kernel shows in the cell"}
            started = [t.name for t in set(threading.enumerate()) - python_threads]
            if started:
                return loaded, failed, {name: f"its import started thread(s) {', '.join(sorted(started))}"}
            native = len(_threads() - threads)
            if native and name.split(".")[0] not in FORK_SAFE_POOLS:
                return loaded, failed, {name: f"its import started {native} native thread(s)"}
            opened = sorted(p for p in _open_files() - files if not p.startswith(("/dev/", "anon_inode:")))
            if opened:
                return loaded, failed, {name: f"its import left {len(opened)} file(s) or socket(s) open ({opened[0]})"}
            loaded.append(name)
    finally:
        signal.signal(signal.SIGALRM, previous)
    return loaded, failed, {}


def serve(modules: list[str], timeout: float = 30.0) -> None:
    import importlib

    protocol_out = os.dup(1)
    os.dup2(2, 1)  # stray prints must not corrupt the protocol
    reply = os.fdopen(protocol_out, "w", buffering=1)
    import contextlib
    import io

    for name in KERNEL_MODULES:  # what every kernel imports as it starts, before any cell
        try:  # quietly: the debugger's notes at import are for a kernel's log, not this terminal
            with contextlib.redirect_stderr(io.StringIO()):
                importlib.import_module(name)
        except ImportError:
            pass
    baseline = sorted({name.partition(".")[0] for name in sys.modules})  # what any kernel starts with
    loaded, failed, refused = preload(modules, timeout)
    if refused:
        reply.write(json.dumps({"refused": refused, "loaded": loaded}) + "\n")
        return
    import gc

    gc.collect()
    gc.freeze()  # a kernel's first collection would otherwise visit (and copy) every shared page
    signal.signal(signal.SIGCHLD, _reap)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in a terminal is for the parent
    reply.write(json.dumps({"ready": os.getpid(), "loaded": loaded, "failed": failed, "baseline": baseline}) + "\n")
    for line in sys.stdin:
        try:
            request = json.loads(line)
            pid = os.fork()
        except Exception as exc:  # a malformed request or no memory: say so, keep serving
            reply.write(json.dumps({"error": f"{type(exc).__name__}: {exc}"}) + "\n")
            continue
        if pid == 0:
            _child(request, protocol_out)
        reply.write(json.dumps({"pid": pid}) + "\n")


_STARTED_IN = os.getcwd()  # sys.path[0] of `python -m jupyter_mlx.execute.zygote`


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m jupyter_mlx.execute.zygote")
    parser.add_argument("--preload", default="", help="modules to import once, comma-separated")
    parser.add_argument("--import-timeout", type=float, default=30.0)
    args = parser.parse_args(argv)
    serve([name for name in args.preload.split(",") if name], args.import_timeout)


if __name__ == "__main__":
    main()
