"""Text outputs (streams, ``text/plain`` and other text-ish mime types) compared.

Volatile text (``CompareOptions.normalizer()``) is replaced by a placeholder, then the texts are
split into numbers and the text around them: equal text with numbers ``close_enough`` is
``within_tolerance``, anything else ``changed`` with a unified diff of the original lines.
Only the lines between the common leading and trailing lines are looked at, so a long output
with one change costs little; difflib only ever sees those lines, and not even them when they
are too many (then the diff is one hunk of all removed and added lines).
"""
from __future__ import annotations

import difflib
import math
import re
from itertools import islice
from typing import Any, Iterator, Sequence

from .judged import CHANGED, IDENTICAL, WITHIN_TOLERANCE, Judged
from .options import CompareOptions, close_enough

PLACEHOLDER = "\x00"
CONTEXT_LINES = 3
MAX_DIFFLIB_LINES = 10_000  # both sides' changed lines together (~5,000 each)
MAX_DIFFLIB_CHARS = 1_000_000  # both sides' changed text together (~500 KB each)
MAX_LINE_CHARS = 2_000  # longer diff lines are cut (and the diff marked truncated)
MAX_PAIRED_LINES = 10_000  # changed lines whose numbers are compared when the text around differs
NO_NEWLINE = "\\ No newline at end of file"

# A number is not glued to a word, number or dot before it (``x1``, ``float64``, the ``.3`` of
# ``1.2.3`` stay text); a sign only where it is no operator or hyphen (``a-1``, ``2020-01-05``,
# ``f(x)-1`` keep their ``-`` as text), so the same text always splits the same way.
_NUMBER = re.compile(
    r"((?:(?<![\w.)\]}])[+-]|(?<![\w.]))"
    r"(?:(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|(?i:nan|inf(?:inity)?)(?!\w)))"
)

Pairs = list[tuple[float, float]]
Opcode = tuple[str, int, int, int, int]


def compare_text(a: str, b: str, options: CompareOptions) -> Judged:
    """Judge two texts: identical, within tolerance (volatile text, numbers) or changed.

    Detail when within tolerance: ``normalized`` (volatile text was replaced) and ``numbers``
    (``number_stats`` of the numbers of the lines that differ); when changed: ``diff`` (unified,
    ``--- A``/``+++ B``, 3 lines of context, of the original text), ``truncated`` (cut to
    ``options.max_text_diff_lines`` lines) and ``numbers`` (of the changed lines that differ in
    nothing else, or None). Symmetric: swapping a and b mirrors the diff."""
    if a == b:
        return Judged(IDENTICAL, {})
    start = a.rfind("\n", 0, _common_prefix(a, b)) + 1
    end_a, end_b = _suffix_start(a, b, start)
    mid_a, mid_b = a[start:end_a], b[start:end_b]
    pairs = _number_pairs(mid_a, mid_b)
    if pairs is not None and _all_close(pairs, options):
        return Judged(WITHIN_TOLERANCE, {"normalized": False, "numbers": number_stats(pairs)})
    pattern = options.normalizer()
    norm_a, norm_b = _normalize(mid_a, pattern), _normalize(mid_b, pattern)
    normalized = norm_a != mid_a or norm_b != mid_b
    if normalized:
        pairs = _number_pairs(norm_a, norm_b)
        if pairs is not None and _all_close(pairs, options):
            return Judged(WITHIN_TOLERANCE, {"normalized": True, "numbers": number_stats(pairs)})
    diff, truncated, line_pairs = _unified_diff(a, b, start, end_a, end_b, options.max_text_diff_lines)
    if pairs is None:
        known = {**_normalized_lines(mid_a, norm_a), **_normalized_lines(mid_b, norm_b)}
        pairs = _lined_up_numbers(line_pairs, known, pattern)
    return Judged(CHANGED, {"diff": diff, "truncated": truncated, "numbers": number_stats(pairs) if pairs else None})


def texts_close(a: str, b: str, options: CompareOptions) -> bool:
    """Whether two (short) texts are equal once volatile text is replaced and numbers tolerated."""
    if a == b:
        return True
    pattern = options.normalizer()
    pairs = _number_pairs(_normalize(a, pattern), _normalize(b, pattern))
    return pairs is not None and _all_close(pairs, options)


def split_numbers(text: str) -> tuple[list[str], list[float]]:
    """The text between the numbers (one more piece than numbers) and the numbers."""
    parts = _NUMBER.split(text)
    return parts[0::2], [float(p) for p in parts[1::2]]


def numbers_in(text: str) -> list[float]:
    """The numbers of a text (ints, decimals, exponents, signs, nan, inf) in order."""
    return [float(p) for p in _NUMBER.findall(text)]


def number_stats(pairs: Pairs) -> dict[str, Any]:
    """``{"compared", "max_abs_diff", "max_rel_diff"}`` of number pairs; maxima over finite
    differences (None when there are none)."""
    diffs = [d for d in map(_difference, pairs) if d is not None]
    return {
        "compared": len(pairs),
        "max_abs_diff": max((d[0] for d in diffs), default=None),
        "max_rel_diff": max((d[1] for d in diffs), default=None),
    }


def _difference(pair: tuple[float, float]) -> tuple[float, float] | None:
    x, y = pair
    if x == y or (x != x and y != y):
        return 0.0, 0.0
    d = abs(x - y)
    return (d, d / max(abs(x), abs(y))) if math.isfinite(d) else None


def _all_close(pairs: Pairs, options: CompareOptions) -> bool:
    return all(close_enough(x, y, options.rtol, options.atol) for x, y in pairs)


def _normalize(text: str, pattern: re.Pattern[str] | None) -> str:
    return pattern.sub(PLACEHOLDER, text) if pattern is not None else text


def _normalized_lines(text: str, normalized: str) -> dict[str, str]:
    """Each line of text to its normalized form (none when normalizing joined or split lines)."""
    lines, normal = _split_lines(text), _split_lines(normalized)
    return dict(zip(lines, normal)) if len(lines) == len(normal) else {}


def _lined_up_numbers(line_pairs: list[tuple[str, str]], known: dict[str, str], pattern: re.Pattern[str] | None) -> Pairs:
    """The numbers of the paired changed lines whose (normalized) text is otherwise the same."""
    pairs: Pairs = []
    for line_a, line_b in line_pairs:
        norm_a = known[line_a] if line_a in known else _normalize(line_a, pattern)
        norm_b = known[line_b] if line_b in known else _normalize(line_b, pattern)
        pairs.extend(_number_pairs(norm_a, norm_b) or ())
    return pairs


def _number_pairs(a: str, b: str) -> Pairs | None:
    """The numbers of two texts paired up, or None when the text around them differs."""
    text_a, numbers_a = split_numbers(a)
    text_b, numbers_b = split_numbers(b)
    return list(zip(numbers_a, numbers_b)) if text_a == text_b else None


def _common_prefix(a: str, b: str) -> int:
    """Length of the common prefix (binary search of C-speed slice comparisons, O(n))."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _suffix_start(a: str, b: str, start: int) -> tuple[int, int]:
    """Where the common trailing whole lines (after ``start``) begin in a and in b."""
    end = len(a) - _common_prefix(a[start:][::-1], b[start:][::-1])
    shift = len(b) - len(a)
    if not (_line_start(a, end) and _line_start(b, end + shift)):
        newline = a.find("\n", end)
        end = newline + 1 if newline != -1 else len(a)
    return end, end + shift


def _line_start(text: str, i: int) -> bool:
    return i == 0 or text[i - 1] == "\n"


def _split_lines(text: str) -> list[str]:
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def _last_lines(text: str, n: int) -> list[str]:
    pieces = text.rsplit("\n", n + 1)
    return pieces[-(n + 1):-1] if len(pieces) > n + 1 else _split_lines(text)


def _first_lines(text: str, n: int) -> list[str]:
    pieces = text.split("\n", n)
    return pieces[:n] if len(pieces) > n else _split_lines(text)


def _changed_lines(a: str, b: str, start: int, end_a: int, end_b: int) -> tuple[list[str], list[str]]:
    """The lines of a and b between the common ones, marking a missing final newline of one side."""
    lines_a, lines_b = _split_lines(a[start:end_a]), _split_lines(b[start:end_b])
    open_a = start < end_a == len(a) and not a.endswith("\n")
    open_b = start < end_b == len(b) and not b.endswith("\n")
    if open_a and not open_b:
        lines_a.append(NO_NEWLINE)
    elif open_b and not open_a:
        lines_b.append(NO_NEWLINE)
    return lines_a, lines_b


def _unified_diff(a: str, b: str, start: int, end_a: int, end_b: int, limit: int) -> tuple[str, bool, list[tuple[str, str]]]:
    """(the diff cut to ``limit`` lines, whether cut, the first replaced lines paired up)."""
    lines_a, lines_b = _changed_lines(a, b, start, end_a, end_b)
    before, after = _last_lines(a[:start], CONTEXT_LINES), _first_lines(a[end_a:], CONTEXT_LINES)
    seq_a, seq_b = before + lines_a + after, before + lines_b + after
    large = len(lines_a) + len(lines_b) > MAX_DIFFLIB_LINES or (end_a - start) + (end_b - start) > MAX_DIFFLIB_CHARS
    if large:
        groups = [[("equal", 0, len(before), 0, len(before)),
                   ("replace", len(before), len(seq_a) - len(after), len(before), len(seq_b) - len(after)),
                   ("equal", len(seq_a) - len(after), len(seq_a), len(seq_b) - len(after), len(seq_b))]]
    else:
        groups = _grouped_opcodes(seq_a, seq_b, a[start:end_a] <= b[start:end_b])
    offset = a.count("\n", 0, start) - len(before)
    diff = list(islice(_format(groups, seq_a, seq_b, offset), limit + 1))
    clipped = [line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS] + "…" for line in diff[:limit]]
    truncated = len(diff) > limit or any(len(line) > MAX_LINE_CHARS for line in diff[:limit])
    pairs = islice((pair for group in groups for tag, i1, i2, j1, j2 in group if tag == "replace"
                    for pair in zip(seq_a[i1:i2], seq_b[j1:j2])), MAX_PAIRED_LINES)
    return "\n".join(clipped), truncated, list(pairs)


def _grouped_opcodes(seq_a: list[str], seq_b: list[str], in_order: bool) -> list[list[Opcode]]:
    """difflib's hunks, always computed in the same order of the two sides (so symmetric)."""
    if in_order:
        return list(difflib.SequenceMatcher(None, seq_a, seq_b).get_grouped_opcodes(CONTEXT_LINES))
    mirror = {"insert": "delete", "delete": "insert"}
    groups = difflib.SequenceMatcher(None, seq_b, seq_a).get_grouped_opcodes(CONTEXT_LINES)
    return [[(mirror.get(tag, tag), i1, i2, j1, j2) for tag, j1, j2, i1, i2 in group] for group in groups]


def _format(groups: list[list[Opcode]], seq_a: Sequence[str], seq_b: Sequence[str], offset: int) -> Iterator[str]:
    yield "--- A"
    yield "+++ B"
    for group in groups:
        first, last = group[0], group[-1]
        yield f"@@ -{_range(first[1], last[2], offset)} +{_range(first[3], last[4], offset)} @@"
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                yield from (" " + line for line in seq_a[i1:i2])
                continue
            yield from ("-" + line for line in seq_a[i1:i2])
            yield from ("+" + line for line in seq_b[j1:j2])


def _range(start: int, stop: int, offset: int) -> str:
    """A unified diff range (difflib's format) of lines start..stop shifted by offset."""
    length = stop - start
    first = start + offset + (1 if length else 0)
    return str(first) if length == 1 else f"{first},{length}"
