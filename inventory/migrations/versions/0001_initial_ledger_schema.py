"""initial ledger schema

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-26 14:16:42.245813
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

import inventory.models

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "adoptionsnapshot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("taken_at", inventory.models.UTCDateTime(), nullable=False),
        sa.Column("as_of", inventory.models.UTCDateTime(), nullable=False),
        sa.Column("policy", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column(
            "switches", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
        ),
        sa.Column("numerator", sa.Integer(), nullable=False),
        sa.Column("denominator", sa.Integer(), nullable=False),
        sa.Column("rate", sa.Float(), nullable=True),
        sa.Column(
            "counts", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
        ),
        sa.Column(
            "groups", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
        ),
        sa.Column(
            "system_codes", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
        ),
        sa.Column(
            "stale_nodes", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("adoptionsnapshot", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_adoptionsnapshot_taken_at"), ["taken_at"], unique=False
        )

    op.create_table(
        "department",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("level", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("city", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("parent_code", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("department", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_department_code"), ["code"], unique=True)

    op.create_table(
        "node",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("level", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("one_cloud", sa.Boolean(), nullable=False),
        sa.Column("city", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("owner_department", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("mlps_level", sa.Integer(), nullable=True),
        sa.Column("dedicated_level4_pool", sa.Boolean(), nullable=False),
        sa.Column("zones", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("capacity_vcpu", sa.Float(), nullable=True),
        sa.Column("capacity_memory_gib", sa.Float(), nullable=True),
        sa.Column("capacity_storage_gib", sa.Float(), nullable=True),
        sa.Column("frozen_since", sa.Date(), nullable=True),
        sa.Column("system_tag", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column(
            "sources", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
        ),
        sa.Column("updated_at", inventory.models.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "resource",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("native_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("scope", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("namespace", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("region", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("replicas", sa.Integer(), nullable=True),
        sa.Column("vcpu", sa.Float(), nullable=True),
        sa.Column("memory_gib", sa.Float(), nullable=True),
        sa.Column("storage_gib", sa.Float(), nullable=True),
        sa.Column("tags", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("raw", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("system_code", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("created_at_source", inventory.models.UTCDateTime(), nullable=True),
        sa.Column("content_hash", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("first_seen_at", inventory.models.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", inventory.models.UTCDateTime(), nullable=False),
        sa.Column("last_seen_run_id", sa.Integer(), nullable=True),
        sa.Column("deleted_at", inventory.models.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "node_id", "source", "kind", "native_id", name="uq_resource_natural_key"
        ),
    )
    with op.batch_alter_table("resource", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_resource_node_id"), ["node_id"], unique=False)
        batch_op.create_index(
            "ix_resource_scope", ["node_id", "source", "kind", "scope"], unique=False
        )
        batch_op.create_index(
            "ix_resource_system_live", ["system_code", "deleted_at"], unique=False
        )

    op.create_table(
        "resourceevent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resource_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("at", inventory.models.UTCDateTime(), nullable=False),
        sa.Column("type", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("diff", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("resourceevent", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_resourceevent_resource_id"), ["resource_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_resourceevent_run_id"), ["run_id"], unique=False)

    op.create_table(
        "scanrun",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("started_at", inventory.models.UTCDateTime(), nullable=False),
        sa.Column("finished_at", inventory.models.UTCDateTime(), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("nodes", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("scopes_total", sa.Integer(), nullable=False),
        sa.Column("scopes_failed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "scoperesult",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("node_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("scope", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("api_calls", sa.Integer(), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=False),
        sa.Column("error_code", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("error_message", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("started_at", inventory.models.UTCDateTime(), nullable=False),
        sa.Column("finished_at", inventory.models.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("scoperesult", schema=None) as batch_op:
        batch_op.create_index(
            "ix_scope_result_node", ["node_id", "status", "finished_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_scoperesult_run_id"), ["run_id"], unique=False)

    op.create_table(
        "system",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("department_code", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("city", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("classified", sa.Boolean(), nullable=False),
        sa.Column("mlps_level", sa.Integer(), nullable=False),
        sa.Column("data_level", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("network_zone", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("lifecycle", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("exemption_reason", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("exemption_doc", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("exemption_valid_until", sa.Date(), nullable=True),
        sa.Column("declared_node", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("environment", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("criticality", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("crypto_assessed_on", sa.Date(), nullable=True),
        sa.Column("contact", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("created_at", inventory.models.UTCDateTime(), nullable=True),
        sa.Column("updated_at", inventory.models.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("system", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_system_city"), ["city"], unique=False)
        batch_op.create_index(batch_op.f("ix_system_code"), ["code"], unique=True)
        batch_op.create_index(
            batch_op.f("ix_system_department_code"), ["department_code"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("system", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_system_department_code"))
        batch_op.drop_index(batch_op.f("ix_system_code"))
        batch_op.drop_index(batch_op.f("ix_system_city"))

    op.drop_table("system")
    with op.batch_alter_table("scoperesult", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scoperesult_run_id"))
        batch_op.drop_index("ix_scope_result_node")

    op.drop_table("scoperesult")
    op.drop_table("scanrun")
    with op.batch_alter_table("resourceevent", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_resourceevent_run_id"))
        batch_op.drop_index(batch_op.f("ix_resourceevent_resource_id"))

    op.drop_table("resourceevent")
    with op.batch_alter_table("resource", schema=None) as batch_op:
        batch_op.drop_index("ix_resource_system_live")
        batch_op.drop_index("ix_resource_scope")
        batch_op.drop_index(batch_op.f("ix_resource_node_id"))

    op.drop_table("resource")
    op.drop_table("node")
    with op.batch_alter_table("department", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_department_code"))

    op.drop_table("department")
    with op.batch_alter_table("adoptionsnapshot", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_adoptionsnapshot_taken_at"))

    op.drop_table("adoptionsnapshot")
