"""The initial run index: notebooks, environments, runs, metrics, run_blobs.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notebooks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("path", sa.Text, nullable=False, unique=True),
        sa.Column("next_version", sa.Integer, nullable=False),
    )
    op.create_table(
        "environments",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("python", sa.Text, nullable=False),
        sa.Column("platform", sa.Text, nullable=False),
        sa.Column("kernel", sa.Text, nullable=False),
        sa.Column("packages", sa.JSON, nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("notebook_id", sa.Integer, sa.ForeignKey("notebooks.id"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("parameters", sa.JSON, nullable=False),
        sa.Column("source_hash", sa.String(64), nullable=False),
        sa.Column("notebook_hash", sa.String(64), nullable=True),
        sa.Column("git_commit", sa.String(64), nullable=True),
        sa.Column("git_dirty", sa.Boolean, nullable=True),
        sa.Column("environment_id", sa.String(64), sa.ForeignKey("environments.id"), nullable=True),
        sa.Column("backend", sa.String(32), nullable=False),
        sa.Column("host", sa.Text, nullable=False),
        sa.Column("pid", sa.Integer, nullable=True),
        sa.Column("queued_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float, nullable=True),
        sa.Column("finished_at", sa.Float, nullable=True),
        sa.Column("cell_timings", sa.JSON, nullable=False),
        sa.Column("error", sa.JSON, nullable=True),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("sweep_id", sa.String(32), nullable=True),
        sa.Column("parent_id", sa.String(32), nullable=True),
        sa.UniqueConstraint("notebook_id", "version", name="uq_runs_notebook_version"),
    )
    op.create_index("ix_runs_queued_at", "runs", ["queued_at"])
    op.create_index("ix_runs_status", "runs", ["status"])
    op.create_index("ix_runs_sweep_id", "runs", ["sweep_id"])
    op.create_table(
        "metrics",
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("step", sa.Integer, nullable=True),
        sa.Column("value", sa.Float, nullable=False),
    )
    op.create_index("ix_metrics_name", "metrics", ["name"])
    op.create_table(
        "run_blobs",
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("hash", sa.String(64), primary_key=True),
    )
    op.create_index("ix_run_blobs_hash", "run_blobs", ["hash"])


def downgrade() -> None:
    for table in ("run_blobs", "metrics", "runs", "environments", "notebooks"):
        op.drop_table(table)
