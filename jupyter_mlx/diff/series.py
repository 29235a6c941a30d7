"""Metric series (one metric's ``(step, value)`` points in runs A and B): their verdict and an
overlay chart of both."""
from __future__ import annotations

import io
from typing import Any

from .judged import ADDED, CHANGED, IDENTICAL, REMOVED, WITHIN_TOLERANCE, Judged
from .options import close_enough

MAX_LISTED_RANGES = 100  # ranges of changed steps in a comparison's JSON (``changed_steps_count``: all)
MAX_SHOWN_RANGES = 8  # steps or ranges of steps written out in a one-line description


def compare_series(name: str, a: list[tuple[int | None, float]], b: list[tuple[int | None, float]],
                   rtol: float, atol: float) -> Judged:
    """Judge two series aligned by step (by position when a step is missing).

    The k-th point logged at a step in A is matched with the k-th at that step in B. Swapping
    A and B mirrors the detail and keeps the judgement. ``first_difference_step`` is the first
    step that makes the verdict: beyond tolerance or in one run only when ``changed``, else the
    first not exactly equal (a position instead of a step when aligned by position);
    ``changed_steps`` lists every such step as ``[first, last]`` ranges of steps logged in either
    run (the first ``MAX_LISTED_RANGES``), so a series whose last value did not move still says
    where it changed.
    """
    by_step = _by_step(a, b)
    keyed_a, keyed_b = _keyed(a, by_step), _keyed(b, by_step)
    common = [key for key in keyed_a if key in keyed_b]
    only_a = [key for key in keyed_a if key not in keyed_b]
    only_b = [key for key in keyed_b if key not in keyed_a]
    unequal = [key for key in common if not _equal(keyed_a[key], keyed_b[key])]
    beyond = [key for key in unequal if not close_enough(keyed_a[key], keyed_b[key], rtol, atol)]
    if not a or not b:
        judgement = IDENTICAL if not a and not b else ADDED if not a else REMOVED
        first = min(only_a + only_b, default=None)
    elif beyond or only_a or only_b:
        judgement, first = CHANGED, min(beyond + only_a + only_b)
    else:
        judgement, first = (WITHIN_TOLERANCE, min(unequal)) if unequal else (IDENTICAL, None)
    verdict_steps = {step for step, _ in {CHANGED: beyond + only_a + only_b, WITHIN_TOLERANCE: unequal}.get(judgement, [])}
    logged = sorted({step for step, _ in (*keyed_a, *keyed_b)})
    abs_diffs = [abs(keyed_a[key] - keyed_b[key]) for key in unequal]
    rel_diffs = [_relative(keyed_a[key], keyed_b[key]) for key in unequal]
    return Judged(judgement, {
        "name": name,
        "steps_a": len(a),
        "steps_b": len(b),
        "steps_only_in_a": len(only_a),
        "steps_only_in_b": len(only_b),
        "max_abs_diff": _max(abs_diffs) if common else None,
        "max_rel_diff": _max(rel_diffs) if common else None,
        "first_difference_step": first[0] if first is not None else None,
        "last_a": keyed_a[max(keyed_a)] if keyed_a else None,
        "last_b": keyed_b[max(keyed_b)] if keyed_b else None,
        "aligned_by": "step" if by_step else "position",
        "steps_compared": len(logged),
        "changed_steps": _step_ranges(logged, verdict_steps)[:MAX_LISTED_RANGES],
        "changed_steps_count": len(verdict_steps),
    })


def _step_ranges(logged: list[int], chosen: set[int]) -> list[list[int]]:
    """``chosen`` steps as ``[first, last]`` ranges of consecutive ``logged`` steps."""
    ranges: list[list[int]] = []
    previous_chosen = False
    for step in logged:
        if step in chosen:
            if previous_chosen:
                ranges[-1][1] = step
            else:
                ranges.append([step, step])
        previous_chosen = step in chosen
    return ranges


def describe_changed_steps(detail: dict[str, Any]) -> str | None:
    """``steps 1, 3 (of 5)``; ranges and many: ``steps 0-499, 601, 700-899 (701 of 1000)``, past
    ``MAX_SHOWN_RANGES`` ranges ending in ``…``; ``all 5 steps``. None when no step makes the
    verdict or the series is in one run only."""
    ranges = detail.get("changed_steps") or []
    if not ranges or not detail.get("steps_a") or not detail.get("steps_b"):
        return None
    count, total = detail["changed_steps_count"], detail["steps_compared"]
    pieces = [str(first) if first == last else f"{first}-{last}" for first, last in ranges[:MAX_SHOWN_RANGES]]
    if len(ranges) > MAX_SHOWN_RANGES:
        pieces.append("…")
    noun = "step" if detail.get("aligned_by", "step") == "step" else "position"
    if count == total and count > 1:
        return f"all {total} {noun}s"
    plain = len(pieces) == count  # every changed step written out: "of N" says it all
    return f"{noun}{'' if count == 1 else 's'} {', '.join(pieces)} ({'of' if plain else f'{count} of'} {total})"


def metric_verdict(metric: dict[str, Any]) -> str:
    """A metric row's judgement and, for a series, where it changed: ``changed at steps 1, 3
    (of 5)``, ``within tolerance, differs at step 2 (of 5)``, ``identical  [5 vs 5 steps]``."""
    judgement = metric["judgement"]
    text = judgement.replace("_", " ")
    series = metric.get("series")
    if not series:
        return text
    where = describe_changed_steps(series)
    if where:
        text += f" at {where}" if judgement == CHANGED else f", differs at {where}"
    if not where or series["steps_a"] != series["steps_b"]:
        text += f"  [{series['steps_a']} vs {series['steps_b']} steps]"
    return text


def _by_step(a: list[tuple[int | None, float]], b: list[tuple[int | None, float]]) -> bool:
    """Whether to align by step: every point of both runs has one."""
    return all(step is not None for step, _ in (*a, *b))


def _keyed(points: list[tuple[int | None, float]], by_step: bool) -> dict[tuple[int | None, int], float]:
    """Each value under (step, occurrence at that step), or (position, 0) when not by step."""
    if not by_step:
        return {(position, 0): float(value) for position, (_, value) in enumerate(points)}
    keyed: dict[tuple[int | None, int], float] = {}
    seen: dict[int | None, int] = {}
    for step, value in points:
        occurrence = seen[step] = seen.get(step, -1) + 1
        keyed[(step, occurrence)] = float(value)
    return keyed


def _equal(x: float, y: float) -> bool:
    return x == y or (x != x and y != y)


def _relative(x: float, y: float) -> float:
    scale = max(abs(x), abs(y))
    return abs(x - y) / scale if scale else 0.0


def _max(values: list[float]) -> float:
    """The largest difference (0.0 when there are none); NaN when a value was NaN in one run only."""
    return max(values, key=lambda v: float("inf") if v != v else v, default=0.0)


def overlay_chart(name: str, a: list[tuple[int | None, float]], b: list[tuple[int | None, float]],
                  label_a: str, label_b: str) -> bytes:
    """A PNG (5x3 in, 100 dpi) of both series overlaid: x the step (or position), y ``name``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 3), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    by_step = _by_step(a, b)
    lines = [
        axes.plot(*_xy(points, by_step), color=color, linestyle=style, marker="o" if len(points) <= 50 else None,
                  markersize=3, linewidth=1.5)[0]
        for points, color, style in ((a, "tab:blue", "-"), (b, "tab:orange", "--"))
    ]
    axes.legend(lines, [_plain(label_a), _plain(label_b)])
    axes.set_xlabel("step" if by_step else "position")
    axes.set_ylabel(_plain(name))
    axes.grid(alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _xy(points: list[tuple[int | None, float]], by_step: bool) -> tuple[list[int], list[float]]:
    """x (the step, or the position when not aligned by step) and y of each point, in x order."""
    pairs = sorted((((step if by_step else position), value) for position, (step, value) in enumerate(points)),
                   key=lambda pair: pair[0])
    return [x for x, _ in pairs], [y for _, y in pairs]


def _plain(text: str) -> str:
    """Text shown as is (matplotlib would read ``$...$`` as mathtext)."""
    return text.replace("$", r"\$")
