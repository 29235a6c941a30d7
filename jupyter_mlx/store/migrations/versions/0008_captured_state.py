"""The state a run's notebook functions need, captured when it succeeded.

``runs.state_hash``: the blob of the captured objects (counted in blob_refs); ``runs.state``: the
capture's manifest (the functions, each object's kind, size, hash and package, what could not be
captured and why, the packages' versions).

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("state_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("state", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("state")
        batch.drop_column("state_hash")
