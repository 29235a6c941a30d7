"""A virtual environment kept between test runs, reused while what decides its contents is unchanged.

An entry is named by the SHA-256 of its inputs (files such as ``binder/environment.yml`` and
``pyproject.toml``, and the Python that creates it): a changed input makes a new entry, built from
scratch. It lives outside the checkout, so a fresh clone on the same machine (CI) finds it:
``$JUPYTER_MLX_TEST_CACHE``, else ``$XDG_CACHE_HOME/jupyter_mlx-tests``, else
``~/.cache/jupyter_mlx-tests``. An entry is locked while a test uses it (other test runs wait), is
"warm" only when the last set-up in it completed, and is rebuilt when older than ``MAX_AGE``, so
it never pins old package versions for long. Entries of other inputs unused for ``UNUSED_AGE``
are removed.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

CACHE_ENV = "JUPYTER_MLX_TEST_CACHE"
MAX_AGE = 7 * 24 * 3600  # seconds: rebuild a warm entry this old (newer packages on the index)
UNUSED_AGE = 2 * 24 * 3600  # seconds: remove another entry not used for this long
READY = "ready"  # written when the set-up in the entry completed; its mtime is the last use
BUILT = "built"  # written when the entry was created


def cache_root() -> Path:
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "jupyter_mlx-tests"


def inputs_digest(root: Path, inputs: list[str]) -> str:
    """The hash of the files ``inputs`` (relative to ``root``) and of the Python running this."""
    digest = hashlib.sha256()
    digest.update(sys.version.encode())
    digest.update(os.path.realpath(getattr(sys, "_base_executable", sys.executable)).encode())
    for name in inputs:
        digest.update(b"\0" + name.encode() + b"\0")
        digest.update((root / name).read_bytes())
    return digest.hexdigest()[:16]


@dataclass
class CachedVenv:
    """A locked cache entry: ``venv`` is the environment's folder."""

    entry: Path
    warm: bool  # a complete set-up was done in it before: its packages are installed

    @property
    def venv(self) -> Path:
        return self.entry / "venv"

    def completed(self) -> None:
        """Mark the set-up in ``venv`` complete: the next run may reuse it."""
        (self.entry / READY).write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))


@contextmanager
def cached_venv(name: str, digest: str, lock_timeout: float) -> Iterator[CachedVenv]:
    """Lock the entry ``name-digest`` and give it, warm when an earlier set-up in it completed
    (and is not too old), else emptied. Until ``completed()`` is called again it counts as cold:
    a set-up that fails or is interrupted halfway is redone from scratch next time."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    entry = root / f"{name}-{digest}"
    with _locked(root / f"{name}-{digest}.lock", lock_timeout):
        ready, built = entry / READY, entry / BUILT
        warm = ready.is_file() and built.is_file() and time.time() - built.stat().st_mtime < MAX_AGE
        if warm:
            ready.unlink()  # until this run's set-up completes
        else:
            shutil.rmtree(entry, ignore_errors=True)
            entry.mkdir()
            built.write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))
        yield CachedVenv(entry, warm)
    _remove_unused(root, name, keep=entry)


@contextmanager
def _locked(path: Path, timeout: float) -> Iterator[None]:
    with path.open("a") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{path} stayed locked by another test run for {timeout:.0f} s") from None
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_unused(root: Path, name: str, keep: Path) -> None:
    """Remove the entries of ``name`` (other than ``keep``) not used for ``UNUSED_AGE`` and not locked."""
    for entry in root.glob(f"{name}-*"):
        if entry == keep or not entry.is_dir():
            continue
        marker = entry / READY if (entry / READY).exists() else entry
        if time.time() - marker.stat().st_mtime < UNUSED_AGE:
            continue
        with entry.with_name(entry.name + ".lock").open("a") as handle:  # (lock files stay: a few bytes)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # in use right now
            shutil.rmtree(entry, ignore_errors=True)
