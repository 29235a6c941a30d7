"""Split an executed notebook into a skeleton and one blob per output, and join them back.

Outputs are the bulk of a notebook and repeat across runs (the same chart in 100 runs):
stored by content, each is kept once. Small outputs (a printed line, a logged metric) stay
inline in the skeleton: a file and an index row each would cost more than they save.

The skeleton is mostly the text of the run's source notebook (cell sources, metadata): the
store compresses it against ``notebook_dictionary(source)``, which lays that text out as the
skeleton does, so each skeleton costs about its differences from the source.
"""
from __future__ import annotations

import json
from typing import Any, Callable

_REF_KEY = "jupyter_mlx_blob"
_WINDOW = 32 * 1024  # zlib's window: a preset dictionary longer than this is only used at its end
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


def skeleton_refs(skeleton: bytes) -> set[str]:
    """The hashes of the output blobs a skeleton refers to."""
    notebook = json.loads(skeleton)
    return {
        output[_REF_KEY]
        for cell in notebook.get("cells", [])
        for output in cell.get("outputs", ())
        if _is_ref(output)
    }


def notebook_dictionary(source: bytes) -> bytes:
    """A zlib preset dictionary for the skeletons of runs of this source notebook.

    The notebook without outputs, each cell's source as one string, in the skeleton's canonical
    JSON; anything else: its last 32 KiB. Files depend on this exact derivation: never change it
    (add a new dictionary kind in ``blobs`` instead).
    """
    try:
        notebook = json.loads(source)
        cells = notebook["cells"]
        normalized = []
        for cell in cells:
            cell = dict(cell)
            if isinstance(cell.get("source"), list):
                cell["source"] = "".join(cell["source"])
            if "outputs" in cell:
                cell["outputs"] = []
            normalized.append(cell)
        data = _canonical({**notebook, "cells": normalized})
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):  # not a notebook
        data = source
    return data[-_WINDOW:]
