"""What counts as a change: tolerances, volatile text, ignored cells. A value passed to each call.

Layers, later ones winning: the defaults below, the project's ``c.MLXConfig.compare`` (a dict
with the same keys), the notebook's ``metadata.jupyter_mlx.compare``, then the caller's
overrides (CLI flags, REST query). Cells tagged ``mlx:ignore-output`` have their outputs
judged ``ignored``; cells tagged ``mlx:ignore`` are left out of the verdict entirely. Artifacts
whose path matches an ``ignore_artifacts`` glob (``mlx:ignore-artifact``) are judged ``ignored``,
and so are the names of the captured state an ``ignore_state`` glob matches.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Mapping

from ..errors import MLXError

IGNORE_OUTPUT_TAG = "mlx:ignore-output"
IGNORE_CELL_TAG = "mlx:ignore"

# Text that changes from run to run without meaning anything: replaced by a placeholder
# before text outputs are compared (the unified diff still shows the real text).
DEFAULT_VOLATILE_PATTERNS: tuple[str, ...] = (
    r"0x[0-9a-fA-F]{6,16}",  # memory addresses: <object at 0x7f3a...>
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?",  # timestamps
    r"\b\d+(?:\.\d+)?\s?(?:ns|µs|us|ms|s|sec|seconds|min|minutes)\b(?= |/|$|\)|,|\]|\.)",  # durations
    r"\b\d{1,2}:\d{2}(?::\d{2})?(?:\.\d+)?\b",  # elapsed clocks 00:01, 0:00:03
    r"\d+(?:\.\d+)?\s?(?:it/s|s/it)",  # tqdm rates
    r"\s*\d+%\|[^|\n]*\|",  # tqdm / progress bars
    r"\[[=>.\- ]{3,}\]",  # keras-style progress bars
)


@dataclass(frozen=True)
class MetricThreshold:
    """How far a metric may move before the change is unexpected."""

    rtol: float | None = None
    atol: float | None = None


@dataclass(frozen=True)
class CompareOptions:
    """Tolerances and ignores of one comparison (never process-global).

    ``rtol``/``atol``: two numbers (in text, tables, metrics) are equal within tolerance when
    ``|a - b| <= max(atol, rtol * max(|a|, |b|))`` (``math.isclose``'s rule, symmetric, so
    swapping the runs mirrors the result); exactly equal ones are
    ``identical``. Defaults: ``rtol=1e-9``, ``atol=1e-12``, so float noise from a different
    summation order passes and a change in the printed digits does not.
    ``image_pixel_tolerance``: a pixel counts as changed when a channel differs by more than
    this (0-255). ``image_changed_fraction``: an image whose changed pixels are at most this
    fraction is ``within tolerance``.
    ``ignore_artifacts``: ``fnmatch`` globs of artifact paths (relative to the project root,
    ``/``-separated; ``*`` crosses ``/``, so ``*.log`` matches ``logs/run.log``) judged ``ignored``.
    ``ignore_state``: ``fnmatch`` globs of the names in the runs' captured state judged ``ignored``.
    """

    rtol: float = 1e-9
    atol: float = 1e-12
    volatile_patterns: tuple[str, ...] = DEFAULT_VOLATILE_PATTERNS
    ignore_patterns: tuple[str, ...] = ()  # the user's own volatile text, added to the defaults
    ignore_tags: tuple[str, ...] = (IGNORE_OUTPUT_TAG,)
    ignore_cell_tags: tuple[str, ...] = (IGNORE_CELL_TAG,)
    image_pixel_tolerance: int = 0
    image_changed_fraction: float = 0.0
    metrics: Mapping[str, MetricThreshold] = field(default_factory=dict)
    max_text_diff_lines: int = 200  # unified diffs longer than this are cut (the judgement is not)
    ignore_artifacts: tuple[str, ...] = ()
    ignore_state: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("rtol", "atol", "image_changed_fraction"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise MLXError("invalid_request", f"compare option {name} must be a number >= 0, not {value!r}")
        if not 0 <= self.image_pixel_tolerance <= 255:
            raise MLXError("invalid_request", "compare option image_pixel_tolerance must be between 0 and 255")
        for pattern in (*self.volatile_patterns, *self.ignore_patterns):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise MLXError("invalid_request", f"invalid ignore pattern {pattern!r}: {exc}") from None

    def threshold(self, metric: str) -> tuple[float, float]:
        """(rtol, atol) of a metric: its own threshold where set, else the general tolerances."""
        own = self.metrics.get(metric)
        rtol = own.rtol if own is not None and own.rtol is not None else self.rtol
        atol = own.atol if own is not None and own.atol is not None else self.atol
        return rtol, atol

    def with_overrides(self, overrides: Mapping[str, Any] | None) -> "CompareOptions":
        """These options with the keys of ``overrides`` (same names as the fields) replaced;
        ``ignore_patterns``, ``ignore_artifacts``, ``ignore_state`` and ``metrics`` are added to, not replaced."""
        if not overrides:
            return self
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise MLXError("invalid_request", f"unknown compare option(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        changes: dict[str, Any] = {}
        for name, value in overrides.items():
            if name in _STRING_LISTS:
                if isinstance(value, str) or not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                    raise MLXError("invalid_request", f"compare option {name} must be a list of strings")
                value = tuple(value)
                if name in ("ignore_patterns", "ignore_artifacts", "ignore_state"):
                    value = tuple(dict.fromkeys((*getattr(self, name), *value)))
            elif name == "metrics":
                value = {**self.metrics, **_thresholds(value)}
            elif name in ("image_pixel_tolerance", "max_text_diff_lines"):
                if not isinstance(value, int) or isinstance(value, bool):
                    raise MLXError("invalid_request", f"compare option {name} must be an integer")
            changes[name] = value
        return replace(self, **changes)

    def for_notebook(self, notebook: Mapping[str, Any] | None) -> "CompareOptions":
        """These options with the notebook's own ``metadata.jupyter_mlx.compare`` applied."""
        if not notebook:
            return self
        own = (notebook.get("metadata") or {}).get("jupyter_mlx", {})
        own = own.get("compare") if isinstance(own, Mapping) else None
        if not own:
            return self
        if not isinstance(own, Mapping):
            raise MLXError("invalid_notebook", "metadata.jupyter_mlx.compare must be an object")
        return self.with_overrides(own)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["metrics"] = {name: asdict(t) for name, t in self.metrics.items()}
        for name in _STRING_LISTS:
            data[name] = list(data[name])
        return data

    def normalizer(self) -> re.Pattern[str] | None:
        """One regex matching every volatile or ignored piece of text (None when there are none)."""
        patterns = (*self.volatile_patterns, *self.ignore_patterns)
        return re.compile("|".join(f"(?:{p})" for p in patterns), re.MULTILINE) if patterns else None


_STRING_LISTS = ("volatile_patterns", "ignore_patterns", "ignore_tags", "ignore_cell_tags", "ignore_artifacts",
                 "ignore_state")


def _thresholds(value: Any) -> dict[str, MetricThreshold]:
    if not isinstance(value, Mapping):
        raise MLXError("invalid_request", "compare option metrics must map metric names to {rtol, atol}")
    result = {}
    for name, spec in value.items():
        if isinstance(spec, MetricThreshold):
            result[name] = spec
            continue
        if not isinstance(spec, Mapping) or set(spec) - {"rtol", "atol"}:
            raise MLXError("invalid_request", f"threshold of metric {name!r} must be an object with rtol and/or atol")
        for key, number in spec.items():
            if not isinstance(number, (int, float)) or isinstance(number, bool) or number < 0:
                raise MLXError("invalid_request", f"{key} of metric {name!r} must be a number >= 0")
        result[name] = MetricThreshold(rtol=spec.get("rtol"), atol=spec.get("atol"))
    return result


def close_enough(a: float, b: float, rtol: float, atol: float) -> bool:
    """``math.isclose``'s rule (symmetric); NaN equals NaN (both runs printed nan)."""
    if a != a and b != b:
        return True
    if a in (math.inf, -math.inf) or b in (math.inf, -math.inf):
        return a == b
    return a == b or abs(a - b) <= max(atol, rtol * max(abs(a), abs(b)))
