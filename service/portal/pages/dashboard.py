"""The portal's dashboard: the KPI, its trend and the drill from province to city to department."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import HTMLResponse
from sqlmodel import Session

from exporters.reports.actions import (
    DepartmentUnknown,
    department_scorecard_file,
    province_report_html,
    province_report_xlsx,
)
from exporters.reports.findings import finding_text
from inventory.adoption import STATUSES, PolicySwitches
from inventory.confidentiality import REDACTED
from inventory.i18n import Wording, status_label
from inventory.queries import (
    adoption_kpi,
    departments_readable,
    policy_findings,
    snapshot_trend,
)
from inventory.reports import switches_from
from inventory.settings import Settings
from service.context import service
from service.files import attachment
from service.portal.web import Listed, ReadingViewer, Viewer, is_htmx, local_time, percent, render

router = APIRouter(include_in_schema=False)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SCORECARD_TYPES = {
    "html": "text/html; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "json": "application/json",
}
# Bars a chart shows before the page sends the reader to the paged table instead.
BARS = 10
TREND_POINTS = 90
FINDINGS_SHOWN = 10
TABLE_SORTS = ("rate", "code", "name", "city", "adopted", "total")

Policy = Annotated[Literal["", "evidence-v1", "evidence-v2"], Query()]
Switch = Annotated[Literal["", "true", "false"], Query()]


class CityUnknown(Wording):
    """A city the KPI has no systems in (HTTP 404; a page answers 403 like any unknown)."""


@dataclass(frozen=True)
class Choice:
    """The KPI policy and switches the reader picked; empty means the settings' own."""

    policy: str = ""
    exempt: str = ""
    trust: str = ""

    def switches(self, settings: Settings) -> PolicySwitches:
        return switches_from(
            settings,
            exempt_in_denominator=_flag(self.exempt),
            trust_declared=_flag(self.trust),
        )

    def params(self, **more: str) -> str:
        """A query string keeping the choice, for drill and download links."""
        pairs = {
            "policy": self.policy,
            "exempt_in_denominator": self.exempt,
            "trust_declared": self.trust,
            **more,
        }
        kept = {k: v for k, v in pairs.items() if v}
        return "?" + urlencode(kept) if kept else ""

    def download_params(self) -> str:
        """The switches a report file takes (the reports use the settings' policy)."""
        return Choice("", self.exempt, self.trust).params()


def _flag(value: str) -> bool | None:
    return None if value == "" else value == "true"


@dataclass(frozen=True)
class Department:
    code: str
    name: str
    city: str


@dataclass(frozen=True)
class Row:
    """One city or department as a bar and a table row: the KPI group and how to name it."""

    key: str
    label: str
    city: str
    adopted: int
    total: int
    rate: float | None
    counts: dict[str, int]

    @classmethod
    def of(cls, group: dict[str, Any], label: str, city: str = "") -> Row:
        return cls(
            key=group["key"],
            label=label,
            city=city,
            adopted=group["numerator"],
            total=group["denominator"],
            rate=group["rate"],
            counts=dict(group["counts"]),
        )


def _kpi(
    session: Session, viewer: Viewer, settings: Settings, choice: Choice, by: str | None
) -> dict[str, Any]:
    return adoption_kpi(
        session=session,
        actor=viewer.actor,
        settings=settings,
        switches=choice.switches(settings),
        by=by,
        policy=choice.policy or None,
    )


def _departments(
    session: Session,
    viewer: Viewer,
    settings: Settings,
    *,
    city: str | None = None,
    code: str | None = None,
) -> dict[str, Department]:
    """The departments the reader may read (in `city`, or `code` alone), named as the register
    names them."""
    found = departments_readable(session=session, actor=viewer.actor, city=city, code=code)
    return {d.code: Department(d.code, d.name or d.code, d.city) for d in found.values()}


def _department_rows(groups: list[dict[str, Any]], known: dict[str, Department]) -> list[Row]:
    rows = []
    for group in groups:
        department = known.get(group["key"])
        if department is not None:
            rows.append(Row.of(group, department.name, department.city))
    return rows


def sort_rows(rows: list[Row], sort: str) -> list[Row]:
    """By the field asked for ("-": descending), then by code; a department without any system
    in the denominator (no rate) comes last either way."""
    descending = sort.startswith("-")
    name = sort.removeprefix("-")
    ordered = sorted(rows, key=lambda r: r.key)
    if name == "code":
        return ordered[::-1] if descending else ordered
    fields = {
        "name": lambda r: r.label,
        "city": lambda r: r.city,
        "adopted": lambda r: r.adopted,
        "total": lambda r: r.total,
        "rate": lambda r: r.rate if r.rate is not None else -1.0,
    }
    ordered.sort(key=fields.get(name, fields["rate"]), reverse=descending)
    if name == "rate":
        ordered = [r for r in ordered if r.rate is not None] + [
            r for r in ordered if r.rate is None
        ]
    return ordered


def _unique_labels(rows: list[Row]) -> list[str]:
    # A chart's bar is found by its label (portal.js links): two departments of one name differ.
    seen: dict[str, int] = {}
    for row in rows:
        seen[row.label] = seen.get(row.label, 0) + 1
    return [row.label if seen[row.label] == 1 else f"{row.label}（{row.key}）" for row in rows]


def _bars(rows: list[Row], t: Any) -> dict[str, Any]:
    """Horizontal bars of the rate in percent with the 100 % line."""
    labels = _unique_labels(rows)
    values = [None if r.rate is None else round(r.rate * 100, 2) for r in rows]
    return {
        "grid": {"left": 160, "right": 56, "top": 28, "bottom": 24},
        "xAxis": {"type": "value", "min": 0, "max": 100, "axisLabel": {"formatter": "{value}%"}},
        # A fixed label room: containLabel measured before the page's font and cut the names.
        "yAxis": {
            "type": "category",
            "data": labels,
            "inverse": True,
            "axisLabel": {"width": 150, "overflow": "truncate"},
        },
        "series": [
            {
                "type": "bar",
                "barMaxWidth": 28,
                "name": t("portal_dashboard_rate"),
                "data": values,
                "label": {"show": True, "position": "right", "formatter": "{c}%"},
                "markLine": {
                    "symbol": "none",
                    "silent": True,
                    "data": [{"xAxis": 100}],
                    "label": {"position": "start", "formatter": "100%"},
                },
            }
        ],
    }


def _bar_table(rows: list[Row]) -> list[list[Any]]:
    return [
        [label, r.adopted, r.total, percent(r.rate)]
        for label, r in zip(_unique_labels(rows), rows, strict=True)
    ]


def _status(counts: dict[str, int], lang: str, t: Any) -> dict[str, Any]:
    labels = [status_label(s, lang) for s in STATUSES]
    option = {
        "grid": {"left": 48, "right": 16, "top": 24, "bottom": 72},
        "xAxis": {"type": "category", "data": labels, "axisLabel": {"interval": 0, "rotate": 30}},
        "yAxis": {"type": "value", "minInterval": 1},
        "series": [
            {
                "type": "bar",
                "name": t("portal_dashboard_systems"),
                "data": [counts.get(s, 0) for s in STATUSES],
            }
        ],
    }
    rows = [[status_label(s, lang), counts.get(s, 0)] for s in STATUSES]
    return {"option": option, "rows": rows}


def _trend(session: Session, viewer: Viewer, t: Any) -> dict[str, Any]:
    """The last snapshots (the province's KPI: every reader sees it), oldest first."""
    _none, total = snapshot_trend(session=session, actor=viewer.actor, limit=0)
    points, _total = snapshot_trend(
        session=session, actor=viewer.actor, offset=max(total - TREND_POINTS, 0), limit=TREND_POINTS
    )
    dates = [local_time(p["as_of"], "%Y-%m-%d") for p in points]
    values = [None if p["rate"] is None else round(p["rate"] * 100, 2) for p in points]
    option = {
        "grid": {"left": 8, "right": 24, "top": 24, "bottom": 8, "containLabel": True},
        "xAxis": {"type": "category", "data": dates, "boundaryGap": False},
        "yAxis": {"type": "value", "min": 0, "max": 100, "axisLabel": {"formatter": "{value}%"}},
        "series": [
            {
                "type": "line",
                "name": t("portal_dashboard_rate"),
                "data": values,
                "connectNulls": True,
                "markLine": {
                    "symbol": "none",
                    "silent": True,
                    "data": [{"yAxis": 100}],
                    "label": {"formatter": "100%"},
                },
            }
        ],
    }
    rows = [
        [
            day,
            percent(p["rate"]),
            p["numerator"],
            p["denominator"],
            p["policy"],
            p["policy_change"] or "—",
        ]
        for day, p in zip(dates, points, strict=True)
    ]
    return {"option": option, "rows": rows, "total": total, "shown": len(points)}


def _findings(session: Session, viewer: Viewer, settings: Settings) -> dict[str, Any]:
    """The first findings in the reader's scope; a classified system's stay counted, unnamed."""
    found = policy_findings(
        session=session, actor=viewer.actor, settings=settings, limit=FINDINGS_SHOWN
    )
    hidden = viewer.t("portal_dashboard_redacted")
    rows: list[dict[str, Any]] = []
    for v in found.frozen:
        rows.append(
            {
                "rule": viewer.t("portal_dashboard_rule_freeze"),
                "node": v.node_id,
                "kind": v.kind,
                "name": hidden if v.redacted else (v.name or v.native_id),
                "created": local_time(v.created),
                "basis": "",
            }
        )
    for p in found.placed:
        rows.append(
            {
                "rule": viewer.t("portal_dashboard_rule_placement"),
                "node": p.node_id,
                "kind": "",
                "name": hidden if p.redacted else f"{p.name}（{p.system_code}）",
                "created": "—",
                "basis": finding_text(p, viewer.lang),
            }
        )
    for (node, kind), count in sorted(found.unattributed.items()):
        rows.append(
            {
                "rule": viewer.t("portal_dashboard_rule_unattributed"),
                "node": node,
                "kind": kind,
                "name": viewer.t("portal_dashboard_unattributed_count", count=count),
                "created": "—",
                "basis": "",
            }
        )
    return {"rows": rows, "total": found.total or 0}


def _scopes(labels: list[str], viewer: Viewer) -> list[str]:
    return [label.replace(REDACTED, viewer.t("portal_dashboard_redacted")) for label in labels]


def _as_of(report: dict[str, Any]) -> str:
    return local_time(datetime.fromisoformat(report["as_of"].replace("Z", "+00:00")))


def _headline(report: dict[str, Any], group: dict[str, Any] | None = None) -> dict[str, Any]:
    figures = group or report
    return {
        "rate": figures["rate"],
        "adopted": figures["numerator"],
        "total": figures["denominator"],
        "counts": figures["counts"],
        "policy": report["policy"],
        "as_of": _as_of(report),
        "as_of_raw": report["as_of"],
        "switches": report["switches"],
        "stale_nodes": report["stale_nodes"],
        "expired_scopes": report["expired_scopes"],
    }


def _group(report: dict[str, Any], key: str) -> dict[str, Any] | None:
    return next((g for g in report.get("groups") or [] if g["key"] == key), None)


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(
    request: Request,
    viewer: ReadingViewer,
    city: Annotated[str, Query(max_length=100)] = "",
    department: Annotated[str, Query(max_length=100)] = "",
    policy: Policy = "",
    exempt_in_denominator: Switch = "",
    trust_declared: Switch = "",
) -> Response:
    choice = Choice(policy, exempt_in_denominator, trust_declared)
    ledger = service(request)
    settings = ledger.settings
    t = viewer.t
    context: dict[str, Any] = {
        "choice": choice,
        "city": "",
        "department": None,
        "province": settings.province,
    }
    with ledger.session() as session:
        if department:
            report = _kpi(session, viewer, settings, choice, "department")
            group = _group(report, department)
            known = _departments(session, viewer, settings, code=department)
            if group is None:
                raise DepartmentUnknown("department_unknown", code=department, hint="")
            found = known.get(department, Department(department, department, ""))
            context.update(
                level="department",
                department=found,
                city=found.city,
                headline=_headline(report, group),
            )
            bars: list[Row] = []
            cities: list[Row] = []
        elif city:
            report = _kpi(session, viewer, settings, choice, "city")
            group = _group(report, city)
            if group is None:
                raise CityUnknown("portal_dashboard_city_unknown", city=city)
            known = _departments(session, viewer, settings, city=city)
            departments = _kpi(session, viewer, settings, choice, "department")
            bars = _department_rows(departments["groups"], known)
            cities = []
            context.update(level="city", city=city, headline=_headline(report, group))
        else:
            report = _kpi(session, viewer, settings, choice, None)
            by_city = _kpi(session, viewer, settings, choice, "city")
            cities = [Row.of(g, g["key"]) for g in by_city["groups"]]
            departments = _kpi(session, viewer, settings, choice, "department")
            known = _departments(session, viewer, settings)
            bars = _department_rows(departments["groups"], known)
            context.update(level="province", headline=_headline(report))
        trend = _trend(session, viewer, t)
        findings = _findings(session, viewer, settings)
    cities = sort_rows(cities, "-rate")
    ranked = sort_rows(bars, "rate")
    if len(ranked) > 2 * BARS:
        bottom, top = ranked[:BARS], sort_rows(bars, "-rate")[:BARS]
    else:
        bottom, top = ranked, []
    context.update(
        cities=cities,
        city_chart=_bars(cities, t),
        city_table=_bar_table(cities),
        city_links={
            label: "/dashboard" + choice.params(city=r.key)
            for label, r in zip(_unique_labels(cities), cities, strict=True)
        },
        department_count=len(bars),
        bottom=bottom,
        top=top,
        bottom_chart=_bars(bottom, t),
        top_chart=_bars(top, t),
        bottom_table=_bar_table(bottom),
        top_table=_bar_table(top),
        bottom_links=_drill_links(bottom, choice),
        top_links=_drill_links(top, choice),
        breakdown=_status(context["headline"]["counts"], viewer.lang, t),
        trend=trend,
        findings=findings,
        expired_scopes=_scopes(context["headline"]["expired_scopes"], viewer),
        may_province=viewer.may("read"),
        table_href="/dashboard/departments"
        + choice.params(city=context["city"] if context["level"] == "city" else ""),
    )
    template = "dashboard/_body.html" if is_htmx(request) else "dashboard/index.html"
    return render(request, template, viewer=viewer, **context)


def _drill_links(rows: list[Row], choice: Choice) -> dict[str, str]:
    return {
        label: "/dashboard" + choice.params(department=r.key)
        for label, r in zip(_unique_labels(rows), rows, strict=True)
    }


@router.get("/dashboard/departments", response_class=HTMLResponse)
def department_table(
    request: Request,
    viewer: ReadingViewer,
    city: Annotated[str, Query(max_length=100)] = "",
    sort: Annotated[str, Query(pattern=r"^-?(rate|code|name|city|adopted|total)$")] = "rate",
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    policy: Policy = "",
    exempt_in_denominator: Switch = "",
    trust_declared: Switch = "",
) -> Response:
    """Every department the reader may read, sorted and paged on the server."""
    choice = Choice(policy, exempt_in_denominator, trust_declared)
    ledger = service(request)
    settings = ledger.settings
    with ledger.session() as session:
        report = _kpi(session, viewer, settings, choice, "department")
        cities = sorted(g["key"] for g in _kpi(session, viewer, settings, choice, "city")["groups"])
        known = _departments(session, viewer, settings, city=city or None)
    rows = sort_rows(_department_rows(report["groups"], known), sort)
    page = Listed(rows[offset : offset + limit], len(rows), offset, limit)
    template = "dashboard/_departments.html" if is_htmx(request) else "dashboard/departments.html"
    return render(
        request,
        template,
        viewer=viewer,
        page=page,
        sort=sort,
        city=city,
        cities=cities,
        choice=choice,
        headline=_headline(report),
    )


@router.get("/dashboard/downloads/province.html")
def province_html(
    request: Request,
    viewer: ReadingViewer,
    exempt_in_denominator: Switch = "",
    trust_declared: Switch = "",
) -> Response:
    """The province's HTML report: to province readers only (the use case refuses the rest)."""
    choice = Choice("", exempt_in_denominator, trust_declared)
    settings = service(request).settings
    with service(request).session() as session:
        page = province_report_html(
            session=session,
            actor=viewer.actor,
            settings=settings,
            switches=choice.switches(settings),
            lang=viewer.lang,
        )
    name = f"yiyun-report-{settings.today().isoformat()}.html"
    return attachment(page.encode("utf-8"), SCORECARD_TYPES["html"], name)


@router.get("/dashboard/downloads/province.xlsx")
def province_xlsx(
    request: Request,
    viewer: ReadingViewer,
    exempt_in_denominator: Switch = "",
    trust_declared: Switch = "",
) -> Response:
    choice = Choice("", exempt_in_denominator, trust_declared)
    settings = service(request).settings
    with service(request).session() as session:
        workbook = province_report_xlsx(
            session=session,
            actor=viewer.actor,
            settings=settings,
            switches=choice.switches(settings),
            lang=viewer.lang,
        )
    return attachment(workbook, XLSX, f"yiyun-report-{settings.today().isoformat()}.xlsx")


@router.get("/dashboard/downloads/scorecard/{department}.{fmt}")
def scorecard(
    request: Request,
    viewer: ReadingViewer,
    department: Annotated[str, Path(max_length=100)],
    fmt: Literal["html", "md", "json"],
    exempt_in_denominator: Switch = "",
    trust_declared: Switch = "",
) -> Response:
    """A department's scorecard, for a reader of that department (unknown reads as refused)."""
    choice = Choice("", exempt_in_denominator, trust_declared)
    settings = service(request).settings
    with service(request).session() as session:
        card = department_scorecard_file(
            session=session,
            actor=viewer.actor,
            settings=settings,
            switches=choice.switches(settings),
            department=department,
            fmt=fmt,
            lang=viewer.lang,
        )
    name = f"yiyun-scorecard-{department}-{settings.today().isoformat()}.{fmt}"
    return attachment(card.page.encode("utf-8"), SCORECARD_TYPES[fmt], name)
