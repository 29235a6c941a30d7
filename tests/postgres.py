"""A private PostgreSQL server for the tests: ``initdb`` in a temporary folder, ``pg_ctl`` on a
free port of 127.0.0.1, trust authentication, stopped (and its folder removed) after.

Debian's ``postgresql`` package puts its programs in ``/usr/lib/postgresql/<version>/bin``.
``initdb`` refuses to run as root: as root (CI), the cluster is made and run as the ``postgres``
system user (``runuser``), in a folder that user owns.
"""
from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Iterator

from jupyter_mlx.ports import free_port

START_TIMEOUT = 60


def _program(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if found is None:
        raise RuntimeError(f"{name} not found: install Debian's postgresql package (scripts/test does)")
    return found


def _as_owner(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


class PostgresServer:
    """One running cluster; ``database()`` makes a fresh database and returns its SQLAlchemy URL."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder, self.port = folder, port

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def database(self, name: str | None = None) -> str:
        import sqlalchemy as sa

        name = name or f"mlx_{uuid.uuid4().hex[:12]}"
        engine = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        finally:
            engine.dispose()
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        subprocess.run(_as_owner([_program("pg_ctl"), "stop", "-D", str(self.folder / "data"), "-m", "immediate",
                                  "-w", "-t", "30"]), capture_output=True, timeout=60)


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A running private PostgreSQL cluster, stopped and removed after."""
    folder = Path(tempfile.mkdtemp(prefix="mlx-pg-"))  # under /tmp: the postgres user can reach it
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    data = folder / "data"
    server = PostgresServer(folder, free_port())
    try:
        subprocess.run(_as_owner([_program("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                                  "--no-sync", "-E", "UTF8", "--locale=C"]),
                       check=True, capture_output=True, timeout=120)
        options = (f"-p {server.port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        started = subprocess.run(_as_owner([_program("pg_ctl"), "start", "-D", str(data), "-o", options, "-l",
                                            str(folder / "log"), "-w", "-t", str(START_TIMEOUT)]),
                                 capture_output=True, text=True, timeout=START_TIMEOUT + 30)
        if started.returncode != 0:
            log = (folder / "log").read_text() if (folder / "log").exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {started.stderr.strip()} {log[-2000:]}")
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
