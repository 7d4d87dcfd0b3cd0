"""Migration plans: list, create, show in scope, export, import an edited export, archive."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, UploadFile

from inventory.i18n import text
from migrate.planner import Parameters
from migrate.plans import (
    archive_plan_as,
    export_plan,
    import_plan_edits,
    make_plan,
    plan_details,
    plan_version,
    visible_plans,
)
from service.context import CurrentActor, Lang, Ledger, needs
from service.pages import Page, PageParams, page_params
from service.problems import PROBLEM, problem
from service.schemas_migration import (
    EXPORT_MEDIA,
    MAX_UPLOAD_MIB,
    FileRejected,
    PlanCreatedPublic,
    PlanDetailPublic,
    PlanImportPublic,
    PlanRequest,
    PlanSummaryPublic,
    UploadTooLarge,
    attachment,
    page_of,
    saved_upload,
)

router = APIRouter(tags=["migration"])


@router.get(
    "/plans",
    summary="Every plan with its size (counts are aggregates: readable by every reader).",
    response_model=Page[PlanSummaryPublic],
    openapi_extra=needs("read"),
)
def plans(
    ledger: Ledger, actor: CurrentActor, page: Annotated[PageParams, Depends(page_params)]
) -> Any:
    with ledger.session() as session:
        rows = visible_plans(session=session, actor=actor)
    return Page[PlanSummaryPublic](
        items=[
            PlanSummaryPublic.model_validate(row) for row in page_of(rows, page.offset, page.limit)
        ],
        total=len(rows),
        offset=page.offset,
        limit=page.limit,
    )


@router.post(
    "/plans",
    summary="Plan the systems on the sources into waves onto the target, as `plan create`.",
    description="A planner with a narrower grant than the province plans only the systems "
    "its grants cover.",
    response_model=PlanCreatedPublic,
    status_code=201,
    openapi_extra=needs("plan"),
)
def create(body: PlanRequest, ledger: Ledger, actor: CurrentActor) -> Any:
    today = ledger.settings.today()
    with ledger.session() as session:
        plan, _result = make_plan(
            session=session,
            actor=actor,
            name=body.name,
            sources=body.sources,
            target=body.target,
            now=datetime.now(tz=UTC),
            today=today,
            start=body.start or today,
            wave_days=body.wave_days,
            parameters=Parameters(
                max_systems_per_wave=body.max_systems_per_wave, strict_order=body.strict_order
            ),
        )
        review = plan.review or {}
        return PlanCreatedPublic(
            name=plan.name,
            waves=review.get("waves", 0),
            placed=review.get("placed", 0),
            not_placed=review.get("not_placed", 0),
            classified_outside=review.get("excluded", {}).get("classified", 0),
            version=plan_version(plan),
        )


@router.get(
    "/plans/{name}",
    summary="A plan's waves and systems: the systems (and what the review says of them) "
    "in the reader's scope.",
    response_model=PlanDetailPublic,
    openapi_extra=needs("read"),
)
def plan(
    name: str,
    ledger: Ledger,
    actor: CurrentActor,
    lang: Lang,
    page: Annotated[PageParams, Depends(page_params)],
) -> Any:
    with ledger.session() as session:
        view = plan_details(session=session, actor=actor, name=name)
        return PlanDetailPublic.of(view, lang, page.offset, page.limit)


@router.get(
    "/plans/{name}/export",
    summary="Download the plan: CSV or XLSX to edit and import back, JSON for landing zones.",
    description="The bytes `yiyun migrate plan export --output FILE` writes, with the "
    "reader's scope applied to the systems.",
    response_class=Response,
    openapi_extra=needs("read"),
    responses={200: {"content": {media: {} for media in EXPORT_MEDIA.values()}}},
)
def export(
    name: str,
    ledger: Ledger,
    actor: CurrentActor,
    fmt: Annotated[Literal["csv", "xlsx", "json"], Query(alias="format")] = "csv",
) -> Response:
    with ledger.session() as session:
        exported = export_plan(session=session, actor=actor, name=name, fmt=fmt)
    return Response(exported.content, media_type=EXPORT_MEDIA[fmt], headers=attachment(name, fmt))


@router.post(
    "/plans/{name}/import",
    summary="Bring back an edited export (CSV/XLSX, as `plan import`): all of it, or nothing.",
    description="department_it moves only its own departments' systems; a planner those in its "
    "scope. 409 with the current state when the plan changed meanwhile (or since "
    "expected_version).",
    response_model=PlanImportPublic,
    openapi_extra=needs("plan_edit"),
    responses={
        413: {"description": "Larger than the service accepts.", "content": {PROBLEM: {}}},
        422: {"description": "The file has problems: each one, by row.", "content": {PROBLEM: {}}},
    },
)
def import_file(
    name: str,
    file: UploadFile,
    request: Request,
    ledger: Ledger,
    actor: CurrentActor,
    lang: Lang,
    dry_run: Annotated[bool, Query(description="Check and show the moves; write nothing.")] = False,
    expected_version: Annotated[
        str | None, Query(max_length=64, description="The plan's version the edit started from.")
    ] = None,
) -> Any:
    try:
        with saved_upload(file) as path, ledger.session() as session:
            outcome = import_plan_edits(
                session=session,
                actor=actor,
                name=name,
                path=path,
                now=datetime.now(tz=UTC),
                dry_run=dry_run,
                expected_version=expected_version,
            )
            if not outcome.ok:
                count = len(outcome.problems)
                raise FileRejected(
                    "plan_import_problems", outcome.problems, lang, file=path.name, count=count
                )
    except UploadTooLarge as large:
        detail = text("mig_upload_too_large", lang, file=large.name, limit=MAX_UPLOAD_MIB)
        return problem(request, 413, "mig_upload_too_large", detail)
    return PlanImportPublic.of(outcome, lang)


@router.delete(
    "/plans/{name}",
    summary="Archive the plan (it no longer holds its systems); refused once one is under way.",
    status_code=204,
    response_class=Response,
    openapi_extra=needs("plan"),
)
def archive(name: str, ledger: Ledger, actor: CurrentActor) -> Response:
    with ledger.session() as session:
        archive_plan_as(session=session, actor=actor, name=name, now=datetime.now(tz=UTC))
    return Response(status_code=204)
