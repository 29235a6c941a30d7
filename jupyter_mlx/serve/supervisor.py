"""An endpoint's supervisor: owns the listening socket, runs one version process at a time.

``python -m jupyter_mlx.serve.supervisor STATE_DIR``. STATE_DIR holds ``spec.json`` (what to
serve) and gets ``status.json`` (what is served, or why not), ``endpoint.log`` and the serving
version's ``stats-*.bin`` (its request counts, named in ``status.json``). SIGHUP: start a
version process for the new ``spec.json``; once it is ready, stop the old one (zero downtime:
both accept from the same socket meanwhile, and it never closes). If the new version fails, the
old one keeps serving. A version process that dies is restarted. SIGTERM/SIGINT: stop.
"""
from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .exposure import exposure_warning
from .spec import EndpointSpec

SIGNALS = {signal.SIGHUP, signal.SIGTERM, signal.SIGINT}
READY_TIMEOUT = 600.0  # seconds a version may take to run its set-up cells
STOP_TIMEOUT = 15.0
RESTART_BACKOFF = 2.0


@dataclass
class Version:
    process: subprocess.Popen
    spec: EndpointSpec
    started_at: float
    stats_file: Path
    loaded_into: dict[str, Any] | None = None  # where the run's state was loaded (None: re-executed)

    def stop(self) -> None:
        _stop(self.process)
        self.stats_file.unlink(missing_ok=True)


class Supervisor:
    def __init__(self, state_dir: Path, echo: bool = False) -> None:
        self.state_dir = state_dir
        self.echo = echo  # foreground (jupyter mlx serve): say what happens on stderr too
        self.spec = EndpointSpec.read(state_dir / "spec.json")
        self.listener = self._listen(self.spec)
        self.port = self.listener.getsockname()[1]  # the one asked for, or the one given for port 0
        self.current: Version | None = None
        warning = exposure_warning(self.spec.name, self.spec.host, self.port, self.spec.token_hash is not None)
        if warning:
            self.log("WARNING", warning)

    # -- the socket --------------------------------------------------------------------------
    @staticmethod
    def _listen(spec: EndpointSpec) -> socket.socket:
        family = socket.AF_INET6 if ":" in spec.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((spec.host, spec.port))
        listener.listen(1024)
        listener.set_inheritable(True)
        return listener

    # -- versions ----------------------------------------------------------------------------
    def start_version(self, spec: EndpointSpec) -> Version:
        """Start a version process for ``spec`` and wait until it serves; raises RuntimeError with
        its reason if it cannot."""
        stamp = int(time.time() * 1000)
        spec_path = self.state_dir / f"version-{stamp}.json"
        stats_file = self.state_dir / f"stats-{stamp}.bin"
        spec.write(spec_path)
        read_end, write_end = os.pipe()
        log = open(self.state_dir / "endpoint.log", "ab")
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "jupyter_mlx.serve.process", str(spec_path),
                 "--socket-fd", str(self.listener.fileno()), "--ready-fd", str(write_end),
                 "--stats-file", str(stats_file.resolve())],
                pass_fds=(self.listener.fileno(), write_end), stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                preexec_fn=_unblock_signals,  # the supervisor blocks them (it waits for them); its children must not
            )
        finally:
            os.close(write_end)
            log.close()
        answer = _read_line(read_end, READY_TIMEOUT)
        os.close(read_end)
        spec_path.unlink(missing_ok=True)
        version = Version(process, spec, time.time(), stats_file, answer.get("loaded_into"))
        if not answer.get("ready"):
            version.stop()
            raise RuntimeError(answer.get("error") or f"the endpoint process exited ({process.poll()}) before serving;"
                               f" see {self.state_dir / 'endpoint.log'}")
        return version

    def serve_first(self) -> None:
        try:
            self.current = self.start_version(self.spec)
        except RuntimeError as exc:
            self.write_status("failed", error=str(exc))
            raise
        self.write_status("serving")

    def redeploy(self) -> None:
        """Swap to the version in ``spec.json``; on failure the current one keeps serving."""
        spec = EndpointSpec.read(self.state_dir / "spec.json")
        try:
            new = self.start_version(spec)
        except RuntimeError as exc:
            self.write_status("serving", error=f"redeploy failed, still serving the previous version: {exc}")
            return
        old, self.current, self.spec = self.current, new, spec
        self.write_status("serving")
        if old is not None:
            old.stop()

    def restart_if_dead(self) -> None:
        if self.current is not None and self.current.process.poll() is not None:
            code = self.current.process.returncode
            self.current.stats_file.unlink(missing_ok=True)
            self.write_status("restarting", error=f"the endpoint process exited with {code}; restarting")
            time.sleep(RESTART_BACKOFF)
            try:
                self.current = self.start_version(self.spec)
                self.write_status("serving")
            except RuntimeError as exc:
                self.current = None
                self.write_status("failed", error=str(exc))

    def stop(self) -> None:
        if self.current is not None:
            self.current.stop()
        self.listener.close()
        self.write_status("stopped")

    def write_status(self, state: str, error: str | None = None) -> None:
        status: dict[str, Any] = {
            "state": state, "supervisor_pid": os.getpid(), "host": self.spec.host, "port": self.port,
            "ref": self.spec.ref, "notebook": self.spec.notebook, "mode": self.spec.mode,
            "function": self.spec.function, "serves": self.spec.serves,
            "reexecute_reason": self.spec.reexecute_reason, "loaded_into": self.current.loaded_into if self.current else None,
            "version_pid": self.current.process.pid if self.current else None,
            "stats": self.current.stats_file.name if self.current else None, "since": time.time(), "error": error,
        }
        temporary = self.state_dir / "status.json.tmp"
        temporary.write_text(json.dumps(status))
        temporary.replace(self.state_dir / "status.json")
        if self.echo:
            what = f"{self.spec.notebook}" + (f" ({self.spec.ref})" if self.spec.ref else "")
            print(f"{state}: {what} on http://{self.spec.host}:{self.port}" + (f" - {error}" if error else ""),
                  file=sys.stderr, flush=True)

    def log(self, level: str, message: str) -> None:
        """A line in endpoint.log, in the endpoint processes' format (and on stderr in the foreground)."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S") + f",{int(time.time() * 1000) % 1000:03d}"
        with open(self.state_dir / "endpoint.log", "a") as log:
            log.write(f"{stamp} jupyter_mlx.serve {level} {message}\n")
        if self.echo:
            print(f"{level.lower()}: {message}", file=sys.stderr, flush=True)

    def loop(self) -> None:
        """Wait for signals: SIGHUP redeploys, SIGTERM/SIGINT stop; check the version each second."""
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        while True:
            received = signal.sigtimedwait(SIGNALS, 1.0)
            if received is None:
                self.restart_if_dead()
            elif received.si_signo == signal.SIGHUP:
                self.redeploy()
            else:
                self.stop()
                return


def _unblock_signals() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)


def _read_line(fd: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    data = b""
    while b"\n" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return {"ready": False, "error": f"the endpoint did not start within {timeout:g} s"}
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                return {"ready": False}
            data += chunk
    return json.loads(data.split(b"\n", 1)[0])


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)


def run(state_dir: Path, echo: bool = False) -> int:
    """Serve until SIGTERM/SIGINT; 3 when the endpoint cannot start (the reason in status.json).

    The stop signals are blocked meanwhile (a stop during start-up waits for the loop, which takes
    them with ``sigtimedwait``) and unblocked after, whatever happened: ``jupyter mlx serve`` runs
    this in its own process, but a caller that goes on (a test, a notebook's kernel) must get Ctrl-C
    back, and so must every process it starts later (they inherit the mask)."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        return _supervise(state_dir, echo)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _supervise(state_dir: Path, echo: bool) -> int:
    try:
        supervisor = Supervisor(state_dir, echo)
    except OSError as exc:  # the port is taken, the address is not ours
        spec = EndpointSpec.read(state_dir / "spec.json")
        message = f"cannot listen on {spec.host}:{spec.port}: {exc.strerror or exc}"
        (state_dir / "status.json").write_text(json.dumps({"state": "failed", "error": message, "since": time.time()}))
        if echo:
            print(f"failed: {message}", file=sys.stderr)
        return 3
    try:
        supervisor.serve_first()
    except RuntimeError:
        supervisor.listener.close()
        return 3
    supervisor.loop()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    return run(Path(args[0]))


if __name__ == "__main__":
    sys.exit(main())
