"""Which project files a run saw: path, size, modification time and SHA-256, cheaply.

A hash is reused when a file's path, size and modification time are those of the previous
fingerprint (DVC's trick), so only new or changed files are read. Files above ``max_hash_size``
keep their size and modification time only. The store and the tools' folders (``.git``, ``.venv``,
``node_modules``, caches: ``c.MLXConfig.tool_folders``) are left out.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable

from ..store.records import InputFile
from .folders import TOOL_FOLDERS, walk

def fingerprint(project: Path, previous: Iterable[InputFile] = (), max_hash_size: int = 256 << 20,
                skip_folders: frozenset[str] = TOOL_FOLDERS) -> list[InputFile]:
    """The project's files now, in path order (never entering ``skip_folders``: .git, .venv, ...)."""
    known = {(f.path, f.size, f.mtime): f.sha256 for f in previous}
    files = []
    for path, entry in walk(project, skip_folders):
        if not entry.is_file(follow_symlinks=False):
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
