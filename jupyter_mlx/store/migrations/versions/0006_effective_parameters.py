"""Every run records the effective value of every parameter, and which ones the request set.

Before, ``runs.parameters`` held only the parameters a run overrode: a run that used the
default ``max_iter = 100`` had no ``max_iter`` at all. From this revision ``parameters`` holds
every parameter of the notebook's ``parameters`` cell (the overrides, else the default),
``overridden`` the names the request set (only these are injected by papermill) and
``expressions`` the names whose value is the source text of a default that is not a JSON literal
(``x = np.arange(3)`` is recorded as ``"np.arange(3)"``: it is never evaluated outside the kernel).

Old runs are filled from their stored source snapshot (the notebook as it was run). A run whose
snapshot cannot be read, or whose parameters cell does not parse, keeps its overrides alone.
The parsing is copied here on purpose, not imported: a migration must do tomorrow what it does
today, whatever later versions of ``jupyter_mlx.execute.parameters`` become.

Revision ID: 0006
Revises: 0004
"""
import ast
import json
from typing import Any

import sqlalchemy as sa
from alembic import context, op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_runs = sa.table(
    "runs",
    sa.column("id", sa.String),
    sa.column("source_hash", sa.String),
    sa.column("parameters", sa.JSON),
    sa.column("overridden", sa.JSON),
    sa.column("expressions", sa.JSON),
)


def upgrade() -> None:
    # plain ALTER TABLE ADD COLUMN: a batch rebuild of ``runs`` would drop it, and with it (ON
    # DELETE CASCADE) every logged metric
    op.add_column("runs", sa.Column("overridden", sa.JSON, nullable=False, server_default="[]"))
    op.add_column("runs", sa.Column("expressions", sa.JSON, nullable=False, server_default="[]"))
    blobs = context.config.attributes.get("blobs")
    conn = op.get_bind()
    defaults_of: dict[str, dict[str, tuple[Any, bool]]] = {}
    updates = []
    for row in conn.execute(sa.select(_runs.c.id, _runs.c.source_hash, _runs.c.parameters)).all():
        given = dict(row.parameters or {})
        if row.source_hash not in defaults_of:
            defaults_of[row.source_hash] = _defaults(blobs, row.source_hash)
        defaults = defaults_of[row.source_hash]
        values = {name: value for name, (value, _) in defaults.items()}
        values.update(given)
        expressions = [name for name, (_, expression) in defaults.items() if expression and name not in given]
        updates.append({"run_id": row.id, "new_parameters": values, "new_overridden": list(given),
                        "new_expressions": expressions})
    if updates:
        conn.execute(
            _runs.update()
            .where(_runs.c.id == sa.bindparam("run_id"))
            .values(parameters=sa.bindparam("new_parameters"), overridden=sa.bindparam("new_overridden"),
                    expressions=sa.bindparam("new_expressions")),
            updates,
        )


def downgrade() -> None:
    """Back to the overrides alone (older code injects ``parameters`` when it runs a run again)."""
    conn = op.get_bind()
    rows = conn.execute(sa.select(_runs.c.id, _runs.c.parameters, _runs.c.overridden)).all()
    updates = [{"run_id": row.id, "new_parameters": {name: (row.parameters or {}).get(name) for name in row.overridden}}
               for row in rows]
    if updates:
        conn.execute(_runs.update().where(_runs.c.id == sa.bindparam("run_id"))
                     .values(parameters=sa.bindparam("new_parameters")), updates)
    op.drop_column("runs", "expressions")  # SQLite 3.35+: ALTER TABLE DROP COLUMN, no rebuild
    op.drop_column("runs", "overridden")


def _defaults(blobs: Any, source_hash: str) -> dict[str, tuple[Any, bool]]:
    """The parameters cell of a stored snapshot: name -> (recorded default, is an expression)."""
    if blobs is None:
        return {}
    try:
        notebook = json.loads(blobs.get(source_hash))
        cell = next(c for c in notebook.get("cells", []) if c.get("cell_type") == "code"
                    and "parameters" in ((c.get("metadata") or {}).get("tags") or []))
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        tree = ast.parse(source)
    except (KeyError, ValueError, StopIteration, SyntaxError, TypeError, AttributeError, OSError):
        return {}
    found: dict[str, tuple[Any, bool]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign):
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name):
            found[target.id] = _recorded(source, value)
    return found


def _recorded(source: str, value: ast.expr | None) -> tuple[Any, bool]:
    """A JSON literal as it is, anything else as its source text (an expression)."""
    if value is None:
        return None, False
    try:
        literal = ast.literal_eval(value)
        json.dumps(literal, allow_nan=False)
        return literal, False
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return ast.get_source_segment(source, value), True
