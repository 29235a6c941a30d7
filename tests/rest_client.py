"""Requests to the jupyter_mlx REST API of a pytest-jupyter server (``jp_fetch``)."""
from __future__ import annotations

import json
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

# the extension enabled, and authentication enforced
SERVER_CONFIG = {"ServerApp": {"jpserver_extensions": {"jupyter_mlx": True}, "allow_unauthenticated_access": False}}


async def get_json(jp_fetch: Any, *parts: str, **params: Any) -> Any:
    """``GET /mlx/<parts>?<params>`` and its JSON body."""
    response = await jp_fetch("mlx", *parts, params=params or None)
    return json.loads(response.body)


async def error_of(jp_fetch: Any, *parts: str, method: str = "GET", **kwargs: Any) -> tuple[int, dict[str, str]]:
    """The status and the one-shape JSON error body of a request that must fail."""
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch("mlx", *parts, method=method, **kwargs)
    body = json.loads(caught.value.response.body)
    assert set(body) == {"error", "message"}, body
    return caught.value.code, body
