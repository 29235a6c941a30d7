"""How each run's kernel started.

``runs.kernel_start``: ``{"warm": bool, "modules": [...], "left_out": {module: why}, "cold": why or
null, "waited": seconds}``: whether it started with the notebook's modules imported (which, and
which were left out and why), else why it started cold, and how long the run waited for it. NULL
for a run that never had a kernel, and for runs before this revision.

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("kernel_start", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("kernel_start")
