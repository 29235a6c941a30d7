"""One run's files, from its folder's making to the artifacts collected at its end (what the service
calls around an execution)."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable

from ..config import MLXConfig
from ..store.records import InputFile
from .artifacts import ArtifactRules, Collected, collect
from .fingerprint import fingerprint
from .folders import RunFolder, Written, open_run_folder, run_folders_dir, walk


class InputHashes:
    """The latest fingerprint of a project, shared by its runs: hashes are reused by path, size
    and modification time. Loaded once from the store (the last run that recorded one)."""

    def __init__(self, load: Callable[[], list[InputFile] | None]) -> None:
        self._load = load
        self._latest: list[InputFile] | None = None
        self._lock = threading.Lock()

    def previous(self) -> list[InputFile]:
        with self._lock:
            if self._latest is None:
                self._latest = self._load() or []
            return self._latest

    def update(self, files: list[InputFile]) -> None:
        with self._lock:
            self._latest = files


def run_folder_strategy(config: MLXConfig, in_place: bool) -> str:
    return "in-place" if in_place else config.run_folder


def artifact_rules(config: MLXConfig) -> ArtifactRules:
    return ArtifactRules(tuple(config.artifact_include), tuple(config.artifact_exclude),
                         config.artifact_max_file_size, config.artifact_max_run_size)


def collect_remote(folder: Path | None, notes: list[str], config: MLXConfig,
                   put: Callable[[Path], str]) -> dict[str, Any]:
    """The outcome's fields about files for a run whose remote kernel sent its files back (copied
    into ``folder``: the caller removes it once the outcome is stored)."""
    found = Collected()
    if folder is not None:
        written = [Written(path, Path(entry.path)) for path, entry in walk(folder) if entry.is_file(follow_symlinks=False)]
        found = collect(written, artifact_rules(config), put)
    return {"artifacts": found.artifacts, "artifact_files": found.files, "notes": [*notes, *found.notes],
            "run_folder": "remote"}


class RunFiles:
    """A run's folder (``open``), the project's fingerprint taken meanwhile on a thread, and what
    the run wrote (``collect``), stored with ``put`` (path -> SHA-256)."""

    def __init__(self, root: Path, config: MLXConfig, run_id: str, strategy: str, put: Callable[[Path], str],
                 hashes: InputHashes) -> None:
        self.root = root
        self.config = config
        self.run_id = run_id
        self.strategy = strategy
        self.put = put
        self.hashes = hashes
        self.folder: RunFolder | None = None
        self._inputs: list[InputFile] | None = None
        self._fingerprinting: threading.Thread | None = None

    def open(self) -> RunFolder:
        """Make the folder (``RunFolderError`` when it cannot be) and start fingerprinting the project."""
        base = run_folders_dir(self.root, self.config.run_folders_dir)
        self.folder = open_run_folder(self.root, self.run_id, self.strategy, base, frozenset(self.config.tool_folders))
        self._fingerprinting = threading.Thread(target=self._fingerprint, name="mlx-fingerprint", daemon=True)
        self._fingerprinting.start()
        return self.folder

    def _fingerprint(self) -> None:
        try:
            self._inputs = fingerprint(self.root, self.hashes.previous(), self.config.input_hash_max_size,
                                       frozenset(self.config.tool_folders))
        except OSError:
            self._inputs = None
        else:
            self.hashes.update(self._inputs)

    def inputs(self) -> list[InputFile] | None:
        """The project's fingerprint taken when the run started (waits for it)."""
        if self._fingerprinting is not None:
            self._fingerprinting.join()
        return self._inputs

    def collect(self) -> dict[str, Any]:
        """The outcome's fields about files: artifacts (stored), inputs, notes, run_folder."""
        assert self.folder is not None
        try:
            found = collect(self.folder.written(), artifact_rules(self.config), self.put)
        except OSError as exc:
            found = Collected(notes=[f"the run's files could not be collected: {exc.strerror or exc}"])
        deleted = self.folder.deleted()
        if deleted and self.folder.strategy != "in-place":
            found.notes.append(f"deleted in its own folder (the project keeps them): {', '.join(deleted[:20])}"
                               + (f" and {len(deleted) - 20} more" if len(deleted) > 20 else ""))
        if self.config.keep_run_folders and self.folder.home is not None:
            unmount = f"umount {self.folder.view} && " if self.folder.strategy == "overlay" else ""
            found.notes.append(f"its folder is kept at {self.folder.view} (--keep-folder); when done: "
                               f"{unmount}rm -r {self.folder.home}")
        return {"artifacts": found.artifacts, "artifact_files": found.files, "notes": found.notes,
                "inputs": self.inputs(), "run_folder": self.folder.strategy}

    def close(self) -> None:
        """Remove the folder, unless ``c.MLXConfig.keep_run_folders``."""
        if self._fingerprinting is not None:
            self._fingerprinting.join()
        if self.folder is None:
            return
        if self.config.keep_run_folders:
            self.folder.keep()
        else:
            self.folder.close()
