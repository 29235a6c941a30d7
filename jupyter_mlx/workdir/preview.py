"""A small look at an artifact for the panel: the first rows of a table, a JSON value, the start of a
text; images are shown from their bytes, anything else only described."""
from __future__ import annotations

import io
import json
from typing import Any

from ..store.records import Artifact

PREVIEW_ROWS = 50
PREVIEW_TEXT = 64 * 1024
PREVIEW_MAX_BYTES = 50 << 20  # larger tables and JSON are not parsed for a preview
TABLE_TYPES = {"text/csv": ",", "text/tab-separated-values": "\t"}
IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}


def preview(artifact: Artifact, read: Any) -> dict[str, Any]:
    """``{"kind": "table"|"json"|"text"|"image"|"binary", ...}``; ``read()`` gives the bytes."""
    base = {"path": artifact.path, "size": artifact.size, "media_type": artifact.media_type}
    kind = artifact.media_type
    if kind in IMAGE_TYPES:
        return {**base, "kind": "image"}
    if artifact.size > PREVIEW_MAX_BYTES and (kind in TABLE_TYPES or kind == "application/json"
                                              or kind == "application/vnd.apache.parquet"):
        return {**base, "kind": "binary", "reason": "too large to preview"}
    try:
        if kind in TABLE_TYPES or kind == "application/vnd.apache.parquet":
            return {**base, **_table(read(), kind)}
        if kind == "application/json":
            return {**base, "kind": "json", "value": json.loads(read())}
        if kind.startswith("text/") or kind in ("application/yaml", "application/x-ipynb+json"):
            data = read()
            return {**base, "kind": "text", "text": data[:PREVIEW_TEXT].decode("utf-8", "replace"),
                    "truncated": len(data) > PREVIEW_TEXT}
    except Exception as exc:  # a malformed CSV, invalid JSON, no parquet engine: say so, show nothing
        return {**base, "kind": "binary", "reason": f"cannot be previewed: {type(exc).__name__}: {exc}"[:300]}
    return {**base, "kind": "binary", "reason": "no preview for this type"}


def _table(data: bytes, kind: str) -> dict[str, Any]:
    import pandas as pd

    if kind in TABLE_TYPES:
        frame = pd.read_csv(io.BytesIO(data), sep=TABLE_TYPES[kind])
    else:
        frame = pd.read_parquet(io.BytesIO(data))
    head = frame.head(PREVIEW_ROWS)
    rows = json.loads(head.to_json(orient="values", default_handler=str))
    return {"kind": "table", "columns": [str(c) for c in frame.columns], "rows": rows, "total_rows": len(frame)}
