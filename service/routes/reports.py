"""The manager reports as downloads: the HTML report, the Excel workbook, a scorecard."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from exporters.reports.actions import (
    department_scorecard_file,
    province_report_html,
    province_report_xlsx,
)
from inventory.reports import switches_from
from service.context import CurrentActor, Lang, Ledger, needs
from service.files import attachment
from service.problems import PROBLEM

router = APIRouter(tags=["reports"])
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SCORECARD_TYPES = {
    "md": "text/markdown; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "json": "application/json",
}
ExemptQuery = Annotated[
    bool | None,
    Query(description="Count exempt systems in the denominator (default from settings)."),
]
TrustQuery = Annotated[
    bool | None,
    Query(description="Let a declared one_cloud node stand in for missing evidence."),
]
REFUSALS: dict[int | str, dict[str, object]] = {
    403: {"description": "Not a province-wide reader.", "content": {PROBLEM: {}}},
}


def _file(media_type: str) -> dict[int | str, dict[str, object]]:
    return {200: {"content": {media_type: {}}, "description": "The report file."}, **REFUSALS}


@router.get(
    "/reports/html",
    summary="The province's HTML report (the same file as `yiyun report html`).",
    response_class=Response,
    responses=_file("text/html"),
    openapi_extra=needs("read"),
)
def html_download(
    ledger: Ledger,
    actor: CurrentActor,
    lang: Lang,
    exempt_in_denominator: ExemptQuery = None,
    trust_declared: TrustQuery = None,
) -> Response:
    settings = ledger.settings
    with ledger.session() as session:
        page = province_report_html(
            session=session,
            actor=actor,
            settings=settings,
            switches=switches_from(
                settings, exempt_in_denominator=exempt_in_denominator, trust_declared=trust_declared
            ),
            lang=lang,
        )
    name = f"yiyun-report-{settings.today().isoformat()}.html"
    return attachment(page.encode("utf-8"), "text/html; charset=utf-8", name)


@router.get(
    "/reports/xlsx",
    summary="The province's Excel workbook (the same file as `yiyun report xlsx`).",
    response_class=Response,
    responses=_file(XLSX),
    openapi_extra=needs("read"),
)
def xlsx_download(
    ledger: Ledger,
    actor: CurrentActor,
    lang: Lang,
    exempt_in_denominator: ExemptQuery = None,
    trust_declared: TrustQuery = None,
) -> Response:
    settings = ledger.settings
    with ledger.session() as session:
        workbook = province_report_xlsx(
            session=session,
            actor=actor,
            settings=settings,
            switches=switches_from(
                settings, exempt_in_denominator=exempt_in_denominator, trust_declared=trust_declared
            ),
            lang=lang,
        )
    return attachment(workbook, XLSX, f"yiyun-report-{settings.today().isoformat()}.xlsx")


@router.get(
    "/reports/scorecard",
    summary="One department's scorecard, for a reader of that department.",
    response_class=Response,
    responses={
        200: {
            "content": {media_type.split(";")[0]: {} for media_type in SCORECARD_TYPES.values()},
            "description": "The scorecard file.",
        },
        404: {"description": "No such department for this reader.", "content": {PROBLEM: {}}},
    },
    openapi_extra=needs("read"),
)
def scorecard_download(
    ledger: Ledger,
    actor: CurrentActor,
    lang: Lang,
    department: Annotated[str, Query(max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")],
    fmt: Annotated[Literal["md", "html", "json"], Query(alias="format")] = "md",
    exempt_in_denominator: ExemptQuery = None,
    trust_declared: TrustQuery = None,
) -> Response:
    settings = ledger.settings
    with ledger.session() as session:
        scorecard = department_scorecard_file(
            session=session,
            actor=actor,
            settings=settings,
            switches=switches_from(
                settings, exempt_in_denominator=exempt_in_denominator, trust_declared=trust_declared
            ),
            department=department,
            fmt=fmt,
            lang=lang,
        )
    name = f"yiyun-scorecard-{department}-{settings.today().isoformat()}.{fmt}"
    return attachment(scorecard.page.encode("utf-8"), SCORECARD_TYPES[fmt], name)
