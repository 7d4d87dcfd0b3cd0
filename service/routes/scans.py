"""Scan runs, newest first, and the scope results of one run."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path

from inventory.queries import scan_run_scopes, scan_runs
from service.context import CurrentActor, Ledger, needs
from service.pages import Page, PageParams, page_params
from service.schemas_inventory import ScanRunDetail, ScanRunPublic, ScopeResultPublic

router = APIRouter(tags=["inventory"])


@router.get(
    "/scans",
    summary="Scan runs, newest first.",
    response_model=Page[ScanRunPublic],
    openapi_extra=needs("read"),
)
def scans(
    ledger: Ledger, actor: CurrentActor, page: Annotated[PageParams, Depends(page_params)]
) -> Any:
    with ledger.session() as session:
        runs, total = scan_runs(session=session, actor=actor, offset=page.offset, limit=page.limit)
        items = [ScanRunPublic.model_validate(run, from_attributes=True) for run in runs]
    return Page[ScanRunPublic](items=items, total=total, offset=page.offset, limit=page.limit)


@router.get(
    "/scans/{run_id}",
    summary="One scan run and a result per scope it planned (not_run: it never listed).",
    description="A namespace labelled with a classified system shows as (classified).",
    response_model=ScanRunDetail,
    openapi_extra=needs("read"),
)
def scan(
    run_id: Annotated[int, Path(ge=1, le=2**31 - 1)], ledger: Ledger, actor: CurrentActor
) -> Any:
    with ledger.session() as session:
        run, rows = scan_run_scopes(session=session, actor=actor, run_id=run_id)
        shown = ScanRunPublic.model_validate(run, from_attributes=True)
    scopes = [ScopeResultPublic.model_validate(row) for row in rows]
    return ScanRunDetail(**shown.model_dump(), scopes=scopes)
