"""The verdict on one pair of things compared (an output, a metric, a series)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

IDENTICAL = "identical"
WITHIN_TOLERANCE = "within_tolerance"
CHANGED = "changed"
ADDED = "added"
REMOVED = "removed"
IGNORED = "ignored"
JUDGEMENTS = (IDENTICAL, WITHIN_TOLERANCE, CHANGED, ADDED, REMOVED, IGNORED)


@dataclass
class Judged:
    """``judgement`` is one of ``JUDGEMENTS``; ``detail`` is kind-specific JSON (see the schema)."""

    judgement: str
    detail: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.judgement not in JUDGEMENTS:
            raise ValueError(f"unknown judgement {self.judgement!r}")
