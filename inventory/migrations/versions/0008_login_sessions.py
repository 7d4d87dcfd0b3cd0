"""login sessions: the portal's server-side sessions (only the session id's SHA-256 is kept)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import inventory.models

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _text() -> sa.types.TypeEngine[str]:
    return sqlmodel.sql.sqltypes.AutoString()


def upgrade() -> None:
    op.create_table(
        "login_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sid_sha256", _text(), nullable=False),
        sa.Column("principal", _text(), nullable=True),
        sa.Column("kind", _text(), nullable=False),
        sa.Column("name", _text(), nullable=True),
        sa.Column("claim_grants", inventory.models.JSONType, nullable=True),
        sa.Column("login_state", _text(), nullable=True),
        sa.Column("next_path", _text(), nullable=True),
        sa.Column("created_at", inventory.models.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", inventory.models.UTCDateTime(), nullable=False),
        sa.Column("expires_at", inventory.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_login_session_sid_sha256", "login_session", ["sid_sha256"], unique=True)
    op.create_index("ix_login_session_principal", "login_session", ["principal"])
    op.create_index("ix_login_session_expires_at", "login_session", ["expires_at"])


def downgrade() -> None:
    op.drop_table("login_session")
