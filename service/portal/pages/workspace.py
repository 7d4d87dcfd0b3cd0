"""The portal's workspace: a department's systems, their next steps and dependencies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from exporters.reports.actions import DepartmentUnknown
from inventory.adoption import STATUSES
from inventory.i18n import Wording, label, readiness_label, state_label, status_label, text
from inventory.queries import (
    FoundSystem,
    SystemQuery,
    adoption_kpi,
    department_names,
    find_systems,
)
from inventory.reports import switches_from
from migrate.assess import assessments_in_scope
from migrate.deps import (
    declare_dependency,
    dependencies_in_scope,
    import_dependency_file,
    remove_dependency,
)
from migrate.next_step import Blank, Facts, NextStep, gather, settled
from migrate.reasons import outcome_label, rule_reason
from migrate.tracking import STATES, advance_system, checks_text, system_history
from service.context import service
from service.portal.web import Listed, ReadingViewer, Viewer, WritingViewer, is_htmx, render
from service.problems import status_of
from service.schemas_migration import MAX_UPLOAD_MIB, UploadTooLarge, saved_upload

router = APIRouter(include_in_schema=False)

Limit = Annotated[int, Query(ge=1, le=100)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
Text = Annotated[str | None, Query(max_length=200)]
DepartmentSort = Literal["code", "-code", "name", "-name", "rate", "-rate"]
SystemSort = Literal["code", "-code", "name", "-name", "status", "-status"]
# A filter form sends "" for "any": read as no filter, as is a value no system can have.
Choice = Annotated[str | None, Query(max_length=40)]
DEPENDENCY_KINDS = ("calls", "data", "shared_infra")
STRENGTHS = ("hard", "soft")
# Resources shown per node on a system's page: enough to see where it runs.
EVIDENCE_ROWS = 100


# ---------------------------------------------------------------- view shaping


@dataclass(frozen=True)
class StepView:
    """A system's next step as a department sees it: a sentence, and the button where the
    step is a portal action (an advance) rather than a command for the platform team."""

    kind: str
    parts: list[tuple[bool, str]]  # (is a command, words): commands show as code
    to_state: str | None = None
    to_label: str | None = None
    needs_document: bool = False
    plan: str | None = None  # named only when the system is in several plans
    quiet: bool = False  # nothing to do: already on the cloud, exempt or done


def command_parts(sentence: str) -> list[tuple[bool, str]]:
    """The hint's words, with its `commands` marked (the catalog quotes them in backticks)."""
    return [(i % 2 == 1, piece) for i, piece in enumerate(sentence.split("`")) if piece]


def step_view(step: NextStep, facts: Facts, lang: str) -> StepView:
    if step.kind == "advance" and step.to_state is not None:
        tokens = step.command.tokens if step.command is not None else ()
        sentence = text(
            "portal_workspace_step_advance",
            lang,
            state=state_label(facts.state, lang),
            to=state_label(step.to_state, lang),
        )
        return StepView(
            kind=step.kind,
            parts=[(False, sentence)],
            to_state=step.to_state,
            to_label=state_label(step.to_state, lang),
            needs_document=any(isinstance(t, Blank) and t.name == "doc" for t in tokens),
            plan=facts.plan if facts.several_plans else None,
        )
    return StepView(kind=step.kind, parts=command_parts(step.render(lang)), quiet=step.quiet)


@dataclass(frozen=True)
class SystemRow:
    """One system of a department's list: the register, the KPI and the migration's view."""

    code: str
    name: str
    status: str | None
    status_label: str
    readiness: str
    rules: tuple[str, ...]
    plan: str | None
    wave: int | None
    state: str
    step: StepView | None
    step_on_page: bool = False


def system_rows(
    found: Sequence[FoundSystem], facts: dict[str, Facts], lang: str
) -> list[SystemRow]:
    rows = []
    for item in found:
        fact = facts.get(item.entry.code)
        step = settled(fact) if fact else None
        rows.append(
            SystemRow(
                code=item.entry.code,
                name=item.entry.name,
                status=item.status,
                status_label=status_label(item.status, lang) if item.status else "—",
                readiness=readiness_label(fact.readiness if fact else None, lang),
                rules=fact.rules if fact else (),
                plan=fact.plan if fact else None,
                wave=fact.wave if fact else None,
                state=state_label(fact.state if fact else None, lang),
                # A list does not try the plan's waves (seconds each): the system's own page does.
                step=step_view(step, fact, lang) if fact and step else None,
                step_on_page=bool(fact and step is None),
            )
        )
    return rows


def department_row(
    session: Session, viewer: Viewer, request: Request, code: str
) -> tuple[dict[str, Any], str]:
    """The department's KPI row (the KPI's by=department row) and its name; a department
    outside the viewer's scope, or unknown, is refused as the scorecard refuses it."""
    settings = service(request).settings
    report = adoption_kpi(
        session=session,
        actor=viewer.actor,
        settings=settings,
        switches=switches_from(settings),
        by="department",
    )
    row = next((g for g in report["groups"] if g["key"] == code), None)
    if row is None:
        raise DepartmentUnknown("department_unknown", code=code, hint="")
    return row, department_names(session=session, actor=viewer.actor, codes={code}).get(code, code)


# ---------------------------------------------------------------- /workspace


@router.get("/workspace")
def workspace(
    request: Request,
    viewer: ReadingViewer,
    q: Text = None,
    sort: DepartmentSort = "code",
    offset: Offset = 0,
    limit: Limit = 20,
) -> Response:
    actor = viewer.actor
    settings = service(request).settings
    with service(request).session() as session:
        readable = actor.readable_departments(session)
        only_departments = all(g.scope.kind == "department" for g in actor.grants)
        if only_departments and readable is not None and len(readable) == 1:
            return RedirectResponse(f"/departments/{next(iter(readable))}", status_code=303)
        report = adoption_kpi(
            session=session,
            actor=actor,
            settings=settings,
            switches=switches_from(settings),
            by="department",
        )
        groups = report["groups"]
        names = department_names(
            session=session, actor=viewer.actor, codes={g["key"] for g in groups}
        )
    rows = [{**g, "name": names.get(g["key"], g["key"])} for g in groups]
    if q:
        needle = q.strip().casefold()
        rows = [r for r in rows if needle in r["key"].casefold() or needle in r["name"].casefold()]
    field = {"code": "key", "name": "name", "rate": "rate"}[sort.removeprefix("-")]
    descending = sort.startswith("-")
    rows.sort(key=lambda r: r["key"])
    # A department with nothing in its denominator has no rate: last, whichever way.
    rated = [r for r in rows if r[field] is not None]
    rated.sort(key=lambda r: r[field], reverse=descending)
    rows = rated + [r for r in rows if r[field] is None]
    page = Listed(rows[offset : offset + limit], len(rows), offset, limit)
    htmx = is_htmx(request)
    return render(
        request,
        "workspace/_departments.html" if htmx else "workspace/departments.html",
        viewer=viewer,
        page=page,
        q=q or "",
        sort=sort,
    )


# ---------------------------------------------------------------- /departments/{code}


@router.get("/departments/{code}")
def department(
    request: Request,
    viewer: ReadingViewer,
    code: Annotated[str, Path(max_length=100)],
    q: Text = None,
    status: Choice = None,
    state: Choice = None,
    sort: SystemSort = "code",
    offset: Offset = 0,
    limit: Limit = 20,
) -> Response:
    ledger = service(request)
    actor = viewer.actor
    status = status if status in STATUSES else None
    state = state if state in STATES else None
    query = SystemQuery(department=code, status=status, q=q or None, sort=sort)
    with ledger.session() as session:
        kpi, name = department_row(session, viewer, request, code)
        today = ledger.settings.today()
        if state is None:
            found = find_systems(
                session=session,
                actor=actor,
                settings=ledger.settings,
                query=query,
                offset=offset,
                limit=limit,
            )
            items, total = found.items, found.total
            facts = gather(
                session=session,
                today=today,
                codes=[i.entry.code for i in items],
                try_waves=False,
            )
        else:
            # The migration state lives in the plans, not the register: read the department's
            # matching systems once (a department holds tens, not thousands), then cut the page.
            found = find_systems(
                session=session, actor=actor, settings=ledger.settings, query=query
            )
            facts = gather(
                session=session,
                today=today,
                codes=[i.entry.code for i in found.items],
                try_waves=False,
            )
            matched = [
                i for i in found.items if (f := facts.get(i.entry.code)) and f.state == state
            ]
            items, total = matched[offset : offset + limit], len(matched)
    rows = system_rows(items, facts, viewer.lang)
    htmx = is_htmx(request)
    return render(
        request,
        "workspace/_systems.html" if htmx else "workspace/department.html",
        viewer=viewer,
        code=code,
        name=name,
        kpi=kpi,
        page=Listed(rows, total, offset, limit),
        q=q or "",
        status_filter=status or "",
        state_filter=state or "",
        sort=sort,
        statuses=[(s, status_label(s, viewer.lang)) for s in STATUSES],
        states=[(s, state_label(s, viewer.lang)) for s in STATES],
        status_names={s: status_label(s, viewer.lang) for s in STATUSES},
    )


# ---------------------------------------------------------------- /systems/{code}


def system_context(
    session: Session,
    request: Request,
    viewer: Viewer,
    code: str,
    history_offset: int = 0,
    *,
    try_waves: bool = True,
) -> dict[str, Any]:
    """Everything the system page shows; an unknown or out-of-scope code raises (403 page).
    Without `try_waves` a system waiting for a wave gets its next step from /step later."""
    ledger = service(request)
    lang = viewer.lang
    found = find_systems(
        session=session, actor=viewer.actor, settings=ledger.settings, code=code, evidence=True
    ).items[0]
    entry = found.entry
    facts = gather(
        session=session, today=ledger.settings.today(), codes=[code], try_waves=try_waves
    ).get(code)
    step = settled(facts) if facts is not None else None
    blockers = []
    for _system, row in assessments_in_scope(session=session, actor=viewer.actor, system=code):
        for rule in row.rules or []:
            if rule.get("outcome") in ("pass", "n/a"):
                continue
            blockers.append(
                {
                    "id": rule["id"],
                    "outcome": outcome_label(str(rule["outcome"]), lang),
                    "reason": rule_reason(rule, lang, row.node_id),
                }
            )
    if not blockers and facts is not None:
        # Never assessed on its own: the rules its plan named when it left it unplaced.
        blockers = [{"id": rule, "outcome": "—", "reason": "—"} for rule in facts.rules]
    events = system_history(session=session, actor=viewer.actor, code=code)
    history_limit = 20
    shown = list(reversed(events))[history_offset : history_offset + history_limit]
    history = [
        {
            **e,
            "from_label": state_label(e["from_state"], lang),
            "to_label": state_label(e["to_state"], lang),
            "checks_text": checks_text(e["checks"], lang),
        }
        for e in shown
    ]
    may_advance = viewer.may("advance", department=entry.department_code, city=entry.city)
    return {
        "system": found,
        "entry": entry,
        "status_text": status_label(found.status, lang) if found.status else "—",
        "facts": facts,
        "readiness": readiness_label(facts.readiness if facts else None, lang),
        "state_text": state_label(facts.state if facts else None, lang),
        "step": step_view(step, facts, lang) if step is not None and facts is not None else None,
        "blockers": blockers,
        "history": Listed(history, len(events), history_offset, history_limit),
        "last_event": history[0] if history else None,
        "may_advance": may_advance,
        "evidence_rows": EVIDENCE_ROWS,
    }


@router.get("/systems/{code}")
def system(
    request: Request,
    viewer: ReadingViewer,
    code: Annotated[str, Path(max_length=100)],
    offset: Offset = 0,
    advanced: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    with service(request).session() as session:
        context = system_context(session, request, viewer, code, offset, try_waves=False)
    return render(
        request,
        "workspace/system.html",
        viewer=viewer,
        code=code,
        advanced=advanced == "1",
        refusal=None,
        **context,
    )


@router.get("/systems/{code}/step")
def system_step(
    request: Request, viewer: ReadingViewer, code: Annotated[str, Path(max_length=100)]
) -> Response:
    """The step panel once the plan's waves are tried (htmx), or the whole page with it."""
    with service(request).session() as session:
        context = system_context(session, request, viewer, code)
    htmx = is_htmx(request)
    return render(
        request,
        "workspace/_step.html" if htmx else "workspace/system.html",
        viewer=viewer,
        code=code,
        advanced=False,
        refusal=None,
        **context,
    )


@router.post("/systems/{code}/advance")
def advance(
    request: Request,
    viewer: WritingViewer,
    code: Annotated[str, Path(max_length=100)],
    to: Annotated[str, Form(max_length=40)],
    expected_state: Annotated[str | None, Form(max_length=40)] = None,
    plan: Annotated[str | None, Form(max_length=200)] = None,
    evidence: Annotated[str | None, Form(max_length=500)] = None,
    note: Annotated[str | None, Form(max_length=2000)] = None,
) -> Response:
    ledger = service(request)
    with ledger.session() as session:
        # Out of scope or unknown: the 403 page before anything is tried, and no data.
        find_systems(session=session, actor=viewer.actor, settings=ledger.settings, code=code)
    refusal: Wording | None = None
    try:
        with ledger.session() as session:
            advance_system(
                session=session,
                actor=viewer.actor,
                code=code,
                to_state=to,
                now=datetime.now(tz=UTC),
                today=ledger.settings.today(),
                note=(note or "").strip() or None,
                evidence=(evidence or "").strip() or None,
                plan_name=plan or None,
                expected_state=expected_state or None,
            )
    except Wording as error:  # the unit of work rolled back: nothing was written
        if status_of(error) == 404:
            raise
        refusal = error
    htmx = is_htmx(request)
    if refusal is None and not htmx:
        return RedirectResponse(f"/systems/{code}?advanced=1", status_code=303)
    with ledger.session() as session:
        context = system_context(session, request, viewer, code)
    # base.html tells htmx to swap 403/409/413/422 answers too: the refusal keeps its status.
    status = 200 if refusal is None else status_of(refusal)
    return render(
        request,
        "workspace/_step.html" if htmx else "workspace/system.html",
        viewer=viewer,
        status=status,
        code=code,
        advanced=refusal is None,
        refusal=refusal.render(viewer.lang) if refusal else None,
        refusal_key=refusal.key if refusal else None,
        swap_history=htmx,
        **context,
    )


# ---------------------------------------------------------------- dependencies


def dependency_context(
    session: Session, request: Request, viewer: Viewer, code: str, offset: int, limit: int
) -> dict[str, Any]:
    ledger = service(request)
    lang = viewer.lang
    _kpi, name = department_row(session, viewer, request, code)
    mine = find_systems(
        session=session,
        actor=viewer.actor,
        settings=ledger.settings,
        query=SystemQuery(department=code),
        kpi=False,
    ).items
    codes = {i.entry.code for i in mine}
    declarable = [
        i.entry.code
        for i in mine
        if viewer.may("deps", department=i.entry.department_code, city=i.entry.city)
    ]
    edges = [
        {
            **r,
            "type_label": label("mig_dep_type", r["type"], lang),
            "strength_label": label("mig_dep_strength", r["strength"], lang),
            "origin_label": label("mig_dep_origin", r["origin"], lang),
            "deletable": r["origin"] == "declared" and r["from"] in declarable,
        }
        for r in dependencies_in_scope(session=session, actor=viewer.actor)
        if r["from"] in codes or r["to"] in codes
    ]
    return {
        "code": code,
        "name": name,
        "page": Listed(edges[offset : offset + limit], len(edges), offset, limit),
        "declarable": declarable,
        "kinds": [(k, label("mig_dep_type", k, lang)) for k in DEPENDENCY_KINDS],
        "strengths": [(s, label("mig_dep_strength", s, lang)) for s in STRENGTHS],
        "max_upload": MAX_UPLOAD_MIB,
    }


def dependency_answer(
    request: Request,
    viewer: Viewer,
    code: str,
    *,
    status: int = 200,
    offset: int = 0,
    limit: int = 20,
    **shown: Any,
) -> Response:
    """The dependency page (or its panel, for htmx) with a message or the file's problems."""
    with service(request).session() as session:
        context = dependency_context(session, request, viewer, code, offset, limit)
    htmx = is_htmx(request)
    values = {"error": None, "problems": [], "imported": None, "done": None, "form": {}, **shown}
    return render(
        request,
        "workspace/_deps.html" if htmx else "workspace/dependencies.html",
        viewer=viewer,
        status=status,
        **context,
        **values,
    )


def in_place_status(error: Wording) -> int:
    # A form naming a system the viewer may not touch is a mistake in what was sent: the
    # words say "unknown" alike for both, and the page stays.
    status = status_of(error)
    return 422 if status == 404 else status


@router.get("/departments/{code}/dependencies")
def dependencies(
    request: Request,
    viewer: ReadingViewer,
    code: Annotated[str, Path(max_length=100)],
    offset: Offset = 0,
    limit: Limit = 20,
    created: Annotated[int | None, Query(ge=0)] = None,
    updated: Annotated[int | None, Query(ge=0)] = None,
    unchanged: Annotated[int | None, Query(ge=0)] = None,
    removed: Annotated[int | None, Query(ge=0)] = None,
    done: Annotated[Literal["added", "deleted"] | None, Query()] = None,
) -> Response:
    imported = None
    if created is not None:
        imported = {
            "created": created,
            "updated": updated or 0,
            "unchanged": unchanged or 0,
            "removed": removed or 0,
        }
    return dependency_answer(
        request, viewer, code, offset=offset, limit=limit, imported=imported, done=done
    )


@router.post("/departments/{code}/dependencies")
def add_dependency(
    request: Request,
    viewer: WritingViewer,
    code: Annotated[str, Path(max_length=100)],
    from_system: Annotated[str, Form(max_length=100)],
    to_system: Annotated[str, Form(max_length=100)],
    kind: Annotated[str, Form(max_length=40)] = "calls",
    strength: Annotated[str | None, Form(max_length=20)] = None,
) -> Response:
    ledger = service(request)
    with ledger.session() as session:
        department_row(session, viewer, request, code)
    form = {"from_system": from_system, "to_system": to_system.strip(), "kind": kind}
    try:
        with ledger.session() as session:
            declare_dependency(
                session=session,
                actor=viewer.actor,
                from_system=from_system,
                to_system=to_system.strip(),
                now=datetime.now(tz=UTC),
                kind=kind,
                strength=strength or None,
            )
    except Wording as error:
        return dependency_answer(
            request,
            viewer,
            code,
            status=in_place_status(error),
            error=error.render(viewer.lang),
            form={**form, "strength": strength or ""},
        )
    if is_htmx(request):
        return dependency_answer(request, viewer, code, done="added")
    return RedirectResponse(f"/departments/{code}/dependencies?done=added", status_code=303)


@router.get("/departments/{code}/dependencies/{dependency_id}/delete")
def confirm_delete(
    request: Request,
    viewer: ReadingViewer,
    code: Annotated[str, Path(max_length=100)],
    dependency_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
) -> Response:
    """Without JavaScript the delete button asks here first (htmx asks with hx-confirm)."""
    with service(request).session() as session:
        context = dependency_context(session, request, viewer, code, 0, 0)
        edge = next(
            (
                r
                for r in dependencies_in_scope(session=session, actor=viewer.actor)
                if r["id"] == dependency_id
            ),
            None,
        )
    if edge is None:
        raise Wording("mig_dep_unknown", id=dependency_id)
    return render(
        request,
        "workspace/confirm_delete.html",
        viewer=viewer,
        edge=edge,
        type_label=label("mig_dep_type", edge["type"], viewer.lang),
        **context,
    )


@router.post("/departments/{code}/dependencies/{dependency_id}/delete")
def delete_dependency(
    request: Request,
    viewer: WritingViewer,
    code: Annotated[str, Path(max_length=100)],
    dependency_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
) -> Response:
    ledger = service(request)
    with ledger.session() as session:
        department_row(session, viewer, request, code)
    try:
        with ledger.session() as session:
            remove_dependency(
                session=session,
                actor=viewer.actor,
                dependency_id=dependency_id,
                now=datetime.now(tz=UTC),
            )
    except Wording as error:
        return dependency_answer(
            request,
            viewer,
            code,
            status=in_place_status(error),
            error=error.render(viewer.lang),
        )
    if is_htmx(request):
        return dependency_answer(request, viewer, code, done="deleted")
    return RedirectResponse(f"/departments/{code}/dependencies?done=deleted", status_code=303)


@router.post("/departments/{code}/dependencies/import")
def import_dependencies(
    request: Request,
    viewer: WritingViewer,
    code: Annotated[str, Path(max_length=100)],
    file: Annotated[UploadFile, File()],
    replace: Annotated[bool, Form()] = False,
) -> Response:
    ledger = service(request)
    lang = viewer.lang
    with ledger.session() as session:
        department_row(session, viewer, request, code)
    problems: list[dict[str, Any]] = []
    error: str | None = None
    status = 200
    try:
        with saved_upload(file) as path, ledger.session() as session:
            report = import_dependency_file(
                session=session,
                actor=viewer.actor,
                path=path,
                now=datetime.now(tz=UTC),
                replace=replace,
            )
            if not report.ok:
                problems = [
                    {
                        "row": p.row,
                        "column": p.column,
                        "value": p.value,
                        "reason": p.reason.render(lang)
                        if isinstance(p.reason, Wording)
                        else p.reason,
                    }
                    for p in report.problems
                ]
                error = text("deps_problems", lang, file=path.name, count=len(problems))
                # Nothing was written (the use case checks every row first); roll back anyway.
                session.rollback()
    except UploadTooLarge as large:
        error = text("mig_upload_too_large", lang, file=large.name, limit=MAX_UPLOAD_MIB)
        status = 413
    except Wording as refused:
        error, status = refused.render(lang), in_place_status(refused)
    if error is not None:
        return dependency_answer(
            request,
            viewer,
            code,
            status=422 if problems else status,
            error=error,
            problems=problems,
        )
    counts = {
        "created": report.created,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "removed": report.removed,
    }
    if is_htmx(request):
        return dependency_answer(request, viewer, code, imported=counts)
    query = "&".join(f"{k}={v}" for k, v in counts.items())
    return RedirectResponse(f"/departments/{code}/dependencies?{query}", status_code=303)
