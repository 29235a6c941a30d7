"""Who ran each run, and where it was exported to.

``runs.user``: the person who asked for the run (the Jupyter identity through REST and the panel,
the OS user or ``c.MLXConfig.user`` from the CLI and the magic); NULL for runs before this revision.
``runs.exports``: ``{"mlflow": {tracking URI: {"run_id": ..., "experiment_id": ..., "at": epoch}}}``,
where the run was logged outside the store (an export is idempotent: it updates what it finds here).

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
        batch.create_index("ix_runs_user", ["user"])


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_user")
        batch.drop_column("exports")
        batch.drop_column("user")
