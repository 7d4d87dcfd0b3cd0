"""service access: grants, API tokens (hashed) and the append-only audit log

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import inventory.models

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The audit log is append-only: the ORM refuses changes (inventory/audit.py), and these
# triggers refuse them from any other client too.
_APPEND_ONLY = "audit entries are append-only"


def _text() -> sa.types.TypeEngine[str]:
    return sqlmodel.sql.sqltypes.AutoString()


def upgrade() -> None:
    op.create_table(
        "accessgrant",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("principal", _text(), nullable=False),
        sa.Column("role", _text(), nullable=False),
        sa.Column("scope", _text(), nullable=False),
        sa.Column("granted_by", _text(), nullable=False),
        sa.Column("granted_at", inventory.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("principal", "role", "scope", name="uq_access_grant"),
    )
    op.create_index("ix_accessgrant_principal", "accessgrant", ["principal"])
    op.create_table(
        "apitoken",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_id", _text(), nullable=False),
        sa.Column("secret_sha256", _text(), nullable=False),
        sa.Column("principal", _text(), nullable=False),
        sa.Column("role", _text(), nullable=False),
        sa.Column("scope", _text(), nullable=False),
        sa.Column("created_by", _text(), nullable=False),
        sa.Column("created_at", inventory.models.UTCDateTime(), nullable=False),
        sa.Column("expires_at", inventory.models.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", inventory.models.UTCDateTime(), nullable=True),
        sa.Column("revoked_by", _text(), nullable=True),
        sa.Column("last_used_at", inventory.models.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_apitoken_token_id", "apitoken", ["token_id"], unique=True)
    op.create_index("ix_apitoken_principal", "apitoken", ["principal"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", inventory.models.UTCDateTime(), nullable=False),
        sa.Column("principal", _text(), nullable=False),
        sa.Column("principal_kind", _text(), nullable=False),
        sa.Column("by", _text(), nullable=True),
        sa.Column("request_id", _text(), nullable=True),
        sa.Column("action", _text(), nullable=False),
        sa.Column("target", _text(), nullable=False),
        sa.Column("before", inventory.models.JSONType, nullable=True),
        sa.Column("after", inventory.models.JSONType, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_principal", "audit_log", ["principal"])
    op.create_index("ix_audit_log_action", "audit_log", ["action"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$ "
            f"BEGIN RAISE EXCEPTION '{_APPEND_ONLY}'; END; $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE "
            "ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
        )
        # TRUNCATE skips row triggers: refuse it with a statement trigger.
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{action.lower()} BEFORE {action} ON audit_log "
                f"BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    else:
        for action in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS audit_log_no_{action}")
    op.drop_table("audit_log")
    op.drop_table("apitoken")
    op.drop_table("accessgrant")
