"""The SQL schema of the run index (SQLAlchemy Core). Changes go through an alembic migration."""
from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

notebooks = sa.Table(
    "notebooks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("path", sa.Text, nullable=False, unique=True),
    sa.Column("next_version", sa.Integer, nullable=False),
)

environments = sa.Table(
    "environments",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("python", sa.Text, nullable=False),
    sa.Column("platform", sa.Text, nullable=False),
    sa.Column("kernel", sa.Text, nullable=False),
    sa.Column("packages", sa.JSON, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
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
    sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("current_cell", sa.Integer, nullable=True),
    sa.Column("cell_count", sa.Integer, nullable=True),
    # when the process running it was last seen alive (queued, started, progress, heartbeat)
    sa.Column("alive_at", sa.Float, nullable=True),
    # ``parameters`` holds every parameter's effective value; these name the ones the request set
    # and the ones recorded as a default expression's source text (revision 0006)
    sa.Column("overridden", sa.JSON, nullable=False, server_default="[]"),
    sa.Column("expressions", sa.JSON, nullable=False, server_default="[]"),
    # where it ran (overlay, copy, in-place), the blob of the project's files when it started (a JSON
    # list of InputFile), and what it says about its files (skipped artifacts) (revision 0007)
    sa.Column("run_folder", sa.String(16), nullable=True),
    sa.Column("inputs_hash", sa.String(64), nullable=True),
    sa.Column("notes", sa.JSON, nullable=False, server_default="[]"),
    # the state its notebook's functions need, captured at its end, and what is in it (revision 0008)
    sa.Column("state_hash", sa.String(64), nullable=True),
    sa.Column("state", sa.JSON, nullable=True),
    # how its kernel started: warm (with which modules, which left out and why) or cold (why), and
    # how long the run waited for it (revision 0009)
    sa.Column("kernel_start", sa.JSON, nullable=True),
    # who ran it, and where it was exported to ({"mlflow": {tracking URI: {"run_id", ...}}}) (revision 0010)
    sa.Column("user", sa.Text, nullable=True),
    sa.Column("exports", sa.JSON, nullable=True),
    sa.Column("changed_at", sa.Float, nullable=True),  # its last write: what other processes follow
    sa.UniqueConstraint("notebook_id", "version", name="uq_runs_notebook_version"),
    sa.Index("ix_runs_queued_at", "queued_at"),
    sa.Index("ix_runs_status", "status"),
    sa.Index("ix_runs_sweep_id", "sweep_id"),
    sa.Index("ix_runs_parent_id", "parent_id"),
    sa.Index("ix_runs_user", "user"),
    sa.Index("ix_runs_changed_at", "changed_at"),
)

sweeps = sa.Table(
    "sweeps",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("notebook_id", sa.Integer, sa.ForeignKey("notebooks.id"), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("backend", sa.String(32), nullable=False),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Index("ix_sweeps_created_at", "created_at"),
)

baselines = sa.Table(
    "baselines",
    metadata,
    sa.Column("notebook_id", sa.Integer, sa.ForeignKey("notebooks.id"), primary_key=True),
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("approved_at", sa.Float, nullable=False),
    sa.Column("note", sa.Text, nullable=False, server_default=""),
)

metrics = sa.Table(
    "metrics",
    metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("step", sa.Integer, nullable=True),
    sa.Column("value", sa.Float, nullable=False),
    # Rows live in the primary key's b-tree: no second copy of (run_id, seq). Read by run only; an
    # index on name would copy (name, run_id, seq) of every row for no query.
    sqlite_with_rowid=False,
)

blob_refs = sa.Table(
    "blob_refs",
    metadata,
    # How many runs use each blob (a blob a run's files need counts once per run). A run uses its
    # source, its executed notebook's skeleton, the skeleton's output blobs and the dictionary the
    # skeleton's file is compressed with. At 0 the blob is deleted, under the write lock.
    sa.Column("hash", sa.String(64), primary_key=True),
    sa.Column("refs", sa.Integer, nullable=False),
    sqlite_with_rowid=False,
)

artifacts = sa.Table(
    "artifacts",
    metadata,
    # The files a run created or changed; the bytes are the blob ``sha256`` (counted in blob_refs
    # once per run that has it).
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("path", sa.Text, primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("media_type", sa.Text, nullable=False),
    sqlite_with_rowid=False,
)
