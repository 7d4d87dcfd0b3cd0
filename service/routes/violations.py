"""Policy findings: freeze-rule violations, unattributed resources, placement findings."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from exporters.reports.findings import finding_reasons
from inventory.queries import policy_findings
from service.context import CurrentActor, Ledger, needs
from service.pages import Page, PageParams, page_params
from service.schemas_inventory import ViolationPublic

router = APIRouter(tags=["inventory"])


@router.get(
    "/violations",
    summary="What `yiyun report violations --format json` lists, in the reader's scope.",
    description="A finding about a system (a placement, a frozen node's resource attributed "
    "to it) is listed only to readers of that system; unattributed resources are the nodes'. "
    "details=true lists each unattributed resource instead of counts per node and kind.",
    response_model=Page[ViolationPublic],
    openapi_extra=needs("read"),
)
def violations(
    ledger: Ledger,
    actor: CurrentActor,
    page: Annotated[PageParams, Depends(page_params)],
    details: bool = False,
) -> Any:
    with ledger.session() as session:
        found = policy_findings(
            session=session,
            actor=actor,
            settings=ledger.settings,
            details=details,
            offset=page.offset,
            limit=page.limit,
        )
    items = [ViolationPublic.model_validate(row) for row in found.rows(finding_reasons)]
    return Page[ViolationPublic](
        items=items, total=found.total or 0, offset=page.offset, limit=page.limit
    )
