"""Every run in its own folder, and the files it writes kept as artifacts.

``runs.run_folder``: how the run's folder was made (``overlay``, ``copy``, ``in-place``; NULL for
runs before this revision, which ran in the project folder). ``runs.inputs_hash``: the blob of the
project's files when the run started. ``runs.notes``: what the run says about its files (a file
skipped for its size). ``artifacts``: one row per file the run created or changed.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("run_folder", sa.String(16), nullable=True))
        batch.add_column(sa.Column("inputs_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("notes", sa.JSON, nullable=False, server_default="[]"))
    op.create_table(
        "artifacts",
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("path", sa.Text, primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("media_type", sa.Text, nullable=False),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("artifacts")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("notes")
        batch.drop_column("inputs_hash")
        batch.drop_column("run_folder")
