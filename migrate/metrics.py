"""Counts behind the exporter's yiyun_migration_systems{plan,wave,state} gauge."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, col, select

from inventory.models import System
from migrate.models import Plan, SystemMigration

# The wave label of systems a plan has not placed.
NO_WAVE = "none"


def migration_state_counts(*, session: Session) -> dict[tuple[str, str, str], int]:
    """(plan name, wave number as text or "none", state) → number of systems.

    Labels stay low-cardinality: plans, waves and states, never a system. Classified systems
    are never in a plan; the join keeps it that way even if one were.
    """
    query = (
        select(Plan.name, SystemMigration.wave, SystemMigration.state, sa.func.count())
        .join(SystemMigration, col(SystemMigration.plan_id) == col(Plan.id))
        .join(System, col(System.code) == col(SystemMigration.system_code))
        .where(col(System.classified).is_(False))
        .group_by(col(Plan.name), col(SystemMigration.wave), col(SystemMigration.state))
    )
    return {
        (name, NO_WAVE if wave is None else str(wave), state): int(count)
        for name, wave, state, count in session.exec(query)
    }
