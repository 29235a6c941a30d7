"""Split an executed notebook into a skeleton and one blob per output, and join them back.

Outputs are the bulk of a notebook and repeat across runs (the same chart in 100 runs):
stored by content, each is kept once.
"""
from __future__ import annotations

import json
from typing import Any, Callable

_REF_KEY = "jupyter_mlx_blob"


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def split_notebook(notebook: dict[str, Any]) -> tuple[bytes, dict[str, bytes]]:
    """Return (skeleton JSON, {hash: output JSON}); the skeleton refers to outputs by hash."""
    from .blobs import content_hash

    blobs: dict[str, bytes] = {}
    cells = []
    for cell in notebook.get("cells", []):
        if "outputs" in cell:
            refs = []
            for output in cell["outputs"]:
                data = _canonical(output)
                digest = content_hash(data)
                blobs[digest] = data
                refs.append({_REF_KEY: digest})
            cell = {**cell, "outputs": refs}
        cells.append(cell)
    skeleton = _canonical({**notebook, "cells": cells})
    return skeleton, blobs


def join_notebook(skeleton: bytes, get_blob: Callable[[str], bytes]) -> dict[str, Any]:
    """Rebuild the executed notebook from its skeleton."""
    notebook = json.loads(skeleton)
    for cell in notebook.get("cells", []):
        if "outputs" in cell:
            cell["outputs"] = [json.loads(get_blob(ref[_REF_KEY])) for ref in cell["outputs"]]
    return notebook


def referenced_blobs(skeleton: bytes) -> list[str]:
    notebook = json.loads(skeleton)
    return [
        ref[_REF_KEY] for cell in notebook.get("cells", []) for ref in cell.get("outputs", [])
    ]
