"""One error class for every door, and the one table between error codes and HTTP statuses."""
from __future__ import annotations

HTTP_STATUS: dict[str, int] = {
    "invalid_request": 400,
    "invalid_path": 400,
    "invalid_notebook": 400,
    "invalid_parameter": 400,
    "unknown_parameter": 400,
    "unknown_kernel": 400,
    "no_parameters_cell": 400,
    "invalid_reference": 400,
    "ambiguous_reference": 400,
    "not_found": 404,
    "conflict": 409,
    "backend_unavailable": 503,
    "endpoint_unreachable": 502,
    "store_schema_too_new": 500,
    "store_schema_too_old": 500,
    "store_error": 500,
    "execution_error": 500,
}

# the code of an error that is only an HTTP status (tornado's 404 for an unknown path, 405, 413...)
_CODE_OF_STATUS: dict[int, str] = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    502: "bad_gateway",
    503: "unavailable",
    504: "timeout",
}


def error_code_of_status(status: int) -> str:
    """The error code of a bare HTTP status: ``404`` is ``not_found``; any other 4xx is an
    ``invalid_request``, any other status a ``server_error``."""
    return _CODE_OF_STATUS.get(status, "invalid_request" if 400 <= status < 500 else "server_error")


class MLXError(Exception):
    """A failure a person can act on: ``code`` is stable, ``message`` says what to do."""

    def __init__(self, code: str, message: str) -> None:
        if code not in HTTP_STATUS:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.code]

    def to_json(self) -> dict[str, str]:
        return {"error": self.code, "message": self.message}

    def __str__(self) -> str:
        return self.message
