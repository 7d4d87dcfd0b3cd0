"""drop ix_resource_node_id: the natural-key unique index already leads with node_id

Every query by node alone is served by uq_resource_natural_key (node_id first) or
ix_resource_scope; the extra index only cost a B-tree insert per new resource row.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 03:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("resource", schema=None) as batch_op:
        batch_op.drop_index("ix_resource_node_id")


def downgrade() -> None:
    with op.batch_alter_table("resource", schema=None) as batch_op:
        batch_op.create_index("ix_resource_node_id", ["node_id"], unique=False)
