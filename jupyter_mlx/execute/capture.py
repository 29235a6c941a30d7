"""Capture, in the kernel at the end of a successful run, the state the notebook's functions need.

For each top-level function the notebook defined (or only those named), the global names it
uses, transitively (other notebook functions, models, encoders, constants, lambdas), are
tried with cloudpickle one object at a time (its size and hash are what a comparison tells
apart): an object that cannot be pickled is recorded as not capturable with the reason, so is a
function that uses one, and the others are kept, pickled together so that what they share stays
shared. Modules are recorded by name (imported
again where the state is loaded). The whole capture is bounded in time and bytes; it never fails
the run. The kernel writes the state to a file (a local kernel) or returns it base64-encoded
(a remote one); the manifest says what is in it and the packages its objects come from.
"""
from __future__ import annotations

import ast
import base64
import json
from pathlib import Path
from typing import Any

CODE = r'''
def __mlx_capture(path, seconds, max_bytes, only):
    import base64, builtins, hashlib, json, sys, time, types
    started = time.monotonic()
    manifest = {"functions": [], "objects": [], "not_capturable": [], "packages": {}, "truncated": None}
    try:
        import cloudpickle
    except ImportError:
        manifest["truncated"] = "cloudpickle is not installed in the kernel's environment"
        return json.dumps({"manifest": manifest, "state": None})
    namespace = get_ipython().user_ns
    hidden = set(get_ipython().user_ns_hidden)

    def is_notebook_function(name, value):
        return (isinstance(value, types.FunctionType) and getattr(value, "__module__", None) == "__main__"
                and value.__name__ == name and not name.startswith("_") and name not in hidden)

    def names_in(code):
        found = set(code.co_names)
        for constant in code.co_consts:
            if isinstance(constant, types.CodeType):
                found |= names_in(constant)
        return found

    functions = sorted(name for name, value in list(namespace.items()) if is_notebook_function(name, value)
                       and (not only or name in only))
    manifest["functions"] = functions
    needed, uses, stack = {}, {}, list(functions)
    while stack:
        name = stack.pop()
        if name in needed or name not in namespace or name in hidden:
            continue
        value = namespace[name]
        needed[name] = value
        if isinstance(value, types.FunctionType) and getattr(value, "__module__", None) == "__main__":
            uses[name] = {n for n in names_in(value.__code__) if n in namespace and not hasattr(builtins, n)}
            stack.extend(uses[name])
    from importlib.metadata import packages_distributions, version
    ALIASES = {"sklearn": "scikit-learn", "PIL": "pillow", "cv2": "opencv-python", "yaml": "pyyaml",
               "bs4": "beautifulsoup4", "skimage": "scikit-image", "dateutil": "python-dateutil",
               "google": "protobuf", "attr": "attrs", "tensorflow_core": "tensorflow"}
    distributions = {}  # filled on the first module whose distribution is named otherwise (sklearn)

    def package_of(value):
        if isinstance(value, types.ModuleType):
            module = value.__name__
        elif isinstance(value, types.FunctionType):
            module = getattr(value, "__module__", "") or ""
        else:
            module = getattr(type(value), "__module__", "") or ""
        top = module.split(".")[0]
        if not top or top in ("__main__", "builtins") or top in sys.stdlib_module_names:
            return None
        # most distributions are named as their module (numpy) or as a well-known alias (sklearn):
        # no scan of every installed distribution (0.2 s) unless neither is installed
        for guess in (ALIASES.get(top), top):
            try:
                manifest["packages"][guess] = version(guess)
                return guess
            except Exception:
                pass
        if not distributions:
            try:
                distributions.update(packages_distributions())
            except Exception:
                return None
        for distribution in distributions.get(top, [])[:1]:
            try:
                manifest["packages"][distribution] = version(distribution)
            except Exception:
                pass
            return distribution
        return None

    # each object alone: whether it pickles, its size and hash (what a comparison tells apart)
    pickled, refused, modules, total = {}, {}, {}, 0
    for name in sorted(needed, key=lambda n: (n in uses, n)):  # objects first, then the functions using them
        value = needed[name]
        if isinstance(value, types.ModuleType):
            modules[name] = value.__name__
            package_of(value)
            continue
        if time.monotonic() - started > seconds:
            refused[name] = f"the capture took longer than {seconds:g} s"
            manifest["truncated"] = refused[name]
            continue
        culprits = sorted(n for n in uses.get(name, ()) if n in refused)
        if culprits:  # pickling it would fail on (or leave out) what it uses
            refused[name] = f"it uses {culprits[0]}, which could not be captured"
            continue
        try:
            data = cloudpickle.dumps(value)
        except Exception as exc:
            refused[name] = f"{type(exc).__name__}: {exc}"[:300]
            continue
        if total + len(data) > max_bytes:
            refused[name] = f"{len(data)} bytes would pass the state's limit of {max_bytes}"
            continue
        total += len(data)
        pickled[name] = data
    # a function that uses what was refused is refused too (it could not run)
    changed = True
    while changed:
        changed = False
        for name, names in uses.items():
            if name in pickled and any(n in refused for n in names):
                culprit = sorted(n for n in names if n in refused)[0]
                refused[name] = f"it uses {culprit}, which could not be captured"
                del pickled[name]
                changed = True
    for name in sorted(needed):
        value = needed[name]
        if name in modules:
            manifest["objects"].append({"name": name, "kind": "module", "module": modules[name], "size": 0,
                                        "sha256": None})
        elif name in pickled:
            kind = "function" if isinstance(value, types.FunctionType) else type(value).__name__
            manifest["objects"].append({"name": name, "kind": kind, "size": len(pickled[name]),
                                        "sha256": hashlib.sha256(pickled[name]).hexdigest(),
                                        "package": package_of(value)})
    manifest["not_capturable"] = [[name, refused[name]] for name in sorted(refused)]
    # all kept objects in one pickle: objects they share stay shared when loaded
    payload = cloudpickle.dumps({"objects": {name: needed[name] for name in pickled}, "modules": modules})
    manifest["seconds"] = round(time.monotonic() - started, 3)
    if path:
        with open(path, "wb") as handle:
            handle.write(payload)
        return json.dumps({"manifest": manifest, "state": None})
    return json.dumps({"manifest": manifest, "state": base64.b64encode(payload).decode()})
'''


def capture_request(path: str | None, seconds: float, max_bytes: int, only: tuple[str, ...]) -> tuple[str, str]:
    """(the code that defines the capture, the user expression that runs it)."""
    return CODE, f"__mlx_capture({path!r}, {float(seconds)!r}, {int(max_bytes)!r}, {list(only)!r})"


def unpack_capture(reply: dict[str, Any], path: Path) -> tuple[Path | None, dict[str, Any]]:
    """(the file holding the state, the manifest) of a capture's reply; the file is ``path`` (the
    kernel wrote it, or its base64 answer is written there), None when nothing was captured."""
    result = (reply.get("content", {}).get("user_expressions") or {}).get("state") or {}
    if result.get("status") != "ok":
        return None, {"error": f"{result.get('ename', 'no answer')}: {result.get('evalue', '')}"[:300]}
    answer = json.loads(ast.literal_eval(result["data"]["text/plain"]))
    if answer["state"] is not None:
        path.write_bytes(base64.b64decode(answer["state"]))
    return (path if path.is_file() else None), answer["manifest"]

