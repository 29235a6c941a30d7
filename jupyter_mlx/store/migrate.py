"""Schema migrations (alembic), applied on open; a store from a newer jupyter_mlx is refused."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ..errors import MLXError

# Revisions this code knows, oldest first; the last is the head. A test checks it against alembic.
REVISIONS = ("0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008", "0009", "0010")
HEAD = REVISIONS[-1]


def current_revision(conn: sa.Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def check_revision(revision: str | None, url: str, migrate: bool = True) -> bool:
    """True when the schema is current; raises for a schema this code does not know, and (with
    ``migrate`` off) for an older one. A new, empty database (no revision) is always set up."""
    if revision == HEAD:
        return True
    if revision is not None and revision in REVISIONS and not migrate:
        raise MLXError(
            "store_schema_too_old",
            f"the run store at {url} has schema revision {revision}, older than this jupyter_mlx's "
            f"(head {HEAD}), and c.MLXConfig.migrate_store is off: back it up, then run "
            "`jupyter mlx migrate-store`",
        )
    if revision is not None and revision not in REVISIONS:
        raise MLXError(
            "store_schema_too_new",
            f"the run store at {url} has schema revision {revision}, newer than this jupyter_mlx "
            f"knows (head {HEAD}): upgrade jupyter_mlx (pip install -U jupyter_mlx) to open it",
        )
    return False


def upgrade(conn: sa.Connection, revision: str = "head", blobs: Any = None) -> None:
    """Bring the schema to the head (or ``revision``) on ``conn`` (inside the caller's transaction).

    ``blobs``: the store's ``BlobStore``, for migrations that read stored notebooks (0006)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.attributes["connection"] = conn
    config.attributes["blobs"] = blobs
    command.upgrade(config, revision)
