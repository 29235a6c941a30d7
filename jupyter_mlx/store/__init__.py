"""The versioned run store: a SQL index (SQLite by default) and a content-addressed blob store."""
from .base import RunStore
from .records import (
    CellTiming,
    Environment,
    NewRun,
    NotebookSummary,
    RunError,
    RunOutcome,
    RunPage,
    RunRecord,
)

__all__ = [
    "CellTiming",
    "Environment",
    "NewRun",
    "NotebookSummary",
    "RunError",
    "RunOutcome",
    "RunPage",
    "RunRecord",
    "RunStore",
]
