"""The portal's platform pages: nodes, scans, held sweeps, violations and import specs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session

from exporters.reports.findings import finding_text
from inventory.access import AccessDenied, Actor
from inventory.i18n import has_text, label, node_level_label, text
from inventory.queries import adoption_kpi, find_nodes, policy_findings, scan_run_scopes, scan_runs
from inventory.reports import switches_from
from inventory.runs import COMPLETED_RUNS, NOT_RUN
from inventory.scope_failures import failure_wording
from inventory.settings import Settings
from inventory.violations import PLACEMENT
from service.context import service
from service.portal.web import Listed, ReadingViewer, Viewer, is_htmx, render

router = APIRouter(include_in_schema=False)
# A page shows at most this many rows; the API goes to 500, a person reads far fewer.
MAX_LIMIT = 100
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
# Scope statuses that mean the scope did not list completely.
FAILED = frozenset({"partial", "denied", "throttled", "error"})
# Node sorts: the query's key → what the rows are ordered by.
NODE_SORTS = ("id", "name", "level", "city", "vcpu", "memory", "storage", "scan")
NODE_STATES = ("active", "retired", "stale", "frozen")
# A finding's columns (`report violations --format json`); each rule fills some of them.
VIOLATION_COLUMNS = (
    "rule", "node", "kind", "native_id", "name", "count", "created", "frozen_since", "basis",
)  # fmt: skip
# How many scan runs the held-sweep listing walks back at most to find every node's latest.
HELD_RUNS_WALKED = 200


def require_platform(viewer: Viewer) -> None:
    """The platform pages are for province-wide readers (the nav shows them only then):
    nodes and scans are the estate's, a department's staff works in its workspace."""
    if not viewer.actor.province_wide:
        raise AccessDenied(
            "access_denied", principal=viewer.actor.principal, action="read", target="province"
        )


def _ratio(used: float, capacity: float | None) -> float | None:
    return used / capacity if capacity else None


def node_view(found: Any, lang: str) -> dict[str, Any]:
    """A node row (queries.NodeFound) as the nodes table shows it."""
    row = found.row
    vcpu, memory, storage = found.allocated or (0.0, 0.0, 0.0)
    return {
        **row,
        "level_label": node_level_label(row["level"], lang),
        "allocated": (vcpu, memory, storage),
        "use": (
            _ratio(vcpu, row["capacity_vcpu"]),
            _ratio(memory, row["capacity_memory_gib"]),
            _ratio(storage, row["capacity_storage_gib"]),
        ),
        "last_complete_scan": found.last_complete_scan,
        "stale": found.stale,
    }


def _node_key(sort: str) -> Any:
    name = sort.lstrip("-")
    use = {"vcpu": 0, "memory": 1, "storage": 2}

    def key(node: dict[str, Any]) -> Any:
        if name in use:
            value = node["use"][use[name]]
            return (value is None, value or 0.0, node["id"])
        if name == "scan":
            when = node["last_complete_scan"]
            return (when is None, when or datetime.min.replace(tzinfo=UTC), node["id"])
        return (str(node.get(name) or ""), node["id"])

    return key


def filter_nodes(
    nodes: list[dict[str, Any]], *, q: str, level: str, state: str
) -> list[dict[str, Any]]:
    needle = q.strip().lower()
    if needle:
        nodes = [n for n in nodes if needle in n["id"].lower() or needle in n["name"].lower()]
    if level:
        nodes = [n for n in nodes if n["level"] == level]
    if state == "active":
        nodes = [n for n in nodes if n["retired_at"] is None]
    elif state == "retired":
        nodes = [n for n in nodes if n["retired_at"] is not None]
    elif state == "stale":
        nodes = [n for n in nodes if n["stale"]]
    elif state == "frozen":
        nodes = [n for n in nodes if n["frozen_since"] is not None and not n["one_cloud"]]
    return nodes


def sort_nodes(nodes: list[dict[str, Any]], sort: str) -> list[dict[str, Any]]:
    if sort.lstrip("-") not in NODE_SORTS:
        sort = "id"
    ordered = sorted(nodes, key=_node_key(sort))
    return ordered[::-1] if sort.startswith("-") else ordered


def held_sweeps(*, session: Session, actor: Actor, settings: Settings) -> list[dict[str, Any]]:
    """Scopes whose latest listing held its sweep, newest run first: each live node's scopes
    are taken from the newest runs that listed them (scan_runs and scan_run_scopes), walking
    back until every node had a complete run, or HELD_RUNS_WALKED runs."""
    live = {
        f.row["id"]
        for f in find_nodes(session=session, actor=actor, settings=settings, usage=False)
        if f.row["retired_at"] is None
    }
    settled: set[str] = set()
    seen: set[tuple[str, str, str, str]] = set()
    held: list[dict[str, Any]] = []
    offset, batch = 0, 20
    while live - settled and offset < HELD_RUNS_WALKED:
        runs, _total = scan_runs(session=session, actor=actor, offset=offset, limit=batch)
        if not runs:
            break
        for run in runs:
            todo = set(run.nodes or ()) & (live - settled)
            if not todo or run.id is None:
                continue
            _run, rows = scan_run_scopes(session=session, actor=actor, run_id=run.id)
            for row in rows:
                key = (row["node_id"], row["source"], row["kind"], row["scope"])
                if row["node_id"] not in todo or row["status"] == NOT_RUN or key in seen:
                    continue
                seen.add(key)
                if row["status"] == "held":
                    held.append(row | {"run_started_at": run.started_at})
            if run.status in COMPLETED_RUNS:
                settled |= todo
        offset += batch
    return held


@router.get("/platform")
def overview(request: Request, viewer: ReadingViewer) -> HTMLResponse:
    require_platform(viewer)
    ledger = service(request)
    with ledger.session() as session:
        nodes = [
            node_view(f, viewer.lang)
            for f in find_nodes(session=session, actor=viewer.actor, settings=ledger.settings)
        ]
        runs, runs_total = scan_runs(session=session, actor=viewer.actor, limit=1)
        held = held_sweeps(session=session, actor=viewer.actor, settings=ledger.settings)
        findings = policy_findings(
            session=session, actor=viewer.actor, settings=ledger.settings, limit=0
        )
        latest = runs[0] if runs else None
    live = [n for n in nodes if n["retired_at"] is None]
    return render(
        request,
        "platform/index.html",
        viewer=viewer,
        nodes_live=len(live),
        nodes_retired=len(nodes) - len(live),
        nodes_stale=sum(1 for n in live if n["stale"]),
        runs_total=runs_total,
        latest=latest,
        run_status=lambda s: run_status_label(s, viewer.lang),
        held=len(held),
        held_rows=sum(row["held"] for row in held),
        findings_total=findings.total or 0,
    )


def run_status_label(status: str, lang: str) -> str:
    key = f"run_status_{status}"
    return text(key, lang) if has_text(key, lang) else status


@router.get("/platform/nodes")
def nodes_page(
    request: Request,
    viewer: ReadingViewer,
    offset: Offset = 0,
    limit: Limit = 50,
    sort: Annotated[str, Query(max_length=20)] = "id",
    q: Annotated[str, Query(max_length=100)] = "",
    level: Annotated[str, Query(max_length=40)] = "",
    state: Annotated[str, Query(max_length=20)] = "",
) -> HTMLResponse:
    require_platform(viewer)
    ledger = service(request)
    with ledger.session() as session:
        found = find_nodes(session=session, actor=viewer.actor, settings=ledger.settings)
    every = [node_view(f, viewer.lang) for f in found]
    levels = sorted({n["level"] for n in every})
    chosen = sort_nodes(filter_nodes(every, q=q, level=level, state=state), sort)
    page = Listed(chosen[offset : offset + limit], len(chosen), offset, limit)
    template = "platform/_nodes_table.html" if is_htmx(request) else "platform/nodes.html"
    return render(
        request,
        template,
        viewer=viewer,
        page=page,
        sort=sort,
        q=q,
        level=level,
        state=state,
        levels=[(value, node_level_label(value, viewer.lang)) for value in levels],
        states=NODE_STATES,
    )


@router.get("/platform/specs")
def specs_page(
    request: Request, viewer: ReadingViewer, offset: Offset = 0, limit: Limit = 50
) -> HTMLResponse:
    """The node file as yiyun holds it: each node's planned sources (ids and kinds)."""
    require_platform(viewer)
    ledger = service(request)
    with ledger.session() as session:
        found = find_nodes(
            session=session, actor=viewer.actor, settings=ledger.settings, usage=False
        )
    rows = [f.row | {"level_label": node_level_label(f.row["level"], viewer.lang)} for f in found]
    page = Listed(rows[offset : offset + limit], len(rows), offset, limit)
    return render(request, "platform/specs.html", viewer=viewer, page=page)


@router.get("/platform/scans")
def scans_page(
    request: Request, viewer: ReadingViewer, offset: Offset = 0, limit: Limit = 50
) -> HTMLResponse:
    require_platform(viewer)
    with service(request).session() as session:
        runs, total = scan_runs(session=session, actor=viewer.actor, offset=offset, limit=limit)
    page = Listed(list(runs), total, offset, limit)
    return render(
        request,
        "platform/scans.html",
        viewer=viewer,
        page=page,
        run_status=lambda s: run_status_label(s, viewer.lang),
    )


def scope_view(row: dict[str, Any], *, stale: set[str], expired: set[str], lang: str) -> dict:
    """A scope of a run with its health: failed, held, its node stale, its evidence expired."""
    status = row["status"]
    where = f"{row['node_id']}/{row['source']}/{row['kind']}/{row['scope']}"
    health = []
    if status in FAILED:
        health.append("failed")
    if status == "held":
        health.append("held")
    if status == NOT_RUN:
        health.append("not_run")
    if row["node_id"] in stale:
        health.append("stale")
    if where in expired:
        health.append("expired")
    return row | {
        "status_label": label("scope_status", status, lang),
        "health": health,
        "failure": failure_wording(
            status, row.get("error_code"), row.get("error_message"), lang, row
        ),
    }


SCOPE_FILTERS = ("failed", "held", "not_run", "stale", "expired", "ok")


@router.get("/platform/scans/{run_id}")
def scan_page(
    request: Request,
    viewer: ReadingViewer,
    run_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    health: Annotated[str, Query(max_length=20)] = "",
    offset: Offset = 0,
    limit: Limit = 100,
) -> HTMLResponse:
    require_platform(viewer)
    ledger = service(request)
    with ledger.session() as session:
        run, rows = scan_run_scopes(session=session, actor=viewer.actor, run_id=run_id)
        kpi = adoption_kpi(
            session=session,
            actor=viewer.actor,
            settings=ledger.settings,
            switches=switches_from(ledger.settings),
        )
    stale, expired = set(kpi["stale_nodes"]), set(kpi["expired_scopes"])
    scopes = [scope_view(r, stale=stale, expired=expired, lang=viewer.lang) for r in rows]
    counts = {name: sum(1 for s in scopes if name in s["health"]) for name in SCOPE_FILTERS}
    counts["ok"] = sum(1 for s in scopes if not s["health"])
    if health == "ok":
        scopes = [s for s in scopes if not s["health"]]
    elif health in SCOPE_FILTERS:
        scopes = [s for s in scopes if health in s["health"]]
    page = Listed(scopes[offset : offset + limit], len(scopes), offset, limit)
    template = "platform/_scopes_table.html" if is_htmx(request) else "platform/scan.html"
    return render(
        request,
        template,
        viewer=viewer,
        run=run,
        page=page,
        counts=counts,
        health=health,
        filters=SCOPE_FILTERS,
        run_status=lambda s: run_status_label(s, viewer.lang),
    )


@router.get("/platform/held")
def held_page(request: Request, viewer: ReadingViewer) -> HTMLResponse:
    require_platform(viewer)
    ledger = service(request)
    with ledger.session() as session:
        held = held_sweeps(session=session, actor=viewer.actor, settings=ledger.settings)
    by_node: dict[str, list[dict[str, Any]]] = {}
    for row in held:
        by_node.setdefault(row["node_id"], []).append(row)
    return render(
        request,
        "platform/held.html",
        viewer=viewer,
        by_node=sorted(by_node.items()),
        held_scopes=len(held),
        held_total=sum(row["held"] for row in held),
        by=viewer.actor.principal,
    )


@router.get("/platform/violations")
def violations_page(
    request: Request,
    viewer: ReadingViewer,
    offset: Offset = 0,
    limit: Limit = 50,
    details: bool = False,
) -> HTMLResponse:
    require_platform(viewer)
    ledger = service(request)
    lang = viewer.lang
    with ledger.session() as session:
        found = policy_findings(
            session=session,
            actor=viewer.actor,
            settings=ledger.settings,
            details=details,
            offset=offset,
            limit=limit,
        )
    rows = []
    for row in found.rows(lambda p: finding_text(p, lang)):
        placement = row["rule"] == PLACEMENT
        basis = row.get("basis")
        if not placement and basis is not None:
            basis = text(
                "basis_source" if basis == "source creation time" else "basis_first_seen", lang
            )
        rows.append(
            dict.fromkeys(VIOLATION_COLUMNS)
            | row
            | {
                "rule_label": text("pl_rule", lang)
                if placement
                else text(f"rule_{row['rule']}", lang),
                "kind_label": text("pl_system", lang) if placement else row["kind"],
                "basis": basis,
            }
        )
    page = Listed(rows, found.total or 0, offset, limit)
    template = "platform/_violations_table.html" if is_htmx(request) else "platform/violations.html"
    return render(request, template, viewer=viewer, page=page, details=details)
