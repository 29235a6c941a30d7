"""Addressing runs: ``NOTEBOOK@vN``, ``NOTEBOOK@latest`` or a run id."""
from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import MLXError
from .project import check_path_text

MAX_VERSION = 2**63 - 1  # the largest integer the run index holds

_REF = re.compile(r"^(?P<notebook>.+?)@(?:v(?P<version>[0-9]+)|(?P<latest>latest))$")
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class RunRef:
    """Either a run id, or a notebook name with a version (None meaning the latest)."""

    run_id: str | None = None
    notebook: str | None = None
    version: int | None = None


def is_run_id(text: str) -> bool:
    """Whether ``text`` has the shape of a run (or sweep) id: 32 hex digits."""
    return bool(_RUN_ID.match(text.strip()))


def names_a_run(text: str) -> bool:
    """``NOTEBOOK@vN``, ``NOTEBOOK@latest`` or a run id, rather than a notebook path."""
    return "@" in text or is_run_id(text)


def parse_ref(text: str) -> RunRef:
    """Parse what a user typed to name a run."""
    text = text.strip()
    if _RUN_ID.match(text):
        return RunRef(run_id=text)
    match = _REF.match(text)
    if match is None:
        raise MLXError(
            "invalid_reference",
            f"{text!r} does not name a run: use NOTEBOOK@vN (e.g. train.ipynb@v2), NOTEBOOK@latest or a run id",
        )
    check_path_text(match.group("notebook"), "invalid_reference")
    version = match.group("version")
    if version is not None and (len(version) > len(str(MAX_VERSION)) or not 1 <= int(version) <= MAX_VERSION):
        raise MLXError("invalid_reference", f"{text!r}: versions are v1 to v{MAX_VERSION}")
    return RunRef(notebook=match.group("notebook"), version=int(version) if version else None)


def match_notebook(name: str, known: list[str]) -> str:
    """The stored notebook ``name`` refers to: an exact path, else a unique path suffix."""
    name = name.strip().removeprefix("./")
    if name in known:
        return name
    matches = [path for path in known if path.endswith("/" + name)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise MLXError("not_found", f"no runs of a notebook named {name}")
    raise MLXError(
        "ambiguous_reference", f"{name} matches several notebooks: {', '.join(sorted(matches))}"
    )
