"""drift safety: run states, planned scopes, guarded sweeps, retired nodes, ids never reused

- scanrun: `planned` (every scope the run planned) and `error_message` (why it crashed);
  statuses interrupted / crashed / abandoned join running / ok / failed.
- scoperesult: `deleted`, `held` and `sweep` (held / agreed / confirmed / retired).
- node: `retired_at`, `retired_by`, `retired_reason` (`yiyun nodes retire`).
- adoptionsnapshot: `expired_scopes` (policy evidence-v2).
- resource on SQLite: AUTOINCREMENT, so an id freed by purging tombstones is never handed
  to a new row (its history would attach to the wrong resource). The table is rebuilt with
  its rows and ids; PostgreSQL's sequence never reused ids.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from inventory.models import UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
LIVE = sa.text("deleted_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("scanrun") as batch_op:
        batch_op.add_column(sa.Column("planned", JSON, nullable=True))
        batch_op.add_column(sa.Column("error_message", sa.String(), nullable=True))
    with op.batch_alter_table("scoperesult") as batch_op:
        batch_op.add_column(sa.Column("deleted", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("held", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("sweep", sa.String(), nullable=True))
    with op.batch_alter_table("node") as batch_op:
        batch_op.add_column(sa.Column("retired_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("retired_by", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("retired_reason", sa.String(), nullable=True))
    with op.batch_alter_table("adoptionsnapshot") as batch_op:
        batch_op.add_column(sa.Column("expired_scopes", JSON, nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_autoincrement()


def _sqlite_autoincrement() -> None:
    """Rebuild `resource` as AUTOINCREMENT, keeping every row, id and index.

    The rows are copied with their ids; the sequence then starts above the highest id in use
    or named by any event (a purged row's history keeps its id).
    Indexes are dropped and made again by name: batch mode's reflection would not carry the
    live-evidence index's WHERE clause over.
    """
    op.drop_index("ix_resource_live_evidence", table_name="resource")
    op.drop_index("ix_resource_scope", table_name="resource")
    with op.batch_alter_table(
        "resource", recreate="always", table_kwargs={"sqlite_autoincrement": True}
    ):
        pass
    op.create_index(
        "ix_resource_live_evidence",
        "resource",
        ["system_code", "node_id", "kind", "replicas", "state"],
        sqlite_where=LIVE,
    )
    op.create_index("ix_resource_scope", "resource", ["node_id", "source", "kind", "scope"])
    # Ids already purged above the highest live one still have history: never hand them out.
    op.execute(
        "INSERT INTO sqlite_sequence (name, seq) SELECT 'resource', 0 "
        "WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'resource')"
    )
    op.execute(
        "UPDATE sqlite_sequence SET seq = max(seq, "
        "(SELECT coalesce(max(id), 0) FROM resource), "
        "(SELECT coalesce(max(resource_id), 0) FROM resourceevent)) WHERE name = 'resource'"
    )


def downgrade() -> None:
    with op.batch_alter_table("adoptionsnapshot") as batch_op:
        batch_op.drop_column("expired_scopes")
    with op.batch_alter_table("node") as batch_op:
        batch_op.drop_column("retired_reason")
        batch_op.drop_column("retired_by")
        batch_op.drop_column("retired_at")
    with op.batch_alter_table("scoperesult") as batch_op:
        batch_op.drop_column("sweep")
        batch_op.drop_column("held")
        batch_op.drop_column("deleted")
    with op.batch_alter_table("scanrun") as batch_op:
        batch_op.drop_column("error_message")
        batch_op.drop_column("planned")
