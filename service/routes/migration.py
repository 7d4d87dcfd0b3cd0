"""Migration tracking: advance a system through the gates (migrate/tracking.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from migrate.tracking import advance_system
from service.context import CurrentActor, Ledger, needs

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
            today=date.today(),
            note=body.note,
            evidence=body.evidence,
            plan_name=body.plan,
            expected_state=body.expected_state,
        )
        return MigrationEventPublic.model_validate(event, from_attributes=True)
