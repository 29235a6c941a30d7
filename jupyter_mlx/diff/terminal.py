"""A comparison as the terminal shows it: headers, what changed, and the verdict, in plain text."""
from __future__ import annotations

from typing import Any

from .series import metric_verdict

MAX_DIFF_LINES = 12  # per output or source, in the terminal (the HTML report shows everything)
_JUDGED_ORDER = ("identical", "within_tolerance", "changed", "added", "removed", "ignored")


def format_comparison(data: dict[str, Any], show_identical: bool = False) -> str:
    """The comparison JSON (``Comparison.to_json()``) as a readable summary."""
    lines = [_header(data["a"]), _header(data["b"])]
    if data["a"]["run_id"] and data["a"]["run_id"] == data["b"]["run_id"]:
        lines.append("(A and B are the same run: everything is identical)")
    lines += _parameters(data["parameters"], show_identical)
    lines += _metrics(data["metrics"], show_identical)
    lines += _artifacts(data.get("artifacts") or [], show_identical)  # absent from older servers' JSON
    lines += _inputs(data.get("inputs") or {})
    lines += _state(data.get("state"), show_identical)  # absent from older servers' JSON
    lines += _environment(data["environment"])
    summary = data["summary"]
    lines.append("")
    lines.append(f"cells: {_counts(summary['cells'])}; outputs: {_counts(summary['outputs'])}")
    for cell in data["cells"]:
        lines += _cell(cell, show_identical)
    lines.append("")
    unexpected = summary["unexpected"]
    if unexpected:
        lines.append(f"{len(unexpected)} unexpected change{'s' if len(unexpected) != 1 else ''}:")
        lines += [f"  {item}" for item in unexpected]
    else:
        lines.append("no unexpected change")
    return "\n".join(lines)


def _header(side: dict[str, Any]) -> str:
    parts = [f"{side['label']}  {side['ref']}"]
    if side["kind"] == "run":
        parts.append(side["status"] or "")
        if side["started_at"]:
            parts.append(side["started_at"][:19].replace("T", " "))
        if side["git_commit"]:
            parts.append(f"git {side['git_commit'][:8]}{'+dirty' if side['git_dirty'] else ''}")
        if side.get("user"):
            parts.append(f"by {side['user']}")
    else:
        parts.append("(file)")
    return "  ".join(p for p in parts if p)


def _parameters(rows: list[dict[str, Any]], show_identical: bool) -> list[str]:
    shown = [r for r in rows if show_identical or r["status"] != "same"]
    if not shown:
        return [] if not rows else ["", f"parameters: the same ({len(rows)})"]
    width = max(len(r["name"]) for r in shown)
    lines = ["", "parameters:"]
    for row in shown:
        a, b = (_parameter_value(row[side], row.get(f"origin_{side}")) for side in ("a", "b"))
        lines.append(f"  {row['name']:<{width}}  {a} -> {b}"
                     + ("" if row["status"] in ("same", "changed") else f"  ({row['status']})"))
    return lines


_ORIGIN_NOTES = {"default": " (default)", "expression": " (default expression)"}


def _parameter_value(value: Any, origin: str | None) -> str:
    """``100 (default)``, ``200`` (set by the run), ``np.arange(3) (default expression)``; ``-``: absent."""
    if origin is None:
        return "-"
    return ("None" if value is None else _value(value)) + _ORIGIN_NOTES.get(origin, "")


def _metrics(rows: list[dict[str, Any]], show_identical: bool) -> list[str]:
    shown = [r for r in rows if show_identical or r["judgement"] != "identical"]
    if not shown:
        return [] if not rows else ["", f"metrics: all {len(rows)} identical"]
    width = max(len(r["name"]) for r in shown)
    lines = ["", "metrics:"]
    for row in shown:
        change = ""
        if row["abs_change"] is not None:
            change = f"  {row['abs_change']:+.4g}"
            if row["rel_change"] is not None:
                change += f" ({row['rel_change']:+.2%})"
        lines.append(f"  {row['name']:<{width}}  {_value(row['a'])} -> {_value(row['b'])}{change}"
                     f"  {metric_verdict(row)}")
    return lines


def _artifacts(rows: list[dict[str, Any]], show_identical: bool) -> list[str]:
    """``artifacts: 2 changed, 1 identical``, then a line per artifact that is not identical (or
    ignored), with the text diff under a changed text artifact."""
    from .artifacts import describe_artifact

    if not rows:
        return []
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["judgement"]] = counts.get(row["judgement"], 0) + 1
    shown = [r for r in rows if show_identical or r["judgement"] not in ("identical", "ignored")]
    lines = ["", f"artifacts: {_counts(counts)}"]
    width = max((len(r["path"]) for r in shown), default=0)
    for row in shown:
        what = describe_artifact(row)
        lines.append(f"  {row['path']:<{width}}  {row['judgement'].replace('_', ' ')}" + (f": {what}" if what else ""))
        diff = (row["detail"] or {}).get("diff")
        if diff and row["judgement"] == "changed":
            lines += _indent(_diff_body(diff), 6)
    return lines


def _inputs(inputs: dict[str, Any]) -> list[str]:
    """``inputs: data/train.csv changed`` (informational: never unexpected)."""
    from .artifacts import describe_inputs

    changes = describe_inputs(inputs)
    if len(changes) == 1:
        return ["", f"inputs: {changes[0]}"]
    if changes:
        return ["", f"inputs: {len(inputs['changes'])} files differ", *_indent(changes, 2)]
    return []


def _state(state: dict[str, Any] | None, show_identical: bool) -> list[str]:
    """``state: 1 changed, 4 identical``, then a line per object that is not identical (or ignored),
    the packages whose version differs; or why one side has nothing to compare."""
    from .state import describe_capture, describe_state_object

    if not state:
        return []
    if not state["known"]:
        missing = describe_capture(state)
        return ["", f"state: {missing}"] if missing else []
    if not state["objects"]:
        return []
    counts: dict[str, int] = {}
    for row in state["objects"]:
        counts[row["judgement"]] = counts.get(row["judgement"], 0) + 1
    shown = [r for r in state["objects"] if show_identical or r["judgement"] not in ("identical", "ignored")]
    lines = ["", f"state: {_counts(counts)}"]
    width = max((len(r["name"]) for r in shown), default=0)
    for row in shown:
        what = describe_state_object(row)
        lines.append(f"  {row['name']:<{width}}  {row['judgement']}" + (f": {what}" if what else ""))
    for package in state["packages"]:
        lines.append(f"  package {package['name']}: {package['a'] or '(none)'} -> {package['b'] or '(none)'}")
    for label in ("a", "b"):
        if state[label]["note"]:
            lines.append(f"  {label.upper()}: {state[label]['note']}")
    return lines


def _environment(env: dict[str, Any]) -> list[str]:
    lines = []
    for key in ("python", "platform", "kernel"):
        if env[key]["changed"]:
            lines.append(f"  {key}: {env[key]['a']} -> {env[key]['b']}")
    for package in env["packages"]:
        lines.append(f"  {package['name']}: {package['a'] or '(none)'} -> {package['b'] or '(none)'}")
    git = env["git"]
    if git["changed"] and (git["a"]["commit"] or git["b"]["commit"]):
        lines.append(f"  git: {(git['a']['commit'] or '?')[:8]} -> {(git['b']['commit'] or '?')[:8]}")
    if lines:
        return ["", "environment:", *lines]
    return ["", "environment: the same"] if env["known"] else []


def _cell(cell: dict[str, Any], show_identical: bool) -> list[str]:
    judgement = cell["judgement"]
    if judgement in ("identical", "ignored") and not show_identical:
        return []
    index = cell["index_b"] if cell["index_b"] is not None else cell["index_a"]
    title = f"cell {index + 1} [{cell['cell_type']}]"
    if judgement in ("added", "removed"):
        return [f"  {title} {judgement}"]
    lines = [f"  {title} {judgement.replace('_', ' ')}"]
    if cell["source"]["changed"]:
        lines.append("    source changed:")
        lines += _indent(_diff_body(cell["source"]["diff"]), 6)
    for output in cell["outputs"]:
        if output["judgement"] == "identical" and not show_identical:
            continue
        lines.append(f"    {_output_title(output)}: {_output_summary(output)}")
        diff = output["detail"].get("diff")
        if diff and output["judgement"] == "changed":
            lines += _indent(_diff_body(diff), 6)
    return lines


def _output_title(output: dict[str, Any]) -> str:
    if output["kind"] == "stream":
        return f"stream {output['mime']}"
    if output["kind"] == "error":
        return "error"
    if output["kind"] == "metric":
        detail = output["detail"]
        step = detail.get("step_b", detail.get("step_a"))
        return f"metric {detail.get('name')}" + (f" step {step}" if step is not None else "")
    return output["mime"] or output["kind"]


def _output_summary(output: dict[str, Any]) -> str:
    judgement = output["judgement"].replace("_", " ")
    detail = output["detail"]
    if detail.get("error"):
        return f"{judgement} ({detail['error']})"
    if output["kind"] == "image" and "changed_fraction" in detail:
        size = ", size changed {0[0]}x{0[1]} -> {1[0]}x{1[1]}".format(detail["size_a"], detail["size_b"]) \
            if detail.get("size_changed") else ""
        return f"{judgement}: {detail['changed_fraction']:.2%} of pixels, similarity {detail['similarity']:.3f}{size}"
    if output["kind"] == "table" and "cells_changed_count" in detail:
        from .tables import describe_table_change

        return f"{judgement}: {describe_table_change(detail)}"
    if output["kind"] == "metric":
        return f"{judgement}: {_value(detail.get('a'))} -> {_value(detail.get('b'))}"
    numbers = detail.get("numbers") or {}
    if output["judgement"] == "within_tolerance" and numbers.get("max_abs_diff") is not None:
        return f"{judgement} (numbers differ by at most {numbers['max_abs_diff']:.3g})"
    if detail.get("note"):
        return f"{judgement} ({detail['note']})"
    return judgement


def _diff_body(diff: str) -> list[str]:
    lines = [line for line in diff.splitlines() if not line.startswith(("---", "+++"))]
    if len(lines) > MAX_DIFF_LINES:
        return lines[:MAX_DIFF_LINES] + [f"... {len(lines) - MAX_DIFF_LINES} more lines (see --html)"]
    return lines


def _indent(lines: list[str], width: int) -> list[str]:
    return [" " * width + line for line in lines]


def _counts(counts: dict[str, int]) -> str:
    parts = [f"{counts[k]} {k.replace('_', ' ')}" for k in _JUDGED_ORDER if counts.get(k)]
    return ", ".join(parts) or "none"


def _value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
