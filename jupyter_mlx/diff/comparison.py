"""The comparison of two runs (or notebooks): one structure, the JSON every door shows.

``Comparison.to_json()`` follows ``comparison.schema.json`` (format version 1): headers of A
and B, parameter, metric and environment differences, every cell aligned with its source diff
and output verdicts, the artifacts the runs wrote and the input files they started from, the
state their functions captured, and a summary whose ``unexpected`` list is what ``check`` fails on.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..metrics import Metric
from .artifacts import ArtifactPair, artifact_problem, compare_artifacts, compare_inputs
from .cells import CellPair, compare_cells
from .judged import ADDED, CHANGED, IDENTICAL, JUDGEMENTS, REMOVED, WITHIN_TOLERANCE, Judged
from .options import CompareOptions, close_enough
from .sides import Side
from .state import StateComparison, compare_state, state_problem

FORMAT = "jupyter_mlx.comparison"
FORMAT_VERSION = 1


@dataclass
class Comparison:
    """A compared pair; ``a`` and ``b`` keep the notebooks, for reports and side-by-side views."""

    a: Side
    b: Side
    options: CompareOptions
    parameters: list[dict[str, Any]]
    metrics: list[dict[str, Any]]
    environment: dict[str, Any]
    cells: list[CellPair]
    series: dict[str, Judged] = field(default_factory=dict)
    artifacts: list[ArtifactPair] = field(default_factory=list)
    # project files added, removed or changed between the runs' starts (informational)
    inputs: dict[str, Any] = field(default_factory=lambda: compare_inputs(None, None))
    # the state the runs captured for their functions
    state: StateComparison = field(default_factory=StateComparison.uncompared)

    # -- verdict ---------------------------------------------------------------------------
    def unexpected(self) -> list[str]:
        """Each change not covered by tolerances or ignores, one readable line each."""
        found = []
        status_a, status_b = (side.run.status if side.run is not None else None for side in (self.a, self.b))
        if status_a and status_b and status_a != status_b:
            found.append(f"run status: {status_a} -> {status_b}")
        for cell in self.cells:
            found += cell_problems(cell)
        for metric in self.metrics:
            if metric["judgement"] in (CHANGED, ADDED, REMOVED):
                found.append(metric_problem(metric))
        for pair in self.artifacts:
            problem = artifact_problem(pair.to_json())
            if problem is not None:
                found.append(problem)
        for pair in self.state.objects:
            problem = state_problem(pair.to_json())
            if problem is not None:
                found.append(problem)
        return found

    def errors_added(self) -> int:
        """Error outputs in B that A did not have at that place, or that changed."""
        return sum(1 for cell in self.cells for output in cell.outputs
                   if output.kind == "error" and output.judged.judgement in (ADDED, CHANGED) and not cell.ignored)

    def summary(self) -> dict[str, Any]:
        cells = dict.fromkeys(JUDGEMENTS, 0)
        outputs = dict.fromkeys(JUDGEMENTS, 0)
        artifacts = dict.fromkeys(JUDGEMENTS, 0)
        for pair in self.artifacts:
            artifacts[pair.judged.judgement] += 1
        state = dict.fromkeys(JUDGEMENTS, 0)
        for pair in self.state.objects:
            state[pair.judged.judgement] += 1
        for cell in self.cells:
            cells[cell.judgement] += 1
            for output in cell.outputs:
                outputs[output.judged.judgement] += 1
        unexpected = self.unexpected()
        return {
            "cells": cells,
            "outputs": outputs,
            "sources_changed": sum(1 for c in self.cells if c.source_changed or c.index_a is None or c.index_b is None),
            "parameters_changed": sum(1 for p in self.parameters if p["status"] != "same"),
            "metrics_changed": sum(1 for m in self.metrics if m["judgement"] in (CHANGED, ADDED, REMOVED)),
            "errors_added": self.errors_added(),
            "artifacts": artifacts,
            "inputs_changed": len(self.inputs["changes"]),
            "state": state,
            "unexpected": unexpected,
            "verdict": "unexpected_changes" if unexpected else "as_expected",
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "a": self.a.header(),
            "b": self.b.header(),
            "options": self.options.to_json(),
            "parameters": self.parameters,
            "metrics": self.metrics,
            "environment": self.environment,
            "cells": [cell.to_json() for cell in self.cells],
            "artifacts": [pair.to_json() for pair in self.artifacts],
            "inputs": self.inputs,
            "state": self.state.to_json(),
            "summary": self.summary(),
        }

    # -- pandas views ----------------------------------------------------------------------
    def parameters_frame(self) -> Any:
        """Parameters side by side, a row each (pandas DataFrame)."""
        import pandas as pd

        columns = ["name", "a", "b", "status", "origin_a", "origin_b"]
        return pd.DataFrame(self.parameters, columns=columns).set_index("name")

    def metrics_frame(self) -> Any:
        """Metrics side by side with their change, a row each (pandas DataFrame)."""
        import pandas as pd

        columns = ["name", "a", "b", "abs_change", "rel_change", "judgement"]
        return pd.DataFrame([{k: m[k] for k in columns} for m in self.metrics], columns=columns).set_index("name")

    def _repr_html_(self) -> str:
        """The compact HTML summary (in a notebook, ``jupyter_mlx.compare`` returns a subclass that
        shows the comparison widget: the display lives with the widgets, not with the data)."""
        from .report import summary_html

        return summary_html(self)


def compare_sides(a: Side, b: Side, options: CompareOptions | None = None) -> Comparison:
    """Compare two loaded sides; the options of B's notebook (its metadata) apply."""
    options = (options or CompareOptions()).for_notebook(b.notebook)
    series = _series(a.metrics, b.metrics, options)
    return Comparison(
        a=a,
        b=b,
        options=options,
        parameters=diff_parameters(a, b),
        metrics=diff_metrics(a.metrics, b.metrics, options, series),
        environment=diff_environment(a, b),
        cells=compare_cells(a.notebook, b.notebook, options),
        series=series,
        artifacts=compare_artifacts(a, b, options),
        inputs=compare_inputs(a.inputs, b.inputs),
        state=compare_state(a, b, options),
    )


# -- parameters, metrics, environment -----------------------------------------------------------
def diff_parameters(side_a: Side, side_b: Side) -> list[dict[str, Any]]:
    """Every parameter of either side, with ``same``/``changed``/``added``/``removed`` and where
    each value comes from (``origin_a``/``origin_b``: override, default, expression).

    Both sides hold every parameter's effective value: a default against an override is a
    change; ``added``/``removed`` means the notebook's parameters cell gained or lost it."""
    a, b = side_a.parameters, side_b.parameters
    rows = []
    for name in [*a, *(n for n in b if n not in a)]:
        if name not in b:
            status = REMOVED
        elif name not in a:
            status = ADDED
        else:
            status = "same" if _same_value(a[name], b[name]) else CHANGED
        rows.append({"name": name, "a": a.get(name), "b": b.get(name), "status": status,
                     "origin_a": side_a.origin(name), "origin_b": side_b.origin(name)})
    return rows


def _same_value(x: Any, y: Any) -> bool:
    return type(x) is type(y) and x == y or (isinstance(x, (int, float)) and isinstance(y, (int, float))
                                              and not isinstance(x, bool) and not isinstance(y, bool) and x == y)


def diff_metrics(a: list[Metric], b: list[Metric], options: CompareOptions,
                 series: dict[str, Judged] | None = None) -> list[dict[str, Any]]:
    """Each metric's last value in A and B, its change, and the verdict under its threshold."""
    last_a = {m.name: m.value for m in a}
    last_b = {m.name: m.value for m in b}
    rows = []
    for name in [*last_a, *(n for n in last_b if n not in last_a)]:
        x, y = last_a.get(name), last_b.get(name)
        rtol, atol = options.threshold(name)
        if y is None:
            judgement = REMOVED
        elif x is None:
            judgement = ADDED
        elif x == y or (math.isnan(x) and math.isnan(y)):
            judgement = IDENTICAL
        else:
            judgement = WITHIN_TOLERANCE if close_enough(x, y, rtol, atol) else CHANGED
        series_detail = (series or {}).get(name)
        if series_detail is not None and judgement == IDENTICAL and series_detail.judgement != IDENTICAL:
            judgement = series_detail.judgement  # same last value, different path there
        rows.append({
            "name": name,
            "a": x,
            "b": y,
            "abs_change": None if x is None or y is None else y - x,
            "rel_change": None if x is None or y is None or x == 0 else (y - x) / abs(x),
            "judgement": judgement,
            "threshold": {"rtol": rtol, "atol": atol},
            "series": series_detail.detail if series_detail is not None else None,
        })
    return rows


def _series(a: list[Metric], b: list[Metric], options: CompareOptions) -> dict[str, Judged]:
    """Metrics logged more than once (with steps) on either side, compared as series."""
    from .series import compare_series

    by_name_a: dict[str, list[tuple[int | None, float]]] = {}
    by_name_b: dict[str, list[tuple[int | None, float]]] = {}
    for metrics, into in ((a, by_name_a), (b, by_name_b)):
        for m in metrics:
            into.setdefault(m.name, []).append((m.step, m.value))
    result = {}
    for name in [*by_name_a, *(n for n in by_name_b if n not in by_name_a)]:
        xs, ys = by_name_a.get(name, []), by_name_b.get(name, [])
        if max(len(xs), len(ys)) > 1:
            rtol, atol = options.threshold(name)
            result[name] = compare_series(name, xs, ys, rtol, atol)
    return result


def diff_environment(a: Side, b: Side) -> dict[str, Any]:
    """Python, platform, kernel and package differences, and the git state of both runs."""
    env_a, env_b = a.environment, b.environment
    result: dict[str, Any] = {"known": env_a is not None and env_b is not None}
    for key in ("python", "platform", "kernel"):
        x = getattr(env_a, key) if env_a is not None else None
        y = getattr(env_b, key) if env_b is not None else None
        result[key] = {"a": x, "b": y, "changed": env_a is not None and env_b is not None and x != y}
    packages_a = env_a.packages if env_a is not None else {}
    packages_b = env_b.packages if env_b is not None else {}
    changes = []
    if env_a is not None and env_b is not None:
        for name in sorted(set(packages_a) | set(packages_b)):
            x, y = packages_a.get(name), packages_b.get(name)
            if x != y:
                status = ADDED if x is None else REMOVED if y is None else CHANGED
                changes.append({"name": name, "a": x, "b": y, "status": status})
    result["packages"] = changes
    commit_a = a.run.git_commit if a.run is not None else None
    commit_b = b.run.git_commit if b.run is not None else None
    result["git"] = {
        "a": {"commit": commit_a, "dirty": a.run.git_dirty if a.run is not None else None},
        "b": {"commit": commit_b, "dirty": b.run.git_dirty if b.run is not None else None},
        "changed": commit_a != commit_b,
    }
    return result


def cell_label(cell: CellPair) -> str:
    """``cell 3``: its 1-based place in B (in A for a removed cell)."""
    index = cell.index_b if cell.index_b is not None else cell.index_a
    return f"cell {index + 1 if index is not None else '?'}"


_OUTPUT_NOUNS = {"stream": "{mime} stream", "error": "error", "image": "image", "table": "table"}


def cell_problems(cell: CellPair) -> list[str]:
    """The cell's unexpected output changes, one line each (none for an ignored cell)."""
    if cell.ignored:
        return []
    counts: dict[tuple[str, str], int] = {}
    for output in cell.outputs:
        judgement = output.judged.judgement
        if judgement in (CHANGED, ADDED, REMOVED) and output.kind != "metric":  # metrics: judged as metrics
            what = _OUTPUT_NOUNS.get(output.kind, "{mime}").format(mime=output.mime or output.kind)
            counts[what, judgement] = counts.get((what, judgement), 0) + 1
    found = []
    for (what, judgement), count in counts.items():
        verb = {"changed": "changed", "added": "appeared", "removed": "disappeared"}[judgement]
        noun = f"{count} {what} outputs" if count > 1 else what
        found.append(f"{cell_label(cell)}: {noun} {verb}")
    return found


def metric_problem(metric: dict[str, Any]) -> str:
    """How a metric moved past its threshold, in one line."""
    name = f"metric {metric['name']}"
    if metric["judgement"] == ADDED:
        return f"{name}: new, {metric['b']:g}"
    if metric["judgement"] == REMOVED:
        return f"{name}: gone (was {metric['a']:g})"
    if metric["a"] == metric["b"]:
        from .series import describe_changed_steps

        where = describe_changed_steps(metric["series"] or {})
        return f"{name}: same final value, series changed" + (f" at {where}" if where else "")
    rel = metric["rel_change"]
    change = f" ({rel:+.2%})" if rel is not None else ""
    return (f"{name}: {metric['a']:g} -> {metric['b']:g}{change}, beyond rtol={metric['threshold']['rtol']:g}, "
            f"atol={metric['threshold']['atol']:g}")

