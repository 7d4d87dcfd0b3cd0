"""Migration tracking: advance a system through the gates, progress, discrepancies, history."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from migrate.tracking import advance_system, migration_progress, system_history
from service.context import CurrentActor, Ledger, needs
from service.pages import Page, PageParams, page_params
from service.schemas_migration import (
    DiscrepancyPublic,
    HistoryEntryPublic,
    StatusPublic,
    page_of,
)

router = APIRouter(tags=["migration"])


class AdvanceRequest(BaseModel):
    to: str = Field(description="The new state (see `yiyun migrate transitions`).", max_length=40)
    evidence: str | None = Field(
        default=None, max_length=500, description="Test report, ticket or 验收文号."
    )
    note: str | None = Field(default=None, max_length=2000)
    plan: str | None = Field(
        default=None, max_length=200, description="Needed if in several plans."
    )
    expected_state: str | None = Field(
        default=None,
        max_length=40,
        description="The state the caller last saw: 409 if the system has moved since.",
    )


class MigrationEventPublic(BaseModel):
    id: int
    system_code: str
    plan_id: int | None
    from_state: str | None
    to_state: str
    by: str
    at: datetime
    note: str | None
    evidence: str | None
    checks: dict[str, Any] | None


@router.post(
    "/systems/{code}/advance",
    summary="Move a system to its next state, if the transitions and gates allow.",
    response_model=MigrationEventPublic,
    status_code=201,
    openapi_extra=needs("advance"),
)
def advance(code: str, body: AdvanceRequest, ledger: Ledger, actor: CurrentActor) -> Any:
    now = datetime.now(tz=UTC)
    with ledger.session() as session:
        event = advance_system(
            session=session,
            actor=actor,
            code=code,
            to_state=body.to,
            now=now,
            today=ledger.settings.today(),
            note=body.note,
            evidence=body.evidence,
            plan_name=body.plan,
            expected_state=body.expected_state,
        )
        return MigrationEventPublic.model_validate(event, from_attributes=True)


@router.get(
    "/migration/status",
    summary="Progress per plan and per wave or department, and every discrepancy.",
    description="Per plan and per wave the counts are aggregates, readable by every reader; "
    "department rows and discrepancies (which name systems) only in the reader's scope.",
    response_model=StatusPublic,
    # A group has the key it is grouped by (wave or department), as the CLI's JSON has.
    response_model_exclude_unset=True,
    openapi_extra=needs("read"),
)
def status(
    ledger: Ledger,
    actor: CurrentActor,
    by: Literal["wave", "department"] = "wave",
    plan: Annotated[str | None, Query(max_length=200)] = None,
) -> Any:
    with ledger.session() as session:
        report = migration_progress(
            session=session, actor=actor, today=ledger.settings.today(), plan_name=plan, by=by
        )
    return StatusPublic.model_validate(report.as_dict())


@router.get(
    "/migration/discrepancies",
    summary="Systems whose claimed state and the inventory's evidence disagree, in scope.",
    description="Ordered by plan and system code.",
    response_model=Page[DiscrepancyPublic],
    openapi_extra=needs("read"),
)
def discrepancies(
    ledger: Ledger,
    actor: CurrentActor,
    page: Annotated[PageParams, Depends(page_params)],
    plan: Annotated[str | None, Query(max_length=200)] = None,
) -> Any:
    with ledger.session() as session:
        report = migration_progress(
            session=session, actor=actor, today=ledger.settings.today(), plan_name=plan
        )
    found = [d.as_dict() for d in report.discrepancies]
    return Page[DiscrepancyPublic](
        items=[
            DiscrepancyPublic.model_validate(d) for d in page_of(found, page.offset, page.limit)
        ],
        total=len(found),
        offset=page.offset,
        limit=page.limit,
    )


@router.get(
    "/systems/{code}/history",
    summary="A system's migration log (append-only), oldest first.",
    description="404 alike for an unknown code, a classified system and one outside the "
    "reader's scope.",
    response_model=Page[HistoryEntryPublic],
    openapi_extra=needs("read"),
)
def history(
    code: str,
    ledger: Ledger,
    actor: CurrentActor,
    page: Annotated[PageParams, Depends(page_params)],
    plan: Annotated[str | None, Query(max_length=200)] = None,
) -> Any:
    with ledger.session() as session:
        rows = system_history(session=session, actor=actor, code=code, plan_name=plan)
    return Page[HistoryEntryPublic](
        items=[
            HistoryEntryPublic.model_validate(r) for r in page_of(rows, page.offset, page.limit)
        ],
        total=len(rows),
        offset=page.offset,
        limit=page.limit,
    )
