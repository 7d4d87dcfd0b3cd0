"""Assessment: run it over the caller's scope, list what is in force, override with a reason."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from migrate.assess import assess_in_scope, assessments_in_scope, override_system
from service.context import CurrentActor, Ledger, needs
from service.pages import Page, PageParams, page_params
from service.schemas_migration import (
    AssessmentPublic,
    AssessmentRunPublic,
    AssessmentRunRequest,
    OverrideRequest,
    Readiness,
    page_of,
)

router = APIRouter(tags=["migration"])


@router.post(
    "/assessments/run",
    summary="Assess again: the whole province with a province grant, else the caller's scope.",
    response_model=AssessmentRunPublic,
    openapi_extra=needs("assess"),
)
def run(body: AssessmentRunRequest, ledger: Ledger, actor: CurrentActor) -> Any:
    with ledger.session() as session:
        outcome = assess_in_scope(
            session=session,
            actor=actor,
            now=datetime.now(tz=UTC),
            today=ledger.settings.today(),
            node_id=body.node,
        )
    return AssessmentRunPublic(
        scope="province" if outcome.whole_province else "grants",
        assessed=len(outcome.rows),
        written=outcome.written,
        unchanged=outcome.unchanged,
        classified=outcome.classified,
    )


@router.get(
    "/assessments",
    summary="Assessments in force that the reader may see, by system code.",
    description="readiness filters on the readiness after overrides, as the plans use it.",
    response_model=Page[AssessmentPublic],
    openapi_extra=needs("read"),
)
def assessments(
    ledger: Ledger,
    actor: CurrentActor,
    page: Annotated[PageParams, Depends(page_params)],
    system: Annotated[str | None, Query(max_length=100)] = None,
    readiness: Readiness | None = None,
) -> Any:
    with ledger.session() as session:
        found = assessments_in_scope(
            session=session, actor=actor, system=system, readiness=readiness
        )
        return Page[AssessmentPublic](
            items=[
                AssessmentPublic.of(s, row) for s, row in page_of(found, page.offset, page.limit)
            ],
            total=len(found),
            offset=page.offset,
            limit=page.limit,
        )


@router.post(
    "/systems/{code}/override",
    summary="Override a system's readiness and/or strategy, with the reason kept as history.",
    description="404 alike for an unknown code, a classified system and one outside the "
    "caller's scope; 409 when another override won a race (the body's `current`).",
    response_model=AssessmentPublic,
    status_code=201,
    openapi_extra=needs("override"),
)
def override(code: str, body: OverrideRequest, ledger: Ledger, actor: CurrentActor) -> Any:
    with ledger.session() as session:
        system, row = override_system(
            session=session,
            actor=actor,
            code=code,
            rationale=body.reason,
            now=datetime.now(tz=UTC),
            today=ledger.settings.today(),
            readiness=body.readiness,
            strategy=body.strategy,
            clear=body.clear,
            expected_assessment=body.expected_assessment,
        )
        return AssessmentPublic.of(system, row)
