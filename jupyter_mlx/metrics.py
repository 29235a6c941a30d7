"""Metrics logged from notebook code, and reading them back from an executed notebook.

``log_metric`` emits a display output with the jupyter_mlx MIME type, so metrics travel
inside the notebook and work the same on local, remote and cluster kernels. Values glued
with scrapbook (``application/scrapbook.scrap.*+json``) are read as metrics too.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real
from typing import Any, Iterable

METRIC_MIMETYPE = "application/vnd.jupyter-mlx.metric+json"
_SCRAP_PREFIX = "application/scrapbook.scrap."


@dataclass(frozen=True)
class Metric:
    """One logged value; ``step`` orders the values of a series."""

    name: str
    value: float
    step: int | None = None


def _check_metric(name: Any, value: Any, step: Any) -> Metric:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"metric name must be a non-empty string, not {name!r}")
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"metric {name!r}: value must be a number, not {type(value).__name__}")
    if not math.isfinite(float(value)):
        raise ValueError(f"metric {name!r}: value must be finite, not {value!r}")
    if step is not None and (isinstance(step, bool) or not isinstance(step, int)):
        raise ValueError(f"metric {name!r}: step must be an int or None, not {step!r}")
    return Metric(name.strip(), float(value), step)


def log_metric(name: str, value: float, step: int | None = None) -> None:
    """Record a metric of the current run (call it from notebook code).

    >>> log_metric("accuracy", 0.93)            # a scalar
    >>> log_metric("loss", 0.41, step=10)       # one point of a series
    """
    from IPython.display import display

    metric = _check_metric(name, value, step)
    payload = {"name": metric.name, "value": metric.value, "step": metric.step}
    label = metric.name if step is None else f"{metric.name}[{step}]"
    display({METRIC_MIMETYPE: payload, "text/plain": f"{label} = {metric.value:g}"}, raw=True)


def _scrap_metric(mimetype: str, data: Any) -> Metric | None:
    """A scrapbook scrap holding one finite number, as a metric (other scraps are not metrics)."""
    if not isinstance(data, dict) or data.get("encoder") not in ("json", None):
        return None
    try:
        return _check_metric(data.get("name"), data.get("data"), None)
    except ValueError:
        return None


def iter_output_metrics(outputs: Iterable[dict[str, Any]]) -> Iterable[Metric]:
    """Yield the metrics found in a cell's outputs, in order."""
    for output in outputs:
        if output.get("output_type") not in ("display_data", "execute_result"):
            continue
        for mimetype, data in (output.get("data") or {}).items():
            if mimetype == METRIC_MIMETYPE and isinstance(data, dict):
                try:
                    yield _check_metric(data.get("name"), data.get("value"), data.get("step"))
                except ValueError:
                    continue
            elif mimetype.startswith(_SCRAP_PREFIX) and mimetype.endswith("+json"):
                metric = _scrap_metric(mimetype, data)
                if metric is not None:
                    yield metric


def read_metrics(notebook: dict[str, Any]) -> list[Metric]:
    """All metrics of an executed notebook, in execution order."""
    found: list[Metric] = []
    for cell in notebook.get("cells", []):
        found.extend(iter_output_metrics(cell.get("outputs", [])))
    return found


def summarize(metrics: Iterable[Metric]) -> dict[str, float]:
    """The last value of each metric: what run tables show."""
    return {m.name: m.value for m in metrics}
