"""The KPI's trend: stored adoption snapshots, oldest first."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from inventory.queries import snapshot_trend
from service.context import CurrentActor, Ledger, needs
from service.pages import Page, PageParams, page_params
from service.schemas_inventory import SnapshotPublic

router = APIRouter(tags=["inventory"])


@router.get(
    "/snapshots",
    summary="Stored KPI snapshots, oldest first, each marked where the policy changed.",
    response_model=Page[SnapshotPublic],
    openapi_extra=needs("read"),
)
def snapshots(
    ledger: Ledger, actor: CurrentActor, page: Annotated[PageParams, Depends(page_params)]
) -> Any:
    with ledger.session() as session:
        rows, total = snapshot_trend(
            session=session, actor=actor, offset=page.offset, limit=page.limit
        )
    items = [SnapshotPublic.model_validate(row) for row in rows]
    return Page[SnapshotPublic](items=items, total=total, offset=page.offset, limit=page.limit)
