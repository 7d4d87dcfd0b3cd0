"""The migration ledger's tables: dependencies, assessments, plans, waves, tracking, audit log."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Field, SQLModel

from inventory.models import json_column, utc_column


# A dependency of one system (from) on another (to): `to` must not move after `from`.
class Dependency(SQLModel, table=True):
    __table_args__ = (
        sa.UniqueConstraint(
            "from_system", "to_system", "type", "origin", name="uq_dependency_edge"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    from_system: str = Field(index=True)
    to_system: str = Field(index=True)
    type: str  # calls / data / shared_infra
    strength: str  # hard (must move together) / soft (same or earlier wave)
    origin: str  # declared (imported file) / inferred (from the inventory)
    # Why an inferred edge exists (e.g. the shared namespace); the file name for declared ones.
    basis: str | None = None
    updated_at: datetime | None = utc_column()


# One assessment outcome of a system; a new row only when the outcome or its override changes.
class Assessment(SQLModel, table=True):
    __table_args__ = (sa.Index("ix_assessment_current", "system_code", "superseded_at"),)

    id: int | None = Field(default=None, primary_key=True)
    system_code: str
    # The unified-cloud node the placement rules were checked against.
    node_id: str | None = None
    readiness: str  # ready / needs_work / blocked / exempt / out_of_scope
    strategy: str | None = None  # rehost / replatform / refactor / repurchase / retire / ...
    # Every rule evaluated: [{"id", "outcome", "reason", "facts"}], placement and strategy.
    rules: list[dict[str, Any]] | None = json_column()
    sizing_vcpu: float = 0.0
    sizing_memory_gib: float = 0.0
    sizing_storage_gib: float = 0.0
    assessed_at: datetime = utc_column(nullable=False)
    override_readiness: str | None = None
    override_strategy: str | None = None
    override_rationale: str | None = None
    override_by: str | None = None
    override_at: datetime | None = utc_column()
    # Set when a newer row replaces this one; the row itself is kept as the audit trail.
    superseded_at: datetime | None = utc_column()


# A migration plan: systems on the source nodes, planned into waves onto one target node.
class Plan(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True)
    source_nodes: list[str] = json_column(nullable=False)
    target_node: str
    # Planner inputs: max_systems_per_wave, start, wave_days, strict_order, free capacity.
    parameters: dict[str, Any] | None = json_column()
    # Planner outputs that are not per system: unmet constraints, cross-wave dependencies.
    review: dict[str, Any] | None = json_column()
    status: str = "draft"
    created_by: str
    created_at: datetime = utc_column(nullable=False)
    updated_at: datetime | None = utc_column()


# One wave of a plan: the systems in it move between start and end.
class Wave(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("plan_id", "number", name="uq_wave_plan_number"),)

    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(index=True)
    number: int
    start: date
    end: date


# A system's place and progress in a plan; wave is None while it is not placed.
class SystemMigration(SQLModel, table=True):
    __table_args__ = (
        sa.UniqueConstraint("plan_id", "system_code", name="uq_systemmigration_plan_system"),
    )

    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(index=True)
    system_code: str = Field(index=True)
    wave: int | None = None
    state: str
    move_group: str
    readiness: str
    strategy: str | None = None
    sizing_vcpu: float = 0.0
    sizing_memory_gib: float = 0.0
    sizing_storage_gib: float = 0.0
    explanation: str
    risk: str  # low / medium / high
    risk_factors: list[str] | None = json_column()
    updated_at: datetime | None = utc_column()


# Append-only audit log of tracking: rows are inserted, never updated or deleted.
class MigrationEvent(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    system_code: str = Field(index=True)
    plan_id: int | None = Field(default=None, index=True)
    from_state: str | None = None
    to_state: str
    by: str
    at: datetime = utc_column(nullable=False)
    note: str | None = None
    evidence: str | None = None
    # What the gates saw in the inventory when the transition was allowed.
    checks: dict[str, Any] | None = json_column()


class AppendOnlyViolation(RuntimeError):
    """Something tried to change or remove a MigrationEvent."""


@event.listens_for(MigrationEvent, "before_update")
def _refuse_event_update(_mapper: Any, _connection: Any, target: MigrationEvent) -> None:
    raise AppendOnlyViolation(f"migration event {target.id} is append-only: it cannot be changed")


@event.listens_for(MigrationEvent, "before_delete")
def _refuse_event_delete(_mapper: Any, _connection: Any, target: MigrationEvent) -> None:
    raise AppendOnlyViolation(f"migration event {target.id} is append-only: it cannot be deleted")


@event.listens_for(OrmSession, "do_orm_execute")
def _refuse_bulk_event_changes(state: ORMExecuteState) -> None:
    # Bulk UPDATE/DELETE statements skip the mapper events above, so catch them here too.
    if not (state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    if table is not None and getattr(table, "name", None) == MigrationEvent.__tablename__:
        raise AppendOnlyViolation("migration events are append-only: no UPDATE or DELETE")
