"""Test helpers for the notebook side: a folder with no Jupyter server to find, and stopping processes."""
from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from jupyter_mlx import transport as transports


@contextmanager
def working_in(folder: Path, runtime_dir: Path) -> Iterator[Path]:
    """Work in ``folder`` (the kernel's cwd) with ``runtime_dir`` as Jupyter's runtime folder (empty:
    no server to find, so the magic and API run in process); in-process services close after."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_RUNTIME_DIR", str(runtime_dir))
        patch.delenv("JUPYTER_MLX_TRANSPORT", raising=False)
        patch.chdir(folder)
        yield folder
        transports.close_local()


def stop_process(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """Terminate, then kill if it does not exit in ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def tree_hash(root: Path) -> str:
    """Every file of a project but its store: paths, modes and bytes (unchanged by a run, issue 14)."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if ".mlx" not in p.relative_to(root).parts):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file() and not path.is_symlink():
            digest.update(oct(path.stat().st_mode).encode() + path.read_bytes())
    return digest.hexdigest()
