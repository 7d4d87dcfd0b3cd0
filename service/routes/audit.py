"""The audit log, newest first (inventory/audit.py): every write, by whom as proved."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from inventory.audit import audit_entries
from service.context import CurrentActor, Ledger, needs
from service.pages import Page, PageParams, page_params

router = APIRouter(tags=["audit"])
# No control characters: PostgreSQL cannot compare text holding NUL, and no name holds one.
PLAIN = r"^[^\x00-\x1f\x7f]*$"


class AuditEntryPublic(BaseModel):
    id: int
    at: datetime
    principal: str
    principal_kind: str
    by: str | None
    request_id: str | None
    action: str
    target: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@router.get(
    "/audit",
    summary="The audit log, newest first, filtered by principal, action or target.",
    response_model=Page[AuditEntryPublic],
    openapi_extra=needs("audit"),
)
def audit_log(
    ledger: Ledger,
    actor: CurrentActor,
    page: Annotated[PageParams, Depends(page_params)],
    principal: Annotated[str | None, Query(max_length=200, pattern=PLAIN)] = None,
    action: Annotated[str | None, Query(max_length=100, pattern=PLAIN)] = None,
    target: Annotated[str | None, Query(max_length=500, pattern=PLAIN)] = None,
) -> Any:
    with ledger.session() as session:
        rows, total = audit_entries(
            session=session,
            actor=actor,
            offset=page.offset,
            limit=page.limit,
            principal=principal,
            action=action,
            target=target,
        )
        items = [AuditEntryPublic.model_validate(row, from_attributes=True) for row in rows]
    return Page[AuditEntryPublic](items=items, total=total, offset=page.offset, limit=page.limit)
