"""A run's own folder: the project as it is when the run starts, with the run's writes kept apart.

Three ways to make one (``c.MLXConfig.run_folder``):

- ``overlay``: an overlayfs mount whose lower layer is the project (read-only, never written) and
  whose upper layer collects what the run creates, changes or deletes. One mount, whatever the
  project's size or number of files. Needs the right to mount (root, or CAP_SYS_ADMIN): a Docker
  container run as root, most CI machines. Writing to a large input copies it up first (the
  kernel does, while the run writes it): appending to a 10 GB file costs its copy, once.
- ``copy``: a copy of the project (without ``.mlx``): correct everywhere, but costs the project's
  bytes; what ``auto`` falls back to where mounting is not allowed.
- ``in-place``: the project folder itself, as before run folders: the run's writes land in the
  project. Changed files are found by their size and modification time.

A run reads the project's store (``.mlx``) as it was, and what it writes there stays in its
folder (not the real store: nothing reachable through a run folder is the project's to delete).
A notebook that records runs itself (``jupyter_mlx.run`` inside a run) needs ``in-place``. Each folder lives under the project's run
folders directory (outside the project: overlay layers may not overlap) and holds ``owner.lock``,
locked by the process running it: a folder whose lock is free belongs to a process that died,
and the next run folder made for the project removes it (``remove_stale``).
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import shutil
import stat
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..config import DEFAULT_TOOL_FOLDERS, STORE_DIRNAME
from . import mounts

STRATEGIES = ("auto", "overlay", "copy", "in-place")
TOOL_FOLDERS = frozenset(DEFAULT_TOOL_FOLDERS)  # a copy leaves them out, the inputs fingerprint skips them
LOCK_NAME = "owner.lock"
KEPT_NAME = "kept"  # a folder the user asked to keep: not stale, whoever owned it


class RunFolderError(Exception):
    """The run's folder could not be made (no space, no permission): the run fails with this message."""


@dataclass(frozen=True)
class Written:
    """A file the run created or changed: its path relative to the project, and where its bytes are."""

    path: str
    file: Path


class RunFolder:
    """Where one run executes. ``view`` is the project as the run sees it."""

    strategy = ""

    def __init__(self, project: Path, view: Path, home: Path | None) -> None:
        self.project = project
        self.view = view
        self.home = home  # this folder's own directory (None in place)
        self._lock_fd: int | None = None

    def cwd_for(self, notebook: str) -> Path:
        """The folder a notebook (a path relative to the project) runs in: its folder in the view."""
        return (self.view / notebook).parent

    def written(self) -> Iterator[Written]:
        """Every regular file the run created or changed (symlinks are never followed)."""
        raise NotImplementedError

    def deleted(self) -> list[str]:
        """Project files the run deleted (or replaced by something that is not a file)."""
        return []

    def close(self) -> None:
        """Unmount and remove the folder (the project is left as it was; the project's run folders
        directory stays: removing it when empty would race with a run making its folder there)."""
        if self.home is not None:
            shutil.rmtree(self.home, ignore_errors=True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def keep(self) -> None:
        """Leave the folder (and its mount) for the user to look at: never removed as stale."""
        if self.home is not None:
            (self.home / KEPT_NAME).touch()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _own(self) -> None:
        """Hold ``owner.lock`` for the folder's life. It appears already locked (made under another
        name, locked, then renamed): a ``remove_stale`` in between must never find it free."""
        assert self.home is not None
        making = self.home / f".{LOCK_NAME}.{os.getpid()}.{threading.get_ident()}"
        self._lock_fd = os.open(making, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.rename(making, self.home / LOCK_NAME)


class OverlayFolder(RunFolder):
    strategy = "overlay"

    def __init__(self, project: Path, home: Path) -> None:
        super().__init__(project, home / "view", home)
        self.upper = home / "upper"
        for folder in (self.upper, home / "work", self.view):
            folder.mkdir()
        self._own()
        mounts.mount_overlay(project, self.upper, home / "work", self.view)

    def written(self) -> Iterator[Written]:
        for path, entry in walk(self.upper):
            if entry.is_file(follow_symlinks=False) and not _same_file(Path(entry.path), self.project / path):
                yield Written(path, Path(entry.path))

    def deleted(self) -> list[str]:
        return sorted(path for path, entry in walk(self.upper) if _is_whiteout(entry))

    def close(self) -> None:
        if _unmount_view(self.view):
            super().close()


class CopyFolder(RunFolder):
    strategy = "copy"

    def __init__(self, project: Path, home: Path, skip_folders: frozenset[str] = frozenset()) -> None:
        super().__init__(project, home / "view", home)
        self.skip_folders = skip_folders
        self._own()
        # the store and the tool folders (.git, .venv, node_modules, ...: what no notebook reads, and
        # often the bulk of the bytes) stay out; an overlay shows them
        shutil.copytree(project, self.view, symlinks=True, ignore=lambda folder, names: [
            name for name in names if name in self.skip_folders or (name == STORE_DIRNAME and Path(folder) == project)])
        self._copied = _stat_snapshot(self.view)

    def written(self) -> Iterator[Written]:
        return _changed_since(self.view, self._copied)

    def deleted(self) -> list[str]:
        return _gone_since(self.view, self._copied)


class InPlaceFolder(RunFolder):
    strategy = "in-place"

    def __init__(self, project: Path, skip_folders: frozenset[str] = frozenset()) -> None:
        super().__init__(project, project, None)
        self.skip_folders = skip_folders  # a .venv or node_modules is not looked through, before or after
        self._before = _stat_snapshot(project, skip_folders)

    def written(self) -> Iterator[Written]:
        return _changed_since(self.project, self._before, self.skip_folders)

    def deleted(self) -> list[str]:
        return _gone_since(self.project, self._before)


def run_folders_dir(project: Path, configured: str = "") -> Path:
    """Where the project's run folders are made: outside it, one directory per project."""
    if configured:
        return Path(configured)
    digest = hashlib.sha256(str(project).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"jupyter_mlx-runs-{os.getuid()}" / digest


def open_run_folder(project: Path, run_id: str, strategy: str = "auto", base: Path | None = None,
                    skip_folders: frozenset[str] = TOOL_FOLDERS) -> RunFolder:
    """A folder for run ``run_id``; ``RunFolderError`` when it cannot be made (nothing is left behind).
    ``skip_folders``: folder names a copy leaves out."""
    if strategy not in STRATEGIES:
        raise ValueError(f"run_folder must be one of {', '.join(STRATEGIES)}, not {strategy!r}")
    if strategy == "in-place":
        return InPlaceFolder(project, skip_folders)
    base = base or run_folders_dir(project)
    remove_stale(base)
    home = base / run_id
    try:
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
        home.mkdir()
    except OSError as exc:
        raise RunFolderError(f"could not make the run's folder in {base}: {exc.strerror or exc}") from exc
    try:
        if strategy == "copy" or (strategy == "auto" and not mounts.can_mount(base)):
            return CopyFolder(project, home, skip_folders)
        return OverlayFolder(project, home)
    except OSError as exc:
        shutil.rmtree(home, ignore_errors=True)
        how = "copy the project into" if strategy == "copy" or not mounts.can_mount(base) else "mount an overlay of the project at"
        raise RunFolderError(f"could not {how} the run's folder {home}: {exc.strerror or exc}") from exc


def remove_stale(base: Path) -> list[Path]:
    """Remove the run folders whose owner process is gone (its lock is free); returns them."""
    removed = []
    try:
        homes = [entry for entry in os.scandir(base) if entry.is_dir(follow_symlinks=False)]
    except OSError:  # not made yet, or cannot be: open_run_folder says why
        return removed
    for entry in homes:
        home = Path(entry.path)
        if (home / KEPT_NAME).exists():
            continue
        try:
            fd = os.open(home / LOCK_NAME, os.O_RDWR)
        except FileNotFoundError:  # being made right now, or made by a process killed before its lock
            if _older_than(home, 60.0):
                _remove(home)
                removed.append(home)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            continue  # alive
        finally:
            os.close(fd)
        _remove(home)
        removed.append(home)
    return removed


def _remove(home: Path) -> None:
    if _unmount_view(home / "view"):
        shutil.rmtree(home, ignore_errors=True)


def _unmount_view(view: Path) -> bool:
    """Unmount a view; False (and nothing may be removed) while it is still mounted."""
    if os.path.ismount(view):
        mounts.unmount(view)
    return not os.path.ismount(view)



def _older_than(path: Path, seconds: float) -> bool:
    import time

    try:
        return time.time() - path.stat().st_mtime > seconds
    except FileNotFoundError:
        return False


def walk(root: Path, skip_folders: frozenset[str] = frozenset()) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """(path relative to ``root`` with ``/``, entry) of everything under ``root``, not following
    symlinks, skipping the store and never entering a folder named in ``skip_folders``."""
    stack = [("", str(root))]
    while stack:
        prefix, folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for entry in entries:
            path = prefix + entry.name
            if path == STORE_DIRNAME:
                continue
            if entry.is_dir(follow_symlinks=False):
                if entry.name in skip_folders:
                    continue
                stack.append((path + "/", entry.path))
            yield path, entry


def _stat_snapshot(root: Path, skip_folders: frozenset[str] = frozenset()) -> dict[str, tuple[int, int]]:
    snapshot = {}
    for path, entry in walk(root, skip_folders):
        if entry.is_file(follow_symlinks=False):
            info = entry.stat(follow_symlinks=False)
            snapshot[path] = (info.st_size, info.st_mtime_ns)
    return snapshot


def _changed_since(root: Path, snapshot: dict[str, tuple[int, int]],
                   skip_folders: frozenset[str] = frozenset()) -> Iterator[Written]:
    """The files under ``root`` that are new or whose size or modification time is not the snapshot's."""
    for path, entry in walk(root, skip_folders):
        if entry.is_file(follow_symlinks=False):
            now = entry.stat(follow_symlinks=False)
            if snapshot.get(path) != (now.st_size, now.st_mtime_ns):
                yield Written(path, Path(entry.path))


def _gone_since(root: Path, snapshot: dict[str, tuple[int, int]]) -> list[str]:
    return sorted(path for path in snapshot if not (root / path).is_file())


def _is_whiteout(entry: os.DirEntry[str]) -> bool:
    """overlayfs marks a deleted lower file with a 0/0 character device in the upper layer."""
    info = entry.stat(follow_symlinks=False)
    return stat.S_ISCHR(info.st_mode) and info.st_rdev == 0


def _same_file(written: Path, original: Path) -> bool:
    """Whether a file copied up by overlayfs (a chmod, a touch, a rewrite with the same bytes) still
    holds the project's bytes: then it is not a change."""
    try:
        info = original.stat(follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError):
        return False
    if not stat.S_ISREG(info.st_mode) or info.st_size != written.stat().st_size:
        return False
    with open(written, "rb") as one, open(original, "rb") as two:
        while True:
            a, b = one.read(1 << 20), two.read(1 << 20)
            if a != b:
                return False
            if not a:
                return True
