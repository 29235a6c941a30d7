"""Split an executed notebook into a skeleton and one blob per output, and join them back.

Outputs are the bulk of a notebook and repeat across runs (the same chart in 100 runs):
stored by content, each is kept once. Small outputs (a printed line, a logged metric) stay
inline in the skeleton: a file and an index row each would cost more than they save.
"""
from __future__ import annotations

import json
from typing import Any, Callable

_REF_KEY = "jupyter_mlx_blob"
INLINE_LIMIT = 1024
"""Outputs whose JSON is shorter than this many bytes stay in the skeleton."""


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
                if len(data) < INLINE_LIMIT:
                    refs.append(output)
                    continue
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
            cell["outputs"] = [
                json.loads(get_blob(output[_REF_KEY])) if _is_ref(output) else output
                for output in cell["outputs"]
            ]
    return notebook


def _is_ref(output: dict[str, Any]) -> bool:
    return output.keys() == {_REF_KEY}
