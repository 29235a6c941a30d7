"""A run's own folder on a remote kernel (a Kernel/Enterprise Gateway), made and collected by the
kernel itself: the service cannot reach the gateway's disk.

Before the notebook: the kernel makes a temporary folder, links each entry of its starting folder
into it (the notebook reads the gateway's files at the same relative paths) and changes into it.
What the notebook creates there stays apart from the runs beside it; an existing entry written
through its link is the gateway's file (a limit of links, documented). After the notebook (also
a failed, cancelled or timed-out one, if the kernel still answers): the kernel sends back every
regular file under the folder that is not a link, within the size limits, base64-encoded in the
reply's ``user_expressions``, and removes the folder.
"""
from __future__ import annotations

import ast
import base64
import json
import tempfile
from pathlib import Path
from typing import Any

SETUP = """
def __mlx_run_folder():
    import os, tempfile
    origin = os.getcwd()
    home = tempfile.mkdtemp(prefix="mlx-run-")
    for name in os.listdir(origin):
        os.symlink(os.path.join(origin, name), os.path.join(home, name))
    os.chdir(home)
    return home
__mlx_home = __mlx_run_folder()
del __mlx_run_folder
"""

COLLECT = """
def __mlx_collect(max_file, max_run):
    import base64, json, os, shutil
    home, files, notes, budget = globals().get("__mlx_home"), {}, [], max_run
    if not home or not os.path.isdir(home):
        return json.dumps({"files": {}, "notes": ["the run's folder on the gateway is gone"]})
    for folder, _, names in os.walk(home):
        for name in sorted(names):
            path = os.path.join(folder, name)
            relative = os.path.relpath(path, home).replace(os.sep, "/")
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            size = os.path.getsize(path)
            if size > max_file or size > budget:
                notes.append(f"artifact {relative} skipped: {size} bytes is over the limit of the "
                             f"{'file' if size > max_file else 'run'} on the gateway")
                continue
            budget -= size
            with open(path, "rb") as handle:
                files[relative] = base64.b64encode(handle.read()).decode()
    os.chdir(os.path.dirname(home))
    shutil.rmtree(home, ignore_errors=True)
    return json.dumps({"files": files, "notes": notes})
"""


def setup_code() -> str:
    return SETUP


def collect_expression(max_file: int, max_run: int) -> tuple[str, str]:
    """(code that defines the collector, the user expression that calls it)."""
    return COLLECT, f"__mlx_collect({int(max_file)}, {int(max_run)})"


def unpack(reply: dict[str, Any]) -> tuple[Path | None, list[str]]:
    """The collected files written to a local temporary folder, and the kernel's notes; (None,
    [why]) when the reply carries none."""
    result = (reply.get("content", {}).get("user_expressions") or {}).get("files") or {}
    if result.get("status") != "ok":
        return None, [f"the run's files could not be collected on the gateway: {result.get('evalue', 'no answer')}"]
    data = json.loads(ast.literal_eval(result["data"]["text/plain"]))
    files = {relative: base64.b64decode(encoded) for relative, encoded in data["files"].items()}
    return unpack_files(files), list(data["notes"])


def gather(folder: Path, max_file: int, max_run: int) -> tuple[dict[str, bytes], list[str]]:
    """The regular files under ``folder`` (not links), within the limits: what a run wrote in its
    folder on a Dask worker that shares no disk with the service, sent back with its result."""
    from ..workdir.artifacts import ArtifactRules, choose
    from ..workdir.folders import Written, walk

    notes: list[str] = []
    written = sorted((Written(path, Path(entry.path)) for path, entry in walk(folder)
                      if entry.is_file(follow_symlinks=False)), key=lambda item: item.path)
    chosen = choose(written, ArtifactRules(max_file_size=max_file, max_run_size=max_run), notes)
    return {item.path: item.file.read_bytes() for item, _ in chosen}, notes


def unpack_files(files: dict[str, bytes]) -> Path:
    """Files sent back with a result, written to a local temporary folder (names that would leave
    it are dropped)."""
    folder = Path(tempfile.mkdtemp(prefix="mlx-collected-"))
    root = folder.resolve()
    for relative, content in files.items():
        target = (folder / relative).resolve()
        if root not in target.parents:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return folder
