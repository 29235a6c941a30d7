"""Which project files a run saw: path, size, modification time and SHA-256, cheaply.

A hash is reused when a file's path, size and modification time are those of the previous
fingerprint (DVC's trick), so only new or changed files are read. Files above ``max_hash_size``
keep their size and modification time only. The store, ``.git`` and caches are left out.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable

from ..store.records import InputFile
from .artifacts import matches_any
from .folders import walk

SKIPPED = (".git", ".mlx", "__pycache__", "*/__pycache__", ".ipynb_checkpoints", "*/.ipynb_checkpoints")


def fingerprint(project: Path, previous: Iterable[InputFile] = (), max_hash_size: int = 256 << 20,
                skipped: tuple[str, ...] = SKIPPED) -> list[InputFile]:
    """The project's files now, in path order."""
    known = {(f.path, f.size, f.mtime): f.sha256 for f in previous}
    files = []
    for path, entry in walk(project):
        if not entry.is_file(follow_symlinks=False) or matches_any(path, skipped):
            continue
        info = entry.stat(follow_symlinks=False)
        digest = known.get((path, info.st_size, info.st_mtime))
        if digest is None and info.st_size <= max_hash_size:
            digest = _sha256(Path(entry.path))
        files.append(InputFile(path, info.st_size, info.st_mtime, digest))
    return sorted(files, key=lambda f: f.path)


def _sha256(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except OSError:  # unreadable, or gone meanwhile: size and time only
        return None
    return digest.hexdigest()
