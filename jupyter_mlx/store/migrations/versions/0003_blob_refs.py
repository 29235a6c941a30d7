"""Blob reference counts instead of one row per (run, blob); metrics without a rowid on SQLite.

``run_blobs`` held a row per blob per run, stored three times (table, primary key, hash index):
more than half of the index of a sweep. ``blob_refs`` holds one count per blob, the number of
runs that use it; a run's blobs are found again from its row and its skeleton when it is deleted.
The counts are those of ``run_blobs`` (every file written before this revision is plain zlib, so
no blob depends on a dictionary yet).

On SQLite, ``metrics`` is rebuilt ``WITHOUT ROWID``: its rows then live in the primary key's
b-tree instead of a table plus a copy of (run_id, seq) in an index. ``ix_metrics_name`` goes: no
query reads metrics by name, and without a rowid it would copy (name, run_id, seq) of every row.

Runs finished from this revision on record compact cell timings and skeletons compressed against
their source: older jupyter_mlx cannot read them, which the schema revision check enforces (it
refuses a store newer than it knows). There is no downgrade.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "blob_refs",
        sa.Column("hash", sa.String(64), primary_key=True),
        sa.Column("refs", sa.Integer, nullable=False),
        sqlite_with_rowid=False,
    )
    op.execute(
        "INSERT INTO blob_refs (hash, refs) SELECT hash, COUNT(*) FROM run_blobs GROUP BY hash"
    )
    op.drop_index("ix_run_blobs_hash", table_name="run_blobs")
    op.drop_table("run_blobs")

    op.drop_index("ix_metrics_name", table_name="metrics")
    if op.get_bind().dialect.name == "sqlite":
        op.create_table(
            "metrics_rebuilt",
            sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
            sa.Column("seq", sa.Integer, primary_key=True),
            sa.Column("name", sa.Text, nullable=False),
            sa.Column("step", sa.Integer, nullable=True),
            sa.Column("value", sa.Float, nullable=False),
            sqlite_with_rowid=False,
        )
        op.execute(
            "INSERT INTO metrics_rebuilt (run_id, seq, name, step, value) "
            "SELECT run_id, seq, name, step, value FROM metrics"
        )
        op.drop_table("metrics")
        op.rename_table("metrics_rebuilt", "metrics")


def downgrade() -> None:
    raise NotImplementedError(
        "revision 0003 cannot be downgraded: runs recorded since use blob formats older "
        "jupyter_mlx cannot read"
    )
