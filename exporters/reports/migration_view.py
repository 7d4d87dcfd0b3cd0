"""The migration ledger as the manager reports read it: placements, wave progress, blockers."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date

import sqlalchemy as sa
from sqlmodel import Session, col, select

from exporters.reports.content import (
    NO_MIGRATION_LEDGER,
    Hint,
    MigrationLedger,
    Placement,
    WaveProgress,
)
from migrate.models import Assessment, Plan, SystemMigration, Wave
from migrate.next_step import next_steps
from migrate.reasons import Blocker

# Assessment outcomes that stand between a system and the cloud (migrate/rules.py).
BLOCKING_OUTCOMES = ("blocked", "needs_work")


def has_tables(session: Session, *names: str) -> bool:
    inspector = sa.inspect(session.connection())
    return all(inspector.has_table(name) for name in names)


def migration_ledger(session: Session, today: date | None = None) -> MigrationLedger:
    """Placements, wave progress, assessments and next steps, read-only; (False, …) without
    the tables."""
    tables = (str(Plan.__tablename__), str(Wave.__tablename__), str(SystemMigration.__tablename__))
    if not has_tables(session, *tables):
        return NO_MIGRATION_LEDGER
    waves: dict[tuple[int | None, int | None], tuple[date | None, date | None]] = {
        (w.plan_id, w.number): (w.start, w.end) for w in session.exec(select(Wave))
    }
    query = (
        sa.select(
            col(Plan.id),
            col(Plan.name),
            col(SystemMigration.system_code),
            col(SystemMigration.wave),
            col(SystemMigration.state),
        )
        .join(SystemMigration, col(SystemMigration.plan_id) == col(Plan.id))
        .order_by(col(Plan.id), col(SystemMigration.system_code))
    )
    placements: dict[str, Placement] = {}
    progress: dict[tuple[str, int | None], Counter[str]] = defaultdict(Counter)
    wave_dates: dict[tuple[str, int | None], tuple[date | None, date | None]] = {}
    for plan_id, plan_name, code, wave, state in session.connection().execute(query):
        start, end = waves.get((plan_id, wave), (None, None))
        # Plans come in id order, so a system in several plans ends up with its latest one.
        placements[code] = Placement(plan_name, wave, start, end, state)
        progress[(plan_name, wave)][state] += 1
        wave_dates[(plan_name, wave)] = (start, end)
    wave_rows = [
        WaveProgress(plan, wave, *wave_dates[(plan, wave)], states=dict(counts))
        for (plan, wave), counts in sorted(
            progress.items(), key=lambda item: (item[0][0], item[0][1] is None, item[0][1] or 0)
        )
    ]
    assessments: dict[str, tuple[str, tuple[str, ...]]] = {}
    if has_tables(session, str(Assessment.__tablename__)):
        current = select(Assessment).where(col(Assessment.superseded_at).is_(None))
        for row in session.exec(current):
            # Worded in the reader's language where a report shows them (render(lang)).
            blockers = tuple(
                Blocker(rule, row.node_id)
                for rule in row.rules or []
                if rule.get("outcome") in BLOCKING_OUTCOMES
            )
            assessments[row.system_code] = (row.override_readiness or row.readiness, blockers)
    if today is None:
        from inventory.settings import get_settings

        today = get_settings().today()
    hints: dict[str, Hint] = dict(next_steps(session=session, today=today))
    return True, placements, wave_rows, assessments, hints
