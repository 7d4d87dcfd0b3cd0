"""migration ledger: dependencies, assessments, plans, waves, tracking, append-only events

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 14:39:20.561909
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

import inventory.models

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The migration log is append-only: the ORM refuses changes (migrate.models), and these
# triggers refuse them from any other client too.
_APPEND_ONLY = "migration events are append-only"


def _protect_migration_events() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION migrationevent_append_only() RETURNS trigger AS $$ "
            f"BEGIN RAISE EXCEPTION '{_APPEND_ONLY}'; END; $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER migrationevent_append_only BEFORE UPDATE OR DELETE "
            "ON migrationevent FOR EACH ROW EXECUTE FUNCTION migrationevent_append_only()"
        )
        return
    for action in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER migrationevent_no_{action.lower()} BEFORE {action} ON migrationevent "
            f"BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}'); END"
        )


def _unprotect_migration_events() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS migrationevent_append_only ON migrationevent")
        op.execute("DROP FUNCTION IF EXISTS migrationevent_append_only()")
        return
    for action in ("update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS migrationevent_no_{action}")


def upgrade() -> None:
    op.create_table(
        "assessment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("system_code", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("node_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("readiness", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("strategy", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("rules", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("sizing_vcpu", sa.Float(), nullable=False),
        sa.Column("sizing_memory_gib", sa.Float(), nullable=False),
        sa.Column("sizing_storage_gib", sa.Float(), nullable=False),
        sa.Column("assessed_at", inventory.models.UTCDateTime(), nullable=False),
        sa.Column("override_readiness", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("override_strategy", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("override_rationale", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("override_by", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("override_at", inventory.models.UTCDateTime(), nullable=True),
        sa.Column("superseded_at", inventory.models.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("assessment", schema=None) as batch_op:
        batch_op.create_index(
            "ix_assessment_current", ["system_code", "superseded_at"], unique=False
        )

    op.create_table(
        "dependency",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("from_system", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("to_system", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("type", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("strength", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("origin", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("basis", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("updated_at", inventory.models.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "from_system", "to_system", "type", "origin", name="uq_dependency_edge"
        ),
    )
    with op.batch_alter_table("dependency", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dependency_from_system"), ["from_system"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_dependency_to_system"), ["to_system"], unique=False)

    op.create_table(
        "migrationevent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("system_code", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=True),
        sa.Column("from_state", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("to_state", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("by", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("at", inventory.models.UTCDateTime(), nullable=False),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("evidence", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column(
            "checks", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("migrationevent", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_migrationevent_plan_id"), ["plan_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_migrationevent_system_code"), ["system_code"], unique=False
        )
    _protect_migration_events()

    op.create_table(
        "plan",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column(
            "source_nodes", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("target_node", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column(
            "parameters", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
        ),
        sa.Column(
            "review", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
        ),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", inventory.models.UTCDateTime(), nullable=False),
        sa.Column("updated_at", inventory.models.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("plan", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_plan_name"), ["name"], unique=True)

    op.create_table(
        "systemmigration",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("system_code", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("wave", sa.Integer(), nullable=True),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("move_group", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("readiness", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("strategy", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("sizing_vcpu", sa.Float(), nullable=False),
        sa.Column("sizing_memory_gib", sa.Float(), nullable=False),
        sa.Column("sizing_storage_gib", sa.Float(), nullable=False),
        sa.Column("explanation", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("risk", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column(
            "risk_factors", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
        ),
        sa.Column("updated_at", inventory.models.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("plan_id", "system_code", name="uq_systemmigration_plan_system"),
    )
    with op.batch_alter_table("systemmigration", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_systemmigration_plan_id"), ["plan_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_systemmigration_system_code"), ["system_code"], unique=False
        )

    op.create_table(
        "wave",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("end", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("plan_id", "number", name="uq_wave_plan_number"),
    )
    with op.batch_alter_table("wave", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_wave_plan_id"), ["plan_id"], unique=False)


def downgrade() -> None:
    _unprotect_migration_events()
    with op.batch_alter_table("wave", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wave_plan_id"))

    op.drop_table("wave")
    with op.batch_alter_table("systemmigration", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_systemmigration_system_code"))
        batch_op.drop_index(batch_op.f("ix_systemmigration_plan_id"))

    op.drop_table("systemmigration")
    with op.batch_alter_table("plan", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_plan_name"))

    op.drop_table("plan")
    with op.batch_alter_table("migrationevent", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_migrationevent_system_code"))
        batch_op.drop_index(batch_op.f("ix_migrationevent_plan_id"))

    op.drop_table("migrationevent")
    with op.batch_alter_table("dependency", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dependency_to_system"))
        batch_op.drop_index(batch_op.f("ix_dependency_from_system"))

    op.drop_table("dependency")
    with op.batch_alter_table("assessment", schema=None) as batch_op:
        batch_op.drop_index("ix_assessment_current")

    op.drop_table("assessment")
