"""resource indexes for province scale: one covering index for live evidence, none redundant

- ix_resource_node_id goes: uq_resource_natural_key and ix_resource_scope already lead with
  node_id, so it only cost a B-tree insert per new row.
- ix_resource_system_live (system_code, deleted_at) becomes ix_resource_live_evidence:
  (system_code, node_id, kind, replicas, state) over live rows only. The KPI's evidence
  query reads just these columns of live rows, so it is answered from the index alone
  instead of a scan of every row with its raw JSON.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 03:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = sa.text("deleted_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("resource", schema=None) as batch_op:
        batch_op.drop_index("ix_resource_node_id")
        batch_op.drop_index("ix_resource_system_live")
        batch_op.create_index(
            "ix_resource_live_evidence",
            ["system_code", "node_id", "kind", "replicas", "state"],
            unique=False,
            sqlite_where=LIVE,
            postgresql_where=LIVE,
        )


def downgrade() -> None:
    with op.batch_alter_table("resource", schema=None) as batch_op:
        batch_op.drop_index("ix_resource_live_evidence")
        batch_op.create_index(
            "ix_resource_system_live", ["system_code", "deleted_at"], unique=False
        )
        batch_op.create_index("ix_resource_node_id", ["node_id"], unique=False)
