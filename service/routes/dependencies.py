"""Dependencies between systems: list in scope, declare, remove, import a file (migrate/deps.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response, UploadFile

from inventory.i18n import text
from migrate.deps import (
    declare_dependency,
    dependencies_in_scope,
    import_dependency_file,
    remove_dependency,
)
from service.context import CurrentActor, Lang, Ledger, needs
from service.pages import Page, PageParams, page_params
from service.problems import PROBLEM, problem
from service.schemas_migration import (
    MAX_UPLOAD_MIB,
    DependencyImportPublic,
    DependencyPublic,
    DependencyRequest,
    FileRejected,
    UploadTooLarge,
    page_of,
    saved_upload,
)

router = APIRouter(tags=["migration"])


@router.get(
    "/dependencies",
    summary="Dependencies the reader may see: an edge shows when either end is in scope.",
    description="Ordered by from, to, type, origin and id. Edges with a classified end are "
    "never listed.",
    response_model=Page[DependencyPublic],
    openapi_extra=needs("read"),
)
def dependencies(
    ledger: Ledger,
    actor: CurrentActor,
    page: Annotated[PageParams, Depends(page_params)],
    system: Annotated[
        str | None, Query(max_length=100, description="Edges at this system.")
    ] = None,
) -> Any:
    with ledger.session() as session:
        rows = dependencies_in_scope(session=session, actor=actor, system=system)
    return Page[DependencyPublic](
        items=[DependencyPublic.of(row) for row in page_of(rows, page.offset, page.limit)],
        total=len(rows),
        offset=page.offset,
        limit=page.limit,
    )


@router.post(
    "/dependencies",
    summary="Declare that one system depends on another (deps over the depending system).",
    response_model=DependencyPublic,
    status_code=201,
    openapi_extra=needs("deps"),
)
def declare(body: DependencyRequest, ledger: Ledger, actor: CurrentActor) -> Any:
    with ledger.session() as session:
        edge = declare_dependency(
            session=session,
            actor=actor,
            from_system=body.from_system,
            to_system=body.to_system,
            now=datetime.now(tz=UTC),
            kind=body.kind,
            strength=body.strength,
        )
        return DependencyPublic.of_edge(edge)


@router.delete(
    "/dependencies/{dependency_id}",
    summary="Remove a declared dependency; an inferred one is refused (409).",
    status_code=204,
    response_class=Response,
    openapi_extra=needs("deps"),
)
def remove(
    dependency_id: Annotated[int, Path(ge=1, le=2**31 - 1)], ledger: Ledger, actor: CurrentActor
) -> Response:
    with ledger.session() as session:
        remove_dependency(
            session=session, actor=actor, dependency_id=dependency_id, now=datetime.now(tz=UTC)
        )
    return Response(status_code=204)


@router.post(
    "/dependencies/import",
    summary="Import a dependency file (CSV/XLSX, as `deps import`): all rows, or nothing.",
    description="Every row's depending system must be one the caller holds `deps` over. A file "
    "with problems writes nothing and answers 422 with each problem by row, in the reader's "
    "language.",
    response_model=DependencyImportPublic,
    openapi_extra=needs("deps"),
    responses={
        413: {"description": "Larger than the service accepts.", "content": {PROBLEM: {}}},
        422: {"description": "The file has problems: each one, by row.", "content": {PROBLEM: {}}},
    },
)
def import_file(
    file: UploadFile,
    request: Request,
    ledger: Ledger,
    actor: CurrentActor,
    lang: Lang,
    replace: Annotated[
        bool, Query(description="Remove declared edges (yours) the file no longer lists.")
    ] = False,
) -> Any:
    try:
        with saved_upload(file) as path, ledger.session() as session:
            report = import_dependency_file(
                session=session, actor=actor, path=path, now=datetime.now(tz=UTC), replace=replace
            )
            if not report.ok:
                count = len(report.problems)
                raise FileRejected(
                    "deps_problems", report.problems, lang, file=path.name, count=count
                )
    except UploadTooLarge as large:
        detail = text("mig_upload_too_large", lang, file=large.name, limit=MAX_UPLOAD_MIB)
        return problem(request, 413, "mig_upload_too_large", detail)
    return DependencyImportPublic(
        file=path.name,
        rows=report.rows,
        created=report.created,
        updated=report.updated,
        unchanged=report.unchanged,
        removed=report.removed,
    )
