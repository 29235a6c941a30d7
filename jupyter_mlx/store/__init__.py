"""The versioned run store: a SQL index (SQLite by default) and a content-addressed blob store."""
from .base import RunStore
from .records import (
    CellTiming,
    Environment,
    NewRun,
    NewSweep,
    NotebookSummary,
    RunError,
    RunOutcome,
    RunPage,
    RunRecord,
    SweepRecord,
)

__all__ = [
    "CellTiming",
    "Environment",
    "NewRun",
    "NewSweep",
    "NotebookSummary",
    "RunError",
    "RunOutcome",
    "RunPage",
    "RunRecord",
    "RunStore",
    "SweepRecord",
]
