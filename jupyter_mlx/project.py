"""The project: the folder whose notebooks are experiments, and paths relative to it."""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import MLXError


@dataclass(frozen=True)
class Project:
    """A project root; notebooks are named by their POSIX path relative to it."""

    root: Path

    def notebook_path(self, path: str | Path, base: Path | None = None) -> str:
        """Resolve ``path`` (relative to ``base``, default the root) to the notebook's project name.

        Raises ``invalid_path`` for paths outside the root or that are not notebooks,
        ``not_found`` for missing files.
        """
        candidate = Path(check_path_text(str(path)))
        if not candidate.is_absolute():
            candidate = (base or self.root) / candidate
        try:
            resolved = candidate.resolve()
            root = self.root.resolve()
            if resolved != root and root not in resolved.parents:
                raise MLXError("invalid_path", f"{path} is outside the project root {root}")
            if resolved.suffix != ".ipynb":
                raise MLXError("invalid_path", f"{path} is not a notebook (.ipynb)")
            if not resolved.is_file():
                raise MLXError("not_found", f"notebook {path} does not exist")
        except OSError as exc:  # a name too long, a loop of links: not a notebook we can read
            raise MLXError("invalid_path", f"{path} is not a readable path: {exc.strerror or exc}") from None
        return resolved.relative_to(root).as_posix()

    def absolute(self, notebook: str) -> Path:
        return self.root / notebook

    def read_notebook(self, notebook: str) -> tuple[bytes, dict[str, Any]]:
        """The notebook's exact bytes (the snapshot) and its parsed JSON, checked to be a notebook."""
        raw = self.absolute(notebook).read_bytes()
        return raw, parse_notebook(raw, notebook)


_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


def check_path_text(text: str, code: str = "invalid_path") -> str:
    """``text`` if it can name a file here: no NUL or other control character, and encodable as a
    file name (a lone surrogate from JSON is not); else ``MLXError(code)``."""
    bad = _CONTROL_CHARACTERS.search(text)
    if bad is not None:
        raise MLXError(code, f"{text!r} has a control character ({bad.group()!r}): not a path")
    try:
        os.fsencode(text)
    except UnicodeError:
        raise MLXError(code, f"{text!r} has characters no file name can have") from None
    return text


def parse_notebook(raw: bytes, name: str) -> dict[str, Any]:
    """Parse notebook JSON, with a clear error for malformed or non-notebook content."""
    try:
        nb = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MLXError("invalid_notebook", f"{name} is not valid notebook JSON: {exc}") from None
    if (
        not isinstance(nb, dict)
        or not isinstance(nb.get("cells"), list)
        or not isinstance(nb.get("nbformat"), int)
    ):
        raise MLXError("invalid_notebook", f"{name} is not a Jupyter notebook (no nbformat/cells)")
    if nb["nbformat"] < 4:
        raise MLXError("invalid_notebook", f"{name} uses nbformat {nb['nbformat']}; convert it to v4")
    return nb
