"""The manager reports as use cases: who may download which report, and the file itself."""

from __future__ import annotations

import difflib
import io
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlmodel import Session, col, select

from exporters.reports.content import ReportContent, gather_report
from exporters.reports.html import render_html
from exporters.reports.scorecard import (
    Scorecard,
    UnknownDepartment,
    department_scorecard,
    scorecard_html,
    scorecard_json,
    scorecard_markdown,
)
from exporters.reports.xlsx import build_workbook
from inventory.access import AccessDenied, Actor
from inventory.adoption import PolicySwitches
from inventory.confidentiality import Disclosure
from inventory.i18n import Wording
from inventory.models import Department
from inventory.output import dumps
from inventory.settings import Settings

ScorecardFormat = Literal["md", "html", "json"]


class DepartmentUnknown(Wording):
    """No department by that code that the actor may read: unknown and out of scope read the
    same (HTTP 404, CLI exit 2), and the suggestions come from the readable ones only."""


@dataclass(frozen=True)
class ScorecardFile:
    card: Scorecard
    page: str  # Markdown, HTML or JSON, as `report scorecard --format` writes it


def _disclosure_for(actor: Actor, disclosure: Disclosure | None) -> Disclosure:
    # Classified systems are named only to the local operator who asked for them at a
    # terminal (--include-classified); the service never serves them.
    disclosure = disclosure or Disclosure()
    if disclosure.include_classified and actor.kind != "local":
        raise AccessDenied(
            "access_denied", principal=actor.principal, action="include_classified", target="—"
        )
    return disclosure


def province_report(
    *,
    session: Session,
    actor: Actor,
    settings: Settings,
    switches: PolicySwitches,
    disclosure: Disclosure | None = None,
    now: datetime | None = None,
) -> ReportContent:
    """What the province-wide HTML and XLSX reports show. They name every system of the
    province (lists, violations, the department sheet), so only a reader with a province
    grant gets them: a city or department reader is refused, not handed a filtered copy
    whose lists would disagree with its province totals. Their door is the scorecard."""
    actor.require("read")
    return gather_report(
        session=session,
        settings=settings,
        switches=switches,
        disclosure=_disclosure_for(actor, disclosure),
        now=now,
    )


def province_report_html(
    *,
    session: Session,
    actor: Actor,
    settings: Settings,
    switches: PolicySwitches,
    lang: str,
    disclosure: Disclosure | None = None,
    now: datetime | None = None,
) -> str:
    """`report html`: one self-contained page (charts, tables, no network needed)."""
    content = province_report(
        session=session,
        actor=actor,
        settings=settings,
        switches=switches,
        disclosure=disclosure,
        now=now,
    )
    return render_html(content, lang)


def province_report_xlsx(
    *,
    session: Session,
    actor: Actor,
    settings: Settings,
    switches: PolicySwitches,
    lang: str,
    disclosure: Disclosure | None = None,
    now: datetime | None = None,
) -> bytes:
    """`report xlsx`: the workbook's bytes, one sheet per view."""
    content = province_report(
        session=session,
        actor=actor,
        settings=settings,
        switches=switches,
        disclosure=disclosure,
        now=now,
    )
    buffer = io.BytesIO()
    build_workbook(content, lang).save(buffer)
    return buffer.getvalue()


def department_scorecard_file(
    *,
    session: Session,
    actor: Actor,
    settings: Settings,
    switches: PolicySwitches,
    department: str,
    fmt: ScorecardFormat,
    lang: str,
    disclosure: Disclosure | None = None,
    now: datetime | None = None,
) -> ScorecardFile:
    """`report scorecard`: one department's page, for a reader of that department (its own
    grant, its city's, or the province's); any other code reads as unknown."""
    readable = actor.readable_departments(session)
    if readable is not None and department not in readable:
        raise _unknown(department, readable)
    city = session.exec(select(Department.city).where(col(Department.code) == department)).first()
    if city is not None:
        actor.require("read", department=department, city=city)
    content = gather_report(
        session=session,
        settings=settings,
        switches=switches,
        disclosure=_disclosure_for(actor, disclosure),
        now=now,
    )
    try:
        card = department_scorecard(content, department, lang)
    except UnknownDepartment as error:
        suggestions = error.suggestions
        if readable is not None:
            suggestions = [code for code in suggestions if code in readable]
        raise _unknown(department, suggestions) from None
    if fmt == "json":
        page = dumps(scorecard_json(card, content)) + "\n"
    elif fmt == "html":
        page = scorecard_html(card, content, lang)
    else:
        page = scorecard_markdown(card, content, lang)
    return ScorecardFile(card=card, page=page)


def _unknown(department: str, candidates: set[str] | list[str]) -> DepartmentUnknown:
    if isinstance(candidates, set):
        candidates = difflib.get_close_matches(department, sorted(candidates), n=3)
    hint: Wording | str = Wording("did_you_mean", names=", ".join(candidates)) if candidates else ""
    return DepartmentUnknown("department_unknown", code=department, hint=hint)
