"""Sweeps, cancel requests and live progress of runs.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sweeps",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("notebook_id", sa.Integer, sa.ForeignKey("notebooks.id"), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("backend", sa.String(32), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Index("ix_sweeps_created_at", "created_at"),
    )
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("current_cell", sa.Integer, nullable=True))
        batch.add_column(sa.Column("cell_count", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("cell_count")
        batch.drop_column("current_cell")
        batch.drop_column("cancel_requested")
    op.drop_table("sweeps")
