"""One error class for every door, and the single code -> HTTP status table."""
from __future__ import annotations

HTTP_STATUS: dict[str, int] = {
    "invalid_request": 400,
    "invalid_path": 400,
    "invalid_notebook": 400,
    "invalid_parameter": 400,
    "unknown_parameter": 400,
    "no_parameters_cell": 400,
    "invalid_reference": 400,
    "ambiguous_reference": 400,
    "not_found": 404,
    "conflict": 409,
    "backend_unavailable": 503,
    "store_schema_too_new": 500,
    "store_error": 500,
    "execution_error": 500,
}


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
