"""Who ran each run, where it was exported to, and when it last changed.

``runs.user``: the person who asked for the run (the Jupyter identity through REST and the panel,
the OS user or ``c.MLXConfig.user`` from the CLI and the magic); NULL for runs before this revision.
``runs.exports``: ``{"mlflow": {tracking URI: {"run_id": ..., "experiment_id": ..., "at": epoch}}}``,
where the run was logged outside the store (an export is idempotent: it updates what it finds here).
``runs.changed_at``: when the run was last written (queued, started, progress, finished, cancel
asked, interrupted, exported), indexed: a server follows the runs other processes change (another
user's server on the same index) by reading those changed since its last look; NULL before.

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("user", sa.Text, nullable=True))
        batch.add_column(sa.Column("exports", sa.JSON, nullable=True))
        batch.add_column(sa.Column("changed_at", sa.Float, nullable=True))
        batch.create_index("ix_runs_user", ["user"])
        batch.create_index("ix_runs_changed_at", ["changed_at"])


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_changed_at")
        batch.drop_index("ix_runs_user")
        batch.drop_column("changed_at")
        batch.drop_column("exports")
        batch.drop_column("user")
