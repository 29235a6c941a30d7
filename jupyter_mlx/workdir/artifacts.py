"""Choose and describe the files a run wrote: include/exclude patterns, size limits, media types.

A file that is not kept (too large, past the run's budget) is skipped with a note on the run,
never a failed run. Storing is the caller's (``put``: path -> SHA-256, e.g. ``BlobStore.put_file``,
which hashes and stores in one read).
"""
from __future__ import annotations

import fnmatch
import mimetypes
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from ..formatting import format_bytes
from ..store.records import Artifact
from .folders import Written

EXTRA_TYPES = {
    ".csv": "text/csv", ".tsv": "text/tab-separated-values", ".parquet": "application/vnd.apache.parquet",
    ".json": "application/json", ".md": "text/markdown", ".ipynb": "application/x-ipynb+json",
    ".pkl": "application/x-python-pickle", ".pickle": "application/x-python-pickle", ".joblib": "application/octet-stream",
    ".npy": "application/x-npy", ".svg": "image/svg+xml", ".log": "text/plain", ".yaml": "application/yaml",
    ".yml": "application/yaml", ".txt": "text/plain", ".py": "text/x-python",
}


@dataclass(frozen=True)
class ArtifactRules:
    """Which written files are kept (``c.MLXConfig.artifact_*``)."""

    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()
    max_file_size: int = 1 << 30
    max_run_size: int = 1 << 30

    def keeps(self, path: str) -> bool:
        return matches_any(path, self.include) and not matches_any(path, self.exclude)


@dataclass
class Collected:
    artifacts: list[Artifact] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # path -> the file its bytes were read from
    notes: list[str] = field(default_factory=list)


def media_type(path: str) -> str:
    suffix = Path(path).suffix.lower()
    return EXTRA_TYPES.get(suffix) or mimetypes.guess_type(path, strict=False)[0] or "application/octet-stream"


def collect(written: Iterable[Written], rules: ArtifactRules, put: Callable[[Path], str]) -> Collected:
    """The artifacts among ``written``, in path order, each stored with ``put`` (several files at
    once: hashing and zlib release the GIL, so every core works on a run's files)."""
    found = Collected()
    chosen = choose(sorted(written, key=lambda w: w.path), rules, found.notes)
    workers = min(len(chosen), os.cpu_count() or 1) or 1
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mlx-artifacts") as pool:
        stored = list(pool.map(lambda pair: _put(put, pair[0].file), chosen))
    for (item, size), digest in zip(chosen, stored):
        if isinstance(digest, OSError):
            found.notes.append(f"artifact {item.path} skipped: it could not be read ({digest.strerror or digest})")
            continue
        found.artifacts.append(Artifact(item.path, size, digest, media_type(item.path)))
        found.files[item.path] = str(item.file)
    return found


def choose(written: list[Written], rules: ArtifactRules, notes: list[str]) -> list[tuple[Written, int]]:
    """The files kept, with their sizes; a note for each one skipped."""
    chosen = []
    budget = rules.max_run_size
    for item in written:
        if not rules.keeps(item.path):
            continue
        try:
            item.path.encode("utf-8")
        except UnicodeEncodeError:  # bytes that are not UTF-8 in the name: no path could name it later
            shown = item.path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            notes.append(f"artifact {shown} skipped: its name is not valid UTF-8")
            continue
        try:
            size = item.file.stat().st_size
        except FileNotFoundError:  # deleted while collecting (a thread still writing)
            continue
        if size > rules.max_file_size:
            notes.append(f"artifact {item.path} skipped: {format_bytes(size)} is over the limit of "
                         f"{format_bytes(rules.max_file_size)} per file (c.MLXConfig.artifact_max_file_size)")
            continue
        if size > budget:
            notes.append(f"artifact {item.path} skipped: {format_bytes(size)} would pass the limit of "
                         f"{format_bytes(rules.max_run_size)} per run (c.MLXConfig.artifact_max_run_size)")
            continue
        budget -= size
        chosen.append((item, size))
    return chosen


def _put(put: Callable[[Path], str], file: Path) -> str | OSError:
    try:
        return put(file)
    except OSError as exc:
        return exc


def matches_any(path: str, patterns: Iterable[str]) -> bool:
    """fnmatch on the path, or on any of its folders (``__pycache__`` skips what is under it)."""
    parts = path.split("/")
    folders = ["/".join(parts[: i + 1]) for i in range(len(parts) - 1)]
    return any(fnmatch.fnmatchcase(candidate, pattern) for pattern in patterns for candidate in (path, *folders))

