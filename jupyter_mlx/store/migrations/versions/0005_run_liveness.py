"""When the process running a run was last seen alive, and re-queued runs found by their parent.

``runs.alive_at``: written when a run is queued, starts, reports progress, and by its process's
heartbeat while it is queued or running. A run whose process died is recorded as ending then, not
when the death was noticed. ``ix_runs_parent_id``: which runs were re-queued (a sweep's status
counts a re-queued run as superseded by its child).

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("alive_at", sa.Float, nullable=True))
        batch.create_index("ix_runs_parent_id", ["parent_id"])


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_parent_id")
        batch.drop_column("alive_at")
