"""Migration plans in the ledger: create from the inventory, show, export, and import edits."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from inventory.access import AccessDenied, Actor
from inventory.audit import record
from inventory.confidentiality import Disclosure
from inventory.i18n import Wording
from inventory.models import Node, Resource, System
from inventory.output import csv_text, dumps, escape_formula
from migrate.assess import (
    Within,
    acting_scope,
    current_assessments,
    effective,
    reading_scope,
    system_profiles,
    target_profile,
)
from migrate.deps import planner_edges, refresh_inferred
from migrate.messages import Refusal
from migrate.models import MigrationEvent, Plan, SystemMigration, Wave
from migrate.planner import (
    NOT_PLACED_KINDS,
    Candidate,
    Constraint,
    Edge,
    Parameters,
    PlanResult,
    Review,
    Target,
    lower_bound,
    plan_waves,
    review,
)
from migrate.reasons import fired_rules
from migrate.rules import EXEMPT, assess
from migrate.sheets import Problem, read_sheet
from migrate.sizing import Sizing, node_capacity, system_sizing
from migrate.tracking import ARCHIVED, PAST_PLANNED, STARTED, held_from, in_force
from migrate.wording import Joined, Label, Phrase, decode, worded

DEFAULT_WAVE_SIZE = 20
DEFAULT_WAVE_DAYS = 14
LABEL_SYSTEM = "yiyun.io/system"
LABEL_DEPARTMENT = "yiyun.io/department"
CSV_COLUMNS = (
    "plan",
    "wave",
    "wave_start",
    "wave_end",
    "system_code",
    "name",
    "department_code",
    "city",
    "environment",
    "criticality",
    "mlps_level",
    "readiness",
    "strategy",
    "move_group",
    "state",
    "vcpu",
    "memory_gib",
    "storage_gib",
    "risk",
    "explanation",
)
# What `plan import` reads back; every other column of the export is for reading only.
IMPORT_HEADERS = {
    "system_code": ("system_code", "系统编码"),
    "wave": ("wave", "波次"),
}


class PlanError(Refusal):
    """A plan request that cannot be carried out (unknown node, name taken, …)."""


# ---------------------------------------------------------------- inputs


def wave_dates(start: date, wave_days: int, number: int) -> tuple[date, date]:
    first = start + timedelta(days=(number - 1) * wave_days)
    return first, first + timedelta(days=wave_days - 1)


def plan_scope(
    *, session: Session, sources: list[str], within: Within = None
) -> tuple[list[str], int, dict[str, str]]:
    """Systems on the source nodes: (codes to plan, classified count, code → plan holding it).

    A system is on a source when the inventory holds a live resource of it there (of any
    kind: what is left there must move or go), or when the register declares it there. With
    `within`, only the systems it accepts (a planner's grants).
    """
    on_sources = (
        select(Resource.system_code)
        .where(
            col(Resource.deleted_at).is_(None),
            col(Resource.system_code).is_not(None),
            col(Resource.node_id).in_(sources),
        )
        .distinct()
    )
    query = select(System).where(
        sa.or_(col(System.code).in_(on_sources), col(System.declared_node).in_(sources))
    )
    found = [
        (system.code, system.classified)
        for system in session.exec(query)
        if within is None or within(system)
    ]
    classified = sum(1 for _, is_classified in found if is_classified)
    codes = sorted(code for code, is_classified in found if not is_classified)
    # A system another plan is already moving (past `planned`, in a plan in force) stays with
    # that plan; a draft that only placed it takes nothing.
    taken = moving_systems(session=session, codes=set(codes))
    return [c for c in codes if c not in taken], classified, taken


def moving_systems(*, session: Session, codes: set[str]) -> dict[str, str]:
    """code → the plan in force in which it is past `planned` (held while past it counts)."""
    query = (
        select(SystemMigration.system_code, SystemMigration.state, Plan.name, Plan.id)
        .join(Plan, col(Plan.id) == col(SystemMigration.plan_id))
        .where(
            col(SystemMigration.state).in_(sorted(PAST_PLANNED | {"on_hold"})),
            in_force(),
        )
        .order_by(col(Plan.name))
    )
    taken: dict[str, str] = {}
    for code, state, name, plan_id in session.exec(query):
        if code not in codes or code in taken:
            continue
        if (
            state == "on_hold"
            and (held_from(session=session, plan_id=plan_id or 0, code=code) or "")
            not in PAST_PLANNED
        ):
            continue
        taken[code] = name
    return taken


# A move that has finished: the system is on the unified cloud and its acceptance recorded.
FINISHED = frozenset({"accepted", "decommissioned"})


def archive_plan(*, session: Session, name: str, by: str, now: datetime) -> Plan:
    """Take a plan out of force: it no longer holds its systems, is kept with its log, and its
    name stays taken. Refused while any of its systems is under way (past `planned` and not
    finished); a system accepted or decommissioned has finished, and keeps its record."""
    if not by.strip():
        raise PlanError("mig_archive_by_required")
    plan = get_plan(session=session, name=name)
    if plan.status == ARCHIVED:
        raise PlanError("mig_plan_already_archived", name=name)
    # Finished moves leave nothing to hold: a completed plan can be archived.
    rows = session.exec(
        select(SystemMigration).where(col(SystemMigration.plan_id) == plan.id)
    ).all()
    started = sorted(
        m.system_code
        for m in rows
        if m.state in PAST_PLANNED - FINISHED
        or (
            m.state == "on_hold"
            and held_from(session=session, plan_id=plan.id or 0, code=m.system_code) in PAST_PLANNED
        )
    )
    if started:
        shown = Joined([*started[:10], *(["…"] if len(started) > 10 else [])], kind="item")
        raise PlanError(
            "mig_archive_started", name=name, count=len(started), systems=shown, first=started[0]
        )
    plan.status = ARCHIVED
    plan.review = {**(plan.review or {}), "archived_by": by.strip(), "archived_at": now.isoformat()}
    plan.updated_at = now
    session.add(plan)
    session.flush()
    return plan


@dataclass
class PlanInputs:
    """Everything the pure planner needs, read from the ledger."""

    candidates: list[Candidate]
    edges: list[Edge]
    target: Target


def gather_inputs(
    *,
    session: Session,
    codes: list[str],
    sources: list[str],
    target: Node,
    free: tuple[float | None, float | None, float | None],
    today: date,
) -> PlanInputs:
    profiles = system_profiles(session=session, today=today)
    sizing = system_sizing(session=session, node_ids=sources)
    assessments = current_assessments(session=session)
    goal = target_profile(target)
    candidates: list[Candidate] = []
    for code in codes:
        system, profile = profiles[code]
        verdict = assess(profile, goal, today=today)
        readiness, strategy = verdict.readiness, verdict.strategy
        rules: str = fired_rules([r.as_dict() for r in verdict.rules], verdict.target)
        row = assessments.get(code)
        if row is not None and (row.override_readiness or row.override_strategy):
            # A person's decision outranks the rules (R3 refusals were enforced on entry).
            readiness = row.override_readiness or readiness
            strategy = row.override_strategy or strategy
            override = Phrase(
                "mig_override_note", by=row.override_by, rationale=row.override_rationale
            )
            rules = Joined([*getattr(rules, "items", ()), override]) if rules else override
        candidates.append(
            Candidate(
                code=code,
                target=target.id,
                department_code=system.department_code,
                city=system.city,
                environment=system.environment,
                criticality=system.criticality,
                mlps_level=system.mlps_level,
                readiness=readiness,
                strategy=strategy,
                sizing=sizing.get(code, Sizing()),
                rules=rules,
            )
        )
    edges = planner_edges(session=session)
    return PlanInputs(candidates=candidates, edges=edges, target=Target(target.id, *free))


# ---------------------------------------------------------------- create


def _review_document(
    result_constraints: Iterable[Constraint],
    checked: Review,
    extra: dict[str, Any],
) -> dict[str, Any]:
    return {
        "constraints": [c.as_dict() for c in (*result_constraints, *checked.constraints)],
        "cross_wave": checked.cross_wave,
        **extra,
    }


def create_plan(
    *,
    session: Session,
    name: str,
    sources: list[str],
    target: str,
    by: str,
    now: datetime,
    today: date,
    start: date | None = None,
    wave_days: int = DEFAULT_WAVE_DAYS,
    parameters: Parameters = Parameters(max_systems_per_wave=DEFAULT_WAVE_SIZE),
    within: Within = None,
) -> tuple[Plan, PlanResult]:
    """Plan the systems on `sources` (those `within` a scope, when given) onto `target` and
    store plan, waves and tracking rows."""
    if not name.strip():
        raise PlanError("mig_plan_needs_name")
    if session.exec(select(Plan).where(col(Plan.name) == name)).first() is not None:
        raise PlanError("mig_plan_name_taken", name=name)
    if not sources:
        raise PlanError("mig_plan_no_source")
    if wave_days < 1:
        raise PlanError("mig_plan_wave_days")
    if parameters.max_systems_per_wave < 1:
        raise PlanError("mig_plan_wave_size")
    nodes = {n.id: n for n in session.exec(select(Node))}
    unknown = [n for n in [*sources, target] if n not in nodes]
    if unknown:
        raise PlanError("mig_plan_unknown_nodes", nodes=", ".join(unknown))
    if not nodes[target].one_cloud:
        raise PlanError("mig_plan_target_not_one_cloud", target=target)
    if target in sources:
        raise PlanError("mig_plan_target_is_source", target=target)
    on_cloud = [n for n in sources if nodes[n].one_cloud]
    if on_cloud:
        # A one_cloud node is the unified cloud itself: its systems are already where a
        # migration would take them (moves between cloud nodes are not migrations).
        raise PlanError("mig_plan_source_one_cloud", nodes=", ".join(sorted(on_cloud)))
    start = start or today
    sources = sorted(set(sources))

    refresh_inferred(session=session, now=now)
    codes, classified, taken = plan_scope(session=session, sources=sources, within=within)
    if not codes:
        raise PlanError(
            "mig_plan_nothing",
            nodes=", ".join(sources),
            taken=len(taken),
            classified=classified,
        )
    capacity = node_capacity(session=session, node=nodes[target])
    inputs = gather_inputs(
        session=session,
        codes=codes,
        sources=sources,
        target=nodes[target],
        free=capacity.free,
        today=today,
    )
    result = plan_waves(inputs.candidates, inputs.edges, [inputs.target], parameters)
    checked = review(
        inputs.candidates,
        inputs.edges,
        [inputs.target],
        parameters,
        result.group_of,
        result.wave_of,
    )
    if checked.errors:  # pragma: no cover - the planner's own guarantee, kept loud
        raise AssertionError(
            "planner broke its rules: " + "; ".join(c.detail for c in checked.errors)
        )
    bound = lower_bound(result, inputs.edges, parameters)
    plan = Plan(
        name=name,
        source_nodes=sources,
        target_node=target,
        parameters={
            "max_systems_per_wave": parameters.max_systems_per_wave,
            "strict_order": parameters.strict_order,
            "start": start.isoformat(),
            "wave_days": wave_days,
            "free_capacity": dict(
                zip(("vcpu", "memory_gib", "storage_gib"), capacity.free, strict=True)
            ),
        },
        review=_review_document(
            result.constraints,
            checked,
            {
                "waves": result.waves,
                "placed": len(result.wave_of),
                "not_placed": len(result.unplaced),
                "lower_bound": {"chain": bound.chain, "size": bound.size},
                "excluded": {"classified": classified, "in_other_plans": taken},
                "capacity": {
                    "total": dict(
                        zip(("vcpu", "memory_gib", "storage_gib"), capacity.total, strict=True)
                    ),
                    "allocated": capacity.allocated.as_dict(),
                    "planned": result.used.get(target, Sizing()).as_dict(),
                },
            },
        ),
        status="draft",
        created_by=by,
        created_at=now,
        updated_at=now,
    )
    session.add(plan)
    session.flush()
    assert plan.id is not None
    for number in range(1, result.waves + 1):
        first, last = wave_dates(start, wave_days, number)
        session.add(Wave(plan_id=plan.id, number=number, start=first, end=last))
    migrations: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    # Each explanation's catalog keys and fields, to word it in the reader's language.
    explanations: dict[str, Any] = {}
    for candidate in inputs.candidates:
        code = candidate.code
        wave = result.wave_of.get(code)
        if wave is not None:
            state = "planned"
            explanation: str = Joined(result.notes[code])
        else:
            state = "exempted" if candidate.readiness == EXEMPT else "assessed"
            explanation = result.unplaced[code]
        as_dict = getattr(explanation, "as_dict", None)
        if callable(as_dict):
            explanations[code] = as_dict()
        level, factors = checked.risk[code]
        migrations.append(
            {
                "plan_id": plan.id,
                "system_code": code,
                "wave": wave,
                "state": state,
                "move_group": result.group_of[code],
                "readiness": candidate.readiness,
                "strategy": candidate.strategy,
                "sizing_vcpu": candidate.sizing.vcpu,
                "sizing_memory_gib": candidate.sizing.memory_gib,
                "sizing_storage_gib": candidate.sizing.storage_gib,
                "explanation": explanation,
                "risk": level,
                "risk_factors": factors,
                "updated_at": now,
            }
        )
        events.append(
            {
                "system_code": code,
                "plan_id": plan.id,
                "from_state": None,
                "to_state": state,
                "by": by,
                "at": now,
                "note": f"plan {name} created" + (f", wave {wave}" if wave else ""),
                "evidence": None,
                # The facts the plan was made on, as `advance` records its gates.
                "checks": {
                    "wave": wave,
                    "readiness": candidate.readiness,
                    "strategy": candidate.strategy,
                },
            }
        )
    plan.review = {**(plan.review or {}), "explanations": explanations}
    if migrations:
        session.execute(sa.insert(SystemMigration), migrations)
        session.execute(sa.insert(MigrationEvent), events)
    session.flush()
    return plan, result


# ---------------------------------------------------------------- read


def get_plan(*, session: Session, name: str) -> Plan:
    plan = session.exec(select(Plan).where(col(Plan.name) == name)).first()
    if plan is None:
        names = ", ".join(session.exec(select(Plan.name).order_by(col(Plan.name)))) or "-"
        raise PlanError("mig_unknown_plan", name=name, plans=names)
    return plan


def list_plans(*, session: Session) -> list[dict[str, Any]]:
    counts: dict[int, tuple[int, int]] = {}
    query = select(
        SystemMigration.plan_id,
        sa.func.count(),
        sa.func.count(col(SystemMigration.wave)),
    ).group_by(col(SystemMigration.plan_id))
    for plan_id, total, placed in session.exec(query):
        counts[plan_id] = (total, placed)
    rows = []
    for plan in session.exec(select(Plan).order_by(col(Plan.id))):
        total, placed = counts.get(plan.id or 0, (0, 0))
        rows.append(
            {
                "name": plan.name,
                "target_node": plan.target_node,
                "source_nodes": ", ".join(plan.source_nodes),
                "status": plan.status,
                "waves": (plan.review or {}).get("waves", 0),
                "systems": total,
                "placed": placed,
                "created_by": plan.created_by,
                "created_at": plan.created_at,
            }
        )
    return rows


def plan_review(
    *, session: Session, plan: Plan, disclosure: Disclosure | None = None
) -> dict[str, Any]:
    """The plan's stored review as output may show it. A system classified after the plan was
    made is still in it: unless the disclosure includes it, constraints and cross-wave links
    lose it, and free text loses its code and name."""
    disclosure = disclosure or Disclosure()
    review = dict(plan.review or {})

    def shown(code: str) -> bool:
        return disclosure.shows_system(session, code)

    constraints = []
    for constraint in review.get("constraints", []):
        systems = [code for code in constraint.get("systems", []) if shown(code)]
        if systems or not constraint.get("systems"):
            detail = disclosure.text(session, constraint.get("detail"))
            kept = {**constraint, "systems": systems, "detail": detail}
            if detail != constraint.get("detail"):
                # Its wording would name what the disclosure took out.
                kept.pop("wording", None)
            constraints.append(kept)
    review["constraints"] = constraints
    explanations = {}
    for code, kept in (review.get("explanations") or {}).items():
        english = str(decode(kept))
        # Only what the disclosure would show as text: the wording names no more than that.
        if shown(code) and (
            disclosure.include_classified
            or not disclosure.classified(session).redact_text(english)[1]
        ):
            explanations[code] = kept
    review["explanations"] = explanations
    review["cross_wave"] = [
        link
        for link in review.get("cross_wave", [])
        if shown(str(link.get("from"))) and shown(str(link.get("to")))
    ]
    excluded = dict(review.get("excluded") or {})
    if "in_other_plans" in excluded:
        excluded["in_other_plans"] = {
            code: name for code, name in excluded["in_other_plans"].items() if shown(code)
        }
        review["excluded"] = excluded
    return review


def plan_rows(
    *, session: Session, plan: Plan, disclosure: Disclosure | None = None
) -> list[dict[str, Any]]:
    """One row per system of the plan, wave by wave then unplaced, as the CSV export has them;
    a classified system only when the disclosure includes it, and never named in another's
    explanation otherwise."""
    disclosure = disclosure or Disclosure()
    waves = {w.number: w for w in session.exec(select(Wave).where(col(Wave.plan_id) == plan.id))}
    query = (
        select(SystemMigration, System)
        .join(System, col(System.code) == col(SystemMigration.system_code))
        .where(col(SystemMigration.plan_id) == plan.id)
    )
    pairs = [
        (m, s)
        for m, s in session.exec(query)
        if disclosure.shows_system(session, s.code, classified=s.classified)
    ]
    pairs.sort(key=lambda pair: (pair[0].wave is None, pair[0].wave or 0, pair[0].system_code))
    rows = []
    for migration, system in pairs:
        wave = waves.get(migration.wave) if migration.wave is not None else None
        rows.append(
            {
                "plan": plan.name,
                "wave": migration.wave,
                "wave_start": wave.start if wave else None,
                "wave_end": wave.end if wave else None,
                "system_code": system.code,
                "name": system.name,
                "department_code": system.department_code,
                "city": system.city,
                "environment": system.environment,
                "criticality": system.criticality,
                "mlps_level": system.mlps_level,
                "readiness": migration.readiness,
                "strategy": migration.strategy,
                "move_group": migration.move_group,
                "state": migration.state,
                "vcpu": migration.sizing_vcpu,
                "memory_gib": migration.sizing_memory_gib,
                "storage_gib": migration.sizing_storage_gib,
                "risk": migration.risk,
                "explanation": disclosure.text(session, migration.explanation),
            }
        )
    return rows


def plan_document(
    *,
    session: Session,
    plan: Plan,
    disclosure: Disclosure | None = None,
    rows: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The landing-zone export [infra] reads (schema in migrate/README.md), from `rows` when
    plan_rows was already read with the same disclosure."""
    waves = session.exec(
        select(Wave).where(col(Wave.plan_id) == plan.id).order_by(col(Wave.number))
    ).all()
    by_wave: dict[int, list[dict[str, Any]]] = {w.number: [] for w in waves}
    if rows is None:
        rows = plan_rows(session=session, plan=plan, disclosure=disclosure)
    for row in rows:
        if row["wave"] is None:
            continue
        by_wave.setdefault(row["wave"], []).append(
            {
                "code": row["system_code"],
                "department_code": row["department_code"],
                "city": row["city"],
                "environment": row["environment"],
                "strategy": row["strategy"],
                "target_node": plan.target_node,
                "sizing": {
                    "vcpu": row["vcpu"],
                    "memory_gib": row["memory_gib"],
                    "storage_gib": row["storage_gib"],
                },
                "labels": {
                    LABEL_SYSTEM: row["system_code"],
                    LABEL_DEPARTMENT: row["department_code"],
                },
            }
        )
    return {
        "plan": plan.name,
        "target_node": plan.target_node,
        "source_nodes": plan.source_nodes,
        "waves": [
            {
                "number": w.number,
                "start": w.start.isoformat(),
                "end": w.end.isoformat(),
                "systems": by_wave.get(w.number, []),
            }
            for w in waves
        ],
    }


# ---------------------------------------------------------------- import


@dataclass
class PlanImport:
    """The outcome of `plan import`: the changes made, or every problem and nothing changed."""

    plan: str
    moved: list[tuple[str, int | None, int | None]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Wording] = field(default_factory=list)
    constraints: list[dict[str, Any]] = field(default_factory=list)
    dry_run: bool = False
    # The plan's version (plan_version) once the import is through: what a next edit expects.
    version: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def _plan_parameters(plan: Plan) -> tuple[Parameters, Target, date, int]:
    params = plan.parameters or {}
    free = params.get("free_capacity") or {}
    return (
        Parameters(
            max_systems_per_wave=int(params.get("max_systems_per_wave", DEFAULT_WAVE_SIZE)),
            strict_order=bool(params.get("strict_order", False)),
        ),
        Target(plan.target_node, free.get("vcpu"), free.get("memory_gib"), free.get("storage_gib")),
        date.fromisoformat(params["start"]) if params.get("start") else plan.created_at.date(),
        int(params.get("wave_days", DEFAULT_WAVE_DAYS)),
    )


def _stored_candidates(
    *, session: Session, plan: Plan, rows: list[tuple[SystemMigration, System]]
) -> list[Candidate]:
    """Candidates as the plan decided them, with overrides made since then applied."""
    assessments = current_assessments(session=session)
    kept = (plan.review or {}).get("explanations") or {}
    candidates = []
    for migration, system in rows:
        readiness, strategy = migration.readiness, migration.strategy
        # The stored explanation of an unplaced system names the rules that kept it out.
        rules = ""
        if migration.wave is None:
            rules = _kept_reason(migration.explanation, kept.get(system.code))
        row = assessments.get(system.code)
        if row is not None and (row.override_readiness or row.override_strategy):
            readiness, strategy = effective(row)
            rules = Phrase(
                "mig_override_note", by=row.override_by, rationale=row.override_rationale
            )
        candidates.append(
            Candidate(
                code=system.code,
                target=plan.target_node,
                department_code=system.department_code,
                city=system.city,
                environment=system.environment,
                criticality=system.criticality,
                mlps_level=system.mlps_level,
                readiness=readiness,
                strategy=strategy,
                sizing=Sizing(
                    migration.sizing_vcpu, migration.sizing_memory_gib, migration.sizing_storage_gib
                ),
                rules=rules,
            )
        )
    return candidates


def _kept_reason(explanation: str, kept: Any) -> str:
    """Why an unplaced system was kept out, from its stored explanation ("not placed: …"):
    worded from the plan's kept wording when that still says the same, else as stored."""
    stored = explanation.removeprefix("not placed: ")
    try:
        phrase = decode(kept)
    except (KeyError, IndexError, ValueError, TypeError):
        return stored
    if isinstance(phrase, Phrase) and phrase.key == "mig_not_placed" and str(phrase) == explanation:
        reason = phrase.fields.get("reason")
        # "readiness blocked (R1 …)": the rules alone, as the refusal quoting it names the why.
        if isinstance(reason, Phrase) and reason.key == "mig_why_rules":
            reason = reason.fields.get("rules")
        if isinstance(reason, str):
            return reason
    return stored


def _explain_by_hand(
    code: str,
    wave: int,
    by: str,
    candidate: Candidate,
    members: list[str],
    edges: list[Edge],
    wave_of: dict[str, int],
) -> Joined:
    lines: list[str] = [
        Phrase("mig_hand_wave", wave=wave, phase=Label("mig_phase", candidate.phase), by=by)
    ]
    others = [c for c in members if c != code]
    if others:
        lines.append(Phrase("mig_note_together", others=Joined(others, "item")))
    deps = sorted(
        (wave_of[e.to_system], e.to_system)
        for e in edges
        if e.from_system == code and e.to_system in wave_of and e.to_system not in members
    )
    if deps:
        shown = Joined((Phrase("mig_in_wave", code=c, wave=w) for w, c in deps[:5]), "item")
        lines.append(Phrase("mig_note_after", deps=shown))
    return Joined(lines)


def _problem_reason(detail: str) -> str | Wording:
    """A planner rule's detail as a problem's reason: worded in the reader's language when it
    kept its catalog key."""
    if isinstance(detail, Phrase):
        return Wording(detail.key, **detail.fields)
    return detail


def import_plan(
    *,
    session: Session,
    plan_name: str,
    path: Path | str,
    by: str,
    now: datetime,
    dry_run: bool = False,
    readable: Within = None,
    editable: Within = None,
) -> PlanImport:
    """Bring back an edited export: validate it whole, then re-explain and re-score risk.

    Only the wave column is read (blank: not placed); the other columns are for reading. A
    file with any problem changes nothing. With `readable`, a system outside it reads as
    unknown; with `editable`, moving a system outside it is a problem (a department's IT
    staff move their own systems only).

    Two imports (or an import and an advance) at once: the later finds the plan, or a system
    it moves, changed since it read them and is refused whole (PlanError, HTTP 409).
    """
    plan = get_plan(session=session, name=plan_name)
    seen_version = plan.updated_at
    outcome = PlanImport(plan=plan.name, dry_run=dry_run)
    if not by.strip():
        outcome.problems.append(Problem(None, "", "", Wording("mig_import_by_required")))
        return outcome
    sheet = read_sheet(path, aliases=IMPORT_HEADERS, required=("system_code", "wave"))
    if sheet.problems:
        outcome.problems = sheet.problems
        return outcome
    query = (
        select(SystemMigration, System)
        .join(System, col(System.code) == col(SystemMigration.system_code))
        .where(col(SystemMigration.plan_id) == plan.id)
        .order_by(col(SystemMigration.system_code))
    )
    rows = [(m, s) for m, s in session.exec(query) if not s.classified]
    migrations = {m.system_code: m for m, _ in rows}
    system_of = {m.system_code: s for m, s in rows}
    unclassified = select(System).where(col(System.classified).is_(False))
    registered = {s.code for s in session.exec(unclassified) if readable is None or readable(s)}
    code_header, wave_header = sheet.headers["system_code"], sheet.headers["wave"]

    wanted: dict[str, int | None] = {}
    row_of: dict[str, int] = {}
    for number, values in sheet.rows:
        code, wave_text = values["system_code"], values["wave"]
        if not code:
            outcome.problems.append(
                Problem(number, code_header, "", Wording("mig_row_code_required"))
            )
            continue
        if code not in registered:
            outcome.problems.append(
                Problem(number, code_header, code, Wording("mig_import_unknown_system"))
            )
            continue
        if code not in migrations:
            outcome.problems.append(
                Problem(
                    number, code_header, code, Wording("mig_import_not_in_plan", plan=plan.name)
                )
            )
            continue
        if code in row_of:
            outcome.problems.append(
                Problem(number, code_header, code, Wording("mig_import_twice", row=row_of[code]))
            )
            continue
        row_of[code] = number
        if not wave_text:
            wanted[code] = None
            continue
        try:
            wave = int(float(wave_text)) if float(wave_text).is_integer() else None
        except ValueError:
            wave = None
        # A plan never needs more waves than it has systems; an absurd number (1e18) would
        # otherwise have every wave up to it created, or overflow its dates.
        if wave is None or not 1 <= wave <= len(migrations):
            outcome.problems.append(
                Problem(
                    number,
                    wave_header,
                    wave_text,
                    Wording("mig_import_bad_wave", count=len(migrations)),
                )
            )
            continue
        wanted[code] = wave
    # Only what the reader may see: a department's export holds its own systems alone.
    missing = sorted((set(migrations) & registered) - set(row_of))
    if missing:
        outcome.warnings.append(
            Wording(
                "mig_import_missing",
                count=len(missing),
                systems=Joined([*missing[:10], *(["…"] if len(missing) > 10 else [])], "item"),
            )
        )
    for code, wave in wanted.items():
        migration = migrations[code]
        if wave is None and migration.wave is not None and migration.state in STARTED:
            outcome.problems.append(
                Problem(
                    row_of[code],
                    wave_header,
                    "",
                    Wording("mig_import_started", code=code, state=Label("state", migration.state)),
                )
            )
        if editable is not None and wave != migration.wave and not editable(system_of[code]):
            outcome.problems.append(
                Problem(
                    row_of[code],
                    wave_header,
                    "" if wave is None else str(wave),
                    Wording("mig_import_not_yours", code=code),
                )
            )
    # Rows with problems keep their stored wave, so the checks below still see every rule.

    wave_of = {c: m.wave for c, m in migrations.items() if m.wave is not None}
    for code, wave in wanted.items():
        if wave is None:
            wave_of.pop(code, None)
        else:
            wave_of[code] = wave
    parameters, target, start, wave_days = _plan_parameters(plan)
    candidates = _stored_candidates(session=session, plan=plan, rows=rows)
    group_of = {c: m.move_group for c, m in migrations.items()}
    edges = planner_edges(session=session)
    checked = review(candidates, edges, [target], parameters, group_of, wave_of)
    for error in checked.errors:
        first_row = min((row_of.get(c, 0) for c in error.systems if c in row_of), default=0)
        outcome.problems.append(
            Problem(first_row or None, wave_header, "", _problem_reason(error.detail))
        )
    if outcome.problems:
        outcome.problems.sort(key=lambda p: (p.row or 0, str(p.reason)))
        return outcome

    used = sorted(set(wave_of.values()))
    gaps = [n for n in range(1, max(used, default=0) + 1) if n not in used]
    if gaps:
        outcome.warnings.append(
            Wording("mig_import_empty_waves", waves=Joined(map(str, gaps), "item"))
        )
    by_code = {c.code: c for c in candidates}
    members: dict[str, list[str]] = {}
    for code, gid in group_of.items():
        members.setdefault(gid, []).append(code)
    kept_reasons = [
        Constraint(k["kind"], tuple(k["systems"]), k["detail"])
        for k in (plan.review or {}).get("constraints", [])
        if k["kind"] in NOT_PLACED_KINDS and not any(s in wave_of for s in k["systems"])
    ]
    events: list[dict[str, Any]] = []
    updates: dict[str, dict[str, Any]] = {}
    explanations = dict((plan.review or {}).get("explanations") or {})
    for code, migration in migrations.items():
        new_wave = wave_of.get(code)
        level, factors = checked.risk[code]
        candidate = by_code[code]
        update: dict[str, Any] = {
            "readiness": candidate.readiness,
            "strategy": candidate.strategy,
            "risk": level,
            "risk_factors": factors,
            "updated_at": now,
        }
        if new_wave != migration.wave:
            outcome.moved.append((code, migration.wave, new_wave))
            update["wave"] = new_wave
            explanation: str
            if new_wave is None:
                explanation = Phrase("mig_not_placed", reason=Phrase("mig_out_by_hand", by=by))
                kept_reasons.append(
                    Constraint("placed_out_by_hand", (code,), Phrase("mig_c_out_by_hand", by=by))
                )
            else:
                explanation = _explain_by_hand(
                    code,
                    new_wave,
                    by,
                    candidate,
                    sorted(members[migration.move_group]),
                    edges,
                    wave_of,
                )
            update["explanation"] = explanation
            # Kept with the plan, so `plan show` words the new explanation in its reader's language.
            explanations[code] = explanation.as_dict()
            # Placing an assessed system plans it; taking a planned one out un-plans it.
            new_state = migration.state
            if new_wave is not None and migration.state == "assessed":
                new_state = "planned"
            elif new_wave is None and migration.state == "planned":
                new_state = "assessed"
            if new_state != migration.state:
                update["state"] = new_state
                events.append(
                    {
                        "system_code": code,
                        "plan_id": plan.id,
                        "from_state": migration.state,
                        "to_state": new_state,
                        "by": by,
                        "at": now,
                        "note": f"plan import: wave {migration.wave or '-'} → {new_wave or '-'}",
                        "evidence": None,
                        "checks": {
                            "wave": new_wave,
                            "readiness": candidate.readiness,
                            "strategy": candidate.strategy,
                        },
                    }
                )
        updates[code] = update
    document = _review_document(kept_reasons, checked, {})
    outcome.constraints = document["constraints"]
    outcome.version = plan_version(plan)
    if dry_run:
        return outcome
    _write_rows(
        session=session,
        plan=plan,
        seen_version=seen_version,
        migrations=migrations,
        updates=updates,
        now=now,
    )
    if events:
        session.execute(sa.insert(MigrationEvent), events)
    top = max(wave_of.values(), default=0)
    existing = {w.number: w for w in session.exec(select(Wave).where(col(Wave.plan_id) == plan.id))}
    for number, wave_row in existing.items():
        if number > top:
            session.delete(wave_row)
    for number in range(1, top + 1):
        if number not in existing:
            first, last = wave_dates(start, wave_days, number)
            session.add(Wave(plan_id=plan.id or 0, number=number, start=first, end=last))
    plan.review = {
        **(plan.review or {}),
        **document,
        "waves": top,
        "placed": len(wave_of),
        "not_placed": len(migrations) - len(wave_of),
        "explanations": explanations,
        "imported_by": by,
        "imported_at": now.isoformat(),
    }
    plan.updated_at = now
    session.add(plan)
    session.flush()
    outcome.version = plan_version(plan)
    return outcome


def _write_rows(
    *,
    session: Session,
    plan: Plan,
    seen_version: datetime | None,
    migrations: dict[str, SystemMigration],
    updates: dict[str, dict[str, Any]],
    now: datetime,
) -> None:
    """Store an import's rows, only over the plan and the moved systems as the import read
    them: the plan's version is claimed first (a row lock on PostgreSQL, the write lock on
    SQLite), then each moved system changes only from the wave and state it was read in."""
    moved = sorted(code for code, update in updates.items() if "wave" in update)
    claimed = session.execute(
        sa.update(Plan)
        .where(col(Plan.id) == plan.id, col(Plan.updated_at) == seen_version)
        .values(updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise plan_changed_meanwhile(session=session, plan=plan, codes=moved)
    for code in moved:
        migration = migrations[code]
        changed = session.execute(
            sa.update(SystemMigration)
            .where(
                col(SystemMigration.id) == migration.id,
                col(SystemMigration.wave) == migration.wave,
                col(SystemMigration.state) == migration.state,
            )
            .values(**updates[code])
            .execution_options(synchronize_session=False)
        )
        if changed.rowcount != 1:  # type: ignore[attr-defined]
            raise plan_changed_meanwhile(session=session, plan=plan, codes=moved)
    # The rest only get their risk and assessment refreshed: one statement for all of them.
    rescored = [
        {"id": migrations[code].id, **update}
        for code, update in updates.items()
        if "wave" not in update
    ]
    if rescored:
        session.execute(sa.update(SystemMigration), rescored)
    for migration in migrations.values():
        session.expire(migration)


def plan_version(plan: Plan) -> str | None:
    """What a caller hands back to say which state of the plan it edited: its last change, to
    the microsecond, written so that it travels in a URL as it is."""
    return _version_text(plan.updated_at)


def _version_text(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ") if moment else None


def plan_changed_meanwhile(*, session: Session, plan: Plan, codes: list[str]) -> PlanError:
    """The refusal of a plan write that lost a race, with the plan's version and the current
    wave and state of the systems it meant to move (HTTP 409)."""
    version = session.exec(select(Plan.updated_at).where(col(Plan.id) == plan.id)).first()
    current = session.exec(
        select(SystemMigration.system_code, SystemMigration.wave, SystemMigration.state)
        .where(
            col(SystemMigration.plan_id) == plan.id,
            col(SystemMigration.system_code).in_(codes),
        )
        .order_by(col(SystemMigration.system_code))
    )
    refusal = PlanError("mig_plan_changed_meanwhile", plan=plan.name)
    refusal.problem_fields = {
        "current": {
            "plan": plan.name,
            "version": _version_text(version),
            "systems": [{"system": c, "wave": w, "state": st} for c, w, st in current],
        }
    }
    return refusal


# ---------------------------------------------------------------- wording for people


def plan_explanation(row: dict[str, Any], review: dict[str, Any] | None, lang: str) -> str:
    """A plan row's explanation in `lang` from the wording the plan kept; the stored text when
    there is none (an older plan, an explanation rewritten by import, a redacted text)."""
    kept = ((review or {}).get("explanations") or {}).get(row["system_code"])
    return worded(str(row["explanation"]), kept, lang)


def constraint_detail(constraint: dict[str, Any], lang: str) -> str:
    """A constraint's detail in `lang`, or as stored when it kept no wording."""
    return worded(str(constraint.get("detail", "")), constraint.get("wording"), lang)


# ---------------------------------------------------------------- files a plan is exported as

EXPORT_FORMATS = ("csv", "json", "xlsx")


def _cell(value: Any) -> Any:
    # As a person typed it: 2 not 2.0, three decimals at most, dates as ISO text.
    if isinstance(value, float):
        return int(value) if value.is_integer() else round(value, 3)
    if isinstance(value, date):
        return value.isoformat()
    return value


def sheet_text(rows: list[dict[str, Any]], columns: tuple[str, ...] = CSV_COLUMNS) -> str:
    """Plan rows as the CSV a spreadsheet opens and `plan import` reads back."""
    lines: list[list[str]] = [list(columns)]
    for row in rows:
        cells = []
        for column in columns:
            value = _cell(row.get(column))
            cells.append("" if value is None else escape_formula(str(value)))
        lines.append(cells)
    return csv_text(lines)


def sheet_xlsx(rows: list[dict[str, Any]], columns: tuple[str, ...] = CSV_COLUMNS) -> bytes:
    """The same rows as an XLSX workbook: numbers stay numbers, text that a spreadsheet would
    evaluate is guarded as in the CSV, and `plan import` reads it back."""
    import io

    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("plan")
    sheet.append(list(columns))
    for row in rows:
        cells = [_cell(row.get(column)) for column in columns]
        sheet.append([escape_formula(c) if isinstance(c, str) else c for c in cells])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


# ---------------------------------------------------------------- use cases (session=, actor=)


@dataclass
class PlanView:
    """A plan as the actor may read it: its head, its waves and the systems in its scope."""

    plan: Plan
    head: dict[str, Any]
    rows: list[dict[str, Any]]
    waves: list[Wave]

    @property
    def review(self) -> dict[str, Any]:
        return dict(self.head["review"] or {})


@dataclass(frozen=True)
class PlanExport:
    """An exported plan: the text a terminal prints and the bytes a file holds."""

    fmt: str
    text: str | None
    content: bytes


def visible_plans(*, session: Session, actor: Actor) -> list[dict[str, Any]]:
    """`plan list` for whoever reads: every plan with its size. A plan's counts are aggregates
    (classified systems counted, never named), so every reader sees them all."""
    reading_scope(actor)
    return list_plans(session=session)


def make_plan(
    *,
    session: Session,
    actor: Actor,
    name: str,
    sources: list[str],
    target: str,
    now: datetime,
    today: date,
    start: date | None = None,
    wave_days: int = DEFAULT_WAVE_DAYS,
    parameters: Parameters = Parameters(max_systems_per_wave=DEFAULT_WAVE_SIZE),
) -> tuple[Plan, PlanResult]:
    """`plan create` for whoever acts: a province planner plans every system on the sources, a
    narrower one only the systems its grants cover. Signed by the actor and audited."""
    within = acting_scope(actor, "plan")
    plan, result = create_plan(
        session=session,
        name=name,
        sources=sources,
        target=target,
        by=actor.signature,
        now=now,
        today=today,
        start=start,
        wave_days=wave_days,
        parameters=parameters,
        within=within,
    )
    review = plan.review or {}
    record(
        session=session,
        actor=actor,
        action="plan.create",
        target=name,
        after={
            "sources": plan.source_nodes,
            "target": plan.target_node,
            "scope": "province" if within is None else "grants",
            "waves": review.get("waves"),
            "placed": review.get("placed"),
            "not_placed": review.get("not_placed"),
        },
        now=now,
    )
    return plan, result


def _review_in_scope(review: dict[str, Any], readable: set[str]) -> dict[str, Any]:
    """The review with what names a system the reader may not see taken out; a cross-wave link
    stays when either end is readable, as a dependency does."""
    review = dict(review)
    constraints = []
    for constraint in review.get("constraints", []):
        systems = [code for code in constraint.get("systems", []) if code in readable]
        if systems or not constraint.get("systems"):
            constraints.append({**constraint, "systems": systems})
    review["constraints"] = constraints
    review["explanations"] = {
        code: kept for code, kept in (review.get("explanations") or {}).items() if code in readable
    }
    review["cross_wave"] = [
        link
        for link in review.get("cross_wave", [])
        if str(link.get("from")) in readable or str(link.get("to")) in readable
    ]
    excluded = dict(review.get("excluded") or {})
    if "in_other_plans" in excluded:
        excluded["in_other_plans"] = {
            code: name for code, name in excluded["in_other_plans"].items() if code in readable
        }
        review["excluded"] = excluded
    return review


def plan_details(
    *, session: Session, actor: Actor, name: str, disclosure: Disclosure | None = None
) -> PlanView:
    """`plan show` for whoever reads: the plan's head and waves, and its systems (and what
    its review says about them) only where the actor may read them."""
    within = reading_scope(actor)
    plan = get_plan(session=session, name=name)
    review = plan_review(session=session, plan=plan, disclosure=disclosure)
    rows = plan_rows(session=session, plan=plan, disclosure=disclosure)
    if within is not None:
        codes = [row["system_code"] for row in rows]
        systems = session.exec(select(System).where(col(System.code).in_(codes)))
        readable = {system.code for system in systems if within(system)}
        rows = [row for row in rows if row["system_code"] in readable]
        review = _review_in_scope(review, readable)
    head = {
        "plan": plan.name,
        "target_node": plan.target_node,
        "source_nodes": plan.source_nodes,
        "status": plan.status,
        "parameters": plan.parameters,
        "review": review,
        "created_by": plan.created_by,
        "created_at": plan.created_at,
    }
    waves = session.exec(
        select(Wave).where(col(Wave.plan_id) == plan.id).order_by(col(Wave.number))
    ).all()
    return PlanView(plan=plan, head=head, rows=rows, waves=list(waves))


def export_plan(
    *,
    session: Session,
    actor: Actor,
    name: str,
    fmt: str = "csv",
    disclosure: Disclosure | None = None,
) -> PlanExport:
    """`plan export` for whoever reads: CSV or XLSX to edit and import back, JSON for the
    landing zones; the systems the actor may read. A CSV file carries a BOM, so that Excel on
    a Chinese desktop opens it as UTF-8; a terminal gets the text without it."""
    if fmt not in EXPORT_FORMATS:
        raise Wording("mig_export_format", fmt=fmt, formats=", ".join(EXPORT_FORMATS))
    view = plan_details(session=session, actor=actor, name=name, disclosure=disclosure)
    if fmt == "xlsx":
        return PlanExport(fmt=fmt, text=None, content=sheet_xlsx(view.rows))
    if fmt == "json":
        document = plan_document(
            session=session, plan=view.plan, disclosure=disclosure, rows=view.rows
        )
        shown = dumps(document) + "\n"
        return PlanExport(fmt=fmt, text=shown, content=shown.encode("utf-8"))
    shown = sheet_text(view.rows)
    return PlanExport(fmt=fmt, text=shown, content=shown.encode("utf-8-sig"))


def import_plan_edits(
    *,
    session: Session,
    actor: Actor,
    name: str,
    path: Path | str,
    now: datetime,
    dry_run: bool = False,
    expected_version: str | None = None,
) -> PlanImport:
    """`plan import` for whoever acts: a department's IT staff move only their own
    departments' systems, a planner those in its scope; a system the actor may not read is
    unknown to it. Signed, and audited when applied.

    `expected_version` is the plan's version (plan_version) the caller edited: if the plan
    has changed since, nothing is written (409 with the current state)."""
    editable = acting_scope(actor, "plan_edit")
    plan = get_plan(session=session, name=name)
    if expected_version is not None and plan_version(plan) != expected_version:
        raise plan_changed_meanwhile(session=session, plan=plan, codes=[])
    outcome = import_plan(
        session=session,
        plan_name=name,
        path=path,
        by=actor.signature,
        now=now,
        dry_run=dry_run,
        readable=reading_scope(actor),
        editable=editable,
    )
    if outcome.ok and not dry_run:
        record(
            session=session,
            actor=actor,
            action="plan.import",
            target=name,
            before={code: old for code, old, _ in outcome.moved},
            after={code: new for code, _, new in outcome.moved},
            now=now,
        )
    return outcome


def archive_plan_as(*, session: Session, actor: Actor, name: str, now: datetime) -> Plan:
    """`plan archive` for whoever acts: the actor must hold `plan` over every system the plan
    holds (a plan that reaches beyond its grants is not its to drop). Signed and audited."""
    within = acting_scope(actor, "plan")
    plan = get_plan(session=session, name=name)
    if within is not None:
        held = session.exec(
            select(System)
            .join(SystemMigration, col(SystemMigration.system_code) == col(System.code))
            .where(col(SystemMigration.plan_id) == plan.id)
        )
        if not all(within(system) for system in held):
            raise AccessDenied(
                "access_denied", principal=actor.principal, action="plan", target=name
            )
    status = plan.status
    archived = archive_plan(session=session, name=name, by=actor.signature, now=now)
    record(
        session=session,
        actor=actor,
        action="plan.archive",
        target=name,
        before={"status": status},
        after={"status": archived.status},
        now=now,
    )
    return archived
