"""Registered systems the reader may see: filtered, sorted, paged; one with its evidence."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from inventory.queries import SystemQuery, find_systems
from service.context import CurrentActor, Ledger, needs
from service.pages import Page, PageParams, page_params
from service.schemas_inventory import Status, SystemDetail, SystemPublic

router = APIRouter(tags=["inventory"])

Sort = Literal["code", "-code", "name", "-name", "department", "-department", "status", "-status"]


@router.get(
    "/systems",
    summary="Systems in the reader's scope, with their KPI status and evidence nodes.",
    description="Classified systems are never listed. The order ends with the code, which is "
    "unique, so pages never overlap; status sorts in the KPI's order (on_cloud first).",
    response_model=Page[SystemPublic],
    openapi_extra=needs("read"),
)
def systems(
    ledger: Ledger,
    actor: CurrentActor,
    page: Annotated[PageParams, Depends(page_params)],
    department: Annotated[str | None, Query(max_length=100)] = None,
    city: Annotated[str | None, Query(max_length=100)] = None,
    status: Status | None = None,
    node: Annotated[str | None, Query(max_length=200)] = None,
    q: Annotated[str | None, Query(max_length=200, description="Part of code or name.")] = None,
    sort: Sort = "code",
) -> Any:
    query = SystemQuery(department=department, city=city, status=status, node=node, q=q, sort=sort)
    with ledger.session() as session:
        found = find_systems(
            session=session,
            actor=actor,
            settings=ledger.settings,
            query=query,
            offset=page.offset,
            limit=page.limit,
        )
    return Page[SystemPublic](
        items=[SystemPublic.of(item) for item in found.items],
        total=found.total,
        offset=page.offset,
        limit=page.limit,
    )


@router.get(
    "/systems/{code}",
    summary="One system: its register entry, KPI status and live evidence per node.",
    description="404 alike for an unknown code, a classified system and one outside the "
    "reader's scope.",
    response_model=SystemDetail,
    openapi_extra=needs("read"),
)
def system(code: str, ledger: Ledger, actor: CurrentActor) -> Any:
    with ledger.session() as session:
        found = find_systems(
            session=session, actor=actor, settings=ledger.settings, code=code, evidence=True
        )
    return SystemDetail.of(found.items[0])
