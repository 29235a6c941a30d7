"""What a notebook's code binds at the top level, read from its source (``ast``) without running
it: so ``serve NOTEBOOK --function nosuch`` is refused before the set-up cells run.

Only a sure absence counts: a name bound anywhere at module level (``def``, ``class``, an
assignment, an import, a loop or ``with`` target, a ``global`` in a function) is taken as
present, and code that may bind names out of sight (``from m import *``, ``exec``,
``globals()``, ``%run``, a cell magic, a cell that does not parse) makes the answer uncertain:
then only running the set-up tells.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field

# calls after which any name may exist: exec("def f(): ..."), globals()["f"] = ..., %%cell magics
_OPAQUE_CALLS = {"exec", "eval", "globals", "vars", "locals", "setattr", "__import__",
                 "run_cell_magic", "run_cell", "runcode", "push"}
# namespaces written to directly: get_ipython().user_ns["f"] = ..., module.__dict__
_OPAQUE_ATTRIBUTES = {"user_ns", "user_global_ns", "__dict__"}
# line magics that bind no names of the notebook's (%run, %time x = ..., %store -r, %pylab do)
_QUIET_MAGICS = {"matplotlib", "config", "env", "set_env", "load_ext", "reload_ext", "unload_ext", "autoreload",
                 "aimport", "pip", "conda", "cd", "pwd", "who", "whos", "who_ls", "precision", "xmode", "timeit",
                 "colors", "automagic", "pdb", "pprint", "autocall", "alias", "logstart", "logstop", "page"}


@dataclass
class TopLevelNames:
    functions: set[str] = field(default_factory=set)  # defined with def at the top level
    bound: set[str] = field(default_factory=set)  # every name bound at the top level
    certain: bool = True  # False: the code may bind names this reading cannot see


class _Binder(ast.NodeVisitor):
    """Collects module-level bindings; function and class bodies only for ``global`` names."""

    def __init__(self, names: TopLevelNames) -> None:
        self.names = names
        self.depth = 0  # inside a function, class or lambda body

    def _bind(self, name: str) -> None:
        if self.depth == 0:
            self.names.bound.add(name)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if self.depth == 0:
            self.names.functions.add(node.name)
        self._bind(node.name)
        for decorator in node.decorator_list:
            self.visit(decorator)
        self.depth += 1
        for statement in node.body:
            self.visit(statement)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._bind(node.name)
        self.depth += 1
        for statement in node.body:
            self.visit(statement)
        self.depth -= 1

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    def visit_Global(self, node: ast.Global) -> None:
        self.names.bound.update(node.names)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Store):
            self._bind(node.id)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._bind(alias.asname or alias.name.split(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name == "*":
                self.names.certain = False
            else:
                self._bind(alias.asname or alias.name)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self._bind(node.name)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        called = node.func
        name = called.id if isinstance(called, ast.Name) else called.attr if isinstance(called, ast.Attribute) else None
        if name in _OPAQUE_CALLS or (name == "run_line_magic" and not _quiet_magic(node)):
            self.names.certain = False
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in _OPAQUE_ATTRIBUTES:
            self.names.certain = False
        self.generic_visit(node)


def _quiet_magic(call: ast.Call) -> bool:
    """``get_ipython().run_line_magic("matplotlib", "inline")``: a magic known to bind nothing."""
    first = call.args[0] if call.args else None
    return isinstance(first, ast.Constant) and first.value in _QUIET_MAGICS


def top_level_names(cells: list[str]) -> TopLevelNames:
    """The names ``cells`` bind at the top level, read as IPython reads them (magics included)."""
    from IPython.core.inputtransformer2 import TransformerManager

    names = TopLevelNames()
    transformer = TransformerManager()
    binder = _Binder(names)
    for source in cells:
        try:
            tree = ast.parse(transformer.transform_cell(source))
        except (SyntaxError, ValueError):
            names.certain = False
            continue
        binder.visit(tree)
    return names
