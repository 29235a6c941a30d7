"""A kernel "zygote": a process that has imported ipykernel once and forks a fresh kernel per request.

Starting an ipykernel costs about 0.3 s of CPU, almost all of it imports; on a machine busy with a
sweep that CPU is taken from the runs. Forked from this process, a kernel starts with ipykernel
already imported (copy-on-write) and nothing else: no cell has run in it, no user module is
imported (unless ``--preload`` names some), so each run still gets a fresh kernel.

Protocol (one JSON object per line): the parent writes ``{"argv": [...], "cwd": "...", "env": {...}}``
on stdin; the zygote forks and answers ``{"pid": N}`` (or ``{"error": "..."}``) on stdout. The child
becomes a session leader (so signals to its process group reach only it), runs in ``cwd`` with
exactly ``env``, and runs ``ipykernel_launcher`` with ``argv``. Run as
``python -m jupyter_mlx.execute.zygote [--preload numpy,pandas]``.
"""
from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any


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


def serve(preload: list[str]) -> None:
    import importlib

    importlib.import_module("ipykernel.kernelapp")
    importlib.import_module("ipykernel.ipkernel")
    for name in preload:
        importlib.import_module(name)
    signal.signal(signal.SIGCHLD, _reap)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in a terminal is for the parent
    protocol_out = os.dup(1)
    os.dup2(2, 1)  # stray prints must not corrupt the protocol
    reply = os.fdopen(protocol_out, "w", buffering=1)
    reply.write(json.dumps({"ready": os.getpid()}) + "\n")
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


if __name__ == "__main__":
    modules: list[str] = []
    if len(sys.argv) == 3 and sys.argv[1] == "--preload":
        modules = [name for name in sys.argv[2].split(",") if name]
    serve(modules)
