"""A function's return value as an HTTP response: JSON, or bytes with the right content type."""
from __future__ import annotations

import io
import json
from typing import Any


def encode_result(value: Any) -> tuple[str, bytes]:
    """(Content-Type, body) of a return value: bytes as they are, PIL images and matplotlib
    figures as PNG, numpy and pandas values as JSON, anything else JSON-encoded."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        return ("image/png" if data.startswith(b"\x89PNG\r\n\x1a\n") else "application/octet-stream"), data
    type_name = f"{type(value).__module__}.{type(value).__qualname__}"
    if type_name.startswith("PIL.") and hasattr(value, "save"):
        buffer = io.BytesIO()
        value.save(buffer, format="PNG")
        return "image/png", buffer.getvalue()
    if hasattr(value, "savefig") and type_name.startswith("matplotlib."):
        buffer = io.BytesIO()
        value.savefig(buffer, format="png")
        return "image/png", buffer.getvalue()
    return "application/json", json.dumps(value, default=_plain, allow_nan=False).encode()


def _plain(value: Any) -> Any:
    """numpy scalars and arrays, pandas frames and series, sets: as plain JSON values."""
    if hasattr(value, "to_dict") and hasattr(value, "columns"):  # DataFrame
        return value.to_dict(orient="records")
    if hasattr(value, "tolist"):  # numpy arrays and scalars, pandas Series
        return value.tolist()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"the function returned a {type(value).__name__}, which is not JSON: return lists, dicts, "
                    "numbers, strings, bytes, a PIL image or a matplotlib figure")
