"""The README's shell tour as data: its ``$ `` commands in order, each with the output the README
shows, and a matcher that compares an output's shape with it.

Shape: the same lines in the same order, with whitespace runs equal, and volatile values (times,
dates, durations, percentages, decimals, ids, hashes, ports, tokens) matching any value of their
kind. Integers elsewhere (versions, counts, cell numbers) must be equal. A README line that is
only ``...`` stands for any number of lines; a line whose first word is in ``MACHINE_SPECIFIC``
(``show``'s host, environment and git lines) is compared by that word alone. Consecutive lines
that start with the same word (a sweep's runs, reported as they finish) may come in any order.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

MACHINE_SPECIFIC = ("backend", "env", "git")
ELLIPSIS = "..."

# (pattern of a volatile piece in the README, the regex its actual value must match)
_VOLATILE = [
    (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z?", r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z?"),
    (r"\d{4}-\d\d-\d\d", r"\d{4}-\d\d-\d\d"),
    (r"\d\d:\d\d:\d\d(?:[.,]\d+)?", r"\d\d:\d\d:\d\d(?:[.,]\d+)?"),
    (r"(?<=sha256:)[0-9a-f]+", r"[0-9a-f]+"),
    (r"[A-Za-z0-9_-]{24,}", r"[A-Za-z0-9_-]{24,}"),  # ids (32 hex) and endpoint tokens
    (r"(?<=  )[0-9a-f]{12}$", r"[0-9a-f]{12}"),  # an artifact's short SHA-256, last in its row
    (r"(?<=own folder \()(?:overlay|copy)(?=\))", r"(?:overlay|copy)"),  # a run folder: copy where mounting is not allowed
    (r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{7,40}\b", r"[0-9a-f]{7,40}"),  # git commits
    (r"(?<=127\.0\.0\.1:)\d+", r"\d+"),  # ports
    (r"(?<=slowest cell )\d+", r"\d+"),  # which cell is slowest is a matter of timing
    (r"[-+]?\d+(?:\.\d+)? ?(?:ms|s|%)(?![\w])", r"[-+]?\d+(?:\.\d+)? ?(?:ms|s|%)"),  # durations, percentages
    (r"[-+]?\d+\.\d+(?:e[-+]?\d+)?", r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?"),  # decimals
]
_VOLATILE_PIECE = re.compile("|".join(f"({pattern})" for pattern, _ in _VOLATILE))


@dataclass
class Step:
    """One ``$ command`` of the README, what it prints there and the exit status it states."""

    command: str
    expected: list[str] = field(default_factory=list)
    exit_status: int = 0
    line: int = 0  # in README.md, for messages


def tour_steps(readme: str) -> list[Step]:
    """Every ``$ `` command of the README's plain (language-less) fenced blocks, in order."""
    steps: list[Step] = []
    fenced = in_block = False  # inside a fence; inside a plain one
    block_steps = 0
    lines = readme.splitlines()
    index = 0
    while index < len(lines):
        text = lines[index]
        if text.startswith("```"):
            fenced = not fenced
            in_block = fenced and text.strip() == "```"
            block_steps = 0  # an output belongs to a command of its own block
            index += 1
            continue
        if in_block and text.startswith("$ "):
            command, line = text[2:], index + 1
            while command.endswith("\\") and index + 1 < len(lines):
                index += 1
                command = command[:-1] + " " + lines[index].strip()
            stated = re.search(r"#\s*exit (\d+)", command)
            steps.append(Step(command, [], int(stated.group(1)) if stated else 0, line))
            block_steps += 1
        elif in_block and block_steps:
            steps[-1].expected.append(text)
        index += 1
    return steps


def line_pattern(expected: str) -> re.Pattern[str]:
    """The regex an actual line must match to have the shape of ``expected``."""
    words = expected.split()
    if words and words[0] in MACHINE_SPECIFIC:
        return re.compile(rf"\s*{re.escape(words[0])}(\s.*)?")
    pieces, position = [], 0
    for found in _VOLATILE_PIECE.finditer(expected):
        pieces.append(_literal(expected[position:found.start()]))
        kind = next(i for i, group in enumerate(found.groups()) if group is not None)
        pieces.append(f"({_VOLATILE[kind][1]})")
        position = found.end()
    pieces.append(_literal(expected[position:]))
    return re.compile(r"\s*" + "".join(pieces).strip() + r"\s*")


def _literal(text: str) -> str:
    """``text`` as a regex, any run of spaces standing for any other (columns align to widths)."""
    return r"\s+".join(re.escape(part) for part in re.split(r"\s+", text)) if text.strip() else (r"\s+" if text else "")


def shape_matches(expected: list[str], actual: list[str]) -> dict[str, str] | None:
    """None if ``actual`` does not have the shape of ``expected``; else the README's volatile
    values mapped to the actual ones (``36993`` -> the port this run got), for later commands."""
    expected = [line for line in expected if line.strip()]
    actual = [line for line in actual if line.strip()]

    def match(e: int, a: int) -> dict[str, str] | None:
        if e == len(expected):
            return {} if a == len(actual) else None
        if expected[e].strip() == ELLIPSIS:
            for skip in range(a, len(actual) + 1):
                rest = match(e + 1, skip)
                if rest is not None:
                    return rest
            return None
        size = _group_size(expected, e)
        if a + size > len(actual):
            return None
        pairs = _pair_up(expected[e:e + size], actual[a:a + size])
        if pairs is None:
            return None
        rest = match(e + size, a + size)
        if rest is None:
            return None
        for readme_line, found in pairs:
            readme_values = [m.group(0) for m in _VOLATILE_PIECE.finditer(readme_line)]
            if len(readme_values) == len(found.groups()) and readme_line.split()[0] not in MACHINE_SPECIFIC:
                for readme_value, value in zip(readme_values, found.groups()):
                    if len(readme_value) >= 4 and readme_value != value:
                        rest.setdefault(readme_value, value)
        return rest

    return match(0, 0)


def _group_size(expected: list[str], start: int) -> int:
    """How many lines from ``start`` begin with the same word (lines that may come in any order)."""
    first = expected[start].split()[0]
    end = start + 1
    while end < len(expected) and expected[end].strip() != ELLIPSIS and expected[end].split()[0] == first:
        end += 1
    return end - start


def _pair_up(expected: list[str], actual: list[str]) -> list[tuple[str, re.Match[str]]] | None:
    """Each actual line matched to a different expected line (any order), else None."""
    pairs, unused = [], list(expected)
    for line in actual:
        for candidate in unused:
            found = line_pattern(candidate).fullmatch(line)
            if found is not None:
                pairs.append((candidate, found))
                unused.remove(candidate)
                break
        else:
            return None
    return pairs
