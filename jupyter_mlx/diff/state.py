"""The state two runs captured for their notebook functions (``execute.capture``), compared by name.

Each name either manifest lists (an object kept, or one not capturable) is ``added``,
``removed``, ``identical``, ``ignored`` (an ``ignore_state`` glob matches it) or ``changed``:
another SHA-256 (a module: another module name), or it became or stopped being not capturable.
Like artifacts, these verdicts count as unexpected. The versions of the packages the objects come
from are informational, as the environment's packages are. A side with no manifest (capture off,
a run from before captures, a failed capture, a notebook file) is "not captured": nothing is
compared, so absence there is never removal.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..formatting import format_bytes
from .artifacts import size_change
from .judged import ADDED, CHANGED, IDENTICAL, IGNORED, REMOVED, Judged

if TYPE_CHECKING:
    from .options import CompareOptions
    from .sides import Side

NOT_CAPTURED = "not captured (capture off, or a run from before captures)"
NO_STATE_IN_FILES = "a notebook file has no captured state"


@dataclass
class StateObjectPair:
    """One name of either manifest, as each side has it (None: absent), and the verdict.

    A side's entry is the manifest's object (``kind``, ``size``, ``sha256``, ``module``) or
    ``{"not_capturable": reason}``; ``judged.detail["change"]`` says how a changed one changed:
    ``content``, ``module``, ``not_capturable`` (it became so) or ``capturable`` (it stopped being so)."""

    name: str
    a: dict[str, Any] | None
    b: dict[str, Any] | None
    judged: Judged

    @property
    def kind(self) -> str | None:
        either = self.b if self.b is not None else self.a
        return (either or {}).get("kind")

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "a": self.a, "b": self.b,
                "judgement": self.judged.judgement, "change": self.judged.detail.get("change")}


@dataclass
class StateComparison:
    """The objects compared (when both sides captured), each side's capture, and package versions."""

    a: dict[str, Any]  # {"captured": bool, "note": str | None, "functions": [...] | None}
    b: dict[str, Any]
    objects: list[StateObjectPair] = field(default_factory=list)
    packages: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def uncompared(cls) -> "StateComparison":
        """Neither side's state looked at (a comparison put together without it)."""
        return cls({"captured": False, "note": None, "functions": None}, {"captured": False, "note": None, "functions": None})

    @property
    def known(self) -> bool:
        return bool(self.a["captured"] and self.b["captured"])

    def to_json(self) -> dict[str, Any]:
        return {"known": self.known, "a": self.a, "b": self.b,
                "objects": [pair.to_json() for pair in self.objects], "packages": self.packages}


def compare_state(a: "Side", b: "Side", options: "CompareOptions") -> StateComparison:
    """Both sides' captured state compared, name by name (sorted), and their packages' versions."""
    result = StateComparison(_capture(a), _capture(b))
    by_name_a, by_name_b = entries(a.state), entries(b.state)
    if by_name_a is None or by_name_b is None:
        return result
    for name in sorted(by_name_a.keys() | by_name_b.keys()):
        x, y = by_name_a.get(name), by_name_b.get(name)
        result.objects.append(StateObjectPair(name, x, y, _judge(name, x, y, options)))
    result.packages = _package_changes((a.state or {}).get("packages") or {}, (b.state or {}).get("packages") or {})
    return result


def _capture(side: "Side") -> dict[str, Any]:
    """Whether the side captured its state, and if not, why."""
    manifest = side.state
    if manifest is None:
        note = NOT_CAPTURED if side.kind == "run" else NO_STATE_IN_FILES
    elif manifest.get("error"):
        note = f"the capture failed: {manifest['error']}"
    elif entries(manifest) is None:
        note = str(manifest.get("truncated"))
    else:
        return {"captured": True, "note": manifest.get("truncated"), "functions": list(manifest.get("functions") or [])}
    return {"captured": False, "note": note, "functions": None}


def entries(manifest: dict[str, Any] | None) -> dict[str, dict[str, Any]] | None:
    """Each name of a manifest: its object's facts, or ``{"not_capturable": reason}``; None when it
    is of no capture: none, a failed one, or one that stopped before finding any function (no
    cloudpickle in the kernel)."""
    if manifest is None or manifest.get("error") or (manifest.get("truncated") and not manifest.get("functions")):
        return None
    found: dict[str, dict[str, Any]] = {
        name: {"not_capturable": reason} for name, reason in manifest.get("not_capturable") or []}
    for obj in manifest.get("objects") or []:
        found[obj["name"]] = {"kind": obj.get("kind"), "size": obj.get("size"), "sha256": obj.get("sha256"),
                              "module": obj.get("module")}
    return found


def _judge(name: str, x: dict[str, Any] | None, y: dict[str, Any] | None, options: "CompareOptions") -> Judged:
    if any(fnmatch.fnmatchcase(name, pattern) for pattern in options.ignore_state):
        return Judged(IGNORED)
    if x is None or y is None:
        return Judged(ADDED if x is None else REMOVED)
    refused_a, refused_b = "not_capturable" in x, "not_capturable" in y
    if refused_a or refused_b:
        if refused_a and refused_b:
            return Judged(IDENTICAL)
        return Judged(CHANGED, {"change": "not_capturable" if refused_b else "capturable"})
    if x["kind"] == "module" and y["kind"] == "module":
        return Judged(IDENTICAL) if x["module"] == y["module"] else Judged(CHANGED, {"change": "module"})
    return Judged(IDENTICAL) if x["sha256"] == y["sha256"] else Judged(CHANGED, {"change": "content"})


def _package_changes(a: dict[str, str], b: dict[str, str]) -> list[dict[str, Any]]:
    """``[{name, a, b, status}]`` of the state's packages whose version differs (informational)."""
    changes = []
    for name in sorted(a.keys() | b.keys()):
        x, y = a.get(name), b.get(name)
        if x != y:
            changes.append({"name": name, "a": x, "b": y, "status": ADDED if x is None else REMOVED if y is None else CHANGED})
    return changes


# -- in words ---------------------------------------------------------------------------------------
def describe_state_object(entry: dict[str, Any]) -> str:
    """What a state object's verdict (its ``to_json()``) comes to, without the judgement:
    ``only in B, ndarray, 151 bytes``, ``function, different content, 683 bytes -> 702 bytes``, ``module numpy -> jax.numpy``."""
    a, b, judgement = entry["a"], entry["b"], entry["judgement"]
    if judgement == ADDED:
        return f"only in B, {_what(b)}"
    if judgement == REMOVED:
        return f"only in A, {_what(a)}"
    change = entry.get("change")
    if judgement != CHANGED or change is None:
        return ""
    if change == "not_capturable":
        return f"no longer capturable: {b['not_capturable']}"
    if change == "capturable":
        return f"captured now, {_what(b)} (was not capturable: {a['not_capturable']})"
    if change == "module":
        return f"module {a['module']} -> {b['module']}"
    kinds = a["kind"] if a["kind"] == b["kind"] else f"{a['kind']} -> {b['kind']}"
    return f"{kinds}, different content, {size_change(a['size'], b['size'])}"


def state_problem(entry: dict[str, Any]) -> str | None:
    """``state predict: changed (function, different content, ...)``, or None when it is no problem."""
    judgement = entry["judgement"]
    if judgement not in (CHANGED, ADDED, REMOVED):
        return None
    what = describe_state_object(entry)
    return f"state {entry['name']}: {judgement}" + (f" ({what})" if what else "")


def describe_capture(state: dict[str, Any]) -> str | None:
    """``B: not captured (...); nothing compared`` when one side has no state and the other has
    (else None: both captured, or neither did and there is nothing to say)."""
    missing = [(label, state[key]["note"]) for label, key in (("A", "a"), ("B", "b")) if not state[key]["captured"]]
    if len(missing) != 1:
        return None
    label, note = missing[0]
    return f"{label}: {note}; nothing compared"


def _what(entry: dict[str, Any]) -> str:
    if "not_capturable" in entry:
        return f"not capturable: {entry['not_capturable']}"
    if entry["kind"] == "module":
        return f"module {entry['module']}"
    return f"{entry['kind']}, {format_bytes(entry['size'])}"
